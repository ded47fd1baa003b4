//! The operations of the protocol, carried out by an [`Engine`]. The daemon
//! serves this over its socket; the CLI's embedded mode calls it directly,
//! so both modes share one code path.

use backend_xtables::Runner;
use nwfilter_driver::engine::error_chain;
use nwfilter_driver::{Engine, Origin};
use nwfilter_model::{format_binding, format_filter};

use crate::protocol::{BindingEntry, FilterEntry, Op, Reply};
use crate::server::Service;

/// [`Service`] over an engine.
#[derive(Debug)]
pub struct EngineService<R> {
    engine: Engine<R>,
}

impl<R: Runner> EngineService<R> {
    pub fn new(engine: Engine<R>) -> EngineService<R> {
        EngineService { engine }
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
            Op::BindingCreate { xml } => {
                let binding = engine.binding_create(&xml)?;
                done(format!(
                    "Network filter binding on {} created",
                    binding.portdev
                ))
            }
            Op::BindingDelete { portdev } => {
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
                        state: None,
                    })
                    .collect(),
            },
            Op::BindingDumpxml { portdev } => {
                let binding = engine
                    .bindings()
                    .get(&portdev)?
                    .ok_or_else(|| nwfilter_driver::Error::NoSuchBinding(portdev.clone()))?;
                Reply::Xml {
                    xml: format_binding(&binding),
                }
            }
            Op::Reload => {
                let report = engine.reapply_all()?;
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

fn done(message: String) -> Reply {
    Reply::Done { message }
}

impl<R: Runner + Send + Sync> Service for EngineService<R> {
    fn handle(&self, op: Op) -> Result<Reply, String> {
        self.call(op)
    }
}
