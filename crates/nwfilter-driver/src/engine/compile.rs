//! From a stored binding to the rules its port needs.

use nwfilter_compile::ir::Program;
use nwfilter_compile::{lower, resolve, BindError, BindOutcome, FilterDag, FilterSource};
use nwfilter_model::Binding;

use super::error::EngineError;
use crate::backend::{Backend, Rendered};

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
) -> Result<Rendered, EngineError> {
    from_dag(&dag(source, binding)?, binding, backend)
}

/// Binds, lowers and renders `binding` on its already resolved tree.
pub(crate) fn from_dag(
    dag: &FilterDag,
    binding: &Binding,
    backend: Backend,
) -> Result<Rendered, EngineError> {
    let program = program(dag, binding)?;
    Rendered::render(backend, &program).map_err(|e| compile_error(binding, &e))
}

/// Binds and lowers `binding` on its already resolved tree.
fn program(dag: &FilterDag, binding: &Binding) -> Result<Program, EngineError> {
    let port = &binding.portdev;
    let rules = match dag
        .bind(&binding.filterref.params, binding.mac)
        .map_err(|e| compile_error(binding, &e))?
    {
        BindOutcome::Bound(rules) => rules,
        BindOutcome::AwaitingIp { mode, dhcp_servers } => {
            return Err(EngineError::NeedsIp {
                port: port.clone(),
                filter: binding.filterref.filter.to_string(),
                mode,
                dhcp_servers,
            })
        }
    };
    lower(&rules, port).map_err(|e| compile_error(binding, &e))
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
