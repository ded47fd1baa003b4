//! Virtual networks in the daemon: autostart networks are started when the
//! daemon starts, and running networks get their firewall rules back when
//! the daemon reloads or firewalld reloads (both rebuild the tables).
//! The life cycle itself is `netdrv`'s; this only drives it.

use std::path::{Path, PathBuf};

use host_io::{ProcessRunner, Toolset};
use netdrv::daemons::SystemDaemons;
use netdrv::host::NetlinkHost;
use netdrv::{AutostartResult, Driver, LifecycleError, Store};
use nwfilter_driver::Backend;

/// The networks' directories, under the daemon's config and state ones
/// (where the CLI's `net-*` verbs keep them).
#[derive(Debug, Clone)]
pub struct Networks {
    config: PathBuf,
    state: PathBuf,
}

impl Networks {
    pub fn new(config_dir: &Path, state_dir: &Path) -> Networks {
        Networks {
            config: config_dir.join("networks"),
            state: state_dir.join("networks"),
        }
    }

    /// Starts every autostart network that is not running, on `backend`.
    pub fn autostart(&self, backend: Backend) -> Result<Vec<AutostartResult>, LifecycleError> {
        self.with_driver(backend, |d| d.autostart_all())
    }

    /// Re-adds the rules of every running network on `backend`; a network
    /// whose rules the other backend holds moves make-before-break.
    pub fn reload_firewall(
        &self,
        backend: Backend,
    ) -> Result<Vec<AutostartResult>, LifecycleError> {
        self.with_driver(backend, |d| d.reload_firewall())
    }

    fn with_driver<T>(
        &self,
        backend: Backend,
        op: impl FnOnce(&Driver) -> Result<T, LifecycleError>,
    ) -> Result<T, LifecycleError> {
        let store = Store::new(&self.config, &self.state);
        let host = NetlinkHost::new()?;
        let runner = ProcessRunner::new(Toolset::default());
        let daemons = SystemDaemons::default();
        op(&Driver {
            store: &store,
            host: &host,
            runner: &runner,
            daemons: &daemons,
            backend: crate::net_ops::firewall_backend(backend),
            tables_lock: Some(std::path::Path::new(host_io::DEFAULT_LOCK_FILE)),
        })
    }
}

/// One log line per network handled.
pub fn describe(what: &str, results: Vec<AutostartResult>) -> Vec<String> {
    results
        .into_iter()
        .map(|(name, result)| match result {
            Ok(()) => format!("network {name}: {what}"),
            Err(e) => format!(
                "network {name}: {what} failed: {}",
                nwfilter_driver::engine::error_chain(&e)
            ),
        })
        .collect()
}
