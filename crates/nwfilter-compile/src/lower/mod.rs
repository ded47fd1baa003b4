//! Lowering: a port's [`BoundRules`] → the chain IR ([`Program`]).
//!
//! Steps: one stable sort (`order`); the layer split (Ethernet-layer
//! rules to the bridge family, layer-4 rules to IPv4/IPv6); per rule its
//! instances (`bridge`: one per direction, the `inout` "from VM" copy
//! reversed; `ip`: up to three, with implicit conntrack); finally the
//! bridge root chains interleave their rules with the sub-chain jumps.
//! Pure: no I/O, no spelling.

mod attrs;
mod bridge;
mod error;
mod ip;
mod nd;
mod order;
mod per_port;

pub use error::LowerError;

use nwfilter_model::{ChainKind, ChainName, Direction, IfName, Layer};

use crate::bound::{BoundRule, BoundRules};
use crate::ir::{
    BridgeDir, Chain, ChainRole, Family, Match, Negatable, Program, Rule, RuleOrigin,
    TracedProgram, Verdict,
};
use order::SubChain;

/// Lowers one port's bound rules into its chains.
pub fn lower(bound: &BoundRules, port: &IfName) -> Result<Program, LowerError> {
    Ok(lower_traced(bound, port)?.program)
}

/// As [`lower`], with each rule's origin (the same program: [`lower`] is
/// this function with the origins dropped).
pub fn lower_traced(bound: &BoundRules, port: &IfName) -> Result<TracedProgram, LowerError> {
    let mut bridge = BridgeChains::default();
    let mut ipv4 = IpChains::default();
    let mut ipv6 = IpChains::default();
    for rule in order::sorted(&bound.rules) {
        match layer(rule) {
            Layer::Ethernet => bridge.add(rule)?,
            Layer::Ipv4 => ipv4.add(rule)?,
            Layer::Ipv6 => ipv6.add(rule)?,
        }
    }
    let mut traced = bridge.finish();
    traced.extend(ipv4.finish(Family::Ipv4));
    traced.extend(ipv6.finish(Family::Ipv6));
    let (chains, origins) = traced.into_iter().unzip();
    Ok(TracedProgram {
        program: Program {
            port: port.clone(),
            chains,
        },
        origins,
    })
}

/// A lowered rule with the filter rule it came from (`None`: a jump).
pub(crate) type Traced = (Rule, Option<RuleOrigin>);

/// A chain with the origins of its rules, in the same order.
type TracedChain = (Chain, Vec<Option<RuleOrigin>>);

fn traced_chain(family: Family, role: ChainRole, rules: Vec<Traced>) -> TracedChain {
    let (rules, origins) = rules.into_iter().unzip();
    (
        Chain {
            family,
            role,
            rules,
        },
        origins,
    )
}

fn origin(rule: &BoundRule) -> Option<RuleOrigin> {
    Some(RuleOrigin {
        filter: rule.filter.clone(),
        rule_index: rule.rule_index,
        priority: rule.rule.priority,
        chain: rule.chain.clone(),
    })
}

/// A rule without a protocol element filters every frame: Ethernet layer.
fn layer(rule: &BoundRule) -> Layer {
    rule.rule
        .protocol
        .as_ref()
        .map_or(Layer::Ethernet, |p| p.protocol.layer())
}

/// The bridge family while rules are added.
#[derive(Debug, Default)]
struct BridgeChains {
    /// Root rules per direction (from VM, to VM), with their priority.
    roots: [Vec<(i32, Traced)>; 2],
    /// Sub-chains in order of first use.
    subs: Vec<SubChain>,
}

impl BridgeChains {
    fn add(&mut self, rule: &BoundRule) -> Result<(), LowerError> {
        // `inout`: the from-VM copy first, reversed; then the to-VM copy.
        let copies: &[(BridgeDir, bool)] = match rule.rule.direction {
            Direction::Out => &[(BridgeDir::FromVm, false)],
            Direction::In => &[(BridgeDir::ToVm, false)],
            Direction::InOut => &[(BridgeDir::FromVm, true), (BridgeDir::ToVm, false)],
        };
        for &(dir, reversed) in copies {
            let matches = bridge::matches(rule, reversed)?;
            let lowered = Rule {
                per_port: per_port::positions(&matches, rule),
                matches,
                comment: comment(rule),
                verdict: bridge::verdict(rule.rule.action),
            };
            let traced = (lowered, origin(rule));
            if rule.chain.is_root() {
                self.roots[dir as usize].push((rule.rule.priority, traced));
            } else {
                self.sub(dir, rule).rules.push(traced);
            }
        }
        Ok(())
    }

    fn sub(&mut self, dir: BridgeDir, rule: &BoundRule) -> &mut SubChain {
        let at = self
            .subs
            .iter()
            .position(|s| s.dir == dir && s.name == rule.chain)
            .unwrap_or_else(|| {
                self.subs.push(SubChain {
                    dir,
                    name: rule.chain.clone(),
                    priority: rule.chain_priority,
                    rules: Vec::new(),
                });
                self.subs.len() - 1
            });
        &mut self.subs[at]
    }

    fn finish(mut self) -> Vec<TracedChain> {
        order::creation_order(&mut self.subs);
        let mut chains = Vec::new();
        let mut jumps: [Vec<(i32, Traced)>; 2] = Default::default();
        for sub in self.subs {
            jumps[sub.dir as usize].push((sub.priority, (jump_rule(&sub.name), None)));
            let role = ChainRole::BridgeSub {
                dir: sub.dir,
                name: sub.name,
                priority: sub.priority,
            };
            chains.push(traced_chain(Family::Bridge, role, sub.rules));
        }
        let [root_from, root_to] = self.roots;
        let [jumps_from, jumps_to] = jumps;
        for (dir, root, jumps) in [
            (BridgeDir::FromVm, root_from, jumps_from),
            (BridgeDir::ToVm, root_to, jumps_to),
        ] {
            let rules = order::interleave(root, jumps);
            if !rules.is_empty() {
                chains.push(traced_chain(
                    Family::Bridge,
                    ChainRole::BridgeRoot(dir),
                    rules,
                ));
            }
        }
        chains
    }
}

/// The root-chain rule that sends a sub-chain's frames into it: by the
/// EtherType its name's prefix selects (every frame for `mac`, BPDUs for
/// `stp`).
fn jump_rule(name: &ChainName) -> Rule {
    let ether = |value| {
        vec![Match::EtherType(Negatable {
            value,
            negated: false,
        })]
    };
    let matches = match name.kind() {
        ChainKind::Ipv4 => ether(0x0800),
        ChainKind::Ipv6 => ether(0x86dd),
        ChainKind::Arp => ether(0x0806),
        ChainKind::Rarp => ether(0x8035),
        ChainKind::Vlan => ether(0x8100),
        ChainKind::Stp => vec![Match::StpBpdu],
        ChainKind::Mac | ChainKind::Root => vec![],
    };
    Rule {
        matches,
        comment: None,
        verdict: Verdict::Jump(name.clone()),
        per_port: Vec::new(),
    }
}

fn comment(rule: &BoundRule) -> Option<String> {
    match &rule
        .rule
        .protocol
        .as_ref()?
        .get(nwfilter_model::Attr::Comment)?
        .value
    {
        nwfilter_model::Value::Text(t) => Some(t.clone()),
        _ => None,
    }
}

/// One IP family's three chains while rules are added.
#[derive(Debug, Default)]
struct IpChains {
    from_vm: Vec<Traced>,
    to_vm: Vec<Traced>,
    host: Vec<Traced>,
}

impl IpChains {
    fn add(&mut self, rule: &BoundRule) -> Result<(), LowerError> {
        for (role, lowered) in ip::instances(rule)? {
            let traced = (lowered, origin(rule));
            match role {
                ChainRole::ForwardFromVm => self.from_vm.push(traced),
                ChainRole::ForwardToVm => self.to_vm.push(traced),
                _ => self.host.push(traced),
            }
        }
        Ok(())
    }

    fn finish(self, family: Family) -> Vec<TracedChain> {
        [
            (ChainRole::ForwardFromVm, self.from_vm),
            (ChainRole::ForwardToVm, self.to_vm),
            (ChainRole::HostFromVm, self.host),
        ]
        .into_iter()
        .filter(|(_, rules)| !rules.is_empty())
        .map(|(role, rules)| traced_chain(family, role, rules))
        .collect()
    }
}

#[cfg(test)]
mod tests;
