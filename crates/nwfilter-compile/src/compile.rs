//! The whole compiler in one call: resolve and bind, then lower.

use std::net::Ipv4Addr;

use nwfilter_model::{FilterRef, IfName, MacAddr6};
use serde::Serialize;

use crate::bind::{bind, BindOutcome, LearningMode};
use crate::dag::FilterDag;
use crate::error::BindError;
use crate::ir::{Program, TracedProgram};
use crate::lower::{lower, lower_traced, LowerError};
use crate::source::FilterSource;

/// What a port gets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Compiled {
    /// Every variable was bound: the port's chains.
    Program(Program),
    /// Only `$IP` is missing and learning is on: the port waits for an
    /// address (see [`BindOutcome::AwaitingIp`]).
    AwaitingIp {
        mode: LearningMode,
        dhcp_servers: Vec<Ipv4Addr>,
    },
}

/// Binding or lowering failed.
#[derive(Debug, thiserror::Error)]
pub enum CompileError {
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error(transparent)]
    Lower(#[from] LowerError),
}

/// As [`compile_dag`], with each rule's origin ([`lower_traced`]): the
/// same program, for tools that explain it.
pub fn compile_dag_traced(
    dag: &FilterDag,
    params: &nwfilter_model::Params,
    mac: MacAddr6,
    port: &IfName,
) -> Result<CompiledTraced, CompileError> {
    Ok(match dag.bind(params, mac)? {
        BindOutcome::Bound(rules) => CompiledTraced::Program(lower_traced(&rules, port)?),
        BindOutcome::AwaitingIp { mode, dhcp_servers } => {
            CompiledTraced::AwaitingIp { mode, dhcp_servers }
        }
    })
}

/// What [`compile_dag_traced`] gives a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CompiledTraced {
    Program(TracedProgram),
    AwaitingIp {
        mode: LearningMode,
        dhcp_servers: Vec<Ipv4Addr>,
    },
}

/// Resolves `top` through `source`, binds it for a port with `mac` and
/// lowers it for `port`. `top.params` are the binding's parameters.
pub fn compile(
    source: &dyn FilterSource,
    top: &FilterRef,
    mac: MacAddr6,
    port: &IfName,
) -> Result<Compiled, CompileError> {
    finish(bind(source, top, mac)?, port)
}

/// As [`compile`], for a DAG already resolved (many ports, one filter).
pub fn compile_dag(
    dag: &FilterDag,
    params: &nwfilter_model::Params,
    mac: MacAddr6,
    port: &IfName,
) -> Result<Compiled, CompileError> {
    finish(dag.bind(params, mac)?, port)
}

fn finish(outcome: BindOutcome, port: &IfName) -> Result<Compiled, CompileError> {
    Ok(match outcome {
        BindOutcome::Bound(rules) => Compiled::Program(lower(&rules, port)?),
        BindOutcome::AwaitingIp { mode, dhcp_servers } => {
            Compiled::AwaitingIp { mode, dhcp_servers }
        }
    })
}
