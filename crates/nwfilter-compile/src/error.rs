//! Errors of the front half: resolving the DAG and binding variables.
//!
//! Rule indices count a filter's `<rule>` elements from 0, in document
//! order (`<filterref>`s are not counted), as in [`crate::BoundRule`];
//! messages count from 1, as a person does (and as every other error of
//! the workspace that names a rule).

use std::fmt;

use nwfilter_model::{format_var, Attr, FilterName, ValueError, VarRef};

use crate::dag::ResolveError;

/// A rule of a filter: where a variable problem was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleAt {
    pub filter: FilterName,
    /// 0-based among the filter's rules.
    pub rule_index: usize,
}

impl fmt::Display for RuleAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // 1-based, as a person counts the filter's <rule> elements.
        write!(f, "filter '{}', rule {}", self.filter, self.rule_index + 1)
    }
}

/// A borrowed [`RuleAt`], passed around on the hot path and only turned
/// into an owned one when an error is built.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Site<'a> {
    pub(crate) filter: &'a FilterName,
    pub(crate) rule_index: usize,
}

impl Site<'_> {
    pub(crate) fn owned(self) -> RuleAt {
        RuleAt {
            filter: self.filter.clone(),
            rule_index: self.rule_index,
        }
    }
}

/// A variable reference no environment satisfies, at its first use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    pub var: VarRef,
    pub at: RuleAt,
}

impl Unresolved {
    /// The reference as libvirt lists it: `IP`, `A[@1]`, `B[3]`.
    pub fn name(&self) -> String {
        format_var(&self.var).trim_start_matches('$').to_owned()
    }
}

impl fmt::Display for Unresolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.at)
    }
}

/// Why a binding's filters could not be bound to concrete rules.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error(transparent)]
    Resolve(#[from] ResolveError),

    /// Variables undefined, or list elements beyond the end of their list.
    /// Unlike libvirt's message, `IP` and `MAC` are listed too.
    #[error(
        "cannot instantiate filter '{top}': unresolvable variables or unavailable list elements: {}",
        list(missing)
    )]
    Unresolved {
        top: FilterName,
        missing: Vec<Unresolved>,
    },

    /// References sharing an iterator whose lists differ in length.
    #[error(
        "{at}: variables on iterator @{iterator} are walked in parallel and need the same number of values, but {}",
        lengths(vars)
    )]
    Cardinality {
        at: RuleAt,
        iterator: u32,
        /// Each variable with its number of values.
        vars: Vec<(String, usize)>,
    },

    /// A variable's value is not valid for the attribute it is used in.
    #[error(transparent)]
    BadValue(Box<BadValue>),

    /// A rule's value combinations would take the binding past
    /// [`crate::MAX_BOUND_RULES`].
    #[error(
        "{at}: the binding would get more than {limit} rules (list values multiply the rules that use them)"
    )]
    TooManyRules { at: RuleAt, limit: usize },

    /// The `<filterref>` tree, with every repeated reference instantiated
    /// again, has more than [`crate::MAX_BOUND_RULES`] rules and references.
    #[error(
        "filter '{top}': its <filterref> tree instantiates more than {limit} rules and references"
    )]
    TreeTooLarge { top: FilterName, limit: usize },

    /// `CTRL_IP_LEARNING` is not `any`, `dhcp` or `none`.
    #[error(
        "filter '{top}': CTRL_IP_LEARNING value '{value}' is invalid (expected any, dhcp or none)"
    )]
    LearningMode { top: FilterName, value: String },

    /// A `DHCPSERVER` value (trusted DHCP server) is not an IPv4 address.
    #[error("filter '{top}': DHCPSERVER value '{value}' is not an IPv4 address")]
    DhcpServer { top: FilterName, value: String },

    /// A reserved IPv6 parameter (`IPV6`, `DHCPSERVERV6`) with a value that
    /// is not an address, or a variable derived from them given.
    #[error("filter '{top}': parameter {name} has value '{value}', expected {expected}")]
    Reserved {
        top: FilterName,
        name: &'static str,
        value: String,
        expected: &'static str,
    },
}

/// A variable's value that does not parse as the attribute it lands in.
#[derive(Debug, thiserror::Error)]
#[error(
    "{at}: variable {} has value '{value}', which is not valid for attribute '{}'",
    format_var(var), attr.name()
)]
pub struct BadValue {
    pub at: RuleAt,
    pub var: VarRef,
    pub value: String,
    pub attr: Attr,
    #[source]
    pub source: ValueError,
}

fn list(missing: &[Unresolved]) -> String {
    let parts: Vec<String> = missing.iter().map(Unresolved::to_string).collect();
    parts.join(", ")
}

fn lengths(vars: &[(String, usize)]) -> String {
    let parts: Vec<String> = vars
        .iter()
        .map(|(name, n)| format!("{name} has {n}"))
        .collect();
    parts.join(", ")
}
