//! What of ours the kernel holds, read from `nft -j` listings (JSON, never
//! the text listing).
//!
//! Two reads: `nft -j list chains` (names only, no rules: cheap with many
//! ports) and, when our bridge table exists, the `in-tag` map (which port
//! has which tag).

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
}

/// A listing we could not understand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read `nft -j {what}` output: {reason}")]
pub struct ReadError {
    pub what: &'static str,
    pub reason: String,
}

impl KernelState {
    /// Reads `nft -j list chains` output.
    pub fn parse_chains(json: &str) -> Result<KernelState, ReadError> {
        let mut state = KernelState::default();
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
                state
                    .chains
                    .entry(port.to_owned())
                    .or_default()
                    .push((table, name.to_owned()));
            }
        }
        Ok(state)
    }

    /// Adds the tags from `nft -j list map bridge nwfilter in-tag` output.
    pub fn parse_tags(&mut self, json: &str) -> Result<(), ReadError> {
        let bad = |reason: &str| ReadError {
            what: "list map bridge nwfilter in-tag",
            reason: reason.to_owned(),
        };
        for object in objects(json, "list map bridge nwfilter in-tag")? {
            let Some(map) = object.get("map") else {
                continue;
            };
            let Some(elems) = map.get("elem").and_then(Value::as_array) else {
                continue;
            };
            for pair in elems {
                let port = pair.get(0).and_then(Value::as_str);
                let tag = pair.get(1).and_then(Value::as_u64);
                match (port, tag.and_then(|t| u16::try_from(t).ok())) {
                    (Some(port), Some(tag)) => {
                        self.tags.insert(port.to_owned(), tag);
                    }
                    _ => return Err(bad(&format!("unexpected element {pair}"))),
                }
            }
        }
        Ok(())
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
        assert_eq!(state.tables, BTreeSet::from([Table::Bridge, Table::Inet]));
        assert_eq!(
            state.chains["vnet0"],
            [
                (Table::Bridge, "I/vnet0".to_owned()),
                (Table::Bridge, "I-arp/vnet0".to_owned())
            ]
        );
        assert!(!state.chains.contains_key("vnet9"));
        let tags = r#"{"nftables": [{"map": {"family": "bridge", "name": "in-tag",
            "table": "nwfilter", "type": "ifname", "map": "mark",
            "elem": [["vnet1", 1], ["vnet3", 3]]}}]}"#;
        state.parse_tags(tags).unwrap();
        assert_eq!(state.tags["vnet3"], 3);
        assert_eq!(state.free_tag(&BTreeSet::from([2])), Some(4));
    }

    #[test]
    fn garbage_is_an_error_naming_the_listing() {
        let err = KernelState::parse_chains("Error: no").unwrap_err();
        assert!(err
            .to_string()
            .starts_with("cannot read `nft -j list chains` output"));
    }
}
