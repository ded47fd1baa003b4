//! Sub-chains that only check one lookup, written into their caller.
//!
//! A bridge sub-chain `LOOKUP return; drop` (clean-traffic's `I-mac`:
//! `iifname . ether saddr @s0 return`, then `drop`) costs a frame a jump,
//! the lookup and a return. When exactly one rule jumps to it, that rule
//! (`CONDS jump I-mac`) becomes `CONDS LOOKUP-negated drop`: a frame the
//! lookup does not find is dropped, one it finds goes on after the rule,
//! exactly as it did after the return. The caller keeps its position, so
//! every other rule keeps its order. Terms of the sub-chain's rule that
//! the caller's rule already has (`ether type 0x0806`) are true wherever
//! the sub-chain runs and are left out. Nothing else changes: a chain
//! with comments (they would be lost), another shape, or more than one
//! rule jumping to it (also from a port's own chains) stays as it is.
//!
//! A bridge sub-chain that is one bare verdict (clean-traffic's `O-ipv4`,
//! which is `accept`: allow-incoming-ipv4) costs a frame a jump to learn
//! what its caller could say itself: every rule `CONDS jump SUB` becomes
//! `CONDS accept` (or `drop`), since `accept` and `drop` end the hook's
//! evaluation in whatever chain they are met (see [`inline_verdicts`]).

use std::sync::Arc;

use nftables::expr::Expression;
use nftables::stmt::{Drop, Operator, Statement};

use crate::names::{Role, Table};
use crate::render::{Chain, Rule};
use crate::term::{statement, Term};

/// Inlines every sub-chain of `chains` (a template's) that qualifies;
/// `own` are the port's own chains, whose jumps count as callers too.
pub(crate) fn inline_lookups(chains: &mut Vec<Chain>, own: &[Chain]) {
    let mut i = 0;
    while i < chains.len() {
        match inlined(chains, own, i) {
            Some((caller, rule, new)) => {
                chains[caller].rules[rule] = new;
                chains.remove(i);
            }
            None => i += 1,
        }
    }
}

/// For the sub-chain `chains[i]`, if it qualifies: where its only caller
/// is (chain, rule) and what that rule becomes.
fn inlined(chains: &[Chain], own: &[Chain], i: usize) -> Option<(usize, usize, Rule)> {
    let sub = &chains[i];
    if sub.table != Table::Bridge {
        return None;
    }
    let [check, last] = sub.rules.as_slice() else {
        return None;
    };
    if check.comment.is_some() || last.comment.is_some() || !is(last.terms.as_slice(), "drop") {
        return None;
    }
    let (verdict, conds) = check.terms.split_last()?;
    if verdict.text != "return" {
        return None;
    }
    let jump = format!("jump {}", sub.name);
    let callers: Vec<(usize, usize)> = chains
        .iter()
        .enumerate()
        .flat_map(|(c, chain)| {
            chain
                .rules
                .iter()
                .enumerate()
                .map(move |(r, rule)| (c, r, rule))
        })
        .filter(|(_, _, rule)| rule.terms.iter().any(|t| t.text == jump))
        .map(|(c, r, _)| (c, r))
        .collect();
    let from_own = any_jumps(own, &jump);
    let [(c, r)] = callers.as_slice() else {
        return None;
    };
    if from_own {
        return None;
    }
    let caller = &chains[*c].rules[*r];
    let (last_term, caller_conds) = caller.terms.split_last()?;
    if last_term.text != jump {
        return None;
    }
    let left: Vec<&Term> = conds
        .iter()
        .map(|t| &**t)
        .filter(|t| !caller_conds.iter().any(|k| k.text == t.text))
        .collect();
    let [lookup] = left.as_slice() else {
        return None;
    };
    let mut terms = caller_conds.to_vec();
    terms.push(Arc::new(negated_lookup(lookup)?));
    terms.push(Arc::new(statement("drop", Statement::Drop(Some(Drop {})))));
    Some((
        *c,
        *r,
        Rule {
            terms,
            comment: caller.comment.clone(),
        },
    ))
}

/// Writes every bridge sub-chain of `chains` that is one bare `accept` or
/// `drop` (no condition, no comment) into the rules that jump to it, and
/// drops the chain. A chain a port's own chains (`own`) jump to, or that
/// no rule of `chains` jumps to (it may be entered otherwise), stays.
pub(crate) fn inline_verdicts(chains: &mut Vec<Chain>, own: &[Chain]) {
    let mut i = 0;
    while i < chains.len() {
        if let Some(verdict) = bare_verdict(&chains[i]) {
            let jump = format!("jump {}", chains[i].name);
            // A jump is a rule's verdict, its last term.
            let calls = |rule: &Rule| rule.terms.last().is_some_and(|t| t.text == jump);
            let called = chains.iter().flat_map(|c| &c.rules).any(calls);
            if called && !any_jumps(own, &jump) {
                for chain in chains.iter_mut() {
                    for rule in chain.rules.iter_mut().filter(|r| calls(r)) {
                        rule.terms.pop();
                        rule.terms.push(Arc::clone(&verdict));
                    }
                }
                chains.remove(i);
                continue;
            }
        }
        i += 1;
    }
}

/// The one term of a bridge sub-chain whose only rule is `accept` or
/// `drop` alone.
fn bare_verdict(chain: &Chain) -> Option<Arc<Term>> {
    if chain.table != Table::Bridge || chain.role != Role::Sub {
        return None;
    }
    let [rule] = chain.rules.as_slice() else {
        return None;
    };
    let [term] = rule.terms.as_slice() else {
        return None;
    };
    let verdict = matches!(term.json, Statement::Accept(_) | Statement::Drop(_));
    (verdict && rule.comment.is_none()).then(|| Arc::clone(term))
}

/// Whether a rule of `chains` says `jump` (`jump NAME`).
fn any_jumps(chains: &[Chain], jump: &str) -> bool {
    (chains.iter().flat_map(|c| &c.rules)).any(|rule| rule.terms.iter().any(|t| t.text == jump))
}

fn is(terms: &[Arc<Term>], text: &str) -> bool {
    matches!(terms, [t] if t.text == text)
}

/// `KEY @set` as `KEY != @set`; `None` for any other term.
fn negated_lookup(term: &Term) -> Option<Term> {
    let Statement::Match(m) = &term.json else {
        return None;
    };
    let Expression::String(set) = &m.right else {
        return None;
    };
    let left = term.text.strip_suffix(&format!(" {set}"))?;
    if m.op != Operator::EQ || !set.starts_with('@') || left.ends_with("==") {
        return None;
    }
    let mut json = m.clone();
    json.op = Operator::NEQ;
    Some(Term {
        text: format!("{left} != {set}"),
        json: Statement::Match(json),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::term::{compare, Operand};

    fn rule(terms: Vec<Term>) -> Rule {
        Rule::new(terms, None)
    }

    fn chain(name: &str, role: Role, rules: Vec<Rule>) -> Chain {
        Chain {
            table: Table::Bridge,
            role,
            name: name.to_owned(),
            rules,
        }
    }

    fn word(text: &str) -> Term {
        statement(text, Statement::Drop(Some(Drop {})))
    }

    fn lookup(set: &str) -> Term {
        compare(
            Operand::field("ether", "saddr"),
            false,
            Operand::new(
                format!("@{set}"),
                Expression::String(format!("@{set}").into()),
            ),
        )
    }

    fn arp() -> Term {
        compare(
            Operand::field("ether", "type"),
            false,
            Operand::symbol("0x0806"),
        )
    }

    fn texts(chains: &[Chain]) -> Vec<String> {
        chains
            .iter()
            .flat_map(|c| {
                c.rules.iter().map(move |r| {
                    let t: Vec<&str> = r.terms.iter().map(|t| t.text.as_str()).collect();
                    format!("{}: {}", c.name, t.join(" "))
                })
            })
            .collect()
    }

    #[test]
    fn a_lookup_return_drop_chain_becomes_a_negated_lookup_in_its_caller() {
        let mut chains = vec![
            chain(
                "I-mac",
                Role::Sub,
                vec![
                    rule(vec![lookup("s0"), word("return")]),
                    rule(vec![word("drop")]),
                ],
            ),
            chain(
                "I-arp-ip",
                Role::Sub,
                vec![
                    rule(vec![arp(), lookup("s1"), word("return")]),
                    rule(vec![word("drop")]),
                ],
            ),
            chain(
                "I",
                Role::FromVmL2,
                vec![
                    rule(vec![word("jump I-mac")]),
                    rule(vec![arp(), word("jump I-arp-ip")]),
                    rule(vec![arp(), word("accept")]),
                ],
            ),
        ];
        inline_lookups(&mut chains, &[]);
        assert_eq!(
            texts(&chains),
            [
                "I: ether saddr != @s0 drop",
                "I: ether type 0x0806 ether saddr != @s1 drop",
                "I: ether type 0x0806 accept",
            ]
        );
    }

    #[test]
    fn chains_with_two_callers_or_another_shape_stay() {
        let sub = |name: &str| {
            chain(
                name,
                Role::Sub,
                vec![
                    rule(vec![lookup("s0"), word("return")]),
                    rule(vec![word("drop")]),
                ],
            )
        };
        let mut chains = vec![
            sub("I-a"),
            chain(
                "I-b",
                Role::Sub,
                vec![
                    rule(vec![lookup("s0"), word("accept")]),
                    rule(vec![word("drop")]),
                ],
            ),
            sub("I-c"),
            chain(
                "I",
                Role::FromVmL2,
                vec![
                    rule(vec![word("jump I-a")]),
                    rule(vec![arp(), word("jump I-a")]),
                    rule(vec![word("jump I-b")]),
                    rule(vec![word("jump I-c")]),
                ],
            ),
        ];
        let own = [chain(
            "r0-00000000/vnet0",
            Role::Sub,
            vec![rule(vec![word("jump I-c")])],
        )];
        let before = texts(&chains);
        inline_lookups(&mut chains, &own);
        assert_eq!(texts(&chains), before);
    }

    fn accept() -> Term {
        statement("accept", Statement::Accept(Some(nftables::stmt::Accept {})))
    }

    #[test]
    fn a_chain_that_is_one_verdict_becomes_that_verdict_in_each_caller() {
        let ipv4 = || {
            compare(
                Operand::field("ether", "type"),
                false,
                Operand::symbol("ip"),
            )
        };
        let mut chains = vec![
            chain("O-ipv4", Role::Sub, vec![rule(vec![accept()])]),
            chain("O-bad", Role::Sub, vec![rule(vec![word("drop")])]),
            chain(
                "O",
                Role::ToVmL2,
                vec![
                    rule(vec![ipv4(), word("jump O-ipv4")]),
                    rule(vec![arp(), word("jump O-bad")]),
                    rule(vec![arp(), word("jump O-ipv4")]),
                    rule(vec![word("drop")]),
                ],
            ),
        ];
        inline_verdicts(&mut chains, &[]);
        assert_eq!(
            texts(&chains),
            [
                "O: ether type ip accept",
                "O: ether type 0x0806 drop",
                "O: ether type 0x0806 accept",
                "O: drop",
            ]
        );
    }

    #[test]
    fn verdict_chains_with_conditions_own_callers_or_no_caller_stay() {
        let mut chains = vec![
            // A condition: not a bare verdict.
            chain("O-a", Role::Sub, vec![rule(vec![arp(), accept()])]),
            // Jumped to from a port's own chain.
            chain("O-b", Role::Sub, vec![rule(vec![accept()])]),
            // A root (entered from a dispatch map), even if a rule
            // jumped to it.
            chain("O", Role::ToVmL2, vec![rule(vec![accept()])]),
            // A sub-chain no rule jumps to.
            chain("O-c", Role::Sub, vec![rule(vec![accept()])]),
            // Two verdicts.
            chain(
                "O-d",
                Role::Sub,
                vec![rule(vec![accept()]), rule(vec![word("drop")])],
            ),
            chain(
                "I",
                Role::FromVmL2,
                vec![
                    rule(vec![word("jump O-a")]),
                    rule(vec![word("jump O-b")]),
                    rule(vec![word("jump O-d")]),
                    rule(vec![word("jump O")]),
                ],
            ),
        ];
        let own = [chain(
            "r0-00000000/vnet0",
            Role::Sub,
            vec![rule(vec![word("jump O-b")])],
        )];
        let before = texts(&chains);
        inline_verdicts(&mut chains, &own);
        assert_eq!(texts(&chains), before);
    }
}
