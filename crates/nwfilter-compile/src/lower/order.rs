//! Rule order (lowering reference §2.5, §5.4; nwfilter-xml §3.8).
//!
//! One stable sort over all of a port's rules: rules of `chain='root'`
//! filters first, then by rule priority; equal keys keep flattening order.
//! Consequence kept from libvirt: every layer-4 rule of a root filter
//! precedes every layer-4 rule of another chain, whatever the priorities.
//!
//! Bridge root chains then interleave their own rules with the jumps into
//! the sub-chains: a jump sits before the first root rule whose priority is
//! not lower than the sub-chain's priority; jumps left over go last.

use crate::bound::BoundRule;
use crate::ir::BridgeDir;

use super::Traced;

/// The port's rules in lowering order.
pub(crate) fn sorted(rules: &[BoundRule]) -> Vec<&BoundRule> {
    let mut out: Vec<&BoundRule> = rules.iter().collect();
    // `sort_by_key` is stable: ties keep flattening order, as glibc's qsort
    // happens to keep it for libvirt.
    out.sort_by_key(|r| (!r.chain.is_root(), r.rule.priority));
    out
}

/// A bridge sub-chain being filled, with what places its jump.
#[derive(Debug, Clone)]
pub(crate) struct SubChain {
    pub(crate) dir: BridgeDir,
    pub(crate) name: nwfilter_model::ChainName,
    /// The chain priority of the first filter seen using this name.
    pub(crate) priority: i32,
    /// Rules in lowering order, each with the filter rule it came from.
    pub(crate) rules: Vec<Traced>,
}

/// Sub-chains in creation order: by chain priority; on a tie the from-VM
/// direction first (libvirt collects those first), then first use.
pub(crate) fn creation_order(subs: &mut [SubChain]) {
    // Vec order is first use; the stable sort keeps it among equals.
    subs.sort_by_key(|s| (s.priority, s.dir));
}

/// Merges a root chain's rules (each with its rule priority, already in
/// order) with jumps (each with its chain priority, already in creation
/// order). A jump goes before a root rule of equal priority.
pub(crate) fn interleave<T>(root: Vec<(i32, T)>, jumps: Vec<(i32, T)>) -> Vec<T> {
    let mut out = Vec::with_capacity(root.len() + jumps.len());
    let mut jumps = jumps.into_iter().peekable();
    for (priority, rule) in root {
        while let Some((_, jump)) = jumps.next_if(|(p, _)| *p <= priority) {
            out.push(jump);
        }
        out.push(rule);
    }
    out.extend(jumps.map(|(_, jump)| jump));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ir::{Rule, Verdict};

    fn rule(v: Verdict) -> Rule {
        Rule {
            matches: vec![],
            comment: None,
            verdict: v,
            per_port: vec![],
        }
    }

    fn jump(name: &str) -> Rule {
        rule(Verdict::Jump(nwfilter_model::ChainName::new(name).unwrap()))
    }

    #[test]
    fn jumps_go_before_root_rules_of_equal_priority_and_leftovers_go_last() {
        let root = vec![(-500, rule(Verdict::Accept)), (1000, rule(Verdict::Drop))];
        let jumps = vec![
            (-800, jump("mac")),
            (-500, jump("arp")),
            (-400, jump("rarp")),
            (2000, jump("ipv4")),
        ];
        let got: Vec<Verdict> = interleave(root, jumps)
            .into_iter()
            .map(|r| r.verdict)
            .collect();
        let names: Vec<String> = got
            .iter()
            .map(|v| match v {
                Verdict::Jump(c) => c.as_str().to_owned(),
                other => format!("{other:?}"),
            })
            .collect();
        assert_eq!(names, ["mac", "arp", "Accept", "rarp", "Drop", "ipv4"]);
    }
}
