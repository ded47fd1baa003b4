//! Starting and destroying networks: bridge, firewall, addresses,
//! forwarding, dnsmasq, and the run state that lets destroy undo it all.
//!
//! Start is all or nothing: on any failure everything already done is
//! undone (in reverse) and the error says what failed, and what could not
//! be undone if anything. Destroy keeps going past failures and reports
//! them all, so a half-broken network can still be cleaned away.

use host_io::Runner;
use ipnet::IpNet;
use nwfilter_model::IfName;

use crate::coexist::Target;
use crate::daemons::Daemons;
use crate::dnsmasq::{dnsmasq_files, needs_dnsmasq, DnsmasqPaths};
use crate::error::{FirewallError, LifecycleError};
use crate::firewall::{self, Backend, ExistingChains};
use crate::host::{BridgeSpec, Host, HostRoute};
use crate::network::{ForwardMode, Network};
use crate::store::{write_atomic, RunState, Store};

/// The life-cycle operations, over their I/O boundaries.
pub struct Driver<'a> {
    pub store: &'a Store,
    pub host: &'a dyn Host,
    /// Runs iptables/ip6tables (and their restore tools).
    pub runner: &'a dyn Runner,
    pub daemons: &'a dyn Daemons,
    /// The firewall new networks' rules go to (and running ones move to
    /// at [`Driver::reload_firewall`]).
    pub backend: Backend,
    /// Held (`flock`) around each change of the firewall, as the filter
    /// engine holds it: a read-plan-commit (our table's stop reads which
    /// chains are left before deleting the table) must not interleave
    /// with another process's. `None`: no lock (tests).
    pub tables_lock: Option<&'a std::path::Path>,
}

impl std::fmt::Debug for Driver<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver")
            .field("store", self.store)
            .finish_non_exhaustive()
    }
}

/// One network `autostart_all` or `reload_firewall` handled, and how it
/// went.
pub type AutostartResult = (String, Result<(), LifecycleError>);

/// What a start has done so far, to undo on failure.
#[derive(Default)]
struct Done {
    bridge: Option<IfName>,
    /// The backend that may hold rules of the network.
    rules: Option<Backend>,
    coexistence: Vec<Target>,
    dnsmasq: Option<u32>,
}

impl Driver<'_> {
    /// Runs `f` holding the tables lock (when there is one).
    fn locked<T>(&self, f: impl FnOnce() -> T) -> Result<T, LifecycleError> {
        let _held = match self.tables_lock {
            Some(path) => {
                Some(host_io::TablesLock::acquire(path).map_err(|e| LifecycleError::io(path, e))?)
            }
            None => None,
        };
        Ok(f())
    }

    fn dnsmasq_paths(&self, net: &Network) -> DnsmasqPaths {
        DnsmasqPaths::in_dir(self.store.state_dir(), net)
    }

    /// Starts the defined network `name`.
    pub fn start(&self, name: &str) -> Result<RunState, LifecycleError> {
        let net = self.store.get(name)?;
        if self.store.run_state(name)?.is_some() {
            return Err(LifecycleError::AlreadyRunning(name.to_owned()));
        }
        let bridge = net
            .bridge
            .name
            .clone()
            .ok_or_else(|| FirewallError::NoBridgeName(name.to_owned()))?;
        if self.host.link_exists(&bridge)? {
            return Err(LifecycleError::InterfaceExists(bridge.to_string()));
        }
        check_route_overlap(&net, &self.host.routes()?)?;
        let mut done = Done::default();
        match self.start_steps(&net, &bridge, &mut done) {
            Ok(state) => Ok(state),
            Err(error) => {
                let undo = self.undo(&net, &done);
                if undo.is_empty() {
                    Err(error)
                } else {
                    Err(LifecycleError::Rollback {
                        error: Box::new(error),
                        undo,
                    })
                }
            }
        }
    }

    fn start_steps(
        &self,
        net: &Network,
        bridge: &IfName,
        done: &mut Done,
    ) -> Result<RunState, LifecycleError> {
        self.host.create_bridge(&BridgeSpec {
            name: bridge.clone(),
            mac: net.mac,
            stp: net.bridge.stp,
            delay: net.bridge.delay,
            mtu: net.mtu,
        })?;
        done.bridge = Some(bridge.clone());
        if firewall::has_rules(net) {
            // Marked before running: a batch that fails half-way is undone
            // by the (error-tolerant) removal of every rule.
            done.rules = Some(self.backend);
            self.locked(|| self.apply_firewall(net, self.backend, &mut done.coexistence))??;
        }
        self.bridge_ipv6(net, bridge)?;
        for ip in &net.ips {
            self.host.add_address(bridge, ip.address, ip.prefix_len())?;
        }
        self.host.set_up(bridge)?;
        if net.forward.mode != ForwardMode::Isolated {
            if net.ips_v4().next().is_some() {
                self.host.set_sysctl("net/ipv4/ip_forward", "1")?;
            }
            if net.ips_v6().next().is_some() {
                self.host.set_sysctl("net/ipv6/conf/all/forwarding", "1")?;
            }
        }
        let mut dnsmasq_pid = None;
        if needs_dnsmasq(net) {
            let paths = self.dnsmasq_paths(net);
            let files = dnsmasq_files(net, &paths)?;
            write_atomic(&paths.conf, files.conf.as_bytes())?;
            let pid = self.daemons.start_dnsmasq(&paths)?;
            done.dnsmasq = Some(pid);
            dnsmasq_pid = Some(pid);
        }
        let state = RunState {
            network: net.clone(),
            dnsmasq_pid,
            firewall: self.backend,
            coexistence: done.coexistence.clone(),
        };
        self.store.save_run_state(&state)?;
        Ok(state)
    }

    /// libvirt's IPv6 settings of the bridge: without an IPv6 address no
    /// IPv6 at all (no link-local address, nothing autoconfigured from a
    /// guest's router advertisement); with one, never take routes or
    /// addresses from the guests' side.
    fn bridge_ipv6(&self, net: &Network, bridge: &IfName) -> Result<(), LifecycleError> {
        let settings: &[(&str, &str)] = if net.ips_v6().next().is_none() {
            &[("disable_ipv6", "1")]
        } else {
            &[("accept_ra", "0"), ("autoconf", "0")]
        };
        for (key, value) in settings {
            match self
                .host
                .set_sysctl(&format!("net/ipv6/conf/{bridge}/{key}"), value)
            {
                // A kernel without IPv6 has nothing to turn off.
                Err(LifecycleError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound => {}
                other => other?,
            }
        }
        Ok(())
    }

    /// Puts every running network's rules back: libvirt's reload path
    /// (after a firewall service flushed the tables). On the backend that
    /// holds them, each network's rules are removed (errors ignored) and
    /// added again, after the private chains are re-created where missing
    /// (nftables: its chains refilled in one transaction). A network whose
    /// rules another backend holds (the setting changed) is moved
    /// make-before-break. One result per network.
    pub fn reload_firewall(&self) -> Result<Vec<AutostartResult>, LifecycleError> {
        let mut out = Vec::new();
        for info in self.store.list()? {
            let Some(state) = self.store.run_state(&info.name)? else {
                continue;
            };
            let net = &state.network;
            if !firewall::has_rules(net) {
                continue;
            }
            let result = self
                .locked(|| self.refresh_firewall(&state))
                .and_then(|refreshed| refreshed)
                .and_then(|next| self.store.save_run_state(&next));
            out.push((info.name, result));
        }
        Ok(out)
    }

    /// Host-wide chains (only what is missing), then the network's rules
    /// in one restore batch per family.
    pub(crate) fn apply_rules(&self, net: &Network) -> Result<(), LifecycleError> {
        let mut existing = ExistingChains::none();
        for (family, table, cmd) in firewall::listing_commands() {
            let out = self.runner.run(&cmd)?;
            existing.add_listing(family, table, &out.stdout);
        }
        let (setup, created) = firewall::setup(&existing);
        if !created.is_empty() {
            // Recorded first: a set-up that fails half-way is taken back
            // by the (error-tolerant) release like a finished one.
            let mut record = self.store.created_chains()?;
            firewall::merge_created(&mut record, created);
            self.store.save_created_chains(&record)?;
        }
        for cmd in setup {
            self.runner.run(&cmd)?;
        }
        for batch in firewall::restore_batches(&firewall::add_commands(net)?) {
            self.runner.run(&batch)?;
        }
        Ok(())
    }

    /// Undoes a partial start in reverse; returns what could not be undone.
    fn undo(&self, net: &Network, done: &Done) -> Vec<String> {
        let mut failures = Vec::new();
        if let Some(pid) = done.dnsmasq {
            if let Err(e) = self.daemons.stop_dnsmasq(pid, &self.dnsmasq_paths(net)) {
                failures.push(e.to_string());
            }
        }
        if let Some(backend) = done.rules {
            let removed = self.locked(|| self.remove_firewall(net, backend, &done.coexistence));
            failures.extend(removed.unwrap_or_else(|e| vec![e.to_string()]));
        }
        if let Some(bridge) = &done.bridge {
            if let Err(e) = self.host.delete_link(bridge) {
                failures.push(e.to_string());
            }
        }
        failures
    }

    /// Once `net` was the last running network with rules: deletes the
    /// private chains and jumps our set-ups created, where empty again, so
    /// the host's firewall is as it was before the first network started.
    /// Returns what failed.
    pub(crate) fn release_private_chains(&self, net: &Network) -> Vec<String> {
        match self.try_release_private_chains(net) {
            Ok(failures) => failures,
            Err(e) => vec![e.to_string()],
        }
    }

    fn try_release_private_chains(&self, net: &Network) -> Result<Vec<String>, LifecycleError> {
        for info in self.store.list()? {
            if info.name == net.name.as_str() {
                continue;
            }
            if let Some(other) = self.store.run_state(&info.name)? {
                if crate::net_firewall::uses_iptables(&other) {
                    return Ok(Vec::new());
                }
            }
        }
        let record = self.store.created_chains()?;
        if record.is_empty() {
            return Ok(Vec::new());
        }
        let mut existing = ExistingChains::none();
        for (family, table, cmd) in firewall::listing_commands() {
            existing.add_listing(family, table, &self.runner.run(&cmd)?.stdout);
        }
        let (cmds, removed) = firewall::teardown(&existing, &record);
        let mut failures = Vec::new();
        for cmd in &cmds {
            if let Err(e) = self.runner.run(cmd) {
                failures.push(e.to_string());
            }
        }
        if failures.is_empty() {
            let left: Vec<_> = record
                .into_iter()
                .filter(|c| !removed.contains(c))
                .collect();
            self.store.save_created_chains(&left)?;
        }
        Ok(failures)
    }

    pub(crate) fn remove_rules(&self, net: &Network) -> Vec<String> {
        match firewall::remove_commands(net) {
            Ok(cmds) => cmds
                .iter()
                .filter_map(|c| self.runner.run(c).err().map(|e| e.to_string()))
                .collect(),
            Err(e) => vec![e.to_string()],
        }
    }

    /// Stops a running network: its dnsmasq, its rules, its bridge, its
    /// files. Every step is tried; all failures are reported together.
    pub fn destroy(&self, name: &str) -> Result<(), LifecycleError> {
        let state = self
            .store
            .run_state(name)?
            .ok_or_else(|| LifecycleError::NotRunning(name.to_owned()))?;
        let net = &state.network;
        let paths = self.dnsmasq_paths(net);
        let mut failures = Vec::new();
        if let Some(pid) = state.dnsmasq_pid {
            if let Err(e) = self.daemons.stop_dnsmasq(pid, &paths) {
                failures.push(e.to_string());
            }
        }
        if firewall::has_rules(net) {
            let removed =
                self.locked(|| self.remove_firewall(net, state.firewall, &state.coexistence));
            failures.extend(removed.unwrap_or_else(|e| vec![e.to_string()]));
        }
        if let Some(bridge) = &net.bridge.name {
            match self.host.link_exists(bridge) {
                Ok(true) => {
                    failures.extend(self.host.delete_link(bridge).err().map(|e| e.to_string()))
                }
                Ok(false) => {}
                Err(e) => failures.push(e.to_string()),
            }
        }
        let legacy = DnsmasqPaths::legacy_files(self.store.state_dir(), net);
        for file in [&paths.conf, &paths.pid, &paths.leases]
            .into_iter()
            .chain(&legacy)
        {
            if let Err(e) = std::fs::remove_file(file) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    failures.push(format!("{}: {e}", file.display()));
                }
            }
        }
        if !failures.is_empty() {
            return Err(LifecycleError::Teardown {
                name: name.to_owned(),
                failures,
            });
        }
        self.store.clear_run_state(name)
    }

    /// Starts every autostart network that is not running; one result per
    /// network tried.
    pub fn autostart_all(&self) -> Result<Vec<AutostartResult>, LifecycleError> {
        let mut out = Vec::new();
        for info in self.store.list()? {
            if info.autostart && !info.active {
                let result = self.start(&info.name).map(|_| ());
                out.push((info.name, result));
            }
        }
        Ok(out)
    }
}

/// A network subnet that overlaps a route the host already has would
/// capture part of that route's traffic.
fn check_route_overlap(net: &Network, routes: &[HostRoute]) -> Result<(), LifecycleError> {
    for ip in &net.ips {
        let subnet = ip.subnet();
        let clash = routes
            .iter()
            .find(|r| r.destination.prefix_len() > 0 && overlaps(&r.destination, &subnet));
        if let Some(route) = clash {
            return Err(LifecycleError::RouteOverlap {
                subnet,
                route: route.destination,
                device: route.device.clone().unwrap_or_else(|| "none".to_owned()),
            });
        }
    }
    Ok(())
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}
