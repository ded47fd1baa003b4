//! Which IP version a rule of the merged inet chain applies to.
//!
//! An inet chain holds the IPv4 and the IPv6 rules of one role, each rule
//! guarded by `meta nfproto`. When all of a chain's rules are of one
//! version, one guard rule at its head (`meta nfproto != ipv6 return`)
//! replaces the guard of every rule: a packet of the other version leaves
//! after one test instead of failing each rule, and one of the version
//! tests nothing more. It decides as before: the chain is entered by a
//! jump (from a dispatch map), and `return` goes back to the dispatching
//! chain exactly where running off the end would.

use std::collections::BTreeMap;

use nftables::expr::MetaKey;
use nftables::stmt::{Return, Statement};
use nwfilter_compile::ir::{Family, IpVersion};

use crate::matches::Context;
use crate::names::Table;
use crate::render::Rule;
use crate::term::{compare, statement, Operand, Term};

/// How an inet chain's rules are told apart by IP version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Guard {
    /// A `meta nfproto` test in each rule (the chain mixes versions).
    EachRule,
    /// One guard rule at the head of the chain.
    OneRule,
}

/// The chains (by name) that get [`Guard::OneRule`]: inet chains whose
/// IR chains (`name`, family, number of rules) are all of one version,
/// with at least two rules (with one, a guard rule is one more, not one
/// less).
pub(crate) fn guarded_once<'a>(
    chains: impl Iterator<Item = (&'a str, Family, usize)>,
) -> BTreeMap<String, Family> {
    let mut seen: BTreeMap<String, (Option<Family>, bool, usize)> = BTreeMap::new();
    for (name, family, rules) in chains {
        if family == Family::Bridge {
            continue;
        }
        let entry = seen.entry(name.to_owned()).or_insert((None, true, 0));
        entry.1 &= entry.0.is_none_or(|f| f == family);
        entry.0 = Some(family);
        entry.2 += rules;
    }
    seen.into_iter()
        .filter_map(|(name, (family, one, rules))| (one && rules >= 2).then_some((name, family?)))
        .collect()
}

/// The terms that open a rule of `family` in `table` (none for bridge
/// rules, or when its chain has [`Guard::OneRule`]); `ctx` learns the
/// version either way, for the matches that follow.
pub(crate) fn rule_guard(
    family: Family,
    table: Table,
    guard: Guard,
    ctx: &mut Context,
) -> Vec<Term> {
    let Some((version, _)) = version(family) else {
        return Vec::new();
    };
    ctx.ip = Some(version);
    match (guard, table) {
        (Guard::EachRule, Table::Inet) => vec![test(family, false)],
        (Guard::EachRule, Table::Bridge) => vec![ether_test(family)],
        (Guard::OneRule, _) => Vec::new(),
    }
}

/// `ether type ip6`: how an IP-layer rule moved into the bridge table
/// (`crate::ip_in_bridge`) tells its version. `meta nfproto` there is the
/// bridge's own.
pub(crate) fn ether_test(family: Family) -> Term {
    let (_, _, name) = spellings(family).expect("an IP family");
    compare(
        Operand::field("ether", "type"),
        false,
        Operand::symbol(name),
    )
}

/// The rule at the head of a [`Guard::OneRule`] chain: packets of the
/// other version return.
pub(crate) fn chain_guard(family: Family) -> Rule {
    Rule::new(
        vec![
            test(family, true),
            statement("return", Statement::Return(Some(Return {}))),
        ],
        None,
    )
}

fn version(family: Family) -> Option<(IpVersion, &'static str)> {
    spellings(family).map(|(v, nfproto, _)| (v, nfproto))
}

/// The version, its `meta nfproto` name and its `ether type` name.
fn spellings(family: Family) -> Option<(IpVersion, &'static str, &'static str)> {
    match family {
        Family::Bridge => None,
        Family::Ipv4 => Some((IpVersion::V4, "ipv4", "ip")),
        Family::Ipv6 => Some((IpVersion::V6, "ipv6", "ip6")),
    }
}

/// `meta nfproto ipv6` (or `!=`).
fn test(family: Family, negated: bool) -> Term {
    let (_, name) = version(family).expect("an IP family");
    compare(
        Operand::meta(MetaKey::Nfproto, "nfproto"),
        negated,
        Operand::symbol(name),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_single_version_chains_of_two_rules_or_more_are_guarded_once() {
        let chains = [
            ("FI/t", Family::Ipv6, 2),
            ("HI/t", Family::Ipv6, 1),
            ("FO/t", Family::Ipv4, 1),
            ("FO/t", Family::Ipv6, 3),
            ("I/t", Family::Bridge, 9),
        ];
        let once = guarded_once(chains.into_iter());
        assert_eq!(once, BTreeMap::from([("FI/t".to_owned(), Family::Ipv6)]));
    }

    #[test]
    fn the_guard_rule_returns_the_other_version_and_rules_test_none() {
        let guard = chain_guard(Family::Ipv6);
        let text: Vec<&str> = guard.terms.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(text, ["meta nfproto != ipv6", "return"]);
        let mut ctx = Context::default();
        assert!(rule_guard(Family::Ipv6, Table::Inet, Guard::OneRule, &mut ctx).is_empty());
        assert_eq!(
            ctx.ip,
            Some(IpVersion::V6),
            "the matches still know the version"
        );
    }

    #[test]
    fn in_the_bridge_table_a_rule_tests_the_ethertype() {
        let mut ctx = Context::default();
        let terms = rule_guard(Family::Ipv6, Table::Bridge, Guard::EachRule, &mut ctx);
        let text: Vec<&str> = terms.iter().map(|t| t.text.as_str()).collect();
        assert_eq!(text, ["ether type ip6"]);
        assert_eq!(ctx.ip, Some(IpVersion::V6));
    }
}
