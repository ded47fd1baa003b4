//! Compiles a binding's filter DAG into an abstract chain IR.
//!
//! Data flow: top `FilterRef` + MAC → resolve the DAG through a filter
//! source → bind variables (iterating lists) → [`BoundRules`] → order and
//! lower into chains of typed matches. Pure functions; no I/O.

pub mod bound;

pub use bound::{BoundRule, BoundRules};
pub mod ir;
pub mod lower;

pub use lower::{lower, LowerError};
