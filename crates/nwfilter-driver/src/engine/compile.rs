//! From a stored binding to the rules its port needs: the one pipeline
//! ([`crate::port::port_rules`]) on the binding's resolved tree, with
//! failures named after the port.

use nwfilter_compile::{resolve, BindError, BindOutcome, FilterDag, FilterSource, Ipv6Learning};
use nwfilter_model::Binding;

use super::error::EngineError;
use crate::backend::Backend;
use crate::port::{port_rules, LearningNeed, PortRules};

/// Resolves `binding`'s filter tree against `source`.
pub(crate) fn dag(source: &dyn FilterSource, binding: &Binding) -> Result<FilterDag, EngineError> {
    resolve(source, &binding.filterref.filter)
        .map_err(|e| compile_error(binding, &BindError::from(e)))
}

/// Resolves, binds, lowers and renders `binding` against `source`.
pub(crate) fn ruleset(
    source: &dyn FilterSource,
    binding: &Binding,
    backend: Backend,
) -> Result<PortRules, EngineError> {
    from_dag(&dag(source, binding)?, binding, backend)
}

/// Binds, lowers and renders `binding` on its already resolved tree.
pub(crate) fn from_dag(
    dag: &FilterDag,
    binding: &Binding,
    backend: Backend,
) -> Result<PortRules, EngineError> {
    let params = &binding.filterref.params;
    port_rules(dag, params, binding.mac, &binding.portdev, backend)
        .map_err(|e| compile_error(binding, &e))
}

/// Whether `binding` as stored (its learned addresses left out) awaits
/// `IP` from learning, on its already resolved tree. Stops before
/// expanding any rule when it does.
pub(crate) fn awaits_ip(dag: &FilterDag, binding: &Binding) -> Option<LearningNeed> {
    match dag.bind(&binding.filterref.params, binding.mac) {
        Ok(BindOutcome::AwaitingIp { mode, dhcp_servers }) => {
            Some(LearningNeed { mode, dhcp_servers })
        }
        Ok(BindOutcome::Bound(_)) | Err(_) => None,
    }
}

/// How `binding` (as stored: its own `IPV6`, not learned ones) learns its
/// IPv6 addresses on its already resolved tree; `None` when it does not.
pub(crate) fn ipv6_learning(
    dag: &FilterDag,
    binding: &Binding,
) -> Result<Option<Ipv6Learning>, EngineError> {
    dag.ipv6_learning(&binding.filterref.params, binding.mac)
        .map_err(|e| EngineError::Compile {
            port: binding.portdev.clone(),
            reason: super::error_chain(&e),
        })
}

/// The error for a port that must have rules and awaits its address.
pub(crate) fn needs_ip(binding: &Binding, need: LearningNeed) -> EngineError {
    EngineError::NeedsIp {
        port: binding.portdev.clone(),
        filter: binding.filterref.filter.to_string(),
        mode: need.mode,
        dhcp_servers: need.dhcp_servers,
    }
}

fn compile_error(binding: &Binding, e: &dyn std::error::Error) -> EngineError {
    EngineError::Compile {
        port: binding.portdev.clone(),
        reason: chain(e),
    }
}

/// An error with its causes, `a: b: c`, for messages that cross the wire.
pub fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let more = c.to_string();
        if !text.contains(&more) {
            text.push_str(": ");
            text.push_str(&more);
        }
        cause = c.source();
    }
    text
}
