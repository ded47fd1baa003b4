//! `<filter>`, its `<rule>`s and `<filterref>`s.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::attr::Attr;
use crate::names::{ChainName, FilterName};
use crate::protocol::Protocol;
use crate::value::Value;

/// The default rule priority.
pub const DEFAULT_RULE_PRIORITY: i32 = 500;
/// Rule and chain priorities live in this range; smaller runs earlier.
pub const PRIORITY_RANGE: std::ops::RangeInclusive<i32> = -1000..=1000;

/// A `<filter>` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    pub name: FilterName,
    pub uuid: Uuid,
    pub chain: ChainName,
    /// The stored chain priority: the explicit `priority`, or the chain
    /// kind's default when absent. Printed only when non-zero.
    pub priority: i32,
    /// Rules and references in document order (the order matters for
    /// output and for tie-breaking equal priorities).
    pub entries: Vec<Entry>,
}

/// One child of a `<filter>` that takes part in filtering.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entry {
    Rule(Rule),
    Ref(FilterRef),
}

/// What a rule does with a matching packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Drop,
    Accept,
    Reject,
    Return,
    Continue,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Drop => "drop",
            Action::Accept => "accept",
            Action::Reject => "reject",
            Action::Return => "return",
            Action::Continue => "continue",
        }
    }

    pub fn from_name(s: &str) -> Option<Action> {
        [
            Action::Drop,
            Action::Accept,
            Action::Reject,
            Action::Return,
            Action::Continue,
        ]
        .into_iter()
        .find(|a| a.name() == s)
    }
}

/// Traffic direction, seen from the VM: `out` is what it sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    In,
    Out,
    #[serde(rename = "inout")]
    InOut,
}

impl Direction {
    pub fn name(self) -> &'static str {
        match self {
            Direction::In => "in",
            Direction::Out => "out",
            Direction::InOut => "inout",
        }
    }

    pub fn from_name(s: &str) -> Option<Direction> {
        [Direction::In, Direction::Out, Direction::InOut]
            .into_iter()
            .find(|d| d.name() == s)
    }

    /// Does this rule see traffic sent by the VM?
    pub fn covers_out(self) -> bool {
        matches!(self, Direction::Out | Direction::InOut)
    }

    /// Does this rule see traffic delivered to the VM?
    pub fn covers_in(self) -> bool {
        matches!(self, Direction::In | Direction::InOut)
    }
}

/// A `<rule>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    pub action: Action,
    pub direction: Direction,
    /// In [`PRIORITY_RANGE`]; 500 by default.
    pub priority: i32,
    /// `false` only for `statematch='false'`/`'0'`.
    pub statematch: bool,
    /// The protocol element; `None` matches every frame at the Ethernet layer.
    pub protocol: Option<ProtocolMatch>,
}

/// A rule's protocol element(s): all same-named elements of a rule, merged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProtocolMatch {
    pub protocol: Protocol,
    /// Invariant: each attribute at most once, all accepted by `protocol`,
    /// sorted in the protocol's canonical order.
    pub attrs: Vec<AttrValue>,
}

impl ProtocolMatch {
    /// The attribute's value and negation, if present.
    pub fn get(&self, attr: Attr) -> Option<&AttrValue> {
        self.attrs.iter().find(|a| a.attr == attr)
    }
}

/// One attribute of a protocol element.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttrValue {
    pub attr: Attr,
    pub value: Value,
    /// Set by `match='no'` on the element that carried the attribute.
    pub negated: bool,
}

/// `<filterref filter='NAME'>` with its `<parameter>`s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FilterRef {
    pub filter: FilterName,
    pub params: Params,
}

/// Named parameters; a name given several times is a list (document order,
/// duplicates kept). Names iterate in byte order, as libvirt prints them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Params(pub BTreeMap<String, Vec<String>>);

impl Params {
    /// Appends one value to `name` (creating the list).
    pub fn push(&mut self, name: impl Into<String>, value: impl Into<String>) {
        self.0.entry(name.into()).or_default().push(value.into());
    }

    pub fn get(&self, name: &str) -> Option<&[String]> {
        self.0.get(name).map(Vec::as_slice)
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }
}
