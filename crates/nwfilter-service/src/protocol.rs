//! The daemon's wire protocol (documented in `docs/api.md`).
//!
//! One JSON object per line in each direction over a Unix stream socket: the
//! client writes a [`Request`], the daemon answers with one [`Response`]; a
//! connection may carry several exchanges. Every request carries the
//! protocol version so that an old client talking to a new daemon (or the
//! reverse) gets a clear error instead of a misread field.

use serde::{Deserialize, Serialize};

/// The version this build speaks. Bumped on any incompatible change.
pub const PROTOCOL_VERSION: u32 = 1;

/// Longest request line the daemon reads (a filter document is at most
/// 16 MiB; JSON escaping may grow it).
pub const MAX_REQUEST_BYTES: usize = 40 << 20;

/// A request line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub version: u32,
    #[serde(flatten)]
    pub op: Op,
}

impl Request {
    pub fn new(op: Op) -> Request {
        Request {
            version: PROTOCOL_VERSION,
            op,
        }
    }
}

/// The operations, named as the CLI verbs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub enum Op {
    /// Define or redefine a filter from its XML text.
    Define { xml: String },
    /// Remove a filter, by name or UUID.
    Undefine { filter: String },
    /// A filter's normalised XML, by name or UUID.
    Dumpxml { filter: String },
    /// All filters (name and UUID).
    List,
    /// Create a binding from `<filterbinding>` XML and apply its rules.
    BindingCreate { xml: String },
    /// Remove a binding's rules and state.
    BindingDelete { portdev: String },
    /// All bindings.
    BindingList,
    /// A binding's XML.
    BindingDumpxml { portdev: String },
    /// Re-read filters and re-apply every binding (as SIGHUP).
    Reload,
    /// How the daemon runs: the firewall backend it applies with.
    Status,
    /// A virtual-network verb.
    Net { net: crate::net_ops::NetOp },
    /// What the port's rules do to one packet (`nwfilter explain`).
    Explain {
        portdev: String,
        direction: nwfilter_explain::Direction,
        #[serde(flatten)]
        input: crate::explain::PacketInput,
        /// Explain as this backend would decide (default: the backend
        /// whose rules hold the port).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        backend: Option<nwfilter_driver::Backend>,
    },
}

/// A response line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "lowercase")]
pub enum Response {
    Ok { result: Reply },
    Error { message: String },
}

/// What a successful operation returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Reply {
    /// The operation changed state; `message` is what virsh would print.
    Done {
        message: String,
    },
    /// A document (dumpxml).
    Xml {
        xml: String,
    },
    /// Text to print as it is (network verbs).
    Text {
        text: String,
    },
    Filters {
        filters: Vec<FilterEntry>,
        /// Files of the config directory that could not be used, each
        /// with its path and the reason (the CLI prints them as warnings).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        skipped: Vec<String>,
    },
    Bindings {
        bindings: Vec<BindingEntry>,
    },
    /// The answer to [`Op::Status`].
    Status {
        backend: nwfilter_driver::Backend,
    },
    /// The answer to [`Op::Explain`]: `text` for people, `explanation`
    /// (the verdict, decisive rule, path and notes) for scripts.
    Explanation {
        text: String,
        explanation: serde_json::Value,
    },
}

/// One row of `list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterEntry {
    pub uuid: String,
    pub name: String,
    /// Part of the program's built-in set (not stored in the config
    /// directory).
    #[serde(default)]
    pub builtin: bool,
}

/// One row of `binding-list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BindingEntry {
    pub portdev: String,
    pub filter: String,
    /// Extra state, e.g. "learning IP" or "blocked: learning timed out".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// Addresses learned for the port (IPv4 when the binding does not set
    /// `IP`, then IPv6 when it does not set `IPV6`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub learned: Vec<String>,
    /// The binding's owner (a VM, or a network whose filter the port gets).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<OwnerEntry>,
}

/// Who owns a binding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerEntry {
    pub name: String,
    pub uuid: String,
    /// The owner is a virtual network (the port has no binding of its own).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub network: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_wire_form_is_flat_and_versioned() {
        let line = serde_json::to_string(&Request::new(Op::BindingDelete {
            portdev: "vnet0".into(),
        }))
        .unwrap();
        assert_eq!(
            line,
            r#"{"version":1,"op":"binding-delete","portdev":"vnet0"}"#
        );
        let back: Request = serde_json::from_str(&line).unwrap();
        assert_eq!(
            back.op,
            Op::BindingDelete {
                portdev: "vnet0".into()
            }
        );
    }

    #[test]
    fn status_wire_form() {
        let line = serde_json::to_string(&Request::new(Op::Status)).unwrap();
        assert_eq!(line, r#"{"version":1,"op":"status"}"#);
        let reply = Reply::Status {
            backend: nwfilter_driver::Backend::Nftables,
        };
        assert_eq!(
            serde_json::to_string(&reply).unwrap(),
            r#"{"kind":"status","backend":"nftables"}"#
        );
    }

    #[test]
    fn response_wire_forms() {
        let ok = Response::Ok {
            result: Reply::Filters {
                filters: vec![FilterEntry {
                    uuid: "u".into(),
                    name: "clean-traffic".into(),
                    builtin: true,
                }],
                skipped: Vec::new(),
            },
        };
        assert_eq!(
            serde_json::to_string(&ok).unwrap(),
            r#"{"status":"ok","result":{"kind":"filters","filters":[{"uuid":"u","name":"clean-traffic","builtin":true}]}}"#
        );
        let err = Response::Error {
            message: "no filter 'x'".into(),
        };
        assert_eq!(
            serde_json::to_string(&err).unwrap(),
            r#"{"status":"error","message":"no filter 'x'"}"#
        );
    }
}
