//! One port's rules, the one way: `nwfilter-compile`'s pipeline
//! ([`compile_dag`]: bind, lower) on a resolved filter tree, then the
//! chosen backend's rendering. The engine applies what this returns and
//! `nwfilter render` prints it, so a preview cannot drift from what a
//! binding gets.

use std::net::Ipv4Addr;

use nwfilter_compile::{compile_dag, CompileError, Compiled, FilterDag, LearningMode};
use nwfilter_model::{IfName, MacAddr6, Params};

use crate::backend::{Backend, RenderError, Rendered};

/// How a port that waits for its address learns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearningNeed {
    /// The binding's `CTRL_IP_LEARNING`.
    pub mode: LearningMode,
    /// The binding's `DHCPSERVER`: the trusted DHCP servers (empty: any).
    pub dhcp_servers: Vec<Ipv4Addr>,
}

/// What a port gets. Awaiting an address is an outcome, not an error: the
/// caller decides whether it can learn one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortRules {
    /// Every variable is bound: the rules, rendered for the backend.
    Rules(Rendered),
    /// Only `$IP` is missing and learning is on.
    AwaitingIp(LearningNeed),
}

/// Why a port's rules could not be built. Transparent: messages are the
/// compiler's and the backend's own.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error(transparent)]
    Compile(#[from] CompileError),
    #[error(transparent)]
    Render(#[from] RenderError),
}

/// Binds `dag` with `params` for a port `port` with `mac`, lowers it and
/// renders it for `backend`.
pub fn port_rules(
    dag: &FilterDag,
    params: &Params,
    mac: MacAddr6,
    port: &IfName,
    backend: Backend,
) -> Result<PortRules, PortError> {
    Ok(match compile_dag(dag, params, mac, port)? {
        Compiled::Program(program) => PortRules::Rules(Rendered::render(backend, &program)?),
        Compiled::AwaitingIp { mode, dhcp_servers } => {
            PortRules::AwaitingIp(LearningNeed { mode, dhcp_servers })
        }
    })
}
