//! The verbs of the service, carried out by an [`Engine`]. The daemon
//! serves them over its sockets; the CLI's embedded mode calls them
//! directly, so every front end shares one code path.
//!
//! [`EngineService::dispatch`] only routes a protocol [`Op`] to its verb;
//! the verbs live by family: [`filters`] (define, undefine, dumpxml,
//! list), [`bindings`] (binding-create, -delete, -list, -dumpxml) and
//! [`reload`] (reload, and the learners it starts).

mod bindings;
mod filters;
mod reload;

use std::error::Error;
use std::sync::Arc;

use host_io::Runner;
use nwfilter_driver::engine::error_chain;
use nwfilter_driver::{choose_backend, Backend, Engine};

use crate::json::Service;
use crate::learning::Learning;
use crate::protocol::{Op, Reply};

/// The service over an engine, with IP learning when the daemon runs it.
#[derive(Debug)]
pub struct EngineService<R> {
    engine: Arc<Engine<R>>,
    learning: Option<Learning<R>>,
    /// Where virtual networks are kept, when this service handles them.
    pub(crate) networks: Option<netdrv::Store>,
    /// The link table, when this service filters networks' ports (the
    /// daemon, which runs [`crate::netports::watch`]).
    pub(crate) netports: Option<crate::netports::NetPorts>,
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
            netports: None,
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

    /// Also filters the ports of networks that have a `<filterref>`, fed
    /// by [`crate::netports::watch`] (which the caller runs on a thread).
    pub fn with_network_ports(mut self) -> EngineService<R> {
        self.netports = Some(crate::netports::NetPorts::new());
        self
    }

    /// With learning (the daemon).
    pub fn with_learning(engine: Arc<Engine<R>>, learning: Learning<R>) -> EngineService<R> {
        EngineService {
            engine,
            learning: Some(learning),
            networks: None,
            netports: None,
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

    /// As [`EngineService::call`] (the same code path), but hands back the
    /// error itself so that a front end can classify it (libvirt's codes).
    pub fn call_typed(&self, op: Op) -> Result<Reply, Box<dyn Error>> {
        self.dispatch(op)
    }

    /// Routes `op` to its verb and puts the result in the protocol's
    /// reply.
    fn dispatch(&self, op: Op) -> Result<Reply, Box<dyn Error>> {
        Ok(match op {
            Op::Define { xml } => done(filters::defined_message(&self.define(&xml)?)),
            Op::Undefine { filter } => done(self.undefine(&filter)?),
            Op::Dumpxml { filter } => Reply::Xml {
                xml: self.dumpxml(&filter)?,
            },
            Op::List => self.list()?,
            Op::BindingCreate { xml } => {
                done(bindings::created_message(&self.binding_create(&xml)?))
            }
            Op::BindingDelete { portdev } => done(self.binding_delete(&portdev)?),
            Op::BindingList => self.binding_list()?,
            Op::BindingDumpxml { portdev } => Reply::Xml {
                xml: self.binding_dumpxml(&portdev)?,
            },
            Op::Net { net } => Reply::Text {
                text: self.net(&net)?,
            },
            Op::Status => Reply::Status {
                backend: self.engine.backend(),
            },
            Op::Reload => done(self.reload()?),
            Op::Explain {
                portdev,
                direction,
                input,
                backend,
            } => crate::explain::reply(&self.explain(&portdev, direction, &input, backend)?),
        })
    }

    /// `explain` on the stored binding of `portdev`, with its learned
    /// addresses, under `backend` or else the backend whose rules hold
    /// the port.
    fn explain(
        &self,
        portdev: &str,
        direction: nwfilter_explain::Direction,
        input: &crate::explain::PacketInput,
        backend: Option<Backend>,
    ) -> Result<nwfilter_explain::Explanation, Box<dyn Error>> {
        let engine = &self.engine;
        let binding = engine
            .bindings()
            .get(portdev)?
            .ok_or_else(|| crate::explain::ExplainError::NoBinding(portdev.to_owned()))?;
        let binding = engine.effective_loaded(&binding);
        let backend = match backend {
            Some(b) => b,
            None => engine.applied_by(&binding.portdev)?,
        };
        let filters = engine.filters();
        Ok(crate::explain::explain_binding(
            filters,
            filters.dir(),
            &binding,
            backend,
            direction,
            input,
        )?)
    }

    /// A virtual-network verb, on the network store.
    fn net(&self, net: &crate::net_ops::NetOp) -> Result<String, Box<dyn Error>> {
        let store = self
            .networks
            .as_ref()
            .ok_or("virtual networks are not handled by this service")?;
        let done = crate::net_ops::execute(store, self.engine.backend(), net)
            .map_err(|e| -> Box<dyn Error> { e })?;
        // A network started, stopped, or defined with another filter: its
        // ports' bindings follow.
        if net.changes_networks() {
            self.sync_network_ports();
        }
        Ok(done)
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
        service_with(|store| store)
    }

    /// As [`service`], on the binding store `keep` makes of the plain one.
    fn service_with(
        keep: impl FnOnce(BindingStore) -> BindingStore,
    ) -> (tempfile::TempDir, EngineService<Arc<RecordingRunner>>) {
        let dir = tempfile::tempdir().unwrap();
        let engine = Engine::new(
            FilterStore::open(dir.path().join("etc")),
            keep(BindingStore::open(dir.path().join("run"))),
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

    fn listed(service: &EngineService<Arc<RecordingRunner>>) -> Vec<(String, String)> {
        let Reply::Bindings { bindings } = service.call(Op::BindingList).unwrap() else {
            panic!("binding-list")
        };
        (bindings.into_iter())
            .map(|b| (b.portdev, b.state.unwrap_or(b.filter)))
            .collect()
    }

    fn pair(port: &str, state: &str) -> (String, String) {
        (port.to_owned(), state.to_owned())
    }

    /// Issue 22: a service on a store kept in memory (the daemon's) lists
    /// and looks up bindings without reading their files; create, delete
    /// and reload keep what it lists right, and reload reads the files.
    #[test]
    fn binding_list_and_dumpxml_come_from_memory_and_follow_create_delete_reload() {
        let (dir, service) = service_with(BindingStore::kept_in_memory);
        let run = dir.path().join("run");
        assert_eq!(
            listed(&service),
            [pair("vnet0", "top"), pair("vnet1", "top")]
        );

        // Behind the service's back: not seen.
        std::fs::remove_file(run.join("vnet0.xml")).unwrap();
        std::fs::write(run.join("vnet1.xml"), b"\xff\x00junk").unwrap();
        std::fs::write(run.join("vnet7.xml"), binding("vnet7")).unwrap();
        assert_eq!(
            listed(&service),
            [pair("vnet0", "top"), pair("vnet1", "top")]
        );
        let dumped = service.binding_dumpxml("vnet0").unwrap();
        assert!(
            dumped.contains("vnet0") && dumped.contains("'top'"),
            "{dumped}"
        );
        assert!(service.lookup_binding("vnet7").is_err());

        // Its own writes are.
        let done = service.call(Op::BindingDelete {
            portdev: "vnet0".into(),
        });
        assert!(done.is_ok(), "{done:?}");
        service
            .call(Op::BindingCreate {
                xml: binding("vnet2"),
            })
            .unwrap();
        assert_eq!(
            listed(&service),
            [pair("vnet1", "top"), pair("vnet2", "top")]
        );
        assert!(run.join("vnet2.xml").exists());

        // A reload reads the directory: the junk, and the binding written
        // behind its back, as a store reading the files lists them.
        let _ = service.call(Op::Reload);
        let now = listed(&service);
        let ports: Vec<&str> = now.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(ports, ["vnet1", "vnet2", "vnet7"]);
        assert!(now[0].1.starts_with("closed"), "{now:?}");
        let plain = EngineService::new(Engine::new(
            FilterStore::open(dir.path().join("etc")),
            BindingStore::open(&run),
            Arc::new(RecordingRunner::new()),
        ));
        assert_eq!(listed(&plain), now);
    }
}
