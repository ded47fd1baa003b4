//! How the learner changes a port's rules: through a small trait taking
//! backend-neutral chain IR, so the daemon can route it through its own
//! lock and its configured backend, and tests can record it. This crate
//! names no backend: the daemon's implementation goes through its engine,
//! the tests' through `nwfilter-driver`.

use nwfilter_compile::ir::Program;

/// An error from whatever applied the rules.
pub type FirewallError = Box<dyn std::error::Error + Send + Sync>;

/// Puts a port's rules in place (replacing whatever the port had).
pub trait PortFirewall: Send + Sync {
    fn apply(&self, rules: &Program) -> Result<(), FirewallError>;
}
