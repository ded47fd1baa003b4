//! Kernel object counts, read from the namespace's kernel: `nft -j list
//! ruleset` (what nf_tables holds, for both backends: on this machine the
//! xtables tools are the nft flavour) and, for xtables, the `*-save` view
//! (what ebtables/iptables/ip6tables themselves call rules and chains).

use serde_json::Value;

use crate::lab::{Error, Netns};

/// What `nft -j list ruleset` shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NftCounts {
    pub tables: usize,
    /// All chains, base chains included.
    pub chains: usize,
    /// Chains attached to a hook.
    pub base_chains: usize,
    pub rules: usize,
    /// Named sets and maps.
    pub sets: usize,
    /// Elements of all named sets and maps.
    pub elements: usize,
}

impl NftCounts {
    pub fn read(ns: &Netns) -> Result<NftCounts, Error> {
        NftCounts::parse(&ns.exec(&["nft", "-j", "list", "ruleset"])?)
    }

    pub fn parse(json: &str) -> Result<NftCounts, Error> {
        let doc: Value = serde_json::from_str(json)?;
        let items = doc["nftables"]
            .as_array()
            .ok_or("nft -j list ruleset: no \"nftables\" array")?;
        let mut c = NftCounts::default();
        for item in items {
            let Some((kind, body)) = item.as_object().and_then(|o| o.iter().next()) else {
                continue;
            };
            match kind.as_str() {
                "table" => c.tables += 1,
                "chain" => {
                    c.chains += 1;
                    c.base_chains += usize::from(body.get("hook").is_some());
                }
                "rule" => c.rules += 1,
                "set" | "map" => {
                    c.sets += 1;
                    c.elements += body
                        .get("elem")
                        .and_then(Value::as_array)
                        .map_or(0, Vec::len);
                }
                _ => {}
            }
        }
        Ok(c)
    }
}

/// What the xtables `*-save` tools show (ebtables nat, ip/ip6 filter).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SaveCounts {
    /// User-defined chains.
    pub chains: usize,
    /// `-A` lines (hook rules in the built-in chains included).
    pub rules: usize,
}

impl SaveCounts {
    pub fn read(ns: &Netns) -> Result<SaveCounts, Error> {
        let mut total = SaveCounts::default();
        for (tool, table) in [
            ("ebtables-save", "nat"),
            ("iptables-save", "filter"),
            ("ip6tables-save", "filter"),
        ] {
            let c = SaveCounts::parse(&ns.exec(&[tool, "-t", table])?);
            total.chains += c.chains;
            total.rules += c.rules;
        }
        Ok(total)
    }

    pub fn parse(text: &str) -> SaveCounts {
        const BUILT_IN: [&str; 5] = ["PREROUTING", "POSTROUTING", "INPUT", "OUTPUT", "FORWARD"];
        let mut c = SaveCounts::default();
        for line in text.lines() {
            if let Some(decl) = line.strip_prefix(':') {
                let name = decl.split_whitespace().next().unwrap_or("");
                c.chains += usize::from(!BUILT_IN.contains(&name));
            } else if line.starts_with("-A ") {
                c.rules += 1;
            }
        }
        c
    }
}
