//! `explain`: what a port's rules do to one packet, on the port's current
//! binding (with its learned addresses), its filters, and the backend
//! whose rules hold the port. One function for the CLI without a daemon
//! ([`explain_binding`] on files) and the daemon's `explain` operation.

use std::path::Path;

use nwfilter_compile::{compile_dag_traced, resolve, CompiledTraced, FilterSource};
use nwfilter_driver::Backend;
use nwfilter_explain::{frame, report, spec, Direction, Explanation, SourcePos};
use nwfilter_model::{builtin_filter_source, Binding};
use serde::{Deserialize, Serialize};

/// The packet to explain: a description or a raw frame.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PacketInput {
    /// `nwfilter_explain::spec` text (`mac src=… ip src=… tcp dport=25`).
    Packet(String),
    /// A raw Ethernet frame in hexadecimal.
    Frame(String),
}

/// Why there is no explanation.
#[derive(Debug, thiserror::Error)]
pub enum ExplainError {
    #[error("no binding for port {0}")]
    NoBinding(String),
    #[error(
        "port {port} is still learning its IP address (CTRL_IP_LEARNING={mode}): its filter \
         is not applied yet, the learner's rules are; give IP in the binding to explain the filter"
    )]
    Learning { port: String, mode: String },
    #[error("port {port}: {reason}")]
    Compile { port: String, reason: String },
    #[error(transparent)]
    Spec(#[from] spec::SpecError),
    #[error(transparent)]
    Frame(#[from] frame::FrameError),
}

/// The explanation of `input` on `binding` (learned addresses already
/// bound), compiled from `source`, under `backend`'s semantics. Rule
/// sources are located in `config_dir` (a filter stored there) or the
/// built-in set.
pub fn explain_binding(
    source: &dyn FilterSource,
    config_dir: &Path,
    binding: &Binding,
    backend: Backend,
    direction: Direction,
    input: &PacketInput,
) -> Result<Explanation, ExplainError> {
    let port = binding.portdev.to_string();
    let fail = |e: &dyn std::error::Error| ExplainError::Compile {
        port: port.clone(),
        reason: nwfilter_driver::engine::error_chain(e),
    };
    let dag = resolve(source, &binding.filterref.filter).map_err(|e| fail(&e))?;
    let params = &binding.filterref.params;
    let traced = match compile_dag_traced(&dag, params, binding.mac, &binding.portdev) {
        Ok(CompiledTraced::Program(t)) => t,
        Ok(CompiledTraced::AwaitingIp { mode, .. }) => {
            return Err(ExplainError::Learning {
                port,
                mode: format!("{mode:?}").to_lowercase(),
            })
        }
        Err(e) => return Err(fail(&e)),
    };
    let packet = match input {
        PacketInput::Packet(text) => spec::parse(text, direction, binding.mac.into_array())?,
        PacketInput::Frame(hex) => frame::parse(&frame::hex(hex)?)?,
    };
    let backend = match backend {
        Backend::Xtables => nwfilter_explain::Backend::Xtables,
        Backend::Nftables => nwfilter_explain::Backend::Nftables,
    };
    let mut e = nwfilter_explain::explain(&traced, backend, direction, &packet);
    e.locate(|o| locate(config_dir, o.filter.as_str(), o.rule_index));
    Ok(e)
}

/// The file and line of rule `rule_index` of filter `name`: its file in
/// the config directory, else the built-in document.
fn locate(config_dir: &Path, name: &str, rule_index: usize) -> Option<SourcePos> {
    let path = config_dir.join(format!("{name}.xml"));
    if let Ok(text) = std::fs::read_to_string(&path) {
        let line = nwfilter_explain::source::rule_line(&text, rule_index)?;
        return Some(SourcePos {
            file: path.display().to_string(),
            line,
        });
    }
    let text = builtin_filter_source(name)?;
    Some(SourcePos {
        file: format!("(built-in) {name}.xml"),
        line: nwfilter_explain::source::rule_line(text, rule_index)?,
    })
}

/// The reply of the `explain` operation: the text people read and the
/// same explanation as JSON.
pub fn reply(e: &Explanation) -> crate::Reply {
    crate::Reply::Explanation {
        text: report::text(e),
        explanation: serde_json::to_value(e).unwrap_or_default(),
    }
}

#[cfg(test)]
mod tests {
    use crate::{Op, Request};

    #[test]
    fn the_explain_request_is_flat_on_the_wire() {
        let line =
            r#"{"version":1,"op":"explain","portdev":"vnet0","direction":"out","packet":"arp"}"#;
        let req: Request = serde_json::from_str(line).unwrap();
        let Op::Explain {
            portdev,
            direction,
            input,
            backend,
        } = &req.op
        else {
            panic!("{req:?}")
        };
        assert_eq!(portdev, "vnet0");
        assert_eq!(*direction, nwfilter_explain::Direction::Out);
        assert_eq!(*input, super::PacketInput::Packet("arp".into()));
        assert_eq!(*backend, None);
        assert_eq!(serde_json::to_string(&req).unwrap(), line);
        let frame = r#"{"version":1,"op":"explain","portdev":"vnet0","direction":"in","frame":"ffff","backend":"nftables"}"#;
        let req: Request = serde_json::from_str(frame).unwrap();
        assert!(matches!(
            req.op,
            Op::Explain {
                input: super::PacketInput::Frame(_),
                backend: Some(nwfilter_driver::Backend::Nftables),
                ..
            }
        ));
    }
}
