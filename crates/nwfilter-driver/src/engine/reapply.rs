//! Re-applying every stored binding (daemon start, SIGHUP, `reload`), and
//! saying which ports the learner must follow: each binding is resolved
//! once, and what it awaits comes from that one pass, so a caller starts
//! its learners without compiling anything again.

use host_io::Runner;
use nwfilter_model::Binding;

use nwfilter_compile::{FilterSource, Ipv6Learning};

use super::compile::{self, awaits_ip};
use super::create::Awaiting;
use super::learned::Stored;
use super::{closed, error_chain, render_foreign, Engine, EngineError, Reapplied, State};
use super::{hand_over, read_once};
use crate::backend::{Backend, Rendered};
use crate::port::{LearningNeed, PortRules};
use crate::Listing;

/// What [`Engine::reapply`] did, and the ports to learn on.
#[derive(Debug)]
pub struct Reapply {
    pub result: Result<Reapplied, EngineError>,
    /// Every binding whose tree awaits `IP` from learning (also those
    /// whose learned addresses stand in for it meanwhile: in `dhcp` mode
    /// the learner follows their leases). Given even when applying
    /// failed: the learner's rules still hold those ports.
    pub learning: Vec<Awaiting>,
    /// Every binding whose tree learns IPv6 addresses, with how (or why
    /// that cannot be told), from the same pass.
    pub learning6: Vec<Awaiting6>,
}

/// A binding whose filter learns IPv6 addresses, and how: what
/// [`Engine::ipv6_learning`] says for it.
#[derive(Debug)]
pub struct Awaiting6 {
    pub binding: Binding,
    pub need: Result<Ipv6Learning, EngineError>,
}

/// What one binding gets at a re-apply.
struct Planned {
    rules: Option<Rendered>,
    awaits: Option<LearningNeed>,
    awaits6: Option<Result<Ipv6Learning, EngineError>>,
}

impl<R: Runner> Engine<R> {
    /// Compiles every stored binding from the current filters and applies
    /// them in one batch (daemon start, SIGHUP, `reload`). Ports whose rules
    /// are already exactly in place are not touched; a binding that does
    /// not compile is reported and keeps whatever rules it had; a binding
    /// file that cannot be read is reported and its port closed (see
    /// [`Reapplied::blocked`]). One bad file never keeps the other ports
    /// from being protected.
    pub fn reapply_all(&self) -> Result<Reapplied, EngineError> {
        self.reapply().result
    }

    /// As [`Engine::reapply_all`], also naming the ports to learn on.
    pub fn reapply(&self) -> Reapply {
        let mut learning = Vec::new();
        let mut learning6 = Vec::new();
        let result = self.reapply_into(&mut learning, &mut learning6);
        Reapply {
            result,
            learning,
            learning6,
        }
    }

    fn reapply_into(
        &self,
        learning: &mut Vec<Awaiting>,
        learning6: &mut Vec<Awaiting6>,
    ) -> Result<Reapplied, EngineError> {
        let mut state = self.lock();
        // Someone else may have changed the kernel since our last
        // operation: read it again, unless nothing committed since.
        let backend = state.backend;
        if let Some((tables, generation)) = hand_over::take(self.bindings.dir(), &self.runner) {
            tracing::debug!(
                generation,
                "planning on the tables the stopped process handed over"
            );
            state.kept.take_over_xtables(tables, generation);
        }
        state.kept.forget_unless_settled(backend, &self.runner);
        let mut result = Reapplied::default();
        // The directory is read again (not a store's memory of it): this
        // is the daemon's start and `reload`, where a file mended by hand
        // is to be seen.
        let listing = {
            let _span = tracing::debug_span!("bindings-read").entered();
            self.bindings.read_all()?
        };
        // A port whose binding file cannot be read still has a binding:
        // it is closed below, never cleaned up as an orphan.
        let bound = (listing.items.iter().map(|b| b.portdev.clone()))
            .chain(
                listing
                    .skipped
                    .iter()
                    .filter_map(|s| self.bindings.port_of(s)),
            )
            .collect();
        let orphans = tracing::debug_span!("orphans").entered();
        result.failed = self.remove_orphans(&mut state, &bound);
        drop(orphans);
        let mut rulesets = self.close_unreadable(&mut state, &listing, &mut result)?;
        // The kernel's tables are read while the bindings compile: at
        // 1000 ports each takes about as long as the other. The tables
        // lock is held for the read, as for any read; the plan is then
        // made on it as on any kept state (refused if it went stale).
        let tables = self.tables_lock()?;
        let reading = state.kept.start_read(backend, &self.runner);
        let source = read_once::ReadOnce::new(&self.filters);
        let dir = self.bindings.dir();
        let stored = crate::on_cores::map(&listing.items, |b| Stored::read(dir, &b.portdev));
        let effective: Vec<(Binding, Binding)> = (listing.items.into_iter().zip(stored))
            .map(|(binding, stored)| {
                self.learned().add(&binding.portdev, stored);
                let effective = self.effective(&binding);
                (binding, effective)
            })
            .collect();
        let planned = {
            let _span = tracing::debug_span!("compile-all", bindings = effective.len()).entered();
            plan_all(&source, &effective, state.backend)
        };
        for ((binding, _), planned) in effective.into_iter().zip(planned) {
            let planned = match planned {
                Ok(planned) => planned,
                Err(e) => {
                    let reason = e.to_string();
                    tracing::warn!(port = %binding.portdev, %reason, "binding not applied");
                    result.failed.push((binding.portdev.clone(), reason));
                    continue;
                }
            };
            match planned.rules {
                Some(rs) => rulesets.push(rs),
                None => {
                    // The learner's rules, if it has applied some: in
                    // place already, or moved to a changed backend.
                    if let Some(program) = state.foreign.get(&binding.portdev) {
                        rulesets.push(render_foreign(program, state.backend)?);
                    }
                    result.learning.push(binding.portdev.clone());
                }
            }
            if let Some(need) = planned.awaits6 {
                learning6.push(Awaiting6 {
                    binding: binding.clone(),
                    need,
                });
            }
            if let Some(need) = planned.awaits {
                learning.push(Awaiting { binding, need });
            }
        }
        let waiting = tracing::debug_span!("tables-read").entered();
        state.kept.finish_read(reading);
        drop(waiting);
        drop(tables);
        let applied = self.apply_all(&mut state, rulesets, true);
        state.kept.drop_unused_read();
        let report = applied?;
        result.applied = report.changed;
        result.unchanged = report.unchanged;
        Ok(result)
    }

    /// The drop-all rules of every port whose binding file cannot be read.
    fn close_unreadable(
        &self,
        state: &mut State,
        listing: &Listing<Binding>,
        result: &mut Reapplied,
    ) -> Result<Vec<Rendered>, EngineError> {
        let mut rulesets = Vec::new();
        for skipped in &listing.skipped {
            let reason = error_chain(skipped);
            match self.bindings.port_of(skipped) {
                Some(port) => {
                    tracing::warn!(%port, %reason, "binding unreadable: port closed");
                    let program = closed::drop_all(&port);
                    rulesets.push(render_foreign(&program, state.backend)?);
                    state.foreign.insert(port.clone(), program);
                    result.blocked.push((port, reason));
                }
                None => result.skipped.push(reason),
            }
        }
        Ok(rulesets)
    }
}

/// Plans every `(binding, effective)` pair, in order, on the machine's
/// cores.
fn plan_all(
    source: &(dyn FilterSource + Sync),
    bindings: &[(Binding, Binding)],
    backend: Backend,
) -> Vec<Result<Planned, EngineError>> {
    crate::on_cores::map(bindings, |(binding, effective)| {
        plan(source, binding, effective, backend)
    })
}

/// `binding`'s rules (`effective`: with its learned addresses as `IP`),
/// and whether its tree awaits `IP` from learning: one resolve of its tree.
fn plan(
    source: &dyn FilterSource,
    binding: &Binding,
    effective: &Binding,
    backend: Backend,
) -> Result<Planned, EngineError> {
    let dag = compile::dag(source, effective)?;
    let awaits6 = compile::ipv6_learning(&dag, binding).transpose();
    Ok(match compile::from_dag(&dag, effective, backend)? {
        PortRules::AwaitingIp(need) => Planned {
            rules: None,
            awaits: Some(need),
            awaits6,
        },
        PortRules::Rules(rules) => Planned {
            // Learned addresses stand in for `IP`: does the binding
            // itself still await it (the learner follows the port)?
            awaits: (effective != binding)
                .then(|| awaits_ip(&dag, binding))
                .flatten(),
            awaits6,
            rules: Some(rules),
        },
    })
}
