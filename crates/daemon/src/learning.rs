//! IP address learning for bindings whose filters need `$IP` and do not
//! give it: the learner holds such a port under its learning rules,
//! captures on it, and the engine applies the full filter with each
//! address learned (and follows DHCP leases in `dhcp` mode).
//!
//! The learner changes rules only through the engine ([`EngineFirewall`]),
//! so its changes and the engine's are serialised by one lock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use backend_xtables::Runner;
use nwfilter_compile::ir::Program;
use nwfilter_driver::engine::error_chain;
use nwfilter_driver::{Engine, EngineError};
use nwfilter_learn::{
    Config, FirewallError, LearnEvent, Learner, LeaseKey, LeaseStore, PortFirewall, PortSpec,
    StartError, Watch,
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

/// Learning on every port that needs it.
pub struct Learning<R> {
    engine: Arc<Engine<R>>,
    learner: Learner,
    watches: Mutex<HashMap<IfName, Watch>>,
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
        Learning {
            learner: Learner::new(config, firewall, Arc::new(leases)),
            engine,
            watches: Mutex::new(HashMap::new()),
            states: Arc::new(Mutex::new(HashMap::new())),
            log,
        }
    }

    /// The state to show for `port`, when it is not simply active.
    pub fn state(&self, port: &IfName) -> Option<String> {
        lock(&self.states).get(port).cloned()
    }

    /// Starts learning on `binding`'s port, if its tree needs `IP` and no
    /// learner runs there yet. In `any` mode an address learned before (a
    /// restart) is kept and nothing is started.
    pub fn start(&self, binding: &Binding) -> Result<(), String> {
        let port = binding.portdev.clone();
        if lock(&self.watches).contains_key(&port) {
            return Ok(());
        }
        let Some((mode, dhcp_servers)) = self
            .engine
            .learning_need(binding)
            .map_err(|e| error_chain(&e))?
        else {
            return Ok(());
        };
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
        lock(&self.states).remove(port);
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
            let apply = |addrs: Vec<std::net::Ipv4Addr>| {
                let shown: Vec<String> = addrs.iter().map(ToString::to_string).collect();
                match engine.set_learned(&port, addrs) {
                    Ok(()) => log(format!("port {port}: learned IP {}", shown.join(", "))),
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
                    if let Err(e) = engine.set_learned(&port, Vec::new()) {
                        log(format!("port {port}: {}", error_chain(&e)));
                    }
                }
                LearnEvent::Expired { remaining } => apply(remaining),
                LearnEvent::TimedOut => {
                    log(format!(
                        "port {port}: no IP address learned in time; the port is blocked"
                    ));
                    set_state(Some("blocked: no IP address learned in time".into()));
                }
                LearnEvent::Failed(why) => {
                    log(format!(
                        "port {port}: learning failed ({why}); the port is blocked"
                    ));
                    set_state(Some(format!("blocked: {why}")));
                }
                LearnEvent::Warning(text) => log(format!("port {port}: {text}")),
            }
        })
    }
}
