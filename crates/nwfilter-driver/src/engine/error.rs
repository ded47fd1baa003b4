//! Errors of the engine: a store error, or a port whose rules could not be
//! built or applied (named, with the reason).

use nwfilter_model::IfName;

/// Why an engine operation failed. Stored objects and applied rules are as
/// they were before the operation unless the message says otherwise.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] crate::Error),
    #[error("invalid filter binding document")]
    InvalidBinding(#[source] nwfilter_model::ParseError),
    /// The port's filter tree could not be compiled.
    #[error("port {port}: {reason}")]
    Compile { port: IfName, reason: String },
    /// The port needs `$IP` and none is known yet.
    #[error(
        "port {port}: filter '{filter}' needs the variable IP, which the binding does not set \
         and which has not been learned; add <parameter name='IP' value='...'/> to the binding, \
         or create it through nwfilterd, which learns it"
    )]
    NeedsIp {
        port: IfName,
        filter: String,
        /// How the address may be learned (`CTRL_IP_LEARNING`).
        mode: nwfilter_compile::LearningMode,
        /// `DHCPSERVER`: the trusted DHCP servers (empty: any).
        dhcp_servers: Vec<std::net::Ipv4Addr>,
    },
    /// The lock that serialises firewall changes could not be taken.
    #[error("cannot take the firewall lock {}", path.display())]
    Lock {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Writing the learned addresses of a port failed.
    #[error("port {port}: cannot record its learned addresses in {}", path.display())]
    Learned {
        port: IfName,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The kernel refused the rules (or reading it failed).
    #[error("applying the {backend} rules of {}: {source}", list(ports))]
    Apply {
        ports: Vec<IfName>,
        backend: crate::Backend,
        #[source]
        source: crate::backend::ApplyError,
    },
    /// A switch of backend put the new rules in place, but removing the
    /// old backend's rules failed. The port is filtered by the new rules;
    /// the record still names the old backend, so the next reload (or
    /// `binding-delete`) removes them.
    #[error(
        "{} now filtered by {now} rules, but removing the old {old} rules failed \
         (they are removed at the next reload): {source}",
        list(ports)
    )]
    RemoveOld {
        ports: Vec<IfName>,
        old: crate::Backend,
        now: crate::Backend,
        #[source]
        source: crate::backend::ApplyError,
    },
    /// A port's backend record could not be written or read.
    #[error("cannot read or write the backend record {}", path.display())]
    Record {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A port's backend record is damaged.
    #[error("{}:{line}: {reason}", path.display())]
    BadRecord {
        path: std::path::PathBuf,
        line: usize,
        reason: String,
    },
    /// A redefinition broke a binding; the definition was rolled back.
    #[error("filter '{filter}' was not changed: rebuilding its bindings failed: {source}")]
    Rebuild {
        filter: String,
        #[source]
        source: Box<EngineError>,
    },
    /// An operation failed and so did putting things back.
    #[error("{source}; putting things back also failed: {undo}")]
    Undo {
        #[source]
        source: Box<EngineError>,
        undo: String,
    },
    #[error("port name '{0}' is not a valid interface name")]
    BadPort(String, #[source] nwfilter_model::NameError),
    /// A binding stored by an older version under a name a firewall tool
    /// reads as an option: its record is removed; its rules could not be
    /// addressed by any tool, so they are not.
    #[error(
        "port '{0}': its binding, stored by an older version, was removed; \
         its firewall rules (chains named after the port, e.g. libvirt-I-{0}, FI-{0}) \
         were not, because no firewall tool reads that name safely: remove them by hand"
    )]
    OptionLikePortForgotten(String, #[source] nwfilter_model::NameError),
}

fn list(ports: &[IfName]) -> String {
    let names: Vec<&str> = ports.iter().map(IfName::as_str).collect();
    match names.len() {
        0 => "no port".to_string(),
        1 => format!("port {}", names[0]),
        _ => format!("ports {}", names.join(", ")),
    }
}
