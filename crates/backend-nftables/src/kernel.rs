//! What of ours the kernel holds, read from `nft -j list ruleset` (JSON,
//! never the text listing), or kept up to date by the applier as it
//! commits (see [`crate::apply::Applier::apply_tracked`]).
//!
//! Objects are told apart by name: template chains and sets end in
//! `/t` + 16 hex digits; a port's tag chain is `tag/PORT`; a port's map
//! and set elements are keyed by its name (bridge) or its tag (inet).

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::Value;

use crate::batch::mark_key;
use crate::elements::SetLayouts;
use crate::layout::{Part, Skeleton};
use crate::names::{is_nft_identifier, own_chain_port, tag_chain_port, template_of, Table, TABLE};
use crate::small::{VecMap, VecSet};

/// Our objects as the kernel has them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelState {
    /// Our tables that exist.
    pub tables: BTreeSet<Table>,
    /// Template id → its chains (with their number of rules) and sets.
    pub templates: BTreeMap<String, TemplateObjects>,
    /// Port name → what of it exists.
    pub ports: BTreeMap<String, PortObjects>,
    /// Tags found on inet map or set elements: never handed out again,
    /// even when no port claims them.
    pub seen_tags: BTreeSet<u16>,
    /// The skeleton as it is: base chains with their number of rules, and
    /// the dispatch maps (see [`crate::layout::Skeleton`]).
    pub skeleton: Skeleton,
    /// How the template sets' keys are laid out, as far as our plans
    /// told (not in the listing; never compared).
    pub layouts: SetLayouts,
}

/// A template's chains and sets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateObjects {
    /// (table, chain) → number of rules.
    pub chains: BTreeMap<(Table, String), usize>,
    pub sets: BTreeSet<(Table, String)>,
    /// Verdict maps leading ports into chains of their own.
    pub maps: BTreeSet<(Table, String)>,
}

/// One port's map elements, tag and set elements.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PortObjects {
    pub tag: Option<u16>,
    /// Its `tag/PORT` chain exists.
    pub tag_chain: bool,
    /// Its element in the bridge `out-tag` map exists.
    pub out_tag: bool,
    /// (table, map) → its element's key (the port's name, or a mark
    /// as [`crate::batch::mark_key`] spells it) and the chain it jumps
    /// to: the dispatch maps and the template's verdict maps. A map's
    /// name is an `Arc`, the one its template's ruleset holds (see
    /// [`crate::plan::desired`]): every port has the same few names, and
    /// a `String` each was a fifth of the daemon's memory per binding
    /// (issue 22 item 5).
    pub dispatch: VecMap<(Table, Arc<str>), (String, String)>,
    /// Its own chains (`rN-HASH/PORT`).
    pub own_chains: VecSet<(Table, String)>,
    /// (table, set) → its elements (the port key, then the values); the
    /// set's name shared as the maps' are.
    pub elements: VecMap<(Table, Arc<str>), VecSet<Vec<String>>>,
}

impl PortObjects {
    /// The templates this port's dispatch elements lead to.
    pub fn templates(&self) -> BTreeSet<&str> {
        self.dispatch
            .values()
            .filter_map(|(_, c)| template_of(c))
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        *self == PortObjects::default()
    }

    /// Frees the room its vectors keep for growth: the kernel state is
    /// kept for every port between operations, and a vector grown one
    /// entry at a time holds room for four.
    pub fn shrink_to_fit(&mut self) {
        self.dispatch.shrink_to_fit();
        self.own_chains.shrink_to_fit();
        self.elements.shrink_to_fit();
        for tuples in self.elements.values_mut() {
            tuples.shrink_to_fit();
        }
    }
}

/// A listing we could not understand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read `nft -j {what}` output: {reason}")]
pub struct ReadError {
    pub what: &'static str,
    pub reason: String,
}

const WHAT: &str = "list ruleset";

impl KernelState {
    /// Reads `nft -j list ruleset` output (other tables are skipped).
    pub fn parse(json: &str) -> Result<KernelState, ReadError> {
        let listing = listing(json)?;
        let objects = ours(&listing);
        let mut state = KernelState::default();
        // Tags first: inet elements name their port by tag.
        let mut port_of_tag: BTreeMap<u16, String> = BTreeMap::new();
        for object in &objects {
            let Ours::Object(table, kind, object) = object else {
                continue;
            };
            state.tables.insert(*table);
            if *kind == "map" && text(object, "name")? == "in-tag" {
                for (key, value) in pairs(object)? {
                    let (Some(port), Some(tag)) = (key.as_str(), value.as_u64()) else {
                        return Err(bad(format!("in-tag element {key}: {value}")));
                    };
                    let tag = u16::try_from(tag).map_err(|_| bad(format!("tag {tag}")))?;
                    state.port(port).tag = Some(tag);
                    state.seen_tags.insert(tag);
                    port_of_tag.insert(tag, port.to_owned());
                }
            }
        }
        for object in objects {
            match object {
                Ours::Object(table, "map", object) => {
                    state.read_map(table, object, &port_of_tag)?
                }
                Ours::Object(table, "set", object) => {
                    state.read_set(table, object, &port_of_tag)?
                }
                Ours::Object(table, "chain", object) => state.read_chain(table, object)?,
                Ours::Object(..) => {}
                Ours::Rule(table, chain) => {
                    let key = (table, chain.to_owned());
                    if let Some(t) = template_of(chain) {
                        *state.template(t).chains.entry(key).or_default() += 1;
                    } else if let Some(n) = state.skeleton.chains.get_mut(&key) {
                        *n += 1;
                    }
                }
            }
        }
        for port in state.ports.values_mut() {
            port.shrink_to_fit();
        }
        Ok(state)
    }

    fn port(&mut self, port: &str) -> &mut PortObjects {
        self.ports.entry(port.to_owned()).or_default()
    }

    fn template(&mut self, id: &str) -> &mut TemplateObjects {
        self.templates.entry(id.to_owned()).or_default()
    }

    fn read_chain(&mut self, table: Table, chain: &Value) -> Result<(), ReadError> {
        let name = text(chain, "name")?;
        if !is_nft_identifier(name) {
            // A port's chain named by a version before `names::port_part`
            // (`tag/vnet@0`): `nft -f` cannot name it, so it is left
            // alone. Whatever jumped there is replaced by key; once nothing
            // does, it is an empty detour no packet takes, gone with the
            // table.
            return Ok(());
        }
        if let Some(t) = template_of(name) {
            let key = (table, name.to_owned());
            self.template(t).chains.entry(key).or_default();
        } else if let Some(port) = tag_chain_port(name) {
            self.port(&port).tag_chain = true;
        } else if let Some(port) = own_chain_port(name) {
            self.port(&port).own_chains.insert((table, name.to_owned()));
        } else if chain.get("hook").is_some() {
            self.skeleton
                .chains
                .entry((table, name.to_owned()))
                .or_default();
        }
        Ok(())
    }

    fn read_map(
        &mut self,
        table: Table,
        map: &Value,
        port_of_tag: &BTreeMap<u16, String>,
    ) -> Result<(), ReadError> {
        let name = text(map, "name")?;
        if template_of(name).is_none() {
            self.skeleton.maps.insert((table, name.to_owned()));
        }
        if name == "in-tag" {
            return Ok(());
        }
        if let Some(t) = template_of(name) {
            self.template(t).maps.insert((table, name.to_owned()));
        }
        for (key, value) in pairs(map)? {
            let (port, key_text) = match (table, key.as_str(), key.as_u64()) {
                (Table::Bridge, Some(port), _) => (port.to_owned(), port.to_owned()),
                (Table::Inet, None, Some(mark)) => {
                    let Some(tag) = tag_of(mark) else {
                        return Err(bad(format!("map {name}: key {mark}")));
                    };
                    self.seen_tags.insert(tag);
                    match port_of_tag.get(&tag) {
                        Some(port) => (port.clone(), mark_key(mark as u32)),
                        // A tag no port claims: nothing leads there.
                        None => continue,
                    }
                }
                _ => return Err(bad(format!("map {name}: key {key}"))),
            };
            if name == "out-tag" {
                self.port(&port).out_tag = true;
                continue;
            }
            let target = value
                .pointer("/jump/target")
                .and_then(Value::as_str)
                .ok_or_else(|| bad(format!("map {name}: value {value}")))?;
            self.port(&port)
                .dispatch
                .insert((table, name.into()), (key_text, target.to_owned()));
        }
        Ok(())
    }

    fn read_set(
        &mut self,
        table: Table,
        set: &Value,
        port_of_tag: &BTreeMap<u16, String>,
    ) -> Result<(), ReadError> {
        let name = text(set, "name")?;
        let set_name: Arc<str> = match template_of(name) {
            Some(template) => {
                self.template(template)
                    .sets
                    .insert((table, name.to_owned()));
                name.into()
            }
            // A set of the layout (`layout::FAST_FROM`): its elements are
            // the ports' as a template set's are.
            None if Part::set_types(table, name).is_some() => {
                self.skeleton.sets.insert((table, name.to_owned()));
                name.into()
            }
            None => return Ok(()),
        };
        let elems = set.get("elem").and_then(Value::as_array);
        for elem in elems.into_iter().flatten() {
            // Elements with options come wrapped: {"elem": {"val": …}}.
            let elem = elem.pointer("/elem/val").unwrap_or(elem);
            let parts = elem
                .get("concat")
                .and_then(Value::as_array)
                .filter(|p| p.len() >= 2)
                .ok_or_else(|| bad(format!("set {name}: element {elem}")))?;
            let (port, key_text) = match (&parts[0], parts[0].as_u64().and_then(tag_of)) {
                (Value::String(port), _) => (port.clone(), port.clone()),
                (first, Some(tag)) => {
                    self.seen_tags.insert(tag);
                    let mark = first.as_u64().unwrap_or_default() as u32;
                    match port_of_tag.get(&tag) {
                        Some(port) => (port.clone(), mark_key(mark)),
                        None => continue,
                    }
                }
                _ => return Err(bad(format!("set {name}: element {elem}"))),
            };
            let values = std::iter::once(Ok(key_text))
                .chain(parts[1..].iter().map(|v| match v {
                    // A raw header field (a `typeof` set) lists as a
                    // number, or as hex beyond 64 bits; the plan spells it
                    // in decimal.
                    Value::String(s) => Ok(raw_hex(s).unwrap_or_else(|| s.clone())),
                    Value::Number(n) => Ok(n.to_string()),
                    other => Err(bad(format!("set {name}: value {other}"))),
                }))
                .collect::<Result<Vec<String>, ReadError>>()?;
            self.port(&port)
                .elements
                .get_or_default((table, Arc::clone(&set_name)))
                .insert(values);
        }
        Ok(())
    }

    /// The lowest tag no port uses and no element mentions (0 means
    /// "untagged" and is never used).
    pub fn free_tag(&self) -> Option<u16> {
        (1..=u16::MAX).find(|t| !self.seen_tags.contains(t))
    }

    /// The ports whose dispatch elements lead into `template`.
    pub fn users(&self, template: &str) -> usize {
        self.ports
            .values()
            .filter(|p| p.templates().contains(template))
            .count()
    }
}

/// A raw value nft lists in hex (`0xfd77…`, beyond 64 bits) in decimal;
/// `None` for any other string (a MAC or an IP address never starts `0x`).
fn raw_hex(s: &str) -> Option<String> {
    let digits = s.strip_prefix("0x")?;
    u128::from_str_radix(digits, 16).ok().map(|n| n.to_string())
}

/// The tag a mark carries: in the low half (in-tag) or high half (out-tag).
fn tag_of(mark: u64) -> Option<u16> {
    let mark = u32::try_from(mark).ok()?;
    let low = (mark & 0xffff) as u16;
    let high = (mark >> 16) as u16;
    match (low, high) {
        (t, 0) | (0, t) if t != 0 => Some(t),
        _ => None,
    }
}

/// One entry of the listing. Rules are most of a listing (every port's
/// own chains), and all we need of one is where it is: its expressions
/// are skipped unread instead of being built into a JSON tree.
#[derive(Deserialize)]
struct Entry<'a> {
    #[serde(default, borrow)]
    rule: Option<RuleAt<'a>>,
    #[serde(default)]
    table: Option<Value>,
    #[serde(default)]
    chain: Option<Value>,
    #[serde(default)]
    set: Option<Value>,
    #[serde(default)]
    map: Option<Value>,
}

/// Where a rule is.
#[derive(Deserialize)]
struct RuleAt<'a> {
    #[serde(borrow)]
    family: Cow<'a, str>,
    #[serde(borrow)]
    table: Cow<'a, str>,
    #[serde(borrow)]
    chain: Cow<'a, str>,
}

#[derive(Deserialize)]
struct Listing<'a> {
    #[serde(borrow)]
    nftables: Vec<Entry<'a>>,
}

fn listing(json: &str) -> Result<Vec<Entry<'_>>, ReadError> {
    serde_json::from_str::<Listing<'_>>(json)
        .map(|listing| listing.nftables)
        .map_err(|e| bad(e.to_string()))
}

/// An object of our tables: a rule (where it is), or another object
/// (table, kind, body).
enum Ours<'a> {
    Rule(Table, &'a str),
    Object(Table, &'static str, &'a Value),
}

fn ours<'a>(entries: &'a [Entry<'a>]) -> Vec<Ours<'a>> {
    entries
        .iter()
        .filter_map(|entry| {
            if let Some(rule) = &entry.rule {
                return (rule.table == TABLE)
                    .then(|| family(&rule.family))
                    .flatten()
                    .map(|table| Ours::Rule(table, &rule.chain));
            }
            let (kind, body) = [
                ("table", &entry.table),
                ("chain", &entry.chain),
                ("set", &entry.set),
                ("map", &entry.map),
            ]
            .into_iter()
            .find_map(|(kind, body)| Some((kind, body.as_ref()?)))?;
            let table_name = if kind == "table" { "name" } else { "table" };
            if body.get(table_name)?.as_str()? != TABLE {
                return None;
            }
            let table = family(body.get("family")?.as_str()?)?;
            Some(Ours::Object(table, kind, body))
        })
        .collect()
}

fn family(name: &str) -> Option<Table> {
    match name {
        "bridge" => Some(Table::Bridge),
        "inet" => Some(Table::Inet),
        _ => None,
    }
}

/// A map's elements as (key, value) pairs.
fn pairs(map: &Value) -> Result<Vec<(&Value, &Value)>, ReadError> {
    let elems = map.get("elem").and_then(Value::as_array);
    elems
        .into_iter()
        .flatten()
        .map(|pair| match (pair.get(0), pair.get(1)) {
            (Some(k), Some(v)) => Ok((k.pointer("/elem/val").unwrap_or(k), v)),
            _ => Err(bad(format!("map element {pair}"))),
        })
        .collect()
}

fn text<'v>(object: &'v Value, key: &str) -> Result<&'v str, ReadError> {
    object
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| bad(format!("an object without \"{key}\": {object}")))
}

fn bad(reason: String) -> ReadError {
    ReadError { what: WHAT, reason }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: &str = "t0123456789abcdef";

    #[test]
    fn reads_templates_ports_tags_and_elements_of_ours_only() {
        let json = format!(
            r#"{{"nftables": [{{"metainfo": {{"version": "1.0.6"}}}},
            {{"table": {{"family": "bridge", "name": "nwfilter"}}}},
            {{"table": {{"family": "inet", "name": "nwfilter"}}}},
            {{"chain": {{"family": "bridge", "table": "nwfilter", "name": "I/{T}"}}}},
            {{"chain": {{"family": "bridge", "table": "nwfilter", "name": "tag/vnet0"}}}},
            {{"chain": {{"family": "inet", "table": "nwfilter", "name": "FO/{T}"}}}},
            {{"chain": {{"family": "bridge", "table": "other", "name": "I/{T}x"}}}},
            {{"rule": {{"family": "bridge", "table": "nwfilter", "chain": "I/{T}", "expr": []}}}},
            {{"rule": {{"family": "bridge", "table": "nwfilter", "chain": "I\/{T}", "handle": 4,
              "expr": [{{"match": {{"op": "==", "left": {{"meta": {{"key": "iifname"}}}}, "right": "a\"b"}}}}]}}}},
            {{"rule": {{"family": "bridge", "table": "other", "chain": "I/{T}", "expr": []}}}},
            {{"counter": {{"family": "bridge", "table": "nwfilter", "name": "c"}}}},
            {{"set": {{"family": "bridge", "table": "nwfilter", "name": "s0/{T}",
              "type": ["ifname", "ether_addr"],
              "elem": [{{"concat": ["vnet0", "52:54:00:00:00:01"]}}]}}}},
            {{"set": {{"family": "inet", "table": "nwfilter", "name": "s1/{T}",
              "type": ["mark", "ipv4_addr"],
              "elem": [{{"concat": [458752, "10.0.0.1"]}}, {{"concat": [9, "10.0.0.9"]}}]}}}},
            {{"map": {{"family": "bridge", "name": "from-vm", "table": "nwfilter",
              "elem": [["vnet0", {{"jump": {{"target": "I/{T}"}}}}]]}}}},
            {{"map": {{"family": "bridge", "name": "in-tag", "table": "nwfilter",
              "elem": [["vnet0", 7]]}}}},
            {{"map": {{"family": "bridge", "name": "out-tag", "table": "nwfilter",
              "elem": [["vnet0", {{"jump": {{"target": "tag/vnet0"}}}}]]}}}},
            {{"map": {{"family": "inet", "name": "to-vm", "table": "nwfilter",
              "elem": [[458752, {{"jump": {{"target": "FO/{T}"}}}}]]}}}}]}}"#
        );
        let state = KernelState::parse(&json).unwrap();
        assert_eq!(state.tables, BTreeSet::from([Table::Bridge, Table::Inet]));
        let t = &state.templates[T];
        assert_eq!(t.chains[&(Table::Bridge, format!("I/{T}"))], 2);
        assert_eq!(t.chains[&(Table::Inet, format!("FO/{T}"))], 0);
        assert_eq!(t.sets.len(), 2);
        let p = &state.ports["vnet0"];
        assert_eq!(p.tag, Some(7));
        assert!(p.tag_chain && p.out_tag);
        assert_eq!(p.templates(), BTreeSet::from([T]));
        assert_eq!(p.dispatch.len(), 2);
        let v4 = &p.elements[&(Table::Inet, format!("s1/{T}").into())];
        let tuple = vec![":458752".to_owned(), "10.0.0.1".to_owned()];
        assert_eq!(v4, &VecSet::from_iter([tuple]));
        assert_eq!(
            p.dispatch[&(Table::Inet, "to-vm".into())],
            (":458752".to_owned(), format!("FO/{T}"))
        );
        // Tag 9 belongs to no port, but is not handed out again.
        assert_eq!(state.ports.len(), 1);
        assert!(state.seen_tags.contains(&9));
        assert_eq!(state.users(T), 1);
        assert_eq!(state.free_tag(), Some(1));
    }

    /// A `typeof` set of raw header fields, as the renderer spells its
    /// elements (decimal) and nft lists them (a number, hex beyond 64 bits).
    #[test]
    fn raw_values_read_back_as_the_renderer_spells_them() {
        use nwfilter_compile::ir::{NdField, NdMatch};
        let value = |field| {
            let nd = NdMatch {
                field,
                negated: false,
            };
            crate::nd::lookup(&nd).unwrap().value
        };
        let mac = nwfilter_model::MacAddr6::new(0x52, 0x54, 0, 0x12, 0x34, 0x56);
        let rendered = [
            value(NdField::Target("fd77::10".parse().unwrap())),
            value(NdField::LinkLayer(mac)),
        ];
        let json = format!(
            r#"{{"nftables": [{{"table": {{"family": "bridge", "name": "nwfilter"}}}},
            {{"set": {{"family": "bridge", "table": "nwfilter", "name": "s8/{T}",
              "type": ["ifname", "integer", "integer"],
              "elem": [{{"concat": ["vnet0", "0xfd770000000000000000000000000010", 90520731923542]}},
                       {{"concat": ["vnet0", "0x100000000000000000000000", 1]}}]}}}}]}}"#
        );
        let state = KernelState::parse(&json).unwrap();
        let read = &state.ports["vnet0"].elements[&(Table::Bridge, format!("s8/{T}").into())];
        let spelled = |values: &[String]| {
            let mut tuple = vec!["vnet0".to_owned()];
            tuple.extend(values.iter().cloned());
            tuple
        };
        assert!(read.contains(&spelled(&rendered)), "{read:?}");
        let small = ["4951760157141521099596496896".to_owned(), "1".to_owned()];
        assert!(read.contains(&spelled(&small)), "{read:?}");
    }

    /// Chains an older version named by the port's name as it is
    /// (`vnet@0`), which `nft -f` cannot read: never planned with.
    #[test]
    fn chains_nft_text_cannot_name_are_left_alone() {
        let json = r#"{"nftables": [{"table": {"family": "bridge", "name": "nwfilter"}},
            {"chain": {"family": "bridge", "table": "nwfilter", "name": "tag/vnet@0"}},
            {"chain": {"family": "bridge", "table": "nwfilter", "name": "r0-0a0d84d2/vnet@0"}},
            {"chain": {"family": "bridge", "table": "nwfilter", "name": "tag/_x766e65744030"}}]}"#;
        let state = KernelState::parse(json).unwrap();
        let p = &state.ports["vnet@0"];
        assert!(p.tag_chain && p.own_chains.is_empty(), "{p:?}");
        assert_eq!(state.ports.len(), 1);
    }

    #[test]
    fn garbage_is_an_error_naming_the_listing() {
        let err = KernelState::parse("Error: no").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("cannot read `nft -j list ruleset` output"));
    }
}
