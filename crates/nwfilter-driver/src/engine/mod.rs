//! The engine: stored filters and bindings kept in step with the kernel.
//!
//! Every operation that changes a stored object also changes the rules in
//! the kernel, and either both happen or neither: a binding is recorded only
//! after its rules are in place; a redefinition is stored, every binding
//! whose tree reaches the filter is rebuilt in one batch, and the stored
//! filter is put back if that fails (the old rules kept filtering all
//! along, see `backend_xtables::apply`).
//!
//! Operations are serialised by one lock around the kernel: the applier
//! reads the tables and plans against them, so two plans must not
//! interleave. Reads (list, dumpxml) take only the stores' own locks.

mod apply;
mod closed;
mod compile;
mod create;
mod error;
mod hand_over;
mod keep;
mod last_applied;
mod learned;
mod orphans;
mod packed;
mod read_once;
mod reapply;
mod rebind;
mod records;
mod shared;
mod state_file;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Mutex, MutexGuard};

use host_io::Runner;
use host_io::TablesLock;
use nwfilter_compile::ir::Program;
use nwfilter_model::{Binding, IfName};

pub use learned::Learned6;
use learned::{with_learned, Learned};
use records::Records;

use crate::backend::{Backend, Rendered};
use crate::port::PortRules;
use crate::{BindingStore, Defined, FilterStore, ParsedFilter, Proposed, Undefined};
pub use compile::chain as error_chain;
pub use create::{Awaiting, Created};
pub use error::EngineError;
pub use keep::Checked;
pub use reapply::{Awaiting6, Reapply};

/// What a re-application of every binding did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reapplied {
    /// Ports whose rules were (re)installed.
    pub applied: Vec<IfName>,
    /// Ports whose rules were already in place: nothing was run for them.
    pub unchanged: Vec<IfName>,
    /// Ports that could not be compiled, with the reason; their previous
    /// rules (if any) stay.
    pub failed: Vec<(IfName, String)>,
    /// Ports whose `IP` is neither given nor learned: the caller starts
    /// learning on them.
    pub learning: Vec<IfName>,
    /// Ports whose binding file exists but cannot be read, with the
    /// reason: nobody can tell what their rules should be, so they are
    /// closed (every frame dropped both ways) until the binding is
    /// deleted and created again. Never left open.
    pub blocked: Vec<(IfName, String)>,
    /// Other files of the state directory that were skipped (leftover
    /// temp files), with the reason.
    pub skipped: Vec<String>,
}

impl Reapplied {
    /// Whether every binding has the rules it should have (or is
    /// learning its address).
    pub fn complete(&self) -> bool {
        self.failed.is_empty() && self.blocked.is_empty()
    }
}

/// What [`Engine::binding_delete_any`] removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Deleted {
    Binding(Binding),
    /// A binding whose file could not be read (its port was closed).
    Unreadable {
        port: IfName,
        path: std::path::PathBuf,
        reason: String,
    },
}

impl Deleted {
    pub fn port(&self) -> &IfName {
        match self {
            Deleted::Binding(b) => &b.portdev,
            Deleted::Unreadable { port, .. } => port,
        }
    }
}

/// Filters, bindings and the kernel, kept in step.
#[derive(Debug)]
pub struct Engine<R> {
    filters: FilterStore,
    bindings: BindingStore,
    runner: R,
    /// What is applied, and how: the lock around every kernel change.
    state: Mutex<State>,
    /// Addresses learned for ports whose binding leaves `IP` unset. Only
    /// changed while `state` is locked.
    learned: Mutex<Learned>,
    /// A file lock held around every kernel change, so that other
    /// processes (the CLI in embedded mode, a second daemon) do not plan
    /// against tables we are changing. `None`: this process is alone.
    tables_lock: Option<std::path::PathBuf>,
}

/// The engine's state behind its lock.
#[derive(Debug, Default)]
struct State {
    /// The backend new rules are applied with.
    backend: Backend,
    /// The last ruleset applied per port by this engine: lets a repeated
    /// apply of unchanged rules run nothing, and lets `repair` notice rules
    /// that someone else removed without recompiling. Always rendered for
    /// `backend`.
    applied: HashMap<IfName, packed::Kept>,
    /// One copy of each nftables template's chains among `applied`.
    templates: shared::Templates,
    /// Which backend holds each port's rules (files in the state directory).
    records: Records,
    /// The learner's rules of ports that are learning their address (or
    /// were blocked): kept as IR so that a change of backend re-renders
    /// them, while `applied` holds them rendered so that `repair` puts
    /// them back after a flush.
    foreign: HashMap<IfName, Program>,
    /// What our tables hold in the kernel, per backend, as of this
    /// engine's last operation (unknown: read by the next one), so that
    /// an operation costs its own change. Forgotten by `reapply_all` and
    /// `repair`, which must see the kernel.
    kept: crate::backend::Kept,
}

impl<R: Runner> Engine<R> {
    /// An engine applying with the xtables backend (see
    /// [`Engine::with_backend`]).
    pub fn new(filters: FilterStore, bindings: BindingStore, runner: R) -> Engine<R> {
        Engine {
            filters,
            bindings,
            runner,
            state: Mutex::new(State::default()),
            learned: Mutex::new(Learned::default()),
            tables_lock: None,
        }
    }

    /// Applies new rules with `backend`. Bindings another backend applied
    /// move to it at their next apply ([`Engine::reapply_all`] moves all).
    pub fn with_backend(self, backend: Backend) -> Engine<R> {
        self.set_backend(backend);
        self
    }

    /// Changes the backend of a running engine (a reload of the settings);
    /// as [`Engine::with_backend`].
    pub fn set_backend(&self, backend: Backend) {
        let mut state = self.lock();
        if state.backend != backend {
            state.backend = backend;
            // Rendered for the other backend: nothing to compare against.
            state.applied.clear();
            state.templates.clear();
        }
    }

    /// Leaves the xtables tables this engine keeps for the next process's
    /// start when they are proven the kernel's, so that it plans on them
    /// instead of reading every table (see `hand_over`). For a daemon that
    /// stops: a commit by anyone after this refutes what it left.
    pub fn hand_over(&self) {
        let state = self.lock();
        if let Some((tables, generation)) = state.kept.xtables_settled_now(&self.runner) {
            hand_over::write(self.bindings.dir(), &self.runner, tables, generation);
        }
    }

    /// The backend new rules are applied with.
    pub fn backend(&self) -> Backend {
        self.lock().backend
    }

    /// The backend whose rules filter `port` (its record; xtables when it
    /// has none, as every binding applied before there was a choice).
    pub fn applied_by(&self, port: &IfName) -> Result<Backend, EngineError> {
        let mut state = self.lock();
        Ok(state.records.get(self.bindings.dir(), port)?.backend)
    }

    /// Holds the `flock` on `path` around every kernel change
    /// (`host_io::DEFAULT_LOCK_FILE` for real hosts).
    pub fn with_tables_lock(mut self, path: impl Into<std::path::PathBuf>) -> Engine<R> {
        self.tables_lock = Some(path.into());
        self
    }

    fn tables_lock(&self) -> Result<Option<TablesLock>, EngineError> {
        let Some(path) = &self.tables_lock else {
            return Ok(None);
        };
        TablesLock::acquire(path)
            .map(Some)
            .map_err(|source| EngineError::Lock {
                path: path.clone(),
                source,
            })
    }

    pub fn filters(&self) -> &FilterStore {
        &self.filters
    }

    pub fn bindings(&self) -> &BindingStore {
        &self.bindings
    }

    pub fn runner(&self) -> &R {
        &self.runner
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the map possibly stale, not
        // wrong in a dangerous way: at worst a port is re-applied. Records
        // are written before the cache, so they are never ahead of disk.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn learned(&self) -> MutexGuard<'_, Learned> {
        self.learned.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What `binding` gets from the current filters (with `IP` bound to
    /// the learned addresses when the binding leaves it unset), rendered
    /// for the configured backend.
    pub fn compile(&self, binding: &Binding) -> Result<PortRules, EngineError> {
        let backend = self.backend();
        self.compile_for(binding, backend)
    }

    fn compile_for(&self, binding: &Binding, backend: Backend) -> Result<PortRules, EngineError> {
        compile::ruleset(&self.filters, &self.effective(binding), backend)
    }

    /// `binding` as it is instantiated: with the learned addresses as `IP`
    /// when it does not set `IP` itself (what `binding-dumpxml` shows).
    pub fn effective(&self, binding: &Binding) -> Binding {
        let learned = self.learned();
        with_learned(
            binding,
            learned.get(&binding.portdev),
            learned.get6(&binding.portdev),
        )
    }

    /// As [`Engine::effective`], first loading the port's learned
    /// addresses from the state directory when this engine holds none
    /// (a CLI without a daemon explaining a port the daemon learned for).
    pub fn effective_loaded(&self, binding: &Binding) -> Binding {
        if self.learned().get(&binding.portdev).is_none() {
            self.learned().load(self.bindings.dir(), &binding.portdev);
        }
        if self.learned().get6(&binding.portdev).is_none() {
            self.learned().load6(self.bindings.dir(), &binding.portdev);
        }
        self.effective(binding)
    }

    /// A port's learned addresses changed: records them and applies the
    /// full filter with `IP` bound to them. With none (the last lease
    /// ended), forgets them: the learner has put its learning rules back
    /// (through [`Engine::apply_foreign`]), and those stay.
    pub fn set_learned(&self, port: &IfName, addrs: Vec<Ipv4Addr>) -> Result<(), EngineError> {
        let mut state = self.lock();
        let Some(binding) = self.bindings.get(port.as_str())? else {
            return Err(crate::Error::NoSuchBinding(port.to_string()).into());
        };
        if addrs.is_empty() {
            return self.learned().set(self.bindings.dir(), port, addrs);
        }
        let previous = self.learned().get(port).map(<[Ipv4Addr]>::to_vec);
        self.learned().set(self.bindings.dir(), port, addrs)?;
        let result = match self.compile_for(&binding, state.backend) {
            Ok(PortRules::Rules(rs)) => self.apply_all(&mut state, vec![rs], false),
            Ok(PortRules::AwaitingIp(need)) => Err(compile::needs_ip(&binding, need)),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            // Keep the record in step with what is applied.
            let _ = self
                .learned()
                .set(self.bindings.dir(), port, previous.unwrap_or_default());
            return Err(e);
        }
        state.foreign.remove(port);
        Ok(())
    }

    /// The addresses learned for `port`, if any.
    pub fn learned_addrs(&self, port: &IfName) -> Option<Vec<Ipv4Addr>> {
        self.learned().get(port).map(<[Ipv4Addr]>::to_vec)
    }

    /// A port's learned IPv6 addresses changed (issue 16): records them
    /// and, unless the port is under the IPv4 learner's rules (which
    /// drop its IPv6 anyway; the full filter comes with its `IP`),
    /// applies the full filter with `IPV6` bound to them, in one apply.
    /// With none, the rules that need `$IPV6` are left out again.
    pub fn set_learned6(&self, port: &IfName, addrs: Vec<Learned6>) -> Result<(), EngineError> {
        let mut state = self.lock();
        let Some(binding) = self.bindings.get(port.as_str())? else {
            return Err(crate::Error::NoSuchBinding(port.to_string()).into());
        };
        let previous = self.learned().get6(port).map(<[Learned6]>::to_vec);
        self.learned().set6(self.bindings.dir(), port, addrs)?;
        if state.foreign.contains_key(port) {
            return Ok(());
        }
        let result = match self.compile_for(&binding, state.backend) {
            Ok(PortRules::Rules(rs)) => self.apply_all(&mut state, vec![rs], false).map(drop),
            // The IPv4 learner holds the port (its rules not applied yet).
            Ok(PortRules::AwaitingIp(_)) => Ok(()),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            // Keep the record in step with what is applied.
            let _ = self
                .learned()
                .set6(self.bindings.dir(), port, previous.unwrap_or_default());
            return Err(e);
        }
        Ok(())
    }

    /// The IPv6 addresses learned for `port`, with when each expires.
    pub fn learned6(&self, port: &IfName) -> Option<Vec<Learned6>> {
        self.learned().get6(port).map(<[Learned6]>::to_vec)
    }

    /// How `binding`'s port learns its IPv6 addresses, when its filters
    /// use `$IPV6`, the binding does not give it and learning is on.
    pub fn ipv6_learning(
        &self,
        binding: &Binding,
    ) -> Result<Option<nwfilter_compile::Ipv6Learning>, EngineError> {
        let dag = compile::dag(&self.filters, binding)?;
        compile::ipv6_learning(&dag, binding)
    }

    /// Applies rules that are not a binding's filter (the learner's
    /// learning or drop-all rules), rendered for the configured backend,
    /// under the engine's lock. They are the port's rules until the next
    /// [`Engine::set_learned`] with addresses: `repair` restores them, and
    /// a reapply after a change of backend moves them.
    pub fn apply_foreign(&self, program: &Program) -> Result<(), EngineError> {
        let mut state = self.lock();
        let rendered = render_foreign(program, state.backend)?;
        self.apply_all(&mut state, vec![rendered], false)?;
        state.foreign.insert(program.port.clone(), program.clone());
        Ok(())
    }

    /// Defines or redefines a filter and rebuilds, at once, every binding
    /// whose filter tree reaches it. All or nothing: if the rules of any
    /// such binding cannot be built from the new definition (a reference
    /// to a missing filter, a variable it does not set), the define is
    /// refused naming the port and nothing is stored; if the kernel
    /// refuses them, no binding's rules change and the stored filter is
    /// put back.
    ///
    /// The document is parsed before the engine's lock is taken: a large
    /// document does not hold up other operations or `repair`.
    pub fn define(&self, xml: &str) -> Result<Defined, EngineError> {
        let parsed = ParsedFilter::parse(xml)?;
        self.define_parsed(parsed)
    }

    /// As [`Engine::define`], for a document parsed beforehand.
    pub fn define_parsed(&self, parsed: ParsedFilter) -> Result<Defined, EngineError> {
        let mut state = self.lock();
        let name = parsed.filter().name.to_string();
        let rebuild_failed = |e: EngineError| EngineError::Rebuild {
            filter: name.clone(),
            source: Box::new(e),
        };
        let (defined, rebuilt) = self.filters.define_parsed(parsed, |proposed| {
            self.users_rules(&state, proposed).map_err(rebuild_failed)
        })?;
        let Err(e) = self.apply_all(&mut state, rebuilt, false) else {
            return Ok(defined);
        };
        let failed = rebuild_failed(e);
        match self.filters.undo_define(&defined) {
            Ok(()) => Err(failed),
            Err(undo) => Err(EngineError::Undo {
                source: Box::new(failed),
                undo: error_chain(&undo),
            }),
        }
    }

    /// The new rules of every binding whose tree reaches the proposed
    /// definition, compiled against the filters as they would be. A
    /// binding that reaches it and does not compile is an error, even if
    /// it did not compile before either: a define must leave every user
    /// filtered by the definitions that are stored. A port whose address
    /// is being learned keeps the learner's rules (its tree is bound when
    /// an address is learned).
    fn users_rules(
        &self,
        state: &State,
        proposed: &Proposed,
    ) -> Result<Vec<Rendered>, EngineError> {
        if !proposed.changed {
            return Ok(Vec::new());
        }
        let source = proposed.source();
        let mut rebuilt = Vec::new();
        for binding in self.bindings.list()?.items {
            if !proposed.reaches(binding.filterref.filter.as_str()) {
                continue;
            }
            let effective = self.effective(&binding);
            match compile::ruleset(&source, &effective, state.backend)? {
                PortRules::Rules(rules) => rebuilt.push(rules),
                PortRules::AwaitingIp(_) if state.foreign.contains_key(&binding.portdev) => {}
                PortRules::AwaitingIp(need) => return Err(compile::needs_ip(&effective, need)),
            }
        }
        Ok(rebuilt)
    }

    /// Removes a filter, unless a binding uses it (directly or through
    /// references).
    pub fn undefine(&self, key: &str) -> Result<Undefined, EngineError> {
        let _state = self.lock();
        Ok(self.filters.undefine(key, || self.bindings.uses())?)
    }

    /// Removes a port's rules, then its recorded binding. A binding whose
    /// file cannot be read is refused here (see
    /// [`Engine::binding_delete_any`]).
    pub fn binding_delete(&self, portdev: &str) -> Result<Binding, EngineError> {
        let port = match IfName::new(portdev.to_owned()) {
            Ok(port) => port,
            Err(e) => return Err(self.forget_option_like(portdev, e)),
        };
        self.bindings.get(port.as_str())?;
        match self.binding_delete_any(portdev)? {
            Deleted::Binding(binding) => Ok(binding),
            // Checked above; a file that broke in between was removed.
            Deleted::Unreadable { path, reason, .. } => {
                Err(crate::Error::BadFile { path, reason }.into())
            }
        }
    }

    /// Removes a port's rules, then its recorded binding, also one whose
    /// file cannot be read: that is how such a port gets out of the
    /// closed state ([`Reapplied::blocked`]), nothing stays stuck.
    pub fn binding_delete_any(&self, portdev: &str) -> Result<Deleted, EngineError> {
        let port = match IfName::new(portdev.to_owned()) {
            Ok(port) => port,
            Err(e) => return Err(self.forget_option_like(portdev, e)),
        };
        let mut state = self.lock();
        match self.bindings.get(port.as_str()) {
            Ok(Some(_)) => {}
            Ok(None) => return Err(crate::Error::NoSuchBinding(port.to_string()).into()),
            // A binding file that cannot be read is still deleted: that is
            // how its port gets out of the closed state (nothing stuck).
            Err(crate::Error::BadFile { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        self.remove_port(&mut state, &port)?;
        let deleted = self.bindings.delete(port.as_str());
        state.records.remove(self.bindings.dir(), &port)?;
        self.learned().set(self.bindings.dir(), &port, Vec::new())?;
        self.learned()
            .set6(self.bindings.dir(), &port, Vec::new())?;
        Ok(match deleted {
            Ok(binding) => Deleted::Binding(binding),
            Err(crate::Error::BadFile { path, reason }) => {
                Deleted::Unreadable { port, path, reason }
            }
            Err(e) => return Err(e.into()),
        })
    }

    /// A port name refused by `IfName`: if an older version stored a
    /// binding under it (a leading `-`), the record goes, so it is never
    /// stuck; either way the error says what happened.
    fn forget_option_like(&self, portdev: &str, why: nwfilter_model::NameError) -> EngineError {
        let _state = self.lock();
        match self.bindings.remove_option_like(portdev) {
            Ok(true) => match records::remove_option_like(self.bindings.dir(), portdev) {
                Ok(()) => EngineError::OptionLikePortForgotten(portdev.to_owned(), why),
                Err(e) => e,
            },
            Ok(false) => EngineError::BadPort(portdev.to_owned(), why),
            Err(e) => e.into(),
        }
    }

    /// Puts back the rules of every port this engine applied that are no
    /// longer (exactly) in the kernel — someone flushed a table, deleted a
    /// chain or restarted a firewall service. Returns the ports repaired.
    /// Costs one read of each table when nothing is missing.
    pub fn repair(&self) -> Result<Vec<IfName>, EngineError> {
        let mut state = self.lock();
        self.repair_locked(&mut state)
    }

    fn repair_locked(&self, state: &mut State) -> Result<Vec<IfName>, EngineError> {
        state.kept.forget();
        let rulesets: Vec<Rendered> = state.applied.values().map(packed::Kept::unpack).collect();
        let report = self.apply_all(state, rulesets, true)?;
        Ok(report.changed)
    }
}

/// The learner's rules rendered for `backend`.
fn render_foreign(program: &Program, backend: Backend) -> Result<Rendered, EngineError> {
    Rendered::render(backend, program).map_err(|e| EngineError::Compile {
        port: program.port.clone(),
        reason: error_chain(&e),
    })
}
