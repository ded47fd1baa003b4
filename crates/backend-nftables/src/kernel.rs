//! What of ours the kernel holds, read from `nft -j` listings (JSON, never
//! the text listing).
//!
//! The usual read is `nft -j list maps`: every port's root chains, tag and
//! tag chain are map elements, so one cheap listing shows which ports
//! exist. Sub-chains are not in any map; when they must be known and the
//! caller has no record of them, `nft -j list chains` lists every chain
//! (slower: it grows with all ports' chains).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::names::{port_of, Table, TABLE};

/// Our per-port chains and port tags as the kernel has them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KernelState {
    /// Our tables that exist.
    pub tables: BTreeSet<Table>,
    /// Per port: its chains (table, name), in listing order.
    pub chains: BTreeMap<String, Vec<(Table, String)>>,
    /// Per port: its tag (ports with IPv4/IPv6 chains).
    pub tags: BTreeMap<String, u16>,
    /// Whether `chains` lists every chain (from `list chains`), or only
    /// those the maps lead to (from `list maps`: no sub-chains).
    pub complete: bool,
}

/// A listing we could not understand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read `nft -j {what}` output: {reason}")]
pub struct ReadError {
    pub what: &'static str,
    pub reason: String,
}

impl KernelState {
    /// Reads `nft -j list maps` output: ports, tags and the chains the
    /// maps lead to.
    pub fn parse_maps(json: &str) -> Result<KernelState, ReadError> {
        const WHAT: &str = "list maps";
        let mut state = KernelState::default();
        let mut by_tag: Vec<(Table, u64, String)> = Vec::new();
        for object in objects(json, WHAT)? {
            let Some(map) = object.get("map") else {
                continue;
            };
            let Some(table) = ours(map) else {
                continue;
            };
            state.tables.insert(table);
            let name = text(map, "name", WHAT)?;
            let elems = map.get("elem").and_then(Value::as_array);
            for pair in elems.into_iter().flatten() {
                let bad = || ReadError {
                    what: WHAT,
                    reason: format!("unexpected element {pair} in map {name}"),
                };
                let key = pair.get(0).ok_or_else(bad)?;
                let value = pair.get(1).ok_or_else(bad)?;
                let target = value
                    .pointer("/jump/target")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
                match (table, name, key.as_str(), key.as_u64()) {
                    (Table::Bridge, "in-tag", Some(port), _) => {
                        let tag = value.as_u64().and_then(|t| u16::try_from(t).ok());
                        state.tags.insert(port.to_owned(), tag.ok_or_else(bad)?);
                    }
                    (Table::Bridge, _, Some(port), _) => {
                        let chain = target.ok_or_else(bad)?;
                        state.add_chain(port, table, chain);
                    }
                    (Table::Inet, _, None, Some(tag)) => {
                        by_tag.push((table, tag, target.ok_or_else(bad)?));
                    }
                    _ => return Err(bad()),
                }
            }
        }
        // inet elements are keyed by tag; the chain's name says its port.
        for (table, _, chain) in by_tag {
            if let Some(port) = port_of(&chain).map(str::to_owned) {
                state.add_chain(&port, table, chain);
            }
        }
        Ok(state)
    }

    fn add_chain(&mut self, port: &str, table: Table, chain: String) {
        let list = self.chains.entry(port.to_owned()).or_default();
        if !list.iter().any(|(t, c)| *t == table && *c == chain) {
            list.push((table, chain));
        }
    }

    /// Reads `nft -j list chains` output (every chain: `complete`).
    pub fn parse_chains(json: &str) -> Result<KernelState, ReadError> {
        let mut state = KernelState {
            complete: true,
            ..KernelState::default()
        };
        for object in objects(json, "list chains")? {
            let Some(chain) = object.get("chain") else {
                continue;
            };
            let Some(table) = ours(chain) else {
                continue;
            };
            state.tables.insert(table);
            let name = text(chain, "name", "list chains")?;
            if let Some(port) = port_of(name) {
                state.add_chain(port, table, name.to_owned());
            }
        }
        Ok(state)
    }

    /// The lowest tag no port uses (0 means "untagged" and is never used).
    pub fn free_tag(&self, also_taken: &BTreeSet<u16>) -> Option<u16> {
        let used: BTreeSet<u16> = self.tags.values().copied().collect();
        (1..=u16::MAX).find(|t| !used.contains(t) && !also_taken.contains(t))
    }
}

fn objects(json: &str, what: &'static str) -> Result<Vec<Value>, ReadError> {
    let value: Value = serde_json::from_str(json).map_err(|e| ReadError {
        what,
        reason: e.to_string(),
    })?;
    match value.get("nftables").and_then(Value::as_array) {
        Some(list) => Ok(list.clone()),
        None => Err(ReadError {
            what,
            reason: "no \"nftables\" array".into(),
        }),
    }
}

/// Which of our tables this object belongs to, if any.
fn ours(object: &Value) -> Option<Table> {
    if object.get("table")?.as_str()? != TABLE {
        return None;
    }
    match object.get("family")?.as_str()? {
        "bridge" => Some(Table::Bridge),
        "inet" => Some(Table::Inet),
        _ => None,
    }
}

fn text<'v>(object: &'v Value, key: &str, what: &'static str) -> Result<&'v str, ReadError> {
    object
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| ReadError {
            what,
            reason: format!("an object without \"{key}\": {object}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_our_chains_and_tags_only() {
        let chains = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}},
            {"chain": {"family": "bridge", "table": "nwfilter", "name": "prerouting", "hook": "prerouting"}},
            {"chain": {"family": "bridge", "table": "nwfilter", "name": "I/vnet0"}},
            {"chain": {"family": "bridge", "table": "nwfilter", "name": "I-arp/vnet0"}},
            {"chain": {"family": "inet", "table": "nwfilter", "name": "FI/vnet1"}},
            {"chain": {"family": "ip", "table": "nwfilter", "name": "FI/vnet9"}},
            {"chain": {"family": "bridge", "table": "other", "name": "I/vnet9"}}]}"#;
        let mut state = KernelState::parse_chains(chains).unwrap();
        assert!(state.complete);
        assert_eq!(state.tables, BTreeSet::from([Table::Bridge, Table::Inet]));
        assert_eq!(
            state.chains["vnet0"],
            [
                (Table::Bridge, "I/vnet0".to_owned()),
                (Table::Bridge, "I-arp/vnet0".to_owned())
            ]
        );
        assert!(!state.chains.contains_key("vnet9"));
        state.tags.insert("vnet1".into(), 1);
        state.tags.insert("vnet3".into(), 3);
        assert_eq!(state.free_tag(&BTreeSet::from([2])), Some(4));
    }

    #[test]
    fn maps_show_ports_roots_tags_and_ip_chains() {
        let maps = r#"{"nftables": [
            {"map": {"family": "bridge", "name": "from-vm", "table": "nwfilter", "type": "ifname",
              "map": "verdict", "elem": [["vnet0", {"jump": {"target": "I/vnet0"}}]]}},
            {"map": {"family": "bridge", "name": "in-tag", "table": "nwfilter", "type": "ifname",
              "map": "mark", "elem": [["vnet0", 7]]}},
            {"map": {"family": "bridge", "name": "out-tag", "table": "nwfilter", "type": "ifname",
              "map": "verdict", "elem": [["vnet0", {"jump": {"target": "tag/vnet0"}}]]}},
            {"map": {"family": "inet", "name": "to-vm", "table": "nwfilter", "type": "mark",
              "map": "verdict", "elem": [[458752, {"jump": {"target": "FO/vnet0"}}]]}},
            {"map": {"family": "inet", "name": "host-from-vm", "table": "nwfilter", "type": "mark",
              "map": "verdict"}},
            {"map": {"family": "ip", "name": "x", "table": "other", "type": "mark", "map": "verdict"}}]}"#;
        let state = KernelState::parse_maps(maps).unwrap();
        assert!(!state.complete);
        assert_eq!(state.tags["vnet0"], 7);
        let names: Vec<&str> = state.chains["vnet0"]
            .iter()
            .map(|(_, c)| c.as_str())
            .collect();
        assert_eq!(names, ["I/vnet0", "tag/vnet0", "FO/vnet0"]);
        assert_eq!(state.tables, BTreeSet::from([Table::Bridge, Table::Inet]));
    }

    #[test]
    fn garbage_is_an_error_naming_the_listing() {
        let err = KernelState::parse_chains("Error: no").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("cannot read `nft -j list chains` output"));
    }
}
