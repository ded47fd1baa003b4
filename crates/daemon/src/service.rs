//! The operations of the protocol, carried out by an [`Engine`]. The daemon
//! serves this over its socket; the CLI's embedded mode calls it directly,
//! so both modes share one code path.

use std::sync::Arc;

use host_io::Runner;
use nwfilter_driver::engine::error_chain;
use nwfilter_driver::{choose_backend, Backend, Deleted, Engine, EngineError, Origin, Reapplied};
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
                let mut message = format!("Network filter {} defined", defined.filter.name);
                // The client gets what was ignored, one line each.
                for warning in &defined.warnings {
                    message.push_str(&format!("\nwarning: {warning}"));
                }
                done(message)
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
                    skipped: listing.skipped.iter().map(|e| error_chain(e)).collect(),
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
                match engine.binding_delete_any(&portdev)? {
                    Deleted::Binding(binding) => done(format!(
                        "Network filter binding on {} deleted",
                        binding.portdev
                    )),
                    Deleted::Unreadable { port, path, reason } => done(format!(
                        "Network filter binding on {port} deleted (its file {} could not be \
                         read: {reason})",
                        path.display()
                    )),
                }
            }
            Op::BindingList => self.binding_list()?,
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
                let message = reload_message(&report);
                // A reload that left a binding without its rules is a
                // failure (a non-zero exit), even though the other
                // bindings were applied: the report says which.
                if !report.complete() {
                    return Err(message.into());
                }
                done(message)
            }
        })
    }

    /// Every binding, and those whose file cannot be read (their port is
    /// closed): listed with the reason as their state, never left out.
    fn binding_list(&self) -> Result<Reply, nwfilter_driver::Error> {
        let engine = &self.engine;
        let listing = engine.bindings().list()?;
        let mut bindings: Vec<BindingEntry> = (listing.items.into_iter())
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
            .collect();
        for skipped in &listing.skipped {
            if let Some(port) = engine.bindings().port_of(skipped) {
                bindings.push(BindingEntry {
                    portdev: port.to_string(),
                    filter: String::new(),
                    state: Some(unreadable_state(&port, &error_chain(skipped))),
                    learned: Vec::new(),
                });
            }
        }
        bindings.sort_by(|a, b| a.portdev.cmp(&b.portdev));
        Ok(Reply::Bindings { bindings })
    }
}

/// What `reload` prints: counts, then one line per binding that is not
/// filtered as it should be and per file skipped.
fn reload_message(report: &Reapplied) -> String {
    let mut message = format!(
        "Reloaded: {} binding(s) applied, {} already in place",
        report.applied.len(),
        report.unchanged.len()
    );
    for (port, why) in &report.failed {
        message.push_str(&format!("\nport {port} not applied: {why}"));
    }
    for (port, why) in &report.blocked {
        message.push_str(&format!("\nport {port} {}", unreadable_state(port, why)));
    }
    for why in &report.skipped {
        message.push_str(&format!("\nskipped {why}"));
    }
    message
}

/// The state of a port whose binding file cannot be read.
fn unreadable_state(port: &IfName, why: &str) -> String {
    format!(
        "closed (every frame dropped): its binding cannot be read: {why}; \
         binding-delete {port} removes it"
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use host_io::RecordingRunner;
    use nwfilter_driver::{BindingStore, FilterStore};

    const INNER: &str = "<filter name='inner' chain='root'>\
        <rule action='drop' direction='out'><tcp dstportstart='25'/></rule></filter>";
    const TOP: &str = "<filter name='top' chain='root'><filterref filter='inner'/></filter>";

    fn binding(port: &str) -> String {
        format!(
            "<filterbinding><owner><name>vm</name>\
             <uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner>\
             <portdev name='{port}'/><mac address='52:54:00:7b:35:93'/>\
             <filterref filter='top'/></filterbinding>"
        )
    }

    fn service() -> (tempfile::TempDir, EngineService<Arc<RecordingRunner>>) {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::new(
            FilterStore::open(dir.path().join("etc")),
            BindingStore::open(dir.path().join("run")),
            Arc::new(RecordingRunner::new()),
        );
        let service = EngineService::new(engine);
        for xml in [INNER, TOP] {
            service.call(Op::Define { xml: xml.into() }).unwrap();
        }
        for port in ["vnet0", "vnet1"] {
            let xml = binding(port);
            service.call(Op::BindingCreate { xml }).unwrap();
        }
        (dir, service)
    }

    #[test]
    fn a_define_that_breaks_a_binding_is_refused_and_a_failed_reload_is_an_error() {
        let (dir, service) = service();
        let broken = "<filter name='inner' chain='root'><filterref filter='missing'/></filter>";
        let err = service.call(Op::Define { xml: broken.into() }).unwrap_err();
        assert!(err.contains("vnet0") && err.contains("missing"), "{err}");
        let Reply::Done { message } = service.call(Op::Reload).unwrap() else {
            panic!("reload")
        };
        assert!(message.starts_with("Reloaded"), "{message}");
        // Broken behind the service's back: the reload reports it and fails.
        std::fs::write(dir.path().join("etc/inner.xml"), broken).unwrap();
        let err = service.call(Op::Reload).unwrap_err();
        assert!(
            err.contains("port vnet0 not applied") && err.contains("port vnet1 not applied"),
            "{err}"
        );
    }

    #[test]
    fn unreadable_files_are_reported_and_a_corrupt_binding_listed_and_deletable() {
        let (dir, service) = service();
        std::fs::write(dir.path().join("etc/junk.xml"), b"\xff\x00junk").unwrap();
        std::fs::write(dir.path().join("run/vnet1.xml"), b"\xff\x00junk").unwrap();
        let Reply::Filters { filters, skipped } = service.call(Op::List).unwrap() else {
            panic!("list")
        };
        assert!(filters.iter().any(|f| f.name == "top"));
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert!(skipped[0].contains("junk.xml") && skipped[0].contains("UTF-8"));
        assert!(service
            .call(Op::Dumpxml {
                filter: "top".into()
            })
            .is_ok());

        let Reply::Bindings { bindings } = service.call(Op::BindingList).unwrap() else {
            panic!("binding-list")
        };
        assert_eq!(bindings.len(), 2, "{bindings:?}");
        let state = bindings[1].state.as_deref().unwrap_or_default();
        assert_eq!(bindings[1].portdev, "vnet1");
        assert!(
            state.contains("closed") && state.contains("vnet1.xml"),
            "{state}"
        );

        let err = service.call(Op::Reload).unwrap_err();
        assert!(err.contains("port vnet1 closed"), "{err}");
        let deleted = service.call(Op::BindingDelete {
            portdev: "vnet1".into(),
        });
        assert!(deleted.is_ok(), "{deleted:?}");
        assert!(service.call(Op::Reload).is_ok());
    }
}
