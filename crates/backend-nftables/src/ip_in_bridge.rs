//! Whether a port's IPv4/IPv6 rules can run in the bridge table.
//!
//! libvirt runs a port's IP-layer chains (FI, HI, FO) in iptables and
//! ip6tables, which see bridged packets through br_netfilter; we run them
//! in the inet table, reached through port tags (`crate::layout`'s
//! `IpPath`). That path costs every frame of every port two more hook
//! traversals and a mark rewrite (docs/PERFORMANCE.md, issue 20). A port
//! whose IP-layer rules need nothing of the IP layer gets them in the
//! bridge table instead: one chain, named as its FI chain would be, that
//! the port's from-VM root chain jumps to before the first rule that could
//! let a frame of that IP version out ([`entry_index`]). The
//! dual-stack clean-traffic's neighbour-discovery checks are such rules
//! (issue 16: they must cost about what clean-traffic costs).
//!
//! It decides as the IP layer would, because:
//! - A packet must pass both layers. The IP-layer chain's verdicts here
//!   only drop or leave the chain (`return`; an IP-layer `accept` ends the
//!   IP layer's say, not the Ethernet layer's, so it leaves the chain
//!   too), so running it among the Ethernet rules instead of after them
//!   changes no packet's fate: the Ethernet rules before the jump can
//!   only drop such a frame.
//! - Bridge prerouting sees the frames the VM sends to the host (HI) and
//!   those bridged on (FI): the port qualifies only when both chains are
//!   the same, and when it has no rules for packets to the VM (FO, which
//!   libvirt applies to forwarded packets only: the bridge's postrouting
//!   also sees the host's own).
//! - The rules see only IP frames: the jump, or each rule, tests the
//!   EtherType. The IP hooks see the frames br_netfilter passes them:
//!   untagged IPv4/IPv6, and VLAN-tagged ones too where the host sets
//!   `net.bridge.bridge-nf-filter-vlan-tagged`. A tagged frame's
//!   EtherType is 802.1Q, so it would skip the moved rules: the port
//!   qualifies only when its from-VM root lets no frame through but by an
//!   EtherType it names, none of them a VLAN tag (it ends in an
//!   unconditional drop, as clean-traffic's does), so a tagged frame is
//!   dropped whatever that setting.
//! - Nothing needs the IP layer: no conntrack (`ct state`, `ct count`),
//!   no `reject` (this kernel's bridge family may lack it), no ipset, no
//!   TCP option (an extension-header walk the bridge family does not do
//!   the same way).
//!
//! One difference, documented in docs/ipv6.md: br_netfilter drops an IP
//! packet whose header is malformed (wrong version, length beyond the
//! frame) before the IP hooks; the bridge family sees it with no layer-4
//! protocol, so an L4 rule does not match it. The receiving IP stack drops
//! such a packet the same way, so it reaches no one's neighbour cache or
//! socket.

use nftables::stmt::{JumpTarget, Statement};
use nwfilter_compile::ir::{BridgeDir, Chain, ChainRole, Family, Match, Program, Rule, Verdict};
use nwfilter_model::ChainName;

use crate::names::{self, Role};
use crate::nfproto;
use crate::render;
use crate::term::{statement, Term};

/// Whether `program`'s IP-layer chains run in the bridge table (see the
/// module comment for the conditions and why they suffice).
pub(crate) fn applies(program: &Program) -> bool {
    let has = |role: &ChainRole| {
        program
            .chains
            .iter()
            .any(|c| c.family != Family::Bridge && &c.role == role)
    };
    if !has(&ChainRole::ForwardFromVm) && !has(&ChainRole::HostFromVm) {
        return false;
    }
    let has_root = program
        .chain(Family::Bridge, &ChainRole::BridgeRoot(BridgeDir::FromVm))
        .is_some_and(|root| passes_only_listed_ethertypes(program, root));
    let same_for_host = [Family::Ipv4, Family::Ipv6].into_iter().all(|family| {
        let rules = |role| program.chain(family, &role).map(|c| &c.rules);
        rules(ChainRole::ForwardFromVm) == rules(ChainRole::HostFromVm)
    });
    let stateless = program
        .chains
        .iter()
        .filter(|c| c.family != Family::Bridge)
        .flat_map(|c| &c.rules)
        .all(|r| r.verdict != Verdict::Reject && r.matches.iter().all(bridge_can_match));
    has_root && !has(&ChainRole::ForwardToVm) && same_for_host && stateless
}

/// Where in the from-VM root (`root`, an IR chain) the jump into the
/// moved chain goes: before the first rule that could let a frame of one
/// of `families` out of the root other than by dropping it. Rules before
/// that point only drop such frames (or test other EtherTypes), so
/// running the IP-layer checks after them decides the same, and a frame
/// of another EtherType (IPv4 for IPv6-only checks) that the root accepts
/// earlier never meets the jump at all.
pub(crate) fn entry_index(program: &Program, root: &Chain, families: &[Family]) -> usize {
    let own_types: Vec<u16> = (families.iter())
        .map(|f| match f {
            Family::Ipv4 => 0x0800,
            _ => 0x86dd,
        })
        .collect();
    let other_type_only = |rule: &Rule| {
        rule.matches.iter().any(|m| match m {
            Match::EtherType(t) => !t.negated && !own_types.contains(&t.value),
            Match::EtherIp(v) => {
                let t = match v {
                    nwfilter_compile::ir::IpVersion::V4 => 0x0800,
                    nwfilter_compile::ir::IpVersion::V6 => 0x86dd,
                };
                !own_types.contains(&t)
            }
            _ => false,
        })
    };
    let only_drops = |rule: &Rule| match &rule.verdict {
        Verdict::Drop | Verdict::Continue => true,
        Verdict::Jump(name) => only_drops_or_returns(program, name),
        _ => false,
    };
    (root.rules.iter())
        .position(|rule| !only_drops(rule) && !other_type_only(rule))
        .unwrap_or(root.rules.len())
}

/// The one IP family of `program`'s IP-layer chains, if they have one.
pub(crate) fn one_version(program: &Program) -> Option<Family> {
    match ip_families(program).as_slice() {
        [one] => Some(*one),
        _ => None,
    }
}

/// The IR index in the from-VM root before which the moved IP-layer
/// chain is entered (`ip_in_bridge::entry_index`).
pub(crate) fn entry(program: &Program) -> Option<usize> {
    let root = program.chain(Family::Bridge, &ChainRole::BridgeRoot(BridgeDir::FromVm))?;
    Some(entry_index(program, root, &ip_families(program)))
}

/// The IP families of `program`'s IP-layer chains, each once.
fn ip_families(program: &Program) -> Vec<Family> {
    let mut families: Vec<Family> = (program.chains.iter())
        .map(|c| c.family)
        .filter(|f| *f != Family::Bridge)
        .collect();
    families.sort();
    families.dedup();
    families
}

/// Puts the IP-layer chain moved into the bridge table (`FI/TEMPLATE`)
/// before the from-VM root and makes the root's rule at `at` jump to it
/// (tested by EtherType when the chain is of one IP version).
pub(crate) fn enter_from_root(
    chains: &mut Vec<render::Chain>,
    template: &str,
    version: Option<Family>,
    at: usize,
) {
    let ip_name = names::chain(&Role::FromVm, template);
    let (Some(ip), Some(_)) = (
        chains.iter().position(|c| c.name == ip_name),
        chains.iter().position(|c| c.role == Role::FromVmL2),
    ) else {
        return;
    };
    let ip_chain = chains.remove(ip);
    let root = (chains.iter().position(|c| c.role == Role::FromVmL2)).expect("found above");
    let mut terms: Vec<Term> = version.map(nfproto::ether_test).into_iter().collect();
    terms.push(statement(
        format!("jump {ip_name}"),
        Statement::Jump(JumpTarget {
            target: ip_name.clone().into(),
        }),
    ));
    let at = at.min(chains[root].rules.len());
    chains[root]
        .rules
        .insert(at, render::Rule::new(terms, None));
    chains.insert(root, ip_chain);
}

/// 802.1Q, 802.1ad and the older QinQ tag: frames whose EtherType hides
/// an IP packet behind a tag.
const VLAN_TAGS: [u16; 3] = [0x8100, 0x88a8, 0x9100];

/// Whether `root` (the port's from-VM root) ends in an unconditional drop
/// and lets frames out of it otherwise only by an untagged EtherType it
/// names: every other rule drops, does nothing, names such an EtherType,
/// or jumps without one into a sub-chain that can only drop or return.
fn passes_only_listed_ethertypes(program: &Program, root: &Chain) -> bool {
    let Some((last, rest)) = root.rules.split_last() else {
        return false;
    };
    let ends_in_drop = last.matches.is_empty() && last.verdict == Verdict::Drop;
    ends_in_drop
        && rest.iter().all(|rule| match &rule.verdict {
            Verdict::Drop | Verdict::Continue => true,
            _ if names_untagged_ethertype(rule) => true,
            Verdict::Jump(name) => only_drops_or_returns(program, name),
            _ => false,
        })
}

fn names_untagged_ethertype(rule: &Rule) -> bool {
    rule.matches.iter().any(|m| match m {
        Match::EtherType(t) => !t.negated && !VLAN_TAGS.contains(&t.value),
        Match::EtherIp(_) => true,
        _ => false,
    })
}

/// Whether the from-VM sub-chain `name` can only drop or return.
fn only_drops_or_returns(program: &Program, name: &ChainName) -> bool {
    program.chains.iter().any(|c| {
        matches!(&c.role, ChainRole::BridgeSub { dir: BridgeDir::FromVm, name: n, .. } if n == name)
            && (c.rules.iter()).all(|r| {
                matches!(
                    r.verdict,
                    Verdict::Drop | Verdict::Return | Verdict::Continue
                )
            })
    })
}

/// Whether the bridge family tests `m` as the IP layer does.
fn bridge_can_match(m: &Match) -> bool {
    !matches!(
        m,
        Match::ConnState(_)
            | Match::ConnDir(_)
            | Match::ConnlimitAbove(_)
            | Match::IpSet { .. }
            | Match::TcpOption(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_ir::{self, chain, ether_type, jump, rule};
    use nwfilter_compile::ir::{ConnStates, L4Proto};

    /// A root chain that passes IPv6 only, and the same IPv6 ICMPv6 rule
    /// for forwarding and host.
    fn program(extra: Vec<Chain>) -> Program {
        let icmp = || {
            vec![rule(
                vec![Match::L4(L4Proto::Icmpv6)],
                Verdict::AcceptByReturn,
            )]
        };
        let mut chains = vec![
            chain(
                Family::Bridge,
                ChainRole::BridgeRoot(BridgeDir::FromVm),
                vec![
                    rule(vec![ether_type(0x86dd, false)], Verdict::Accept),
                    rule(Vec::new(), Verdict::Drop),
                ],
            ),
            chain(Family::Ipv6, ChainRole::ForwardFromVm, icmp()),
            chain(Family::Ipv6, ChainRole::HostFromVm, icmp()),
        ];
        chains.extend(extra);
        test_ir::program(chains)
    }

    #[test]
    fn stateless_rules_the_same_for_host_and_forwarding_qualify() {
        assert!(applies(&program(Vec::new())));
    }

    #[test]
    fn rules_for_packets_to_the_vm_keep_the_ip_path() {
        let to_vm = chain(
            Family::Ipv4,
            ChainRole::ForwardToVm,
            vec![rule(Vec::new(), Verdict::Drop)],
        );
        assert!(!applies(&program(vec![to_vm])));
    }

    #[test]
    fn conntrack_reject_or_different_host_rules_keep_the_ip_path() {
        let mut stateful = program(Vec::new());
        stateful.chains[1].rules[0]
            .matches
            .push(Match::ConnState(ConnStates {
                new: false,
                established: true,
                related: false,
                invalid: false,
            }));
        assert!(!applies(&stateful));

        let mut rejecting = program(Vec::new());
        rejecting.chains[1].rules[0].verdict = Verdict::Reject;
        rejecting.chains[2].rules[0].verdict = Verdict::Reject;
        assert!(!applies(&rejecting));

        let mut different = program(Vec::new());
        different.chains[2].rules[0].verdict = Verdict::Drop;
        assert!(!applies(&different));
    }

    #[test]
    fn a_port_without_ip_rules_or_without_a_bridge_root_does_not() {
        let mut bridge_only = program(Vec::new());
        bridge_only.chains.truncate(1);
        assert!(!applies(&bridge_only));

        let mut no_root = program(Vec::new());
        no_root.chains.remove(0);
        assert!(!applies(&no_root));
    }

    fn with_root(root: Vec<Rule>, sub: Vec<Rule>) -> Program {
        test_ir::program(vec![
            test_ir::sub(BridgeDir::FromVm, "mac", sub),
            test_ir::root(BridgeDir::FromVm, root),
        ])
    }

    fn root_of(p: &Program) -> &Chain {
        p.chain(Family::Bridge, &ChainRole::BridgeRoot(BridgeDir::FromVm))
            .unwrap()
    }

    fn passes_only_listed(p: &Program) -> bool {
        passes_only_listed_ethertypes(p, root_of(p))
    }

    /// A root as clean-traffic's: the MAC sub-chain (return or drop),
    /// IPv4 and IPv6 accepted, everything else dropped.
    fn clean_traffic_like() -> Program {
        with_root(
            vec![
                jump_mac(),
                rule(vec![ether_type(0x0800, false)], Verdict::Accept),
                rule(vec![ether_type(0x86dd, false)], Verdict::Accept),
                rule(Vec::new(), Verdict::Drop),
            ],
            vec![
                rule(Vec::new(), Verdict::Return),
                rule(Vec::new(), Verdict::Drop),
            ],
        )
    }

    fn jump_mac() -> Rule {
        rule(Vec::new(), jump("mac"))
    }

    #[test]
    fn a_root_like_clean_traffics_passes_only_the_ethertypes_it_names() {
        let p = clean_traffic_like();
        assert!(passes_only_listed(&p));
    }

    #[test]
    fn the_jump_goes_before_the_first_rule_that_could_pass_the_moved_version() {
        let p = clean_traffic_like();
        let root = root_of(&p);
        // IPv6 checks: after the MAC check (it only drops) and the IPv4
        // accept (IPv6 never matches it), before the IPv6 accept.
        assert_eq!(entry_index(&p, root, &[Family::Ipv6]), 2);
        // IPv4 checks: before the IPv4 accept.
        assert_eq!(entry_index(&p, root, &[Family::Ipv4]), 1);
        assert_eq!(entry_index(&p, root, &[Family::Ipv4, Family::Ipv6]), 1);
    }

    #[test]
    fn a_tagged_frame_let_through_keeps_the_ip_path() {
        let no_final_drop = with_root(
            vec![rule(vec![ether_type(0x0800, false)], Verdict::Accept)],
            vec![],
        );
        assert!(!passes_only_listed(&no_final_drop));

        let vlan_accepted = with_root(
            vec![
                rule(vec![ether_type(0x8100, false)], Verdict::Accept),
                rule(Vec::new(), Verdict::Drop),
            ],
            vec![],
        );
        assert!(!passes_only_listed(&vlan_accepted));

        let sub_accepts = with_root(
            vec![jump_mac(), rule(Vec::new(), Verdict::Drop)],
            vec![rule(Vec::new(), Verdict::Accept)],
        );
        assert!(!passes_only_listed(&sub_accepts));
    }
}
