//! The virtual-network verbs (`net-define`, `net-start`, ...) as protocol
//! operations, carried out on the network store under the config and state
//! directories. The daemon runs them for its clients; the CLI runs the same
//! function in embedded mode, so both behave alike.

use std::error::Error;
use std::path::Path;

use host_io::{ProcessRunner, Toolset};
use netdrv::daemons::SystemDaemons;
use netdrv::firewall::Backend as NetBackend;
use netdrv::host::{Host, NetlinkHost};
use netdrv::{Driver, LifecycleError, Store};
use nwfilter_driver::Backend;
use serde::{Deserialize, Serialize};

/// One network verb.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "verb", rename_all = "kebab-case")]
pub enum NetOp {
    /// Define or redefine a network from its `<network>` XML.
    Define {
        xml: String,
    },
    Undefine {
        name: String,
    },
    Start {
        name: String,
    },
    Destroy {
        name: String,
    },
    /// Active networks, or all with `all`; JSON rows with `json`.
    List {
        all: bool,
        json: bool,
    },
    Dumpxml {
        name: String,
    },
    /// Mark (or with `disable`, unmark) a network to start with the daemon.
    Autostart {
        name: String,
        disable: bool,
    },
    /// Start every autostart network that is not running.
    StartAll,
}

impl NetOp {
    /// Whether the verb may change which networks run or their filters.
    pub fn changes_networks(&self) -> bool {
        !matches!(
            self,
            NetOp::List { .. } | NetOp::Dumpxml { .. } | NetOp::Autostart { .. }
        )
    }
}

/// The store of networks under the nwfilter directories.
pub fn store(config_dir: &Path, state_dir: &Path) -> Store {
    Store::new(config_dir.join("networks"), state_dir.join("networks"))
}

/// The network firewall of a filter backend: xtables networks get
/// libvirt's iptables rules, nftables networks a table of ours.
pub fn firewall_backend(backend: Backend) -> NetBackend {
    match backend {
        Backend::Xtables => NetBackend::Iptables,
        Backend::Nftables => NetBackend::Nftables,
    }
}

/// Carries out `op`, starting networks on `backend`'s firewall; returns
/// the text the CLI prints.
pub fn execute(
    store: &Store,
    backend: Backend,
    op: &NetOp,
) -> Result<String, Box<dyn Error + Send + Sync>> {
    Ok(match op {
        NetOp::Define { xml } => {
            let host = NetlinkHost::new()?;
            let exists = |name: &nwfilter_model::IfName| host.link_exists(name).unwrap_or(true);
            let net = store.define(xml, &exists)?;
            format!("Network {} defined", net.name)
        }
        NetOp::Undefine { name } => {
            store.undefine(name)?;
            format!("Network {name} has been undefined")
        }
        NetOp::Start { name } => {
            with_driver(store, backend, |d| d.start(name).map(|_| ()))?;
            format!("Network {name} started")
        }
        NetOp::Destroy { name } => {
            with_driver(store, backend, |d| d.destroy(name))?;
            format!("Network {name} destroyed")
        }
        NetOp::List { all, json } => list(store, *all, *json)?,
        NetOp::Dumpxml { name } => netdrv::format_network(&store.get(name)?),
        NetOp::Autostart { name, disable } => {
            store.set_autostart(name, !disable)?;
            if *disable {
                format!("Network {name} unmarked as autostarted")
            } else {
                format!("Network {name} marked as autostarted")
            }
        }
        NetOp::StartAll => start_all(store, backend)?,
    })
}

fn with_driver<T>(
    store: &Store,
    backend: Backend,
    op: impl FnOnce(&Driver) -> Result<T, LifecycleError>,
) -> Result<T, LifecycleError> {
    let host = NetlinkHost::new()?;
    let runner = ProcessRunner::new(Toolset::default());
    let daemons = SystemDaemons::default();
    op(&Driver {
        store,
        host: &host,
        runner: &runner,
        daemons: &daemons,
        backend: firewall_backend(backend),
        tables_lock: Some(std::path::Path::new(host_io::DEFAULT_LOCK_FILE)),
    })
}

fn list(store: &Store, all: bool, json: bool) -> Result<String, Box<dyn Error + Send + Sync>> {
    let rows: Vec<_> = store
        .list()?
        .into_iter()
        .filter(|r| all || r.active)
        .collect();
    if json {
        return Ok(serde_json::to_string_pretty(&rows)?);
    }
    let mut out = format!(
        " {:<20} {:<10} {:<10} {}\n",
        "Name", "State", "Autostart", "Bridge"
    );
    out.push_str(&"-".repeat(56));
    for r in rows {
        let state = if r.active { "active" } else { "inactive" };
        let auto = if r.autostart { "yes" } else { "no" };
        let bridge = r.bridge.unwrap_or_default();
        out.push_str(&format!(
            "\n {:<20} {state:<10} {auto:<10} {bridge}",
            r.name
        ));
    }
    Ok(out)
}

/// Puts every running network's rules back on `backend`, moving those
/// another backend holds (make-before-break); one line per network.
pub fn reload_firewall(store: &Store, backend: Backend) -> Result<Vec<String>, LifecycleError> {
    let results = with_driver(store, backend, |d| d.reload_firewall())?;
    Ok(crate::networks::describe(
        "firewall rules re-added",
        results,
    ))
}

fn start_all(store: &Store, backend: Backend) -> Result<String, Box<dyn Error + Send + Sync>> {
    let mut started = Vec::new();
    let mut failed = Vec::new();
    with_driver(store, backend, |d| {
        for (name, result) in d.autostart_all()? {
            match result {
                Ok(()) => started.push(format!("Network {name} started")),
                Err(e) => failed.push(format!("{name}: {e}")),
            }
        }
        Ok(())
    })?;
    if !failed.is_empty() {
        started.push(format!(
            "some networks did not start: {}",
            failed.join("; ")
        ));
        return Err(started.join("\n").into());
    }
    Ok(started.join("\n"))
}
