//! What a [`Host`](crate::Host) is built from: a few plain values, with
//! the defaults of a real host (the daemon's).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::event::{Callback, Event};

/// The firewall backend that applies the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Firewall {
    /// `backend` in `CONFIG_DIR/nwfilter.conf`, else xtables; read again
    /// at every [`Host::reload`](crate::Host::reload), so a changed
    /// setting moves every binding.
    #[default]
    FromSettings,
    /// libvirt's layout: ebtables, iptables and ip6tables.
    Xtables,
    /// Tables of our own in nftables, one transaction per change.
    Nftables,
}

impl Firewall {
    pub(crate) fn fixed(self) -> Option<nwfilter_driver::Backend> {
        match self {
            Firewall::FromSettings => None,
            Firewall::Xtables => Some(nwfilter_driver::Backend::Xtables),
            Firewall::Nftables => Some(nwfilter_driver::Backend::Nftables),
        }
    }

    pub(crate) fn of(backend: nwfilter_driver::Backend) -> Firewall {
        match backend {
            nwfilter_driver::Backend::Xtables => Firewall::Xtables,
            nwfilter_driver::Backend::Nftables => Firewall::Nftables,
        }
    }
}

/// The default config directory (filters), as the daemon's.
pub const DEFAULT_CONFIG_DIR: &str = nwfilter_driver::DEFAULT_CONFIG_DIR;
/// The default state directory (bindings, learned addresses, leases).
pub const DEFAULT_STATE_DIR: &str = nwfilter_driver::DEFAULT_STATE_DIR;
/// The default tables lock, shared with `nwfilterd` and the `nwfilter` CLI.
pub const DEFAULT_TABLES_LOCK: &str = host_io::DEFAULT_LOCK_FILE;

/// How to build a [`Host`](crate::Host); [`HostConfig::open`] builds it.
///
/// ```
/// use std::time::Duration;
/// use nwfilter::{Firewall, HostConfig};
///
/// let config = HostConfig::new("/var/lib/myvmm/nwfilter", "/run/myvmm/nwfilter")
///     .firewall(Firewall::Nftables)
///     .learn_timeout(Some(Duration::from_secs(60)))
///     .rule_check_every(Some(Duration::from_secs(5)));
/// # let _ = config;
/// ```
#[derive(Clone)]
pub struct HostConfig {
    pub(crate) config_dir: PathBuf,
    pub(crate) state_dir: PathBuf,
    pub(crate) firewall: Firewall,
    pub(crate) tables_lock: Option<PathBuf>,
    pub(crate) learning: bool,
    pub(crate) learn_timeout: Option<Duration>,
    pub(crate) learn_max_addresses: usize,
    pub(crate) rule_check: Option<Duration>,
    pub(crate) netns: Option<String>,
    pub(crate) on_event: Option<Callback>,
    /// Check the firewall tools and sweep stray temp files at open (off
    /// for the CLI, whose `list` works without tools or write access).
    pub(crate) prepare: bool,
    /// Also serve the virtual-network verbs (front ends only).
    pub(crate) networks: bool,
    pub(crate) network_ports: bool,
    /// The only writer of the state directory: bindings are kept in
    /// memory (front ends only: the daemon).
    pub(crate) only_writer: bool,
    /// Batch tools started ahead of need ([`HostConfig::tools_on_standby`]).
    pub(crate) standby: bool,
}

impl std::fmt::Debug for HostConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostConfig")
            .field("config_dir", &self.config_dir)
            .field("state_dir", &self.state_dir)
            .field("firewall", &self.firewall)
            .field("tables_lock", &self.tables_lock)
            .field("learning", &self.learning)
            .field("learn_timeout", &self.learn_timeout)
            .field("learn_max_addresses", &self.learn_max_addresses)
            .field("rule_check", &self.rule_check)
            .field("netns", &self.netns)
            .field("standby", &self.standby)
            .field("on_event", &self.on_event.is_some())
            .finish_non_exhaustive()
    }
}

/// How long a port may go without an address before learning gives up
/// (as `nwfilterd --learn-timeout-secs`).
pub const DEFAULT_LEARN_TIMEOUT: Duration = Duration::from_secs(300);

/// How often the rule check looks for flushed rules by default.
pub const DEFAULT_RULE_CHECK: Duration = Duration::from_secs(2);

impl HostConfig {
    /// Filters in `config_dir`, bindings and learned addresses in
    /// `state_dir`; the backend from the settings file, the shared tables
    /// lock, learning on (giving up after [`DEFAULT_LEARN_TIMEOUT`]), the
    /// rule check every [`DEFAULT_RULE_CHECK`], no event callback.
    pub fn new(config_dir: impl Into<PathBuf>, state_dir: impl Into<PathBuf>) -> HostConfig {
        HostConfig {
            config_dir: config_dir.into(),
            state_dir: state_dir.into(),
            firewall: Firewall::FromSettings,
            tables_lock: Some(PathBuf::from(DEFAULT_TABLES_LOCK)),
            learning: true,
            learn_timeout: Some(DEFAULT_LEARN_TIMEOUT),
            learn_max_addresses: nwfilter_learn::DEFAULT_MAX_ADDRESSES,
            rule_check: Some(DEFAULT_RULE_CHECK),
            netns: None,
            on_event: None,
            prepare: true,
            networks: false,
            network_ports: false,
            only_writer: false,
            standby: false,
        }
    }

    /// [`HostConfig::new`] on the daemon's directories
    /// ([`DEFAULT_CONFIG_DIR`], [`DEFAULT_STATE_DIR`]). Only one of
    /// `nwfilterd` and such a host should run at a time.
    pub fn system() -> HostConfig {
        HostConfig::new(DEFAULT_CONFIG_DIR, DEFAULT_STATE_DIR)
    }

    /// The firewall backend (default: [`Firewall::FromSettings`]).
    pub fn firewall(mut self, firewall: Firewall) -> HostConfig {
        self.firewall = firewall;
        self
    }

    /// The file `flock`ed around every kernel change, shared with every
    /// other process changing the same tables (default:
    /// [`DEFAULT_TABLES_LOCK`]). `None` only when this process is alone.
    pub fn tables_lock(mut self, path: Option<PathBuf>) -> HostConfig {
        self.tables_lock = path;
        self
    }

    /// Learn the addresses of ports whose filters need `IP` and whose
    /// binding does not give it (default: on). Off, such a binding is
    /// refused with [`Error::Rules`](crate::Error::Rules).
    pub fn learning(mut self, on: bool) -> HostConfig {
        self.learning = on;
        self
    }

    /// Give up learning a port's address after this long (its rules then
    /// drop everything and [`Event::Blocked`] is sent); `None` waits
    /// forever, as libvirt does.
    pub fn learn_timeout(mut self, timeout: Option<Duration>) -> HostConfig {
        self.learn_timeout = timeout;
        self
    }

    /// The most addresses learning gives one port: DHCP leases in `dhcp`
    /// mode, and IPv6 addresses in either mode (default
    /// [`nwfilter_learn::DEFAULT_MAX_ADDRESSES`], 16; at least 1). A
    /// further claim or lease is ignored and logged: it bounds what a
    /// guest forging claims or a rogue server can unlock.
    pub fn learn_max_addresses(mut self, max: usize) -> HostConfig {
        self.learn_max_addresses = max.max(1);
        self
    }

    /// Check every `interval` that the rules are still in the kernel and
    /// put back what another tool removed ([`Event::RulesRepaired`]);
    /// `None`: no background check ([`Host::check_rules`](crate::Host::check_rules)
    /// still works). A check that took T waits at least 3 T before the next.
    pub fn rule_check_every(mut self, interval: Option<Duration>) -> HostConfig {
        self.rule_check = interval;
        self
    }

    /// Apply the rules and learn addresses inside the named network
    /// namespace (`ip netns` name: its file is `/run/netns/NAME`) instead
    /// of this process's own.
    pub fn network_namespace(mut self, name: impl Into<String>) -> HostConfig {
        self.netns = Some(name.into());
        self
    }

    /// Keeps one process of each firewall batch tool (`nft -f -`,
    /// `ebtables-restore`, `iptables-restore`) started and waiting for its
    /// input, so that a change does not wait for the tool to start: about
    /// 2 ms of the 3 ms an `nft` run takes for one binding. For a
    /// long-lived host (`nwfilterd` turns it on): the waiting processes
    /// are idle (no CPU) and end when the host is dropped or its process
    /// dies. What is applied is the same (the tools read the kernel only
    /// once their input is complete). Also takes a batch's success from
    /// the kernel's notice of its commit instead of waiting for the tool
    /// to exit, which after a removal waits for the kernel's RCU grace
    /// period (10–20 ms of a binding-delete; the notice sockets stay open,
    /// closing one waits the same way). Failures still come from the tool.
    /// And on xtables, removes a port's chains itself, deleting its hook
    /// rules by their kernel handles (kept while no one else commits)
    /// where the restore tools decode every hook rule to find them; what
    /// it cannot do that way goes through the tool as before. On
    /// nftables, a change made only of set and map elements (a port
    /// beside others of its filter) is committed on the same netlink
    /// socket without `nft`; a refusal goes through `nft`, which decides.
    /// The socket also reads the kernel's ruleset generation after each
    /// operation, so that a [`Host::reload`](crate::Host::reload) that
    /// finds it unchanged (no commit by anyone since) plans on the tables
    /// kept from then instead of reading every table again.
    pub fn tools_on_standby(mut self) -> HostConfig {
        self.standby = true;
        self
    }

    /// Calls `callback` for every [`Event`], one at a time, on a thread of
    /// the host's own (never under the host's locks: it may call the
    /// host). Keep it short, e.g. send on a channel.
    pub fn on_event(mut self, callback: impl Fn(Event) + Send + Sync + 'static) -> HostConfig {
        self.on_event = Some(Arc::new(callback));
        self
    }
}
