//! nft commands as data, each in both spellings.
//!
//! A [`Batch`] is applied as ONE `nft -f -` run of its [`Batch::text`],
//! which the kernel commits as one transaction: either every command takes
//! effect at the same instant, or none does. Its [`Batch::json`] is the same
//! batch as `nft -j -f` input, command for command (`nwfilter render
//! --format json`). What goes into a batch is decided elsewhere:
//! the fixed layout in [`crate::layout`], a port's change in [`crate::plan`].

use std::borrow::{Borrow, Cow};

use nftables::expr::Expression;
use nftables::schema::{Chain, Element, FlushObject, NfCmd, NfListObject, Rule, Table as NfTable};
use nftables::types::{NfChainPolicy, NfChainType, NfHook};
use serde_json::{json, Value};

use host_io::{ElementChange, ElementStep};

use crate::elements::{port_key, step, SetLayouts};
use crate::names::{Table, TABLE};
use crate::term::{Operand, Term};

/// One command.
#[derive(Debug, Clone, PartialEq)]
pub struct Cmd {
    /// As `nft -f` reads it.
    pub text: String,
    /// As `nft -j -f` reads it (one element of the `nftables` array).
    pub json: Value,
    /// nft's JSON cannot say this ([`Batch::set_typeof`]): `json` only
    /// names the object, for planning.
    pub text_only: bool,
    /// Set or map elements only: the same as netlink steps, when every
    /// key's layout is known ([`crate::elements`]).
    pub netlink: Option<Vec<ElementStep>>,
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

    /// The batch as one netlink transaction of elements, when it is made
    /// of nothing else and every key's layout is known.
    pub fn element_change(&self) -> Option<ElementChange> {
        let mut steps = Vec::new();
        for cmd in &self.cmds {
            steps.extend(cmd.netlink.as_ref()?.iter().cloned());
        }
        ElementChange::new(steps)
    }

    /// The batch as libnftables JSON; `None` when a command has no JSON
    /// spelling (a set declared by `typeof`).
    pub fn json(&self) -> Option<Value> {
        if self.cmds.iter().any(|c| c.text_only) {
            return None;
        }
        Some(json!({ "nftables": self.cmds.iter().map(|c| c.json.clone()).collect::<Vec<_>>() }))
    }

    fn push(&mut self, text: String, json: Value) {
        self.cmds.push(Cmd {
            text,
            json,
            text_only: false,
            netlink: None,
        });
    }

    pub(crate) fn cmd(&mut self, text: String, cmd: NfCmd<'static>) {
        let json = serde_json::to_value(&cmd).expect("nftables types serialize");
        self.push(text, json);
    }

    pub(crate) fn map(&mut self, table: Table, name: &str, key: &str, value: &str) {
        let family = table.family();
        self.push(
            format!("add map {family} {TABLE} {name} {{ type {key} : {value}; }}"),
            json!({"add": {"map": {
                "family": family, "table": TABLE, "name": name, "type": key, "map": value
            }}}),
        );
    }

    pub(crate) fn base_chain(&mut self, table: Table, name: &str, hook: NfHook, prio: i32) {
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

    /// `terms`: owned or shared (`Arc<Term>`, as a [`crate::Rule`] holds them).
    pub fn rule<T: Borrow<Term>>(
        &mut self,
        table: Table,
        chain: &str,
        terms: &[T],
        comment: Option<&str>,
    ) {
        let mut text = format!("add rule {} {TABLE} {chain}", table.family());
        for t in terms.iter().map(Borrow::borrow) {
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
                    .map(|t| t.borrow().json.clone())
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
        self.element(true, table, map, vec![key], Some(value), None);
    }

    pub fn delete_element(&mut self, table: Table, map: &str, key: Operand) {
        self.element(false, table, map, vec![key], None, None);
    }

    /// `create element` of a verdict map: the port key (a port's name or
    /// a mark, as [`mark_key`] spells it) jumps to `chain`.
    pub(crate) fn add_jump(&mut self, table: Table, map: &str, key: &str, chain: &str) {
        let steps = vec![step(true, table, map, vec![port_key(key)], Some(chain))];
        self.element(
            true,
            table,
            map,
            vec![key_operand(key)],
            Some(crate::layout::jump(chain)),
            Some(steps),
        );
    }

    /// `delete element` of the map element with this port key.
    pub(crate) fn delete_keyed(&mut self, table: Table, map: &str, key: &str) {
        let steps = vec![step(false, table, map, vec![port_key(key)], None)];
        self.element(false, table, map, vec![key_operand(key)], None, Some(steps));
    }

    fn element(
        &mut self,
        add: bool,
        table: Table,
        map: &str,
        keys: Vec<Operand>,
        value: Option<Operand>,
        netlink: Option<Vec<ElementStep>>,
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
        if let Some(cmd) = self.cmds.last_mut() {
            cmd.netlink = netlink;
        }
    }

    /// Merges each set's or map's `create element` commands into its last
    /// one: a batch of many ports (a restart, a repair) then asks nft for
    /// one command per set instead of one per port and set, which nft
    /// evaluates in about two thirds of the time (docs/PERFORMANCE.md).
    /// An element is only ever moved later, never past a command about
    /// the same set or map (a deletion, say): nothing in a batch depends
    /// on an element existing, while an element may depend on the chain
    /// it jumps to, which is created before it and stays.
    pub(crate) fn merge_element_creates(&mut self) {
        let mut merged: Vec<Option<Cmd>> = Vec::with_capacity(self.cmds.len());
        // Set or map (family, name) → index in `merged` of the later
        // command its earlier creates go into.
        let mut open: std::collections::HashMap<(String, String), usize> =
            std::collections::HashMap::new();
        for cmd in std::mem::take(&mut self.cmds).into_iter().rev() {
            let target = touched_set(&cmd.json);
            match (target, element_creates(&cmd)) {
                (Some(key), Some(_)) => match open.get(&key) {
                    Some(&at) => {
                        let later = merged[at].as_mut().expect("an open target is kept");
                        prepend_elements(later, &cmd);
                    }
                    None => {
                        open.insert(key, merged.len());
                        merged.push(Some(cmd));
                    }
                },
                (Some(key), None) => {
                    open.remove(&key);
                    merged.push(Some(cmd));
                }
                (None, _) => merged.push(Some(cmd)),
            }
        }
        self.cmds = merged.into_iter().rev().flatten().collect();
    }

    /// `add set` of a template set (a no-op when it exists).
    pub(crate) fn set(&mut self, table: Table, name: &str, types: &[&str]) {
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

    /// A set declared by the expressions it holds (`typeof iifname .
    /// @nh,64,48`): the one way to give a raw header field a set. nft
    /// 1.0.6 reads this only as text; its JSON cannot declare it, nor look
    /// such a concatenation up.
    pub(crate) fn set_typeof(&mut self, table: Table, name: &str, key: &str) {
        let family = table.family();
        self.cmds.push(Cmd {
            text: format!("add set {family} {TABLE} {name} {{ typeof {key}; }}"),
            json: json!({"add": {"set": {"family": family, "table": TABLE, "name": name}}}),
            text_only: true,
            netlink: None,
        });
    }

    pub(crate) fn delete_map(&mut self, table: Table, name: &str) {
        let family = table.family();
        self.push(
            format!("delete map {family} {TABLE} {name}"),
            json!({"delete": {"map": {"family": family, "table": TABLE, "name": name}}}),
        );
    }

    pub(crate) fn delete_set(&mut self, table: Table, name: &str) {
        let family = table.family();
        self.push(
            format!("delete set {family} {TABLE} {name}"),
            json!({"delete": {"set": {"family": family, "table": TABLE, "name": name}}}),
        );
    }

    /// Adds or removes set elements: each tuple's first part is the port
    /// key (a port name, or a mark as [`mark_key`] spells it).
    pub fn set_elements(
        &mut self,
        add: bool,
        table: Table,
        set: &str,
        tuples: &[Vec<String>],
        layouts: &SetLayouts,
    ) {
        if tuples.is_empty() {
            return;
        }
        let steps = layouts.steps(add, table, set, tuples);
        let keys = tuples
            .iter()
            .map(|t| {
                let mut parts = vec![key_operand(&t[0])];
                parts.extend(t[1..].iter().map(|v| Operand::symbol(v.clone())));
                Operand::concat(parts)
            })
            .collect();
        self.element(add, table, set, keys, None, steps);
    }
}

/// The set or map (family, name) a command is about, if it is about
/// one: its elements, or the set or map itself.
fn touched_set(json: &Value) -> Option<(String, String)> {
    let (_, object) = json.as_object()?.iter().next()?;
    let (kind, body) = object.as_object()?.iter().next()?;
    if !matches!(kind.as_str(), "element" | "set" | "map") {
        return None;
    }
    Some((
        body.get("family")?.as_str()?.to_owned(),
        body.get("name")?.as_str()?.to_owned(),
    ))
}

/// The elements of a `create element` command, if it is one.
fn element_creates(cmd: &Cmd) -> Option<&Vec<Value>> {
    cmd.json
        .get("create")?
        .get("element")?
        .get("elem")?
        .as_array()
}

/// Puts `earlier`'s elements before `later`'s, in both spellings (the
/// text between the braces is the elements' text, as `element` wrote it).
fn prepend_elements(later: &mut Cmd, earlier: &Cmd) {
    let inner = |text: &str| -> Option<(usize, usize)> {
        let open = text.find(" { ")? + 3;
        let close = text.rfind(" }")?;
        (open <= close).then_some((open, close))
    };
    if let (Some((a, b)), Some((c, _))) = (inner(&earlier.text), inner(&later.text)) {
        let text = format!(
            "{}{}, {}",
            &later.text[..c],
            &earlier.text[a..b],
            &later.text[c..]
        );
        later.text = text;
    }
    let before = element_creates(earlier).cloned().unwrap_or_default();
    if let Some(elems) = later
        .json
        .get_mut("create")
        .and_then(|c| c.get_mut("element"))
        .and_then(|e| e.get_mut("elem"))
        .and_then(Value::as_array_mut)
    {
        elems.splice(0..0, before);
    }
    // A merged batch is a restart's or a repair's, with chains and rules
    // besides: `nft`'s. Carrying the steps along would copy them once
    // per port and set.
    later.netlink = None;
}

/// The text a mark port key has in element tuples: `:` and the decimal
/// mark (an interface name cannot contain `:`).
pub fn mark_key(mark: u32) -> String {
    format!(":{mark}")
}

/// The mark a port key spelled by [`mark_key`] stands for; `None` for a
/// port's name.
pub(crate) fn mark_of_key(key: &str) -> Option<u32> {
    key.strip_prefix(':')?.parse().ok()
}

/// The operand of a tuple's port key.
pub(crate) fn key_operand(key: &str) -> Operand {
    match mark_of_key(key) {
        Some(mark) => Operand::hex(mark, 8),
        None => Operand::quoted(key),
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
