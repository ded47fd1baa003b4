//! `binding-create`: a new port's rules applied, then its binding
//! recorded; or, when its filters await `IP` and the caller learns
//! addresses, the binding recorded with nothing applied (the learner
//! holds the port under its learning rules). One parse, one resolve, one
//! bind per request: the outcome says which it was.

use host_io::Runner;
use nwfilter_model::Binding;

use super::compile::needs_ip;
use super::records::Record;
use super::{Engine, EngineError, State};
use crate::port::{LearningNeed, PortRules};

/// A binding whose port awaits its address, and how it is learned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Awaiting {
    pub binding: Binding,
    pub need: LearningNeed,
}

/// What [`Engine::binding_create_learning`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created {
    /// The port's rules are in place and the binding recorded.
    Applied(Binding),
    /// The binding is recorded and nothing applied: the port awaits its
    /// address; the caller starts learning it.
    Recorded(Awaiting),
}

impl Created {
    pub fn binding(&self) -> &Binding {
        match self {
            Created::Applied(binding) => binding,
            Created::Recorded(awaiting) => &awaiting.binding,
        }
    }
}

/// What to do with a binding whose port awaits its address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OnAwaiting {
    /// Nobody learns addresses here: an error naming the missing `IP`.
    Refuse,
    /// Record it; the caller learns.
    Record,
}

impl<R: Runner> Engine<R> {
    /// Applies a `<filterbinding>` document's rules to its port, then
    /// records it. A port that already has a binding is refused, and so is
    /// one whose filters need `IP` the binding does not give
    /// ([`EngineError::NeedsIp`]: nothing here learns it).
    pub fn binding_create(&self, xml: &str) -> Result<Binding, EngineError> {
        let binding = nwfilter_model::parse_binding(xml).map_err(EngineError::InvalidBinding)?;
        self.binding_create_parsed(binding)
    }

    /// As [`Engine::binding_create`], for a binding already parsed.
    pub fn binding_create_parsed(&self, binding: Binding) -> Result<Binding, EngineError> {
        self.create(binding, OnAwaiting::Refuse)
            .map(|created| created.binding().clone())
    }

    /// As [`Engine::binding_create_parsed`] for a caller that learns
    /// addresses: a port that awaits its address is recorded with nothing
    /// applied ([`Created::Recorded`]), under the same lock.
    pub fn binding_create_learning(&self, binding: Binding) -> Result<Created, EngineError> {
        self.create(binding, OnAwaiting::Record)
    }

    /// Records a binding whose address is still to be learned, without
    /// applying anything: the learner holds the port under its learning
    /// rules until an address is known ([`Engine::set_learned`]).
    pub fn binding_record(&self, binding: &Binding) -> Result<(), EngineError> {
        let mut state = self.lock();
        self.refuse_existing(binding)?;
        self.record_locked(&mut state, binding)
    }

    fn create(&self, binding: Binding, awaiting: OnAwaiting) -> Result<Created, EngineError> {
        let mut state = self.lock();
        let port = binding.portdev.clone();
        self.refuse_existing(&binding)?;
        let compiled = {
            let _span = tracing::debug_span!("compile", %port).entered();
            self.compile_for(&binding, state.backend)?
        };
        let ruleset = match compiled {
            PortRules::Rules(ruleset) => ruleset,
            PortRules::AwaitingIp(need) => {
                if awaiting == OnAwaiting::Refuse {
                    return Err(needs_ip(&binding, need));
                }
                self.record_locked(&mut state, &binding)?;
                return Ok(Created::Recorded(Awaiting { binding, need }));
            }
        };
        // A new port: whatever record a crash may have left is stale.
        let dir = self.bindings.dir();
        let record = Record::only(state.backend);
        {
            let _span = tracing::debug_span!("record-write", %port).entered();
            state.records.set(dir, &port, record)?;
        }
        let undo = |e: EngineError, undone: Result<(), EngineError>| match undone {
            Ok(()) => e,
            Err(u) => EngineError::Undo {
                source: Box::new(e),
                undo: super::error_chain(&u),
            },
        };
        if let Err(e) = self.apply_all(&mut state, vec![ruleset], false) {
            // Refused: nothing was applied, only the record is to go.
            return Err(undo(e, state.records.remove(dir, &port)));
        }
        let stored = {
            let _span = tracing::debug_span!("store-write", %port).entered();
            self.bindings.create(&binding)
        };
        if let Err(e) = stored {
            // Rules nobody recorded could never be deleted by name.
            let undone = self
                .remove_port(&mut state, &port)
                .and_then(|()| state.records.remove(dir, &port));
            return Err(undo(e.into(), undone));
        }
        Ok(Created::Applied(binding))
    }

    fn refuse_existing(&self, binding: &Binding) -> Result<(), EngineError> {
        let port = &binding.portdev;
        if self.bindings.get(port.as_str())?.is_some() {
            return Err(crate::Error::BindingExists(port.to_string()).into());
        }
        Ok(())
    }

    /// Records `binding` with nothing applied (the engine's lock held).
    fn record_locked(&self, state: &mut State, binding: &Binding) -> Result<(), EngineError> {
        let port = &binding.portdev;
        let dir = self.bindings.dir();
        state.records.set(dir, port, Record::only(state.backend))?;
        if let Err(e) = self.bindings.create(binding) {
            let _ = state.records.remove(dir, port);
            return Err(e.into());
        }
        Ok(())
    }
}
