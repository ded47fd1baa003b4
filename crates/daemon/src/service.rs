//! The operations of the protocol, carried out by an [`Engine`]. The daemon
//! serves this over its socket; the CLI's embedded mode calls it directly,
//! so both modes share one code path.

use std::sync::Arc;

use backend_xtables::Runner;
use nwfilter_driver::engine::error_chain;
use nwfilter_driver::{choose_backend, Backend, Engine, EngineError, Origin};
use nwfilter_model::{format_binding, format_filter, IfName};

use crate::learning::Learning;
use crate::protocol::{BindingEntry, FilterEntry, Op, Reply};
use crate::server::Service;

/// [`Service`] over an engine, with IP learning when the daemon runs it.
#[derive(Debug)]
pub struct EngineService<R> {
    engine: Arc<Engine<R>>,
    learning: Option<Learning<R>>,
    /// Where virtual networks are kept, when this service handles them.
    networks: Option<netdrv::Store>,
    /// Where the backend setting comes from, so that a reload re-reads it:
    /// the command line's choice (which wins) and the config directory.
    settings: Option<(Option<Backend>, std::path::PathBuf)>,
}

impl<R: Runner + Send + Sync + 'static> EngineService<R> {
    /// Without learning (the CLI's embedded mode): a binding that needs
    /// `IP` and does not give it is refused.
    pub fn new(engine: Engine<R>) -> EngineService<R> {
        EngineService {
            engine: Arc::new(engine),
            learning: None,
            networks: None,
            settings: None,
        }
    }

    /// Re-reads the backend setting at each reload: `command_line` if
    /// given, else `config_dir`'s settings file.
    pub fn with_settings(
        mut self,
        command_line: Option<Backend>,
        config_dir: impl Into<std::path::PathBuf>,
    ) -> EngineService<R> {
        self.settings = Some((command_line, config_dir.into()));
        self
    }

    /// Re-reads the backend setting (see [`EngineService::with_settings`])
    /// and hands it to the engine; returns the backend when it changed.
    /// The bindings move at the re-apply that follows.
    pub fn reread_backend(&self) -> Result<Option<Backend>, nwfilter_driver::SettingsError> {
        let Some((command_line, config_dir)) = &self.settings else {
            return Ok(None);
        };
        let backend = choose_backend(*command_line, config_dir)?;
        if backend == self.engine.backend() {
            return Ok(None);
        }
        self.engine.set_backend(backend);
        Ok(Some(backend))
    }

    /// Also serves the network verbs, on `store`.
    pub fn with_networks(mut self, store: netdrv::Store) -> EngineService<R> {
        self.networks = Some(store);
        self
    }

    /// With learning (the daemon).
    pub fn with_learning(engine: Arc<Engine<R>>, learning: Learning<R>) -> EngineService<R> {
        EngineService {
            engine,
            learning: Some(learning),
            networks: None,
            settings: None,
        }
    }

    pub fn engine(&self) -> &Engine<R> {
        &self.engine
    }

    /// Carries out one operation; errors carry their whole cause chain.
    pub fn call(&self, op: Op) -> Result<Reply, String> {
        self.dispatch(op).map_err(|e| error_chain(e.as_ref()))
    }

    fn dispatch(&self, op: Op) -> Result<Reply, Box<dyn std::error::Error>> {
        let engine = &self.engine;
        Ok(match op {
            Op::Define { xml } => {
                let defined = engine.define(&xml)?;
                done(format!("Network filter {} defined", defined.filter.name))
            }
            Op::Undefine { filter } => {
                let undefined = engine.undefine(&filter)?;
                done(format!("Network filter {} undefined", undefined.name))
            }
            Op::Dumpxml { filter } => Reply::Xml {
                xml: format_filter(engine.filters().lookup(&filter)?.as_ref()),
            },
            Op::List => {
                let listing = engine.filters().list()?;
                Reply::Filters {
                    filters: listing
                        .items
                        .into_iter()
                        .map(|f| FilterEntry {
                            uuid: f.uuid.to_string(),
                            name: f.name.to_string(),
                            builtin: matches!(f.origin, Origin::Builtin),
                        })
                        .collect(),
                }
            }
            Op::BindingCreate { xml } => match (engine.binding_create(&xml), &self.learning) {
                (Ok(binding), _) => done(format!(
                    "Network filter binding on {} created",
                    binding.portdev
                )),
                (Err(EngineError::NeedsIp { .. }), Some(learning)) => {
                    let binding = nwfilter_model::parse_binding(&xml)?;
                    engine.binding_record(&binding)?;
                    if let Err(why) = learning.start(&binding) {
                        let undo = engine.binding_delete(binding.portdev.as_str()).err();
                        let undo = undo.map(|u| format!("; removing it also failed: {u}"));
                        return Err(format!(
                            "port {}: cannot learn its IP address: {why}{}",
                            binding.portdev,
                            undo.unwrap_or_default()
                        )
                        .into());
                    }
                    done(format!(
                        "Network filter binding on {} created (learning its IP address)",
                        binding.portdev
                    ))
                }
                (Err(e), _) => return Err(e.into()),
            },
            Op::BindingDelete { portdev } => {
                if let (Some(learning), Ok(port)) = (&self.learning, IfName::new(portdev.clone())) {
                    learning.stop(&port);
                }
                let binding = engine.binding_delete(&portdev)?;
                done(format!(
                    "Network filter binding on {} deleted",
                    binding.portdev
                ))
            }
            Op::BindingList => Reply::Bindings {
                bindings: engine
                    .bindings()
                    .list()?
                    .items
                    .into_iter()
                    .map(|b| BindingEntry {
                        portdev: b.portdev.to_string(),
                        filter: b.filterref.filter.to_string(),
                        state: self.learning.as_ref().and_then(|l| l.state(&b.portdev)),
                        learned: engine
                            .learned_addrs(&b.portdev)
                            .unwrap_or_default()
                            .iter()
                            .map(ToString::to_string)
                            .collect(),
                    })
                    .collect(),
            },
            Op::BindingDumpxml { portdev } => {
                let binding = engine
                    .bindings()
                    .get(&portdev)?
                    .ok_or_else(|| nwfilter_driver::Error::NoSuchBinding(portdev.clone()))?;
                // As instantiated: learned addresses show as `IP`.
                Reply::Xml {
                    xml: format_binding(&engine.effective(&binding)),
                }
            }
            Op::Net { net } => {
                let store = self
                    .networks
                    .as_ref()
                    .ok_or("virtual networks are not handled by this service")?;
                Reply::Text {
                    text: crate::net_ops::execute(store, &net)
                        .map_err(|e| -> Box<dyn std::error::Error> { e })?,
                }
            }
            Op::Status => Reply::Status {
                backend: engine.backend(),
            },
            Op::Reload => {
                self.reread_backend()?;
                let report = engine.reapply_all()?;
                self.start_learning_all();
                let mut message = format!(
                    "Reloaded: {} binding(s) applied, {} already in place",
                    report.applied.len(),
                    report.unchanged.len()
                );
                for (port, why) in &report.failed {
                    message.push_str(&format!("\nport {port} not applied: {why}"));
                }
                done(message)
            }
        })
    }
}

impl<R: Runner + Send + Sync + 'static> EngineService<R> {
    /// Starts learning on every stored binding that needs it and has no
    /// learner yet (daemon start, reload). Returns one line per failure.
    pub fn start_learning_all(&self) -> Vec<String> {
        let Some(learning) = &self.learning else {
            return Vec::new();
        };
        let bindings = match self.engine.bindings().list() {
            Ok(listing) => listing.items,
            Err(e) => return vec![error_chain(&e)],
        };
        bindings
            .iter()
            .filter_map(|b| {
                learning
                    .start(b)
                    .err()
                    .map(|why| format!("port {}: cannot learn its IP address: {why}", b.portdev))
            })
            .collect()
    }
}

fn done(message: String) -> Reply {
    Reply::Done { message }
}

impl<R: Runner + Send + Sync + 'static> Service for EngineService<R> {
    fn handle(&self, op: Op) -> Result<Reply, String> {
        self.call(op)
    }
}

/// Entry points for front ends that need more than the JSON protocol's
/// replies: libvirt's RPC (`crate::libvirt`) turns the error's kind into
/// libvirt's error codes and answers lookups with names and UUIDs.
impl<R: Runner + Send + Sync + 'static> EngineService<R> {
    /// As [`EngineService::call`] (the same code path), but hands back the
    /// error itself so the caller can classify it.
    pub fn call_typed(&self, op: Op) -> Result<Reply, Box<dyn std::error::Error>> {
        self.dispatch(op)
    }

    /// The filter `key` (name, else UUID).
    pub fn lookup_filter(
        &self,
        key: &str,
    ) -> Result<Arc<nwfilter_model::Filter>, nwfilter_driver::Error> {
        self.engine.filters().lookup(key)
    }

    /// The binding of port `portdev`.
    pub fn lookup_binding(
        &self,
        portdev: &str,
    ) -> Result<nwfilter_model::Binding, nwfilter_driver::Error> {
        self.engine
            .bindings()
            .get(portdev)?
            .ok_or_else(|| nwfilter_driver::Error::NoSuchBinding(portdev.to_owned()))
    }
}
