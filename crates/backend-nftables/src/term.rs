//! One rule statement in both spellings: `nft -f` text and libnftables
//! JSON (the `nftables` crate's types).
//!
//! Every statement is built once, here, with its two forms side by side, so
//! the printed script and the applied JSON cannot drift apart.

use std::borrow::Cow;

use nftables::expr::{
    BinaryOperation, Expression, Meta, MetaKey, NamedExpression, Payload, PayloadBase,
    PayloadField, PayloadRaw, Prefix, Range, SetItem, CT,
};
use nftables::stmt::{Match, Operator, Statement};
use serde::Serialize;

/// A statement with its text form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Term {
    /// As `nft -f` reads it (one rule is its terms joined by spaces).
    pub text: String,
    /// The same statement in libnftables JSON.
    pub json: Statement<'static>,
}

/// An expression with its text form (a match's left or right side).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operand {
    pub text: String,
    pub json: Expression<'static>,
}

impl Operand {
    pub fn new(text: impl Into<String>, json: Expression<'static>) -> Operand {
        Operand {
            text: text.into(),
            json,
        }
    }

    /// A named header field, e.g. `ether saddr`.
    pub fn field(protocol: &'static str, field: &'static str) -> Operand {
        Operand::new(
            format!("{protocol} {field}"),
            Expression::Named(NamedExpression::Payload(Payload::PayloadField(
                PayloadField {
                    protocol: Cow::Borrowed(protocol),
                    field: Cow::Borrowed(field),
                },
            ))),
        )
    }

    /// `len` raw bits at bit `offset` from a header's start (`@nh,48,16`).
    pub fn raw(base: PayloadBase, offset: u32, len: u32) -> Operand {
        let name = match base {
            PayloadBase::LL => "ll",
            PayloadBase::NH => "nh",
            PayloadBase::TH => "th",
            PayloadBase::IH => "ih",
        };
        Operand::new(
            format!("@{name},{offset},{len}"),
            Expression::Named(NamedExpression::Payload(Payload::PayloadRaw(PayloadRaw {
                base,
                offset,
                len,
            }))),
        )
    }

    pub fn meta(key: MetaKey, text: &'static str) -> Operand {
        Operand::new(
            format!("meta {text}"),
            Expression::Named(NamedExpression::Meta(Meta { key })),
        )
    }

    /// A conntrack key without direction (`ct state`, `ct direction`).
    pub fn ct(key: &'static str) -> Operand {
        Operand::new(
            format!("ct {key}"),
            Expression::Named(NamedExpression::CT(CT {
                key: Cow::Borrowed(key),
                family: None,
                dir: None,
            })),
        )
    }

    /// A number, printed in decimal.
    pub fn number(value: u32) -> Operand {
        Operand::new(value.to_string(), Expression::Number(value))
    }

    /// A number, printed in hex (types, masks, marks).
    pub fn hex(value: u32, digits: usize) -> Operand {
        Operand::new(format!("0x{value:0digits$x}"), Expression::Number(value))
    }

    /// A symbol nft parses in the left side's type (a MAC, an address).
    pub fn symbol(text: impl Into<String>) -> Operand {
        let text = text.into();
        Operand::new(text.clone(), Expression::String(Cow::Owned(text)))
    }

    /// A quoted string (interface names).
    pub fn quoted(text: &str) -> Operand {
        Operand::new(
            format!("\"{text}\""),
            Expression::String(Cow::Owned(text.to_owned())),
        )
    }

    /// `addr/len`.
    pub fn prefix(addr: String, len: u8) -> Operand {
        Operand::new(
            format!("{addr}/{len}"),
            Expression::Named(NamedExpression::Prefix(Prefix {
                addr: Box::new(Expression::String(Cow::Owned(addr))),
                len: u32::from(len),
            })),
        )
    }

    /// `low-high`.
    pub fn range(low: Operand, high: Operand) -> Operand {
        Operand::new(
            format!("{}-{}", low.text, high.text),
            Expression::Range(Box::new(Range {
                range: [low.json, high.json],
            })),
        )
    }

    /// `self & mask`.
    pub fn and(self, mask: Operand) -> Operand {
        Operand::new(
            format!("{} & {}", self.text, mask.text),
            Expression::BinaryOperation(Box::new(BinaryOperation::AND(self.json, mask.json))),
        )
    }

    /// `self | bits`.
    pub fn or(self, bits: Operand) -> Operand {
        Operand::new(
            format!("{} | {}", self.text, bits.text),
            Expression::BinaryOperation(Box::new(BinaryOperation::OR(vec![self.json, bits.json]))),
        )
    }

    /// `a . b` (a concatenation).
    pub fn concat(parts: Vec<Operand>) -> Operand {
        let text = parts
            .iter()
            .map(|p| p.text.as_str())
            .collect::<Vec<_>>()
            .join(" . ");
        Operand::new(
            text,
            Expression::Named(NamedExpression::Concat(
                parts.into_iter().map(|p| p.json).collect(),
            )),
        )
    }

    /// An anonymous set `{ a, b }`.
    pub fn set(items: Vec<Operand>) -> Operand {
        let text = items
            .iter()
            .map(|p| p.text.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        Operand::new(
            format!("{{ {text} }}"),
            Expression::Named(NamedExpression::Set(
                items
                    .into_iter()
                    .map(|i| SetItem::Element(i.json))
                    .collect(),
            )),
        )
    }

    /// A list of flag names (`new,established` for `ct state`).
    pub fn flags(names: &[&'static str]) -> Operand {
        Operand::new(
            names.join(","),
            Expression::List(
                names
                    .iter()
                    .map(|n| Expression::String(Cow::Borrowed(*n)))
                    .collect(),
            ),
        )
    }
}

/// `left right` or `left != right`.
pub fn compare(left: Operand, negated: bool, right: Operand) -> Term {
    let (op, word) = if negated {
        (Operator::NEQ, "!= ")
    } else {
        (Operator::EQ, "")
    };
    // A masked left side needs the explicit `==` to parse.
    let word = if !negated && left.text.contains(" & ") {
        "== "
    } else {
        word
    };
    Term {
        text: format!("{} {word}{}", left.text, right.text),
        json: Statement::Match(Match {
            left: left.json,
            right: right.json,
            op,
        }),
    }
}

/// `left flags` for flag sets (`ct state new,established`).
pub fn in_flags(left: Operand, flags: Operand) -> Term {
    Term {
        text: format!("{} {}", left.text, flags.text),
        json: Statement::Match(Match {
            left: left.json,
            right: flags.json,
            op: Operator::IN,
        }),
    }
}

/// A statement that is not a match (verdicts, reject, mangle).
pub fn statement(text: impl Into<String>, json: Statement<'static>) -> Term {
    Term {
        text: text.into(),
        json,
    }
}
