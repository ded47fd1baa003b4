//! From a stored binding to the rules its port needs.

use backend_xtables::PortRuleset;
use nwfilter_compile::{bind, lower, BindOutcome, FilterSource};
use nwfilter_model::Binding;

use super::error::EngineError;

/// Resolves, binds, lowers and renders `binding` against `source`.
pub(crate) fn ruleset(
    source: &dyn FilterSource,
    binding: &Binding,
) -> Result<PortRuleset, EngineError> {
    let port = &binding.portdev;
    let fail = |reason: String| EngineError::Compile {
        port: port.clone(),
        reason,
    };
    let rules = match bind(source, &binding.filterref, binding.mac).map_err(|e| fail(chain(&e)))? {
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
    let program = lower(&rules, port).map_err(|e| fail(chain(&e)))?;
    backend_xtables::ruleset(&program).map_err(|e| fail(chain(&e)))
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
