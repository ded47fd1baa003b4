//! The fixed part of our tables, the same for every port: two tables,
//! their dispatch maps and base chains with their rules.
//!
//! Layout (see the crate's README for why the IP layer uses a mark):
//! `bridge nwfilter` hooks prerouting (-300: tag the in-port, then `iifname
//! vmap @from-vm`), forward (-200, before br_netfilter's -1: tag the
//! out-port) and postrouting (300: `oifname vmap @to-vm`); `inet nwfilter`
//! hooks forward and input (0) and dispatches on the tags.

use std::collections::BTreeSet;

use nftables::expr::{Expression, MetaKey, NamedExpression, Verdict};
use nftables::schema::{NfCmd, NfListObject, Table as NfTable};
use nftables::stmt::{JumpTarget, Mangle, Statement, VerdictMap};
use nftables::types::NfHook;

use crate::batch::Batch;
use crate::names::{Table, TABLE};
use crate::term::{compare, statement, Operand, Term};

/// Mark bits carrying the in-port tag (set in bridge prerouting).
pub const IN_TAG_MASK: u32 = 0x0000_ffff;
/// Mark bits carrying the out-port tag (set in bridge forward).
pub const OUT_TAG_MASK: u32 = 0xffff_0000;

/// Our tables' fixed part: base chains (with their number of rules) and
/// dispatch maps, as [`Batch::skeleton`] makes them or a listing shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skeleton {
    pub chains: std::collections::BTreeMap<(Table, String), usize>,
    pub maps: BTreeSet<(Table, String)>,
}

impl Skeleton {
    /// What [`Batch::skeleton`] makes.
    pub fn expected() -> Skeleton {
        let mut want = Skeleton::default();
        for table in [Table::Bridge, Table::Inet] {
            for (name, _, _) in maps(table) {
                want.maps.insert((table, (*name).to_owned()));
            }
            for (name, _, _, rules) in base_chains(table) {
                want.chains.insert((table, name.to_owned()), rules.len());
            }
        }
        want
    }
}

impl Batch {
    /// Our two tables, their maps and base chains, the base chains' rules
    /// rewritten (`add` of what exists is a no-op; the flush makes the
    /// dispatch rules exactly ours even if someone changed them).
    pub fn skeleton(&mut self) {
        for table in [Table::Bridge, Table::Inet] {
            self.cmd(
                format!("add table {} {TABLE}", table.family()),
                NfCmd::Add(NfListObject::Table(NfTable {
                    family: table.nf_family(),
                    name: TABLE.into(),
                    handle: None,
                })),
            );
            for (name, key, value) in maps(table) {
                self.map(table, name, key, value);
            }
            for (name, hook, prio, _) in base_chains(table) {
                self.base_chain(table, name, hook, prio);
            }
            for (name, _, _, rules) in base_chains(table) {
                self.flush_chain(table, name);
                for rule in rules {
                    self.rule(table, name, &rule, None);
                }
            }
        }
    }
}

/// The maps of a table: name, key type, value type.
fn maps(table: Table) -> &'static [(&'static str, &'static str, &'static str)] {
    match table {
        Table::Bridge => &[
            ("from-vm", "ifname", "verdict"),
            ("to-vm", "ifname", "verdict"),
            ("in-tag", "ifname", "mark"),
            ("out-tag", "ifname", "verdict"),
        ],
        Table::Inet => &[
            ("from-vm", "mark", "verdict"),
            ("to-vm", "mark", "verdict"),
            ("host-from-vm", "mark", "verdict"),
        ],
    }
}

type BaseChain = (&'static str, NfHook, i32, Vec<Vec<Term>>);

/// The base chains of a table with their dispatch rules.
fn base_chains(table: Table) -> Vec<BaseChain> {
    match table {
        Table::Bridge => vec![
            // Before br_netfilter (0), like ebtables' nat PREROUTING.
            (
                "prerouting",
                NfHook::Prerouting,
                -300,
                vec![
                    vec![set_in_tag()],
                    vec![vmap(iface(MetaKey::Iifname, "iifname"), "from-vm")],
                ],
            ),
            // Before br_netfilter hands the packet to the IP hooks (-1).
            (
                "forward",
                NfHook::Forward,
                -200,
                vec![vec![vmap(iface(MetaKey::Oifname, "oifname"), "out-tag")]],
            ),
            (
                "postrouting",
                NfHook::Postrouting,
                300,
                vec![vec![vmap(iface(MetaKey::Oifname, "oifname"), "to-vm")]],
            ),
        ],
        Table::Inet => vec![
            (
                "forward",
                NfHook::Forward,
                0,
                vec![
                    tagged(MetaKey::Iifkind, "iifkind", IN_TAG_MASK, "from-vm"),
                    tagged(MetaKey::Oifkind, "oifkind", OUT_TAG_MASK, "to-vm"),
                ],
            ),
            (
                "input",
                NfHook::Input,
                0,
                vec![tagged(
                    MetaKey::Iifkind,
                    "iifkind",
                    IN_TAG_MASK,
                    "host-from-vm",
                )],
            ),
        ],
    }
}

pub(crate) fn iface(key: MetaKey, name: &'static str) -> Operand {
    // `iifname`, not `meta iifname`: the short form nft prints.
    let mut op = Operand::meta(key, name);
    op.text = name.to_owned();
    op
}

pub(crate) fn vmap(key: Operand, map: &str) -> Term {
    statement(
        format!("{} vmap @{map}", key.text),
        Statement::VerdictMap(VerdictMap {
            key: key.json,
            data: Expression::String(format!("@{map}").into()),
        }),
    )
}

/// `meta iifkind "bridge" meta mark & MASK vmap @map`: only packets that
/// came through a bridge carry our tags.
fn tagged(kind: MetaKey, kind_name: &'static str, mask: u32, map: &str) -> Vec<Term> {
    vec![
        compare(
            Operand::meta(kind, kind_name),
            false,
            Operand::quoted("bridge"),
        ),
        vmap(
            Operand::meta(MetaKey::Mark, "mark").and(Operand::hex(mask, 8)),
            map,
        ),
    ]
}

/// `meta mark set iifname map @in-tag` (no element: no change).
fn set_in_tag() -> Term {
    let key = iface(MetaKey::Iifname, "iifname");
    statement(
        format!("meta mark set {} map @in-tag", key.text),
        Statement::Mangle(Mangle {
            key: Operand::meta(MetaKey::Mark, "mark").json,
            value: Expression::Named(NamedExpression::Map(Box::new(nftables::expr::Map {
                key: key.json,
                data: Expression::String("@in-tag".into()),
            }))),
        }),
    )
}

/// Keeps the in-port tag, writes the out-port tag.
pub(crate) fn set_out_tag(tag: u16) -> Term {
    let value = Operand::meta(MetaKey::Mark, "mark")
        .and(Operand::hex(IN_TAG_MASK, 8))
        .or(Operand::hex(u32::from(tag) << 16, 8));
    statement(
        format!("meta mark set {}", value.text),
        Statement::Mangle(Mangle {
            key: Operand::meta(MetaKey::Mark, "mark").json,
            value: value.json,
        }),
    )
}

pub(crate) fn in_tag(tag: u16) -> Operand {
    Operand::hex(u32::from(tag), 8)
}

pub(crate) fn jump(chain: &str) -> Operand {
    Operand::new(
        format!("jump {chain}"),
        Expression::Verdict(Verdict::Jump(JumpTarget {
            target: chain.to_owned().into(),
        })),
    )
}
