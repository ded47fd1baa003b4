//! The kernel's whole ruleset as `nft -j list ruleset` prints it: every
//! table, chain (with its hook, when it is a base chain) and rule. The
//! network life cycle reads it to find its own chains and the iptables-nft
//! `filter` tables; `nwfilter doctor` reads everything.

use serde_json::Value;

/// A listing we could not understand.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read `nft -j list ruleset` output: {0}")]
pub struct ListingError(pub String);

/// What a base chain hooks.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Base {
    /// `filter`, `nat`, `route`.
    #[serde(rename = "type")]
    pub kind: String,
    pub hook: String,
    pub prio: i64,
    /// `accept` or `drop`.
    pub policy: String,
}

/// One chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Chain {
    pub family: String,
    pub table: String,
    pub name: String,
    /// `None` for a regular chain (reached only by jump or goto).
    pub base: Option<Base>,
}

/// One rule: its statements as libnftables JSON.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Rule {
    pub family: String,
    pub table: String,
    pub chain: String,
    pub handle: Option<u64>,
    pub expr: Vec<Value>,
}

/// The whole ruleset, in listing order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ruleset {
    /// `(family, name)`.
    pub tables: Vec<(String, String)>,
    pub chains: Vec<Chain>,
    pub rules: Vec<Rule>,
}

fn text(object: &Value, key: &str) -> Result<String, ListingError> {
    object
        .get(key)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| ListingError(format!("an object without \"{key}\": {object}")))
}

impl Ruleset {
    /// Parses `nft -j list ruleset` output (empty output: no ruleset).
    pub fn parse(json: &str) -> Result<Ruleset, ListingError> {
        if json.trim().is_empty() {
            return Ok(Ruleset::default());
        }
        let root: Value = serde_json::from_str(json).map_err(|e| ListingError(e.to_string()))?;
        let objects = root
            .get("nftables")
            .and_then(Value::as_array)
            .ok_or_else(|| ListingError("no \"nftables\" array".to_owned()))?;
        let mut out = Ruleset::default();
        for object in objects {
            let Some((kind, body)) = object.as_object().and_then(|o| o.iter().next()) else {
                continue;
            };
            match kind.as_str() {
                "table" => out
                    .tables
                    .push((text(body, "family")?, text(body, "name")?)),
                "chain" => out.chains.push(chain(body)?),
                "rule" => out.rules.push(Rule {
                    family: text(body, "family")?,
                    table: text(body, "table")?,
                    chain: text(body, "chain")?,
                    handle: body.get("handle").and_then(Value::as_u64),
                    expr: body
                        .get("expr")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default(),
                }),
                _ => {}
            }
        }
        Ok(out)
    }

    pub fn has_table(&self, family: &str, name: &str) -> bool {
        self.tables.iter().any(|(f, n)| f == family && n == name)
    }

    /// The chains of table `family name`.
    pub fn chains_of(&self, family: &str, table: &str) -> impl Iterator<Item = &Chain> {
        let (family, table) = (family.to_owned(), table.to_owned());
        self.chains
            .iter()
            .filter(move |c| c.family == family && c.table == table)
    }

    /// Whether `family table` has a base chain named `name`.
    pub fn has_base_chain(&self, family: &str, table: &str, name: &str) -> bool {
        self.chains_of(family, table)
            .any(|c| c.name == name && c.base.is_some())
    }

    /// The rules of one chain, in order.
    pub fn rules_of<'a>(&'a self, chain: &'a Chain) -> impl Iterator<Item = &'a Rule> {
        self.rules.iter().filter(move |r| {
            r.family == chain.family && r.table == chain.table && r.chain == chain.name
        })
    }

    /// A regular or base chain by name.
    pub fn chain(&self, family: &str, table: &str, name: &str) -> Option<&Chain> {
        self.chains_of(family, table).find(|c| c.name == name)
    }
}

fn chain(body: &Value) -> Result<Chain, ListingError> {
    let base = match body.get("hook").and_then(Value::as_str) {
        Some(hook) => Some(Base {
            kind: text(body, "type")?,
            hook: hook.to_owned(),
            prio: body.get("prio").and_then(Value::as_i64).unwrap_or(0),
            policy: body
                .get("policy")
                .and_then(Value::as_str)
                .unwrap_or("accept")
                .to_owned(),
        }),
        None => None,
    };
    Ok(Chain {
        family: text(body, "family")?,
        table: text(body, "table")?,
        name: text(body, "name")?,
        base,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_tables_base_and_regular_chains_and_rules() {
        let json = r#"{"nftables": [{"metainfo": {"version": "1.0.6"}},
          {"table": {"family": "ip", "name": "filter", "handle": 1}},
          {"chain": {"family": "ip", "table": "filter", "name": "FORWARD", "handle": 1,
                     "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}},
          {"chain": {"family": "ip", "table": "filter", "name": "DOCKER-USER", "handle": 2}},
          {"rule": {"family": "ip", "table": "filter", "chain": "FORWARD", "handle": 3,
                    "expr": [{"jump": {"target": "DOCKER-USER"}}]}}]}"#;
        let rs = Ruleset::parse(json).unwrap();
        assert!(rs.has_table("ip", "filter") && !rs.has_table("ip6", "filter"));
        assert!(rs.has_base_chain("ip", "filter", "FORWARD"));
        assert!(!rs.has_base_chain("ip", "filter", "DOCKER-USER"));
        let fwd = rs.chain("ip", "filter", "FORWARD").unwrap();
        assert_eq!(fwd.base.as_ref().unwrap().policy, "drop");
        assert_eq!(rs.rules_of(fwd).count(), 1);
        assert_eq!(Ruleset::parse("").unwrap(), Ruleset::default());
        let err = Ruleset::parse("{}").unwrap_err().to_string();
        assert!(err.contains("list ruleset"), "{err}");
    }
}
