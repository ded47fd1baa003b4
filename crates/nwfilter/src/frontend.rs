//! For the project's own front ends only (`nwfilterd`, the `nwfilter`
//! CLI), behind the `frontend` feature: they serve the whole service on
//! their sockets or call it verb by verb, so they need the assembled
//! [`EngineService`] itself. They get it from a [`Host`], so that the
//! engine is put together in one place.
//!
//! Not covered by the semver promise of the default API: it names
//! `nwfilter-service` and `host-io` types, which change with them.

use std::sync::Arc;

use host_io::ProcessRunner;
pub use nwfilter_service::EngineService;

use crate::{Firewall, Host, HostConfig};

/// The service every front end serves, on the host's tools.
pub type Service = EngineService<ProcessRunner>;

impl HostConfig {
    /// Also serves the virtual-network verbs (`net-*`), on the networks
    /// under the config and state directories.
    pub fn with_networks(mut self) -> HostConfig {
        self.networks = true;
        self
    }

    /// Also filters the ports of networks with a `<filterref>` (implies
    /// [`HostConfig::with_networks`]); the caller feeds the service the
    /// kernel's link events with `nwfilter_service::netports::watch`.
    pub fn with_network_ports(mut self) -> HostConfig {
        self.networks = true;
        self.network_ports = true;
        self
    }

    /// For the CLI: open without checking the firewall tools (reported by
    /// the verb that needs them) and without sweeping stray temp files
    /// (`list` must work without write access).
    pub fn unprepared(mut self) -> HostConfig {
        self.prepare = false;
        self
    }

    /// For the daemon: while it runs it is the only process that writes
    /// the state directory's bindings (the CLI goes through it), so it
    /// reads them at start and at `reload` only and answers binding-list
    /// and lookups from memory (libvirt does the same; issue 22). Not for
    /// a process that others may write behind, such as the CLI's embedded
    /// mode.
    pub fn only_writer(mut self) -> HostConfig {
        self.only_writer = true;
        self
    }
}

impl Host {
    /// The assembled service, to serve or call verb by verb.
    pub fn frontend_service(&self) -> Arc<Service> {
        Arc::clone(self.service())
    }
}

/// The [`Firewall`] for a backend chosen on a command line (`None`: the
/// settings file decides).
pub fn firewall(backend: Option<nwfilter_driver::Backend>) -> Firewall {
    backend.map_or(Firewall::FromSettings, Firewall::of)
}
