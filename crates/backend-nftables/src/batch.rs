//! nft commands as data, each in both spellings, and the batches a change
//! is made of.
//!
//! A [`Batch`] is applied as ONE `nft -j -f -` run, which the kernel
//! commits as one transaction: either every command takes effect at the same
//! instant, or none does. Its [`Batch::text`] is the same batch as `nft -f`
//! input, command for command.
//!
//! Layout (see the crate's README for why the IP layer uses a mark):
//! `bridge nwfilter` hooks prerouting (-300: tag the in-port, then `iifname
//! vmap @from-vm`), forward (-200, before br_netfilter's -1: tag the
//! out-port) and postrouting (300: `oifname vmap @to-vm`); `inet nwfilter`
//! hooks forward and input (0) and dispatches on the tags.

use std::borrow::Cow;

use nftables::expr::{Expression, MetaKey, NamedExpression, Verdict};
use nftables::schema::{Chain, Element, FlushObject, NfCmd, NfListObject, Rule, Table as NfTable};
use nftables::stmt::JumpTarget;
use nftables::stmt::{Mangle, Statement, VerdictMap};
use nftables::types::{NfChainPolicy, NfChainType, NfHook};
use serde_json::{json, Value};

use crate::names::{self, Role, Table, TABLE};
use crate::render::{self, PortRuleset};
use crate::term::{compare, statement, Operand, Term};

/// Mark bits carrying the in-port tag (set in bridge prerouting).
pub const IN_TAG_MASK: u32 = 0x0000_ffff;
/// Mark bits carrying the out-port tag (set in bridge forward).
pub const OUT_TAG_MASK: u32 = 0xffff_0000;

/// One command.
#[derive(Debug, Clone, PartialEq)]
pub struct Cmd {
    /// As `nft -f` reads it.
    pub text: String,
    /// As `nft -j -f` reads it (one element of the `nftables` array).
    pub json: Value,
}

/// Commands applied together.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    pub cmds: Vec<Cmd>,
}

impl Batch {
    pub fn is_empty(&self) -> bool {
        self.cmds.is_empty()
    }

    /// The batch as an `nft -f` script.
    pub fn text(&self) -> String {
        self.cmds.iter().map(|c| format!("{}\n", c.text)).collect()
    }

    /// The batch as libnftables JSON.
    pub fn json(&self) -> Value {
        json!({ "nftables": self.cmds.iter().map(|c| c.json.clone()).collect::<Vec<_>>() })
    }

    fn push(&mut self, text: String, json: Value) {
        self.cmds.push(Cmd { text, json });
    }

    fn cmd(&mut self, text: String, cmd: NfCmd<'static>) {
        let json = serde_json::to_value(&cmd).expect("nftables types serialize");
        self.push(text, json);
    }

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

    fn map(&mut self, table: Table, name: &str, key: &str, value: &str) {
        let family = table.family();
        self.push(
            format!("add map {family} {TABLE} {name} {{ type {key} : {value}; }}"),
            json!({"add": {"map": {
                "family": family, "table": TABLE, "name": name, "type": key, "map": value
            }}}),
        );
    }

    fn base_chain(&mut self, table: Table, name: &str, hook: NfHook, prio: i32) {
        let hook_name = match hook {
            NfHook::Prerouting => "prerouting",
            NfHook::Forward => "forward",
            NfHook::Postrouting => "postrouting",
            NfHook::Input => "input",
            _ => unreachable!("we hook only these"),
        };
        self.cmd(
            format!(
                "add chain {} {TABLE} {name} {{ type filter hook {hook_name} priority {prio}; policy accept; }}",
                table.family()
            ),
            NfCmd::Add(NfListObject::Chain(Chain {
                family: table.nf_family(),
                table: TABLE.into(),
                name: name.to_owned().into(),
                _type: Some(NfChainType::Filter),
                hook: Some(hook),
                prio: Some(prio),
                policy: Some(NfChainPolicy::Accept),
                ..chain_defaults()
            })),
        );
    }

    /// `add chain` for a regular chain.
    pub fn chain(&mut self, table: Table, name: &str) {
        self.cmd(
            format!("add chain {} {TABLE} {name}", table.family()),
            NfCmd::Add(NfListObject::Chain(Chain {
                family: table.nf_family(),
                table: TABLE.into(),
                name: name.to_owned().into(),
                ..chain_defaults()
            })),
        );
    }

    pub fn flush_chain(&mut self, table: Table, name: &str) {
        self.cmd(
            format!("flush chain {} {TABLE} {name}", table.family()),
            NfCmd::Flush(FlushObject::Chain(Chain {
                family: table.nf_family(),
                table: TABLE.into(),
                name: name.to_owned().into(),
                ..chain_defaults()
            })),
        );
    }

    pub fn delete_chain(&mut self, table: Table, name: &str) {
        self.cmd(
            format!("delete chain {} {TABLE} {name}", table.family()),
            NfCmd::Delete(NfListObject::Chain(Chain {
                family: table.nf_family(),
                table: TABLE.into(),
                name: name.to_owned().into(),
                ..chain_defaults()
            })),
        );
    }

    pub fn delete_table(&mut self, table: Table) {
        self.cmd(
            format!("delete table {} {TABLE}", table.family()),
            NfCmd::Delete(NfListObject::Table(NfTable {
                family: table.nf_family(),
                name: TABLE.into(),
                handle: None,
            })),
        );
    }

    pub fn rule(&mut self, table: Table, chain: &str, terms: &[Term], comment: Option<&str>) {
        let mut text = format!("add rule {} {TABLE} {chain}", table.family());
        for t in terms {
            text.push(' ');
            text.push_str(&t.text);
        }
        if let Some(c) = comment {
            text.push_str(&format!(" comment \"{c}\""));
        }
        self.cmd(
            text,
            NfCmd::Add(NfListObject::Rule(Rule {
                family: table.nf_family(),
                table: TABLE.into(),
                chain: chain.to_owned().into(),
                expr: terms
                    .iter()
                    .map(|t| t.json.clone())
                    .collect::<Vec<_>>()
                    .into(),
                handle: None,
                index: None,
                comment: comment.map(|c| Cow::Owned(c.to_owned())),
            })),
        );
    }

    /// `add element` (`value` present: a map element).
    pub fn add_element(&mut self, table: Table, map: &str, key: Operand, value: Operand) {
        self.element(true, table, map, key, Some(value));
    }

    pub fn delete_element(&mut self, table: Table, map: &str, key: Operand) {
        self.element(false, table, map, key, None);
    }

    fn element(
        &mut self,
        add: bool,
        table: Table,
        map: &str,
        key: Operand,
        value: Option<Operand>,
    ) {
        let verb = if add { "add" } else { "delete" };
        let (text, elem) = match value {
            Some(v) => (
                format!("{} : {}", key.text, v.text),
                Expression::List(vec![key.json, v.json]),
            ),
            None => (key.text, key.json),
        };
        let object = NfListObject::Element(Element {
            family: table.nf_family(),
            table: TABLE.into(),
            name: map.to_owned().into(),
            elem: vec![elem].into(),
        });
        self.cmd(
            format!(
                "{verb} element {} {TABLE} {map} {{ {text} }}",
                table.family()
            ),
            if add {
                NfCmd::Add(object)
            } else {
                NfCmd::Delete(object)
            },
        );
    }

    /// Everything of `rules`' port: chains, their rules, the tag chain and
    /// the map elements that lead to them (those last: nothing reaches a
    /// chain before it is complete, though in one transaction that order is
    /// only for the reader).
    pub fn add_port(&mut self, rules: &PortRuleset, tag: Option<u16>) {
        for chain in &rules.chains {
            // The flush makes this exact even over a leftover of that name.
            self.chain(chain.table, &chain.name);
            self.flush_chain(chain.table, &chain.name);
            for rule in &chain.rules {
                self.rule(
                    chain.table,
                    &chain.name,
                    &rule.terms,
                    rule.comment.as_deref(),
                );
            }
        }
        let port = &rules.port;
        if let Some(tag) = tag.filter(|_| rules.needs_tag()) {
            let name = names::tag_chain(port);
            self.chain(Table::Bridge, &name);
            self.flush_chain(Table::Bridge, &name);
            self.rule(Table::Bridge, &name, &[set_out_tag(tag)], None);
            self.add_element(
                Table::Bridge,
                "in-tag",
                Operand::quoted(port.as_str()),
                in_tag(tag),
            );
            self.add_element(
                Table::Bridge,
                "out-tag",
                Operand::quoted(port.as_str()),
                jump(&name),
            );
        }
        for chain in &rules.chains {
            if let Some((map, key)) = dispatch(&chain.role, port.as_str(), tag) {
                self.add_element(chain.table, map, key, jump(&chain.name));
            }
        }
    }

    /// Removes a port's chains (as the kernel has them) and the elements
    /// leading to them. `tag` is the port's current tag, if it has one.
    pub fn remove_port(&mut self, port: &str, chains: &[(Table, String)], tag: Option<u16>) {
        for (table, name) in chains {
            if let Some((map, key)) = role_of(name).and_then(|r| dispatch(&r, port, tag)) {
                self.delete_element(*table, map, key);
            }
            if name.starts_with("tag/") {
                self.delete_element(Table::Bridge, "in-tag", Operand::quoted(port));
                self.delete_element(Table::Bridge, "out-tag", Operand::quoted(port));
            }
        }
        // Flush all first: a sub-chain cannot be deleted while a rule of
        // its root still jumps to it.
        for (table, name) in chains {
            self.flush_chain(*table, name);
        }
        for (table, name) in chains {
            self.delete_chain(*table, name);
        }
    }
}

fn chain_defaults() -> Chain<'static> {
    Chain {
        family: nftables::types::NfFamily::Bridge,
        table: TABLE.into(),
        name: Cow::Borrowed(""),
        newname: None,
        handle: None,
        _type: None,
        hook: None,
        prio: None,
        dev: None,
        policy: None,
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

fn iface(key: MetaKey, name: &'static str) -> Operand {
    // `iifname`, not `meta iifname`: the short form nft prints.
    let mut op = Operand::meta(key, name);
    op.text = name.to_owned();
    op
}

fn vmap(key: Operand, map: &str) -> Term {
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
fn set_out_tag(tag: u16) -> Term {
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

fn in_tag(tag: u16) -> Operand {
    Operand::hex(u32::from(tag), 8)
}

fn jump(chain: &str) -> Operand {
    Operand::new(
        format!("jump {chain}"),
        Expression::Verdict(Verdict::Jump(JumpTarget {
            target: chain.to_owned().into(),
        })),
    )
}

/// The map and key that lead to a chain of this role.
fn dispatch(role: &Role, port: &str, tag: Option<u16>) -> Option<(&'static str, Operand)> {
    let tag = tag.map(u32::from);
    match role {
        Role::FromVmL2 => Some(("from-vm", Operand::quoted(port))),
        Role::ToVmL2 => Some(("to-vm", Operand::quoted(port))),
        Role::Sub => None,
        Role::FromVm => Some(("from-vm", Operand::hex(tag?, 8))),
        Role::ToVm => Some(("to-vm", Operand::hex(tag? << 16, 8))),
        Role::HostFromVm => Some(("host-from-vm", Operand::hex(tag?, 8))),
    }
}

/// The role of a per-port chain, from its name.
fn role_of(name: &str) -> Option<Role> {
    Some(match name.split_once('/')?.0 {
        "I" => Role::FromVmL2,
        "O" => Role::ToVmL2,
        "FI" => Role::FromVm,
        "FO" => Role::ToVm,
        "HI" => Role::HostFromVm,
        "tag" => return None,
        _ => Role::Sub,
    })
}

/// The script `render` prints for one port: the skeleton and the port, as
/// if it were the only one (tag 1).
pub fn instantiate(rules: &PortRuleset) -> Batch {
    let mut batch = Batch::default();
    batch.skeleton();
    batch.add_port(rules, Some(1));
    batch
}

/// Checks that the text form can name every chain (`nft -f` cannot quote
/// chain names); the JSON form has no such limit.
pub fn text_checked(rules: &PortRuleset) -> Result<(), render::Unsupported> {
    match rules
        .chains
        .iter()
        .find(|c| !names::is_nft_identifier(&c.name))
    {
        Some(c) => Err(render::Unsupported::Feature(if c.name.is_empty() {
            "an empty chain name"
        } else {
            "a chain name with characters nft -f cannot read (use --format json)"
        })),
        None => Ok(()),
    }
}
