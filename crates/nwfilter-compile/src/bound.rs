//! Rules after resolution and variable binding: the hand-over between the
//! front half of the compiler (DAG, variables) and lowering (ordering,
//! chains, matches).

use nwfilter_model::{Attr, ChainName, FilterName, Rule};
use serde::Serialize;

/// One concrete rule of a binding's flattened filter tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BoundRule {
    /// The filter the rule was written in (for error messages).
    pub filter: FilterName,
    /// The rule's 0-based position among its filter's rules.
    pub rule_index: usize,
    /// The `chain` of the filter the rule came from.
    pub chain: ChainName,
    /// That filter's stored chain priority.
    pub chain_priority: i32,
    /// The rule with every variable replaced by a concrete, type-checked
    /// value: no `Value::Var` remains.
    pub rule: Rule,
    /// The attributes whose value came from a variable (as written in the
    /// filter): the values that differ from port to port.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub vars: Vec<Attr>,
}

/// A binding's rules in flattening order (depth-first, each `<filterref>`
/// replaced in place by its filter's entries; a rule with list variables
/// appears once per value combination, in libvirt's iteration order).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BoundRules {
    pub rules: Vec<BoundRule>,
}
