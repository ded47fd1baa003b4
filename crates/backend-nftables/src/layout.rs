//! The fixed part of our tables, the same for every port: tables, their
//! dispatch maps and base chains with their rules, in two [`Part`]s.
//!
//! Layout (see the crate's README for why the IP layer uses a mark):
//! - [`Part::Dispatch`], while any port is filtered: `bridge nwfilter`
//!   hooks prerouting (-300, `iifname vmap @from-vm`) and postrouting
//!   (300, `oifname vmap @to-vm`). Prerouting first accepts, with one
//!   lookup in the set [`FAST_FROM`], an IPv4 frame from a port's own MAC
//!   and address that the port's chains are proven to accept whatever
//!   else it holds (`crate::fast_path`): the common frame skips the jumps
//!   and lookups of its template (issue 20).
//! - [`Part::IpPath`], only while some port has IPv4/IPv6 rules (the
//!   `inet` table): the bridge table tags the in-port in prerouting (-301)
//!   and the out-port in forward (-200, before br_netfilter's -1), and
//!   `inet nwfilter` hooks forward and input (0) and dispatches on the
//!   tags. Without such a port no packet pays for any of it.

use std::collections::{BTreeMap, BTreeSet};

use nftables::expr::{Expression, MetaKey, NamedExpression, Verdict};
use nftables::schema::{NfCmd, NfListObject, Table as NfTable};
use nftables::stmt::{Accept, JumpTarget, Mangle, Statement, VerdictMap};
use nftables::types::NfHook;

use crate::batch::Batch;
use crate::names::{Table, TABLE};
use crate::render::{set_lookup, PortKey};
use crate::term::{compare, statement, Operand, Term};

/// The set of (port, source MAC, source IPv4) whose IPv4 frames bridge
/// prerouting accepts at once: only what `crate::fast_path` proved the
/// port's own chains accept.
pub const FAST_FROM: &str = "fast-from";

/// Mark bits carrying the in-port tag (set in bridge prerouting).
pub const IN_TAG_MASK: u32 = 0x0000_ffff;
/// Mark bits carrying the out-port tag (set in bridge forward).
pub const OUT_TAG_MASK: u32 = 0xffff_0000;

/// A part of the fixed layout, present or absent as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    /// The bridge table with the port dispatch every filtered port needs.
    Dispatch,
    /// The port tags and the inet table: only for ports with IPv4/IPv6
    /// rules.
    IpPath,
}

impl Part {
    /// The parts a kernel needs: `ip_path` when some port has IPv4/IPv6
    /// rules.
    pub fn wanted(ip_path: bool) -> &'static [Part] {
        if ip_path {
            &[Part::Dispatch, Part::IpPath]
        } else {
            &[Part::Dispatch]
        }
    }

    /// The table this part creates (the inet table is all IpPath's).
    fn table(self) -> Table {
        match self {
            Part::Dispatch => Table::Bridge,
            Part::IpPath => Table::Inet,
        }
    }

    /// The part's maps: table, name, key type, value type.
    fn maps(self) -> &'static [(Table, &'static str, &'static str, &'static str)] {
        match self {
            Part::Dispatch => &[
                (Table::Bridge, "from-vm", "ifname", "verdict"),
                (Table::Bridge, "to-vm", "ifname", "verdict"),
            ],
            Part::IpPath => &[
                (Table::Bridge, "in-tag", "ifname", "mark"),
                (Table::Bridge, "out-tag", "ifname", "verdict"),
                (Table::Inet, "from-vm", "mark", "verdict"),
                (Table::Inet, "to-vm", "mark", "verdict"),
                (Table::Inet, "host-from-vm", "mark", "verdict"),
            ],
        }
    }

    /// The part's sets: table, name, key types.
    fn sets(self) -> &'static [(Table, &'static str, &'static [&'static str])] {
        match self {
            Part::Dispatch => &[(
                Table::Bridge,
                FAST_FROM,
                &["ifname", "ether_addr", "ipv4_addr"],
            )],
            Part::IpPath => &[],
        }
    }

    /// The key types of the layout's set `name` in `table` (the port's
    /// name first), if it is one.
    pub(crate) fn set_types(table: Table, name: &str) -> Option<&'static [&'static str]> {
        [Part::Dispatch, Part::IpPath]
            .iter()
            .flat_map(|part| part.sets())
            .find(|(t, n, _)| *t == table && *n == name)
            .map(|(_, _, types)| *types)
    }

    /// The part's base chains with their rules.
    fn base_chains(self) -> Vec<BaseChain> {
        match self {
            Part::Dispatch => vec![
                // Before br_netfilter (0), like ebtables' nat PREROUTING.
                BaseChain {
                    table: Table::Bridge,
                    name: "prerouting",
                    hook: NfHook::Prerouting,
                    prio: -300,
                    rules: vec![
                        fast_from(),
                        vec![vmap(iface(MetaKey::Iifname, "iifname"), "from-vm")],
                    ],
                },
                BaseChain {
                    table: Table::Bridge,
                    name: "postrouting",
                    hook: NfHook::Postrouting,
                    prio: 300,
                    rules: vec![vec![vmap(iface(MetaKey::Oifname, "oifname"), "to-vm")]],
                },
            ],
            Part::IpPath => vec![
                // A chain of its own, not a rule in `prerouting`: adding
                // or removing it leaves the dispatch rule alone (rewriting
                // that makes the kernel re-validate every port's jump).
                BaseChain {
                    table: Table::Bridge,
                    name: "prerouting-tag",
                    hook: NfHook::Prerouting,
                    prio: -301,
                    rules: vec![vec![set_in_tag()]],
                },
                // Before br_netfilter hands the packet to the IP hooks (-1).
                BaseChain {
                    table: Table::Bridge,
                    name: "forward",
                    hook: NfHook::Forward,
                    prio: -200,
                    rules: vec![vec![vmap(iface(MetaKey::Oifname, "oifname"), "out-tag")]],
                },
                BaseChain {
                    table: Table::Inet,
                    name: "forward",
                    hook: NfHook::Forward,
                    prio: 0,
                    rules: vec![
                        tagged(MetaKey::Iifkind, "iifkind", IN_TAG_MASK, "from-vm"),
                        tagged(MetaKey::Oifkind, "oifkind", OUT_TAG_MASK, "to-vm"),
                    ],
                },
                BaseChain {
                    table: Table::Inet,
                    name: "input",
                    hook: NfHook::Input,
                    prio: 0,
                    rules: vec![tagged(
                        MetaKey::Iifkind,
                        "iifkind",
                        IN_TAG_MASK,
                        "host-from-vm",
                    )],
                },
            ],
        }
    }

    /// Whether the kernel (`tables`, `have`) holds this part exactly.
    pub fn intact(self, tables: &BTreeSet<Table>, have: &Skeleton) -> bool {
        let want = Skeleton::of(&[self]);
        tables.contains(&self.table())
            && want.maps.is_subset(&have.maps)
            && want.sets.is_subset(&have.sets)
            && want
                .chains
                .iter()
                .all(|(key, rules)| have.chains.get(key) == Some(rules))
    }
}

/// A base chain: where it hooks and its dispatch rules.
struct BaseChain {
    table: Table,
    name: &'static str,
    hook: NfHook,
    prio: i32,
    rules: Vec<Vec<Term>>,
}

/// Our tables' fixed part: base chains (with their number of rules),
/// dispatch maps and sets, as [`Batch::skeleton`] makes them or a listing
/// shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Skeleton {
    pub chains: BTreeMap<(Table, String), usize>,
    pub maps: BTreeSet<(Table, String)>,
    pub sets: BTreeSet<(Table, String)>,
}

impl Skeleton {
    /// What [`Batch::skeleton`] makes for `ip_path`.
    pub fn expected(ip_path: bool) -> Skeleton {
        Skeleton::of(Part::wanted(ip_path))
    }

    fn of(parts: &[Part]) -> Skeleton {
        let mut want = Skeleton::default();
        for part in parts {
            for (table, name, _, _) in part.maps() {
                want.maps.insert((*table, (*name).to_owned()));
            }
            for (table, name, _) in part.sets() {
                want.sets.insert((*table, (*name).to_owned()));
            }
            for chain in part.base_chains() {
                let key = (chain.table, chain.name.to_owned());
                want.chains.insert(key, chain.rules.len());
            }
        }
        want
    }

    /// The tables the parts for `ip_path` live in.
    pub fn tables(ip_path: bool) -> BTreeSet<Table> {
        Part::wanted(ip_path).iter().map(|p| p.table()).collect()
    }
}

impl Batch {
    /// The layout's parts for `ip_path` (see [`Part::wanted`]).
    pub fn skeleton(&mut self, ip_path: bool) {
        for part in Part::wanted(ip_path) {
            self.part(*part);
        }
    }

    /// A part's table, maps and base chains, the base chains' rules
    /// rewritten (`add` of what exists is a no-op; the flush makes the
    /// dispatch rules exactly ours even if someone changed them).
    pub fn part(&mut self, part: Part) {
        let table = part.table();
        self.cmd(
            format!("add table {} {TABLE}", table.family()),
            NfCmd::Add(NfListObject::Table(NfTable {
                family: table.nf_family(),
                name: TABLE.into(),
                handle: None,
            })),
        );
        for (table, name, key, value) in part.maps() {
            self.map(*table, name, key, value);
        }
        for (table, name, types) in part.sets() {
            self.set(*table, name, types);
        }
        let chains = part.base_chains();
        for c in &chains {
            self.base_chain(c.table, c.name, c.hook, c.prio);
        }
        for c in chains {
            self.flush_chain(c.table, c.name);
            for rule in c.rules {
                self.rule(c.table, c.name, &rule, None);
            }
        }
    }

    /// Deletes what of the layout the kernel has (`tables`, `have`) and
    /// `want` lacks: a table as a whole, else its base chains (flushed
    /// first: their rules refer to maps and sets), then its maps and sets.
    pub fn remove_unwanted(
        &mut self,
        tables: &BTreeSet<Table>,
        have: &Skeleton,
        want_tables: &BTreeSet<Table>,
        want: &Skeleton,
    ) {
        for table in tables.difference(want_tables) {
            self.delete_table(*table);
        }
        let kept = |t: &Table| want_tables.contains(t);
        let chains: Vec<&(Table, String)> = have
            .chains
            .keys()
            .filter(|k| kept(&k.0) && !want.chains.contains_key(*k))
            .collect();
        for (table, name) in &chains {
            self.flush_chain(*table, name);
        }
        for (table, name) in &chains {
            self.delete_chain(*table, name);
        }
        for (table, name) in have.maps.difference(&want.maps) {
            if kept(table) {
                self.delete_map(*table, name);
            }
        }
        for (table, name) in have.sets.difference(&want.sets) {
            if kept(table) {
                self.delete_set(*table, name);
            }
        }
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

/// `ether type ip iifname . ether saddr . ip saddr @fast-from accept`:
/// the EtherType is tested first, as every IPv4 rule of ours does, so the
/// rule reads an IPv4 header only in an untagged IPv4 frame.
fn fast_from() -> Vec<Term> {
    vec![
        compare(
            Operand::field("ether", "type"),
            false,
            Operand::symbol("ip"),
        ),
        set_lookup(
            PortKey::InPort,
            vec![
                Operand::field("ether", "saddr"),
                Operand::field("ip", "saddr"),
            ],
            false,
            FAST_FROM,
        ),
        statement("accept", Statement::Accept(Some(Accept {}))),
    ]
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
