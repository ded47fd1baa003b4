//! What is in the kernel now, read from `ebtables-save` / `iptables-save` /
//! `ip6tables-save` output.
//!
//! We learn our chains from the kernel rather than trusting memory: after a
//! crash, a daemon restart or an admin's flush, the kernel is the truth.
//! Rules are kept as the tools print them, which is also valid restore
//! input, so a snapshot can be put back (rollback) and deleted by spec.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::rule::Rule;
use crate::ruleset::{table, Family};

/// A save file could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read the {family:?} table listing, line {line}: {why}: {text}")]
pub struct SaveParseError {
    pub family: Family,
    pub line: usize,
    pub why: &'static str,
    pub text: String,
}

/// One table: its chains in listing order and their rules.
///
/// Kept between operations for every port's chains (see `kept`): a
/// chain's name is one allocation, shared by the order and the map.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Table {
    /// Chain names in the order the tool listed them.
    pub chains: Vec<Arc<str>>,
    /// Rules per chain: the arguments after `-A CHAIN`.
    pub rules: BTreeMap<Arc<str>, Vec<Rule>>,
}

impl Table {
    /// Adds `name` at the end of the chains (its rules kept if it has
    /// some already, as a listing that declares it twice reads).
    pub fn add_chain(&mut self, name: &str) -> &mut Vec<Rule> {
        let name: Arc<str> = match self.rules.get_key_value(name) {
            Some((kept, _)) => Arc::clone(kept),
            None => Arc::from(name),
        };
        self.chains.push(Arc::clone(&name));
        self.rules.entry(name).or_default()
    }

    pub fn has_chain(&self, name: &str) -> bool {
        self.rules.contains_key(name)
    }

    /// The rules of `chain` (empty if it does not exist).
    pub fn rules_of(&self, chain: &str) -> &[Rule] {
        self.rules.get(chain).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The table as canonical restore text (no comments, no counters),
    /// for comparing a whole ruleset before and after.
    pub fn normalised(&self) -> String {
        let mut out = String::new();
        for chain in &self.chains {
            out.push_str(&format!(":{chain}\n"));
        }
        for chain in &self.chains {
            for rule in self.rules_of(chain) {
                let args: Vec<&str> = rule.words().collect();
                out.push_str(&format!("-A {chain} {}\n", args.join(" ")));
            }
        }
        out
    }
}

/// Parses the `*TABLE` section of a save listing. A missing section (the
/// table was never created in this namespace) is an empty table.
pub fn parse_save(family: Family, text: &str) -> Result<Table, SaveParseError> {
    let wanted = format!("*{}", table(family));
    let mut table = Table::default();
    let mut inside = false;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        let error = |why| SaveParseError {
            family,
            line: index + 1,
            why,
            text: raw.to_string(),
        };
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('*') {
            inside = line == wanted || (inside && name.is_empty());
            continue;
        }
        if !inside || line == "COMMIT" {
            continue;
        }
        if let Some(decl) = line.strip_prefix(':') {
            let name = decl
                .split_whitespace()
                .next()
                .ok_or_else(|| error("empty chain"))?;
            table.add_chain(name);
        } else if line.starts_with("-A ") {
            let mut words = split_words(line).map_err(error)?;
            if words.len() < 2 {
                return Err(error("rule without chain"));
            }
            let rule = Rule::new(&words[2..]).map_err(|_| error("NUL in a rule"))?;
            table
                .rules
                .entry(Arc::from(words.swap_remove(1)))
                .or_default()
                .push(rule);
        } else {
            return Err(error("unexpected line"));
        }
    }
    Ok(table)
}

/// Splits a save line into words the way the restore tools do: blanks
/// separate, double quotes group, a backslash inside quotes escapes.
pub fn split_words(line: &str) -> Result<Vec<String>, &'static str> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quoted = false;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            '\\' if quoted => word.push(chars.next().ok_or("dangling backslash")?),
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if quoted {
        return Err("unterminated quote");
    }
    if in_word {
        words.push(word);
    }
    Ok(words)
}

/// The three tables we work in, as read at one moment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tables {
    pub bridge: Table,
    pub ipv4: Table,
    pub ipv6: Table,
}

impl Tables {
    pub fn get(&self, family: Family) -> &Table {
        match family {
            Family::Bridge => &self.bridge,
            Family::Ipv4 => &self.ipv4,
            Family::Ipv6 => &self.ipv6,
        }
    }

    pub fn get_mut(&mut self, family: Family) -> &mut Table {
        match family {
            Family::Bridge => &mut self.bridge,
            Family::Ipv4 => &mut self.ipv4,
            Family::Ipv6 => &mut self.ipv6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const IPTABLES: &str = "# Generated by iptables-save v1.8.9
*nat
:PREROUTING ACCEPT [0:0]
-A PREROUTING -j DNAT --to-destination 1.2.3.4
COMMIT
*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:FI-vnet0 - [0:0]
-A FORWARD -j libvirt-in
-A FI-vnet0 -p tcp -m comment --comment \"say \\\"hi\\\" there\" -j RETURN
COMMIT
";

    #[test]
    fn reads_only_the_wanted_table_with_quoted_words() {
        let table = parse_save(Family::Ipv4, IPTABLES).unwrap();
        let chains: Vec<&str> = table.chains.iter().map(|c| &**c).collect();
        assert_eq!(chains, ["INPUT", "FORWARD", "FI-vnet0"]);
        assert!(table.rules_of("FORWARD")[0].is(&["-j", "libvirt-in"]));
        assert_eq!(
            table.rules_of("FI-vnet0")[0].to_words(),
            [
                "-p",
                "tcp",
                "-m",
                "comment",
                "--comment",
                "say \"hi\" there",
                "-j",
                "RETURN"
            ]
        );
        assert_eq!(table.rules_of("FI-vnet0")[0].target(), Some("RETURN"));
        assert!(!table.has_chain("PREROUTING"));
    }

    #[test]
    fn a_missing_table_is_empty_and_garbage_is_an_error() {
        assert_eq!(parse_save(Family::Bridge, "").unwrap(), Table::default());
        let err = parse_save(Family::Bridge, "*nat\n:PREROUTING ACCEPT\nbogus\n").unwrap_err();
        assert_eq!(err.line, 3);
        assert!(err.to_string().contains("unexpected line: bogus"), "{err}");
        assert!(split_words("-A X \"open").is_err());
    }

    #[test]
    fn normalised_text_has_no_comments_or_counters() {
        let table = parse_save(Family::Ipv4, IPTABLES).unwrap();
        assert_eq!(
            table.normalised(),
            ":INPUT\n:FORWARD\n:FI-vnet0\n-A FORWARD -j libvirt-in\n\
             -A FI-vnet0 -p tcp -m comment --comment say \"hi\" there -j RETURN\n"
        );
    }
}
