//! IP address learning for bindings whose filters need `$IP` and do not
//! give it: the learner holds such a port under its learning rules,
//! captures on it, and the engine applies the full filter with each
//! address learned (and follows DHCP leases in `dhcp` mode).
//!
//! The learner changes rules only through the engine ([`EngineFirewall`]),
//! so its changes and the engine's are serialised by one lock. It learns
//! no address that a binding on the same bridge holds ([`BridgeBook`]).

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use host_io::Runner;
use nwfilter_compile::ir::Program;
use nwfilter_compile::Ipv6Learning;
use nwfilter_driver::engine::error_chain;
use nwfilter_driver::{Engine, EngineError, LearningNeed};
use nwfilter_learn::{
    AddressBook, Config, FirewallError, LearnEvent, LearnEvent6, Learner, LeaseKey, LeaseStore,
    PortFirewall, PortSpec, PortSpec6, StartError, Watch,
};
use nwfilter_model::{Binding, IfName};

/// A line for the daemon's log.
pub type Log = Arc<dyn Fn(String) + Send + Sync>;

/// The learner's way to the kernel: through the engine's lock and its
/// configured backend.
struct EngineFirewall<R>(Arc<Engine<R>>);

impl<R: Runner + Send + Sync> PortFirewall for EngineFirewall<R> {
    fn apply(&self, rules: &Program) -> Result<(), FirewallError> {
        self.0
            .apply_foreign(rules)
            .map_err(|e| -> FirewallError { error_chain(&e).into() })
    }
}

/// The addresses other bindings hold, for the learner: a binding's fixed
/// `IP` values and its learned addresses, on ports of the same bridge
/// (first come, first served: issue 23, item 11).
struct BridgeBook<R> {
    engine: Arc<Engine<R>>,
    log: Log,
}

impl<R: Runner + Send + Sync> AddressBook for BridgeBook<R> {
    fn taken_by_another(&self, port: &IfName, addr: Ipv4Addr) -> bool {
        let bindings = match self.engine.bindings().list() {
            Ok(listing) => listing.items,
            Err(e) => {
                // Learning goes on: refusing every address would hold
                // every learning port until the store is readable again.
                (self.log)(format!(
                    "port {port}: cannot list the bindings to check {addr} is free: {}",
                    error_chain(&e)
                ));
                return false;
            }
        };
        let held = |b: &Binding| held_addresses(b, self.engine.learned_addrs(&b.portdev));
        taken_on_bridge(port, addr, &bindings, held, bridge_of)
    }

    fn taken6_by_another(&self, port: &IfName, addr: Ipv6Addr) -> bool {
        let bindings = match self.engine.bindings().list() {
            Ok(listing) => listing.items,
            Err(e) => {
                (self.log)(format!(
                    "port {port}: cannot list the bindings to check {addr} is free: {}",
                    error_chain(&e)
                ));
                return false;
            }
        };
        let held = |b: &Binding| {
            let learned = self.engine.learned6(&b.portdev);
            held_addresses6(b, learned.map(|l| l.into_iter().map(|(a, _)| a).collect()))
        };
        taken_on_bridge(port, addr, &bindings, held, bridge_of)
    }
}

/// Whether a binding other than `port`'s, on the same bridge, holds `addr`
/// (as `held` says). Ports whose bridge is unknown count as one bridge.
fn taken_on_bridge<A: PartialEq>(
    port: &IfName,
    addr: A,
    bindings: &[Binding],
    held: impl Fn(&Binding) -> Vec<A>,
    bridge: impl Fn(&IfName) -> Option<String>,
) -> bool {
    let ours = bridge(port);
    bindings
        .iter()
        .filter(|b| &b.portdev != port && bridge(&b.portdev) == ours)
        .any(|b| held(b).contains(&addr))
}

/// A binding's fixed `IP` values and, without them, its learned addresses.
fn held_addresses(binding: &Binding, learned: Option<Vec<Ipv4Addr>>) -> Vec<Ipv4Addr> {
    fixed_or_learned(binding, "IP", learned)
}

/// A binding's fixed `IPV6` values and, without them, its learned IPv6
/// addresses.
fn held_addresses6(binding: &Binding, learned: Option<Vec<Ipv6Addr>>) -> Vec<Ipv6Addr> {
    fixed_or_learned(binding, "IPV6", learned)
}

/// The addresses parameter `name` of `binding` gives and, without any,
/// `learned`.
fn fixed_or_learned<A: std::str::FromStr>(
    binding: &Binding,
    name: &str,
    learned: Option<Vec<A>>,
) -> Vec<A> {
    let fixed: Vec<A> = binding
        .filterref
        .params
        .get(name)
        .unwrap_or(&[])
        .iter()
        .filter_map(|v| v.parse().ok())
        .collect();
    if fixed.is_empty() {
        learned.unwrap_or_default()
    } else {
        fixed
    }
}

/// The bridge `port` is enslaved to (its `master` in sysfs).
fn bridge_of(port: &IfName) -> Option<String> {
    let link = Path::new("/sys/class/net")
        .join(port.as_str())
        .join("master");
    let target = std::fs::read_link(link).ok()?;
    Some(target.file_name()?.to_string_lossy().into_owned())
}

/// One log line for a change of a port's addresses: the addresses added
/// and removed, and how many it has now (never the whole list, which
/// made the log grow with the square of the leases: issue 23, item 12).
fn describe_change<A: PartialEq + std::fmt::Display>(
    port: &IfName,
    family: &str,
    before: &[A],
    after: &[A],
) -> String {
    let list = |addrs: Vec<&A>| {
        let shown: Vec<String> = addrs.iter().map(ToString::to_string).collect();
        shown.join(", ")
    };
    let added: Vec<&A> = after.iter().filter(|a| !before.contains(a)).collect();
    let removed: Vec<&A> = before.iter().filter(|a| !after.contains(a)).collect();
    let mut parts = Vec::new();
    if !added.is_empty() {
        parts.push(format!("learned {family} {}", list(added)));
    }
    if !removed.is_empty() {
        parts.push(format!("lost {family} {}", list(removed)));
    }
    if parts.is_empty() {
        parts.push("addresses unchanged".into());
    }
    let count = match after.len() {
        1 => "1 address".to_string(),
        n => format!("{n} addresses"),
    };
    format!("port {port}: {} (now {count})", parts.join("; "))
}

/// Learning on every port that needs it.
pub struct Learning<R> {
    engine: Arc<Engine<R>>,
    learner: Learner,
    watches: Mutex<HashMap<IfName, Watch>>,
    /// IPv6 learning, for as long as each binding lives.
    watches6: Mutex<HashMap<IfName, Watch>>,
    /// What `binding-list` shows for ports that are not simply active.
    states: Arc<Mutex<HashMap<IfName, String>>>,
    log: Log,
}

impl<R> std::fmt::Debug for Learning<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Learning")
            .field("ports", &lock(&self.watches).len())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl<R: Runner + Send + Sync + 'static> Learning<R> {
    pub fn new(engine: Arc<Engine<R>>, config: Config, leases: LeaseStore, log: Log) -> Self {
        let firewall = Arc::new(EngineFirewall(Arc::clone(&engine)));
        let book = Arc::new(BridgeBook {
            engine: Arc::clone(&engine),
            log: Arc::clone(&log),
        });
        Learning {
            learner: Learner::with_book(config, firewall, Arc::new(leases), book),
            engine,
            watches: Mutex::new(HashMap::new()),
            watches6: Mutex::new(HashMap::new()),
            states: Arc::new(Mutex::new(HashMap::new())),
            log,
        }
    }

    /// The state to show for `port`, when it is not simply active.
    pub fn state(&self, port: &IfName) -> Option<String> {
        lock(&self.states).get(port).cloned()
    }

    /// Starts learning on `binding`'s port, whose tree awaits `IP` as
    /// `need` says, if no learner runs there yet. In `any` mode an address
    /// learned before (a restart) is kept and nothing is started.
    pub fn start(&self, binding: &Binding, need: &LearningNeed) -> Result<(), String> {
        let port = binding.portdev.clone();
        if lock(&self.watches).contains_key(&port) {
            return Ok(());
        }
        let LearningNeed { mode, dhcp_servers } = need.clone();
        if mode == nwfilter_learn::LearningMode::Any && self.engine.learned_addrs(&port).is_some() {
            return Ok(());
        }
        let spec = PortSpec {
            port: port.clone(),
            mac: binding.mac,
            mode,
            dhcp_servers,
            lease_key: LeaseKey::new(binding.owner.uuid, binding.mac),
        };
        lock(&self.states).insert(port.clone(), "learning IP".into());
        let watch = self
            .learner
            .start(spec, self.on_event(port.clone()))
            .map_err(|e: StartError| {
                lock(&self.states).remove(&port);
                e.to_string()
            })?;
        lock(&self.watches).insert(port, watch);
        Ok(())
    }

    /// Ends learning on `port` (before its binding is deleted).
    pub fn stop(&self, port: &IfName) {
        // Take the watch out first: stop() waits for an event in delivery,
        // whose callback may need the engine's and the states' locks.
        let watch = lock(&self.watches).remove(port);
        if let Some(watch) = watch {
            watch.stop();
        }
        let watch = lock(&self.watches6).remove(port);
        if let Some(watch) = watch {
            watch.stop();
        }
        lock(&self.states).remove(port);
    }

    /// Starts learning `binding`'s IPv6 addresses when its filters use
    /// `$IPV6`, it does not give `IPV6` and learning is on (and no
    /// learner runs there yet). Learning goes on, from the addresses
    /// learned before (a restart), until the binding is deleted.
    pub fn start6(&self, binding: &Binding) -> Result<(), String> {
        if lock(&self.watches6).contains_key(&binding.portdev) {
            return Ok(());
        }
        match self.engine.ipv6_learning(binding) {
            Ok(Some(need)) => self.start6_with(binding, Ok(need)),
            Ok(None) => Ok(()),
            Err(e) => Err(error_chain(&e)),
        }
    }

    /// As [`Learning::start6`], with how the binding learns already told
    /// (a re-apply resolves every tree once and says it).
    pub fn start6_with(
        &self,
        binding: &Binding,
        need: Result<Ipv6Learning, EngineError>,
    ) -> Result<(), String> {
        let port = binding.portdev.clone();
        if lock(&self.watches6).contains_key(&port) {
            return Ok(());
        }
        let need = need.map_err(|e| error_chain(&e))?;
        let spec = PortSpec6 {
            port: port.clone(),
            mac: binding.mac,
            mode: need.mode,
            dhcp_servers: need.dhcp_servers,
            held: self.engine.learned6(&port).unwrap_or_default(),
        };
        let watch = self
            .learner
            .start6(spec, self.on_event6(port.clone()))
            .map_err(|e: StartError| e.to_string())?;
        lock(&self.watches6).insert(port, watch);
        Ok(())
    }

    fn on_event6(&self, port: IfName) -> Box<dyn Fn(LearnEvent6) + Send> {
        let engine = Arc::clone(&self.engine);
        let log = Arc::clone(&self.log);
        Box::new(move |event| match event {
            LearnEvent6::Changed(held) => {
                let addrs = |h: &[(Ipv6Addr, Option<u64>)]| -> Vec<Ipv6Addr> {
                    h.iter().map(|(a, _)| *a).collect()
                };
                let before = addrs(&engine.learned6(&port).unwrap_or_default());
                let change = describe_change(&port, "IPv6", &before, &addrs(&held));
                match engine.set_learned6(&port, held) {
                    Ok(()) => log(change),
                    Err(EngineError::Store(nwfilter_driver::Error::NoSuchBinding(_))) => {}
                    Err(e) => log(format!(
                        "port {port}: applying the learned IPv6 addresses failed: {}",
                        error_chain(&e)
                    )),
                }
            }
            LearnEvent6::Failed(why) => log(format!(
                "port {port}: IPv6 learning failed ({why}); the port keeps its rules"
            )),
            LearnEvent6::Warning(text) => log(format!("port {port}: {text}")),
        })
    }

    fn on_event(&self, port: IfName) -> Box<dyn Fn(LearnEvent) + Send> {
        let engine = Arc::clone(&self.engine);
        let states = Arc::clone(&self.states);
        let log = Arc::clone(&self.log);
        Box::new(move |event| {
            let set_state = |state: Option<String>| {
                let mut states = lock(&states);
                match state {
                    Some(s) => states.insert(port.clone(), s),
                    None => states.remove(&port),
                };
            };
            let apply = |addrs: Vec<Ipv4Addr>| {
                let before = engine.learned_addrs(&port).unwrap_or_default();
                let change = describe_change(&port, "IP", &before, &addrs);
                match engine.set_learned(&port, addrs) {
                    Ok(()) => log(change),
                    Err(EngineError::Store(nwfilter_driver::Error::NoSuchBinding(_))) => {}
                    Err(e) => log(format!(
                        "port {port}: applying the learned IP failed: {}",
                        error_chain(&e)
                    )),
                }
            };
            match event {
                LearnEvent::Learned(addrs) => {
                    set_state(None);
                    apply(addrs);
                }
                LearnEvent::Expired { remaining } if remaining.is_empty() => {
                    set_state(Some("learning IP (lease expired)".into()));
                    let before = engine.learned_addrs(&port).unwrap_or_default();
                    match engine.set_learned(&port, Vec::new()) {
                        Ok(()) => log(describe_change(&port, "IP", &before, &[])),
                        Err(e) => log(format!("port {port}: {}", error_chain(&e))),
                    }
                }
                LearnEvent::Expired { remaining } => apply(remaining),
                // The state first: whoever the log line reaches (a Host's
                // Blocked event) may ask for it at once.
                LearnEvent::TimedOut => {
                    set_state(Some("blocked: no IP address learned in time".into()));
                    log(format!(
                        "port {port}: no IP address learned in time; the port is blocked"
                    ));
                }
                LearnEvent::Failed(why) => {
                    set_state(Some(format!("blocked: {why}")));
                    log(format!(
                        "port {port}: learning failed ({why}); the port is blocked"
                    ));
                }
                LearnEvent::Warning(text) => log(format!("port {port}: {text}")),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> Ipv4Addr {
        text.parse().unwrap()
    }

    fn binding(port: &str, fixed_ip: Option<&str>) -> Binding {
        let param = fixed_ip
            .map(|a| format!("<parameter name='IP' value='{a}'/>"))
            .unwrap_or_default();
        let xml = format!(
            "<filterbinding><owner><name>vm-{port}</name>\
             <uuid>d217f2d7-5a04-0e01-8b98-ec2743436b74</uuid></owner>\
             <portdev name='{port}'/><mac address='52:54:00:00:00:10'/>\
             <filterref filter='clean-traffic'>{param}</filterref></filterbinding>"
        );
        nwfilter_model::parse_binding(&xml).unwrap()
    }

    fn port(name: &str) -> IfName {
        IfName::new(name).unwrap()
    }

    #[test]
    fn an_address_is_taken_when_another_port_of_the_bridge_holds_it() {
        let bindings = [
            binding("vnet0", Some("10.0.0.10")),
            binding("vnet1", None),
            binding("vnet2", Some("10.0.0.30")),
        ];
        let learned = |b: &Binding| {
            let addrs = (b.portdev.as_str() == "vnet1").then(|| vec![ip("10.0.0.20")]);
            held_addresses(b, addrs)
        };
        // vnet2 is on another bridge.
        let bridge = |p: &IfName| Some(if p.as_str() == "vnet2" { "br1" } else { "br0" }.into());
        let taken =
            |on: &str, addr: &str| taken_on_bridge(&port(on), ip(addr), &bindings, learned, bridge);
        assert!(taken("vnet3", "10.0.0.10"), "bound with a fixed IP");
        assert!(taken("vnet3", "10.0.0.20"), "learned");
        assert!(!taken("vnet3", "10.0.0.30"), "only on another bridge");
        assert!(!taken("vnet0", "10.0.0.10"), "a port's own address");
        assert!(!taken("vnet3", "10.0.0.40"));
    }

    #[test]
    fn an_ipv6_address_is_taken_when_another_port_of_the_bridge_holds_it() {
        let v6 = |t: &str| t.parse::<Ipv6Addr>().unwrap();
        let mut fixed = binding("vnet0", None);
        fixed.filterref.params.push("IPV6", "2001:db8::10");
        let bindings = [fixed, binding("vnet1", None)];
        let learned = |b: &Binding| {
            let addrs = (b.portdev.as_str() == "vnet1").then(|| vec![v6("fe80::20")]);
            held_addresses6(b, addrs)
        };
        let bridge = |_: &IfName| Some("br0".to_string());
        let taken =
            |on: &str, addr: &str| taken_on_bridge(&port(on), v6(addr), &bindings, learned, bridge);
        assert!(taken("vnet2", "2001:db8::10"), "a fixed IPV6");
        assert!(taken("vnet2", "fe80::20"), "a learned link-local address");
        assert!(!taken("vnet1", "fe80::20"), "a port's own address");
        assert!(!taken("vnet2", "2001:db8::30"));
    }

    #[test]
    fn a_fixed_ip_wins_over_learned_addresses() {
        let b = binding("vnet0", Some("10.0.0.10"));
        assert_eq!(
            held_addresses(&b, Some(vec![ip("10.0.0.99")])),
            [ip("10.0.0.10")]
        );
    }

    #[test]
    fn a_lease_event_logs_the_change_not_the_whole_list() {
        let before: Vec<Ipv4Addr> = (1..=100).map(|n| Ipv4Addr::new(10, 0, 1, n)).collect();
        let mut after = before.clone();
        after.push(ip("10.0.2.1"));
        let line = describe_change(&port("vnet0"), "IP", &before, &after);
        assert_eq!(line, "port vnet0: learned IP 10.0.2.1 (now 101 addresses)");
        let line = describe_change(&port("vnet0"), "IP", &after, &before[1..]);
        assert_eq!(
            line,
            "port vnet0: lost IP 10.0.1.1, 10.0.2.1 (now 99 addresses)"
        );
        let line = describe_change(&port("vnet0"), "IP", &[], &[ip("10.0.0.5")]);
        assert_eq!(line, "port vnet0: learned IP 10.0.0.5 (now 1 address)");
    }
}
