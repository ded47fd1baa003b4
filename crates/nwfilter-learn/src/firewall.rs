//! How the learner changes a port's rules: through a small trait taking
//! backend-neutral chain IR, so the daemon can route it through its own
//! lock and its configured backend, and tests can record it.

use std::sync::Mutex;

use backend_xtables::{Applier, Change, Runner};
use nwfilter_compile::ir::Program;

/// An error from whatever applied the rules.
pub type FirewallError = Box<dyn std::error::Error + Send + Sync>;

/// Puts a port's rules in place (replacing whatever the port had).
pub trait PortFirewall: Send + Sync {
    fn apply(&self, rules: &Program) -> Result<(), FirewallError>;
}

/// Renders with backend-xtables and applies through its [`Applier`], one
/// port at a time (the learner's own tests; the daemon goes through its
/// engine instead). The
/// applier reads the tables and then writes batches; the lock keeps two
/// learners' applies from interleaving between those steps.
#[derive(Debug)]
pub struct Xtables<R> {
    runner: R,
    lock: Mutex<()>,
}

impl<R: Runner + Send + Sync> Xtables<R> {
    pub fn new(runner: R) -> Xtables<R> {
        Xtables {
            runner,
            lock: Mutex::new(()),
        }
    }
}

impl<R: Runner + Send + Sync> PortFirewall for Xtables<R> {
    fn apply(&self, rules: &Program) -> Result<(), FirewallError> {
        let ruleset = backend_xtables::ruleset(rules)?;
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let change = Change {
            ruleset: &ruleset,
            recorded: None,
        };
        Applier::new(&self.runner).apply(&[change])?;
        Ok(())
    }
}
