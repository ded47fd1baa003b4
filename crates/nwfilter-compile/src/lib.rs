//! Compiles a binding's filter DAG into an abstract chain IR.
//!
//! Data flow: top `FilterRef` + MAC → resolve the DAG through a filter
//! source → bind variables (iterating lists) → [`BoundRules`] → order and
//! lower into chains of typed matches. Pure functions; no I/O.

pub mod bind;
pub mod bound;
pub mod dag;
mod env;
pub mod error;
mod iterate;
pub mod reserved;
pub mod source;

pub use bind::{bind, BindOutcome, Ipv6Learning, LearningMode, MAX_BOUND_RULES};
pub use bound::{BoundRule, BoundRules};
pub use dag::{check_cycle, resolve, FilterDag, RefPath, ResolveError};
pub use error::{BadValue, BindError, RuleAt, Unresolved};
pub use source::{DirSource, FilterSource, LayeredSource, MemorySource, SourceError};
pub mod compile;
pub mod ir;
pub mod lower;

pub use compile::{
    compile, compile_dag, compile_dag_traced, CompileError, Compiled, CompiledTraced,
};
pub use lower::{lower, lower_traced, LowerError};
