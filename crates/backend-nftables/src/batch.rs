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
use std::collections::BTreeSet;

use nftables::expr::{Expression, MetaKey, NamedExpression, Verdict};
use nftables::schema::{Chain, Element, FlushObject, NfCmd, NfListObject, Rule, Table as NfTable};
use nftables::stmt::JumpTarget;
use nftables::stmt::{Mangle, Statement, VerdictMap};
use nftables::types::{NfChainPolicy, NfChainType, NfHook};
use serde_json::{json, Value};

use crate::kernel::{PortObjects, TemplateObjects};
use crate::names::{self, Role, Table, TABLE};
use crate::render::{self, Chain as PortChain, PortKey, PortRuleset};
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

    /// `create element` (`value` present: a map element).
    pub fn add_element(&mut self, table: Table, map: &str, key: Operand, value: Operand) {
        self.element(true, table, map, vec![key], Some(value));
    }

    pub fn delete_element(&mut self, table: Table, map: &str, key: Operand) {
        self.element(false, table, map, vec![key], None);
    }

    fn element(
        &mut self,
        add: bool,
        table: Table,
        map: &str,
        keys: Vec<Operand>,
        value: Option<Operand>,
    ) {
        // `create`, not `add`: an element already there (a stale state
        // planned this) makes the kernel refuse the transaction instead of
        // silently keeping what it had; the applier then reads and replans.
        let verb = if add { "create" } else { "delete" };
        let (texts, elems): (Vec<String>, Vec<Expression<'static>>) = match value {
            Some(v) => keys
                .into_iter()
                .map(|k| {
                    (
                        format!("{} : {}", k.text, v.text),
                        Expression::List(vec![k.json, v.json.clone()]),
                    )
                })
                .unzip(),
            None => keys.into_iter().map(|k| (k.text, k.json)).unzip(),
        };
        let object = NfListObject::Element(Element {
            family: table.nf_family(),
            table: TABLE.into(),
            name: map.to_owned().into(),
            elem: elems.into(),
        });
        self.cmd(
            format!(
                "{verb} element {} {TABLE} {map} {{ {} }}",
                table.family(),
                texts.join(", ")
            ),
            if add {
                NfCmd::Create(object)
            } else {
                NfCmd::Delete(object)
            },
        );
    }

    /// `add set` of a template set (a no-op when it exists).
    fn set(&mut self, table: Table, name: &str, types: &[&str]) {
        let family = table.family();
        self.push(
            format!(
                "add set {family} {TABLE} {name} {{ type {}; }}",
                types.join(" . ")
            ),
            json!({"add": {"set": {
                "family": family, "table": TABLE, "name": name, "type": types
            }}}),
        );
    }

    fn delete_map(&mut self, table: Table, name: &str) {
        let family = table.family();
        self.push(
            format!("delete map {family} {TABLE} {name}"),
            json!({"delete": {"map": {"family": family, "table": TABLE, "name": name}}}),
        );
    }

    fn delete_set(&mut self, table: Table, name: &str) {
        let family = table.family();
        self.push(
            format!("delete set {family} {TABLE} {name}"),
            json!({"delete": {"set": {"family": family, "table": TABLE, "name": name}}}),
        );
    }

    /// Adds or removes set elements: each tuple's first part is the port
    /// key (a port name, or a mark as [`mark_key`] spells it).
    pub fn set_elements(&mut self, add: bool, table: Table, set: &str, tuples: &[Vec<String>]) {
        if tuples.is_empty() {
            return;
        }
        let keys = tuples
            .iter()
            .map(|t| {
                let mut parts = vec![key_operand(&t[0])];
                parts.extend(t[1..].iter().map(|v| Operand::symbol(v.clone())));
                Operand::concat(parts)
            })
            .collect();
        self.element(add, table, set, keys, None);
    }

    /// A template's sets and chains with their rules (exact even over
    /// leftovers: chains are flushed before their rules are added; sets
    /// keep their elements, which belong to the ports).
    pub fn add_template(&mut self, rules: &PortRuleset) {
        for set in &rules.sets {
            let mut types = vec![set.key.type_name()];
            types.extend(set.types.iter().copied());
            self.set(set.table, &set.name, &types);
        }
        for map in &rules.maps {
            self.map(map.table, &map.name, map.key.type_name(), "verdict");
        }
        for chain in rules.chains.iter() {
            self.write_chain(chain);
        }
    }

    /// A chain with exactly `chain`'s rules: created if missing, flushed
    /// (a leftover of that name loses its rules), then filled.
    fn write_chain(&mut self, chain: &PortChain) {
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

    /// Deletes a template no port uses any more: all chains flushed first
    /// (a chain cannot go while a rule jumps to it), then the chains, then
    /// the sets (rules referred to them).
    pub fn delete_template(&mut self, objects: &TemplateObjects) {
        for (table, name) in objects.chains.keys() {
            self.flush_chain(*table, name);
        }
        for (table, name) in objects.chains.keys() {
            self.delete_chain(*table, name);
        }
        for (table, name) in &objects.sets {
            self.delete_set(*table, name);
        }
        for (table, name) in &objects.maps {
            self.delete_map(*table, name);
        }
    }

    /// Brings a port from `old` to `want` (see [`desired`]): tag chain and
    /// tag elements, own chains (`own`: their content), dispatch and
    /// verdict-map elements, set elements.
    pub fn change_port(
        &mut self,
        port: &str,
        old: &PortObjects,
        want: &PortObjects,
        own: &[PortChain],
    ) {
        let quoted = || Operand::quoted(port);
        let retag = old.tag != want.tag;
        for (key, entry) in &old.dispatch {
            if want.dispatch.get(key) != Some(entry) {
                self.delete_element(key.0, &key.1, key_operand(&entry.0));
            }
        }
        for ((table, set), tuples) in &old.elements {
            let gone = not_in(tuples, want.elements.get(&(*table, set.clone())));
            self.set_elements(false, *table, set, &gone);
        }
        if old.tag.is_some() && retag {
            self.delete_element(Table::Bridge, "in-tag", quoted());
        }
        if old.out_tag && (retag || !want.out_tag) {
            self.delete_element(Table::Bridge, "out-tag", quoted());
        }
        let name = names::tag_chain(port);
        if old.tag_chain && (retag || !want.tag_chain) {
            self.flush_chain(Table::Bridge, &name);
            self.delete_chain(Table::Bridge, &name);
        }
        let gone: Vec<&(Table, String)> = old.own_chains.difference(&want.own_chains).collect();
        for (table, chain) in &gone {
            self.flush_chain(*table, chain);
        }
        for (table, chain) in &gone {
            self.delete_chain(*table, chain);
        }
        for chain in own {
            if !old.own_chains.contains(&(chain.table, chain.name.clone())) {
                self.write_chain(chain);
            }
        }
        if let Some(tag) = want.tag {
            if !old.tag_chain || retag {
                self.chain(Table::Bridge, &name);
                self.flush_chain(Table::Bridge, &name);
                self.rule(Table::Bridge, &name, &[set_out_tag(tag)], None);
            }
            if retag {
                self.add_element(Table::Bridge, "in-tag", quoted(), in_tag(tag));
            }
            if !old.out_tag || retag {
                self.add_element(Table::Bridge, "out-tag", quoted(), jump(&name));
            }
        }
        for ((table, set), tuples) in &want.elements {
            let new = not_in(tuples, old.elements.get(&(*table, set.clone())));
            self.set_elements(true, *table, set, &new);
        }
        // Dispatch last: a port is led into its template once its values
        // are there (in one transaction that order is for the reader).
        for (key, entry) in &want.dispatch {
            if old.dispatch.get(key) != Some(entry) {
                self.add_element(key.0, &key.1, key_operand(&entry.0), jump(&entry.1));
            }
        }
    }
}

/// The tuples of `tuples` that `other` lacks.
fn not_in(
    tuples: &BTreeSet<Vec<String>>,
    other: Option<&BTreeSet<Vec<String>>>,
) -> Vec<Vec<String>> {
    tuples
        .iter()
        .filter(|t| !other.is_some_and(|o| o.contains(*t)))
        .cloned()
        .collect()
}

/// What a port with `rules` and `tag` has in the kernel once applied.
pub fn desired(rules: &PortRuleset, tag: Option<u16>) -> PortObjects {
    let tag = tag.filter(|_| rules.needs_tag());
    let mut want = PortObjects {
        tag,
        tag_chain: tag.is_some(),
        out_tag: tag.is_some(),
        own_chains: rules
            .own
            .iter()
            .map(|c| (c.table, c.name.clone()))
            .collect(),
        ..PortObjects::default()
    };
    let port = rules.port.as_str();
    for chain in rules.chains.iter() {
        if let Some((map, key)) = dispatch_map(&chain.role) {
            if let Some(key) = port_key(key, port, tag) {
                want.dispatch
                    .insert((chain.table, map.to_owned()), (key, chain.name.clone()));
            }
        }
    }
    for map in &rules.maps {
        if let Some(key) = port_key(map.key, port, tag) {
            want.dispatch
                .insert((map.table, map.name.clone()), (key, map.chain.clone()));
        }
    }
    for set in &rules.sets {
        // No tag: no inet chain either, so no inet set.
        let Some(key) = port_key(set.key, port, tag) else {
            continue;
        };
        let tuples = want
            .elements
            .entry((set.table, set.name.clone()))
            .or_default();
        for values in &set.elements {
            let mut tuple = vec![key.clone()];
            tuple.extend(values.iter().cloned());
            tuples.insert(tuple);
        }
    }
    want
}

/// The key text of `port` in a set or map keyed by `key`.
fn port_key(key: PortKey, port: &str, tag: Option<u16>) -> Option<String> {
    Some(match key {
        PortKey::InPort | PortKey::OutPort => port.to_owned(),
        PortKey::InTag => mark_key(u32::from(tag?)),
        PortKey::OutTag => mark_key(u32::from(tag?) << 16),
    })
}

/// The text a mark port key has in element tuples: `:` and the decimal
/// mark (an interface name cannot contain `:`).
pub fn mark_key(mark: u32) -> String {
    format!(":{mark}")
}

/// The operand of a tuple's port key.
fn key_operand(key: &str) -> Operand {
    match key.strip_prefix(':').and_then(|m| m.parse::<u32>().ok()) {
        Some(mark) => Operand::hex(mark, 8),
        None => Operand::quoted(key),
    }
}

/// The dispatch map that leads to a root chain of this role, and how it
/// is keyed.
fn dispatch_map(role: &Role) -> Option<(&'static str, PortKey)> {
    match role {
        Role::FromVmL2 => Some(("from-vm", PortKey::InPort)),
        Role::ToVmL2 => Some(("to-vm", PortKey::OutPort)),
        Role::FromVm => Some(("from-vm", PortKey::InTag)),
        Role::ToVm => Some(("to-vm", PortKey::OutTag)),
        Role::HostFromVm => Some(("host-from-vm", PortKey::InTag)),
        Role::Sub => None,
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

/// The script `render` prints for one port: the skeleton and the port, as
/// if it were the only one (tag 1).
pub fn instantiate(rules: &PortRuleset) -> Batch {
    let mut batch = Batch::default();
    batch.skeleton();
    batch.add_template(rules);
    let port = rules.port.as_str();
    batch.change_port(
        port,
        &PortObjects::default(),
        &desired(rules, Some(1)),
        &rules.own,
    );
    batch
}

/// Checks that the text form can name every chain (`nft -f` cannot quote
/// chain names); the JSON form has no such limit.
pub fn text_checked(rules: &PortRuleset) -> Result<(), render::Unsupported> {
    match rules
        .chains
        .iter()
        .chain(&rules.own)
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
