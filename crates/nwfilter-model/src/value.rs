//! Typed attribute values.
//!
//! A value is either a variable reference (resolved at instantiation) or a
//! concrete value already checked against its attribute's [`ValueKind`].
//! Where libvirt prints a value back in the form it was written (decimal or
//! hex integers), the form is kept alongside the number.
//!
//! [`ValueKind`]: crate::ValueKind

use std::net::{Ipv4Addr, Ipv6Addr};

use macaddr::MacAddr6;
use serde::{Deserialize, Serialize};

use crate::var::VarRef;

/// An attribute value as written in a filter.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "value")]
pub enum Value {
    /// `$NAME`, `$NAME[@N]` or `$NAME[N]`: bound when a filter is instantiated.
    Var(VarRef),
    /// Any integer-valued attribute (ports, types, EtherTypes, opcodes,
    /// IP protocol numbers, DSCP, ...). Range checks depend on the kind.
    Number(Number),
    Mac(MacAddr6),
    Ipv4(Ipv4Addr),
    Ipv6(Ipv6Addr),
    /// A netmask, always held as a prefix length.
    Prefix(u8),
    Bool(bool),
    /// A comment, at most 256 bytes.
    Text(String),
    States(StateSet),
    TcpFlags(TcpFlags),
    /// An ipset name (validated: 1..=31 of `[A-Za-z0-9_.:+ -]`).
    IpsetName(String),
    /// ipset selectors, in the order written (1..=6 entries).
    IpsetFlags(Vec<IpsetDir>),
}

/// An integer and the base it was written in, so it prints back the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Number {
    pub value: u32,
    /// Written in hexadecimal (printed back as `0x…`).
    pub hex: bool,
}

impl Number {
    pub fn dec(value: u32) -> Number {
        Number { value, hex: false }
    }
}

/// A set of conntrack states (`state='NEW,ESTABLISHED'`), or `NONE`.
///
/// Invariant: when [`StateSet::NONE`] is set, no other bit is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct StateSet(pub u8);

impl StateSet {
    pub const NEW: u8 = 1;
    pub const ESTABLISHED: u8 = 2;
    pub const RELATED: u8 = 4;
    pub const INVALID: u8 = 8;
    pub const NONE: u8 = 16;

    /// The names in libvirt's output order.
    pub const NAMES: [(u8, &'static str); 5] = [
        (StateSet::NEW, "NEW"),
        (StateSet::ESTABLISHED, "ESTABLISHED"),
        (StateSet::RELATED, "RELATED"),
        (StateSet::INVALID, "INVALID"),
        (StateSet::NONE, "NONE"),
    ];

    pub fn contains(self, bit: u8) -> bool {
        self.0 & bit != 0
    }

    /// `NONE`: the rule asks for no state matching at all.
    pub fn is_none(self) -> bool {
        self.contains(StateSet::NONE)
    }
}

/// TCP flags test: of the flags in `mask`, exactly those in `set` are set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TcpFlags {
    pub mask: u8,
    pub set: u8,
}

impl TcpFlags {
    pub const FIN: u8 = 0x01;
    pub const SYN: u8 = 0x02;
    pub const RST: u8 = 0x04;
    pub const PSH: u8 = 0x08;
    pub const ACK: u8 = 0x10;
    pub const URG: u8 = 0x20;
    pub const ALL: u8 = 0x3f;

    /// The flag names in bit order (libvirt's and iptables' output order).
    pub const NAMES: [(u8, &'static str); 6] = [
        (TcpFlags::FIN, "FIN"),
        (TcpFlags::SYN, "SYN"),
        (TcpFlags::RST, "RST"),
        (TcpFlags::PSH, "PSH"),
        (TcpFlags::ACK, "ACK"),
        (TcpFlags::URG, "URG"),
    ];
}

/// One ipset selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpsetDir {
    Src,
    Dst,
}

impl IpsetDir {
    pub fn name(self) -> &'static str {
        match self {
            IpsetDir::Src => "src",
            IpsetDir::Dst => "dst",
        }
    }
}
