//! Properties of lowering for arbitrary mixes of rules, directions,
//! actions, priorities and chains.

use nwfilter_compile::ir::{ChainRole, Family, Program, Verdict};
use nwfilter_compile::{lower, BoundRule, BoundRules};
use nwfilter_model::{
    Action, ChainName, Direction, FilterName, IfName, Protocol, ProtocolMatch, Rule,
};
use proptest::prelude::*;

const CHAINS: [&str; 8] = [
    "root", "root", "mac", "ipv4", "ipv4-ip", "arp", "rarp", "stp-x",
];
const PROTOCOLS: [Option<Protocol>; 10] = [
    None,
    Some(Protocol::Mac),
    Some(Protocol::Arp),
    Some(Protocol::Ip),
    Some(Protocol::Ipv6),
    Some(Protocol::Tcp),
    Some(Protocol::Udp),
    Some(Protocol::Icmp),
    Some(Protocol::All),
    Some(Protocol::AllIpv6),
];
const ACTIONS: [Action; 5] = [
    Action::Accept,
    Action::Drop,
    Action::Reject,
    Action::Return,
    Action::Continue,
];
const DIRECTIONS: [Direction; 3] = [Direction::In, Direction::Out, Direction::InOut];

fn rule() -> impl Strategy<Value = BoundRule> {
    (
        0..CHAINS.len(),
        -1000i32..=1000,
        0..PROTOCOLS.len(),
        0..ACTIONS.len(),
        0..DIRECTIONS.len(),
        any::<bool>(),
    )
        .prop_map(|(c, priority, p, a, d, statematch)| {
            let chain = ChainName::new(CHAINS[c]).unwrap();
            BoundRule {
                filter: FilterName::new("f").unwrap(),
                rule_index: 0,
                chain_priority: chain.kind().default_priority(),
                chain,
                rule: Rule {
                    action: ACTIONS[a],
                    direction: DIRECTIONS[d],
                    priority,
                    statematch,
                    protocol: PROTOCOLS[p].map(|protocol| ProtocolMatch {
                        protocol,
                        attrs: vec![],
                    }),
                },
                vars: vec![],
            }
        })
}

fn position(p: &Program, family: Family, role: &ChainRole) -> Option<usize> {
    p.chains
        .iter()
        .position(|c| c.family == family && &c.role == role)
}

proptest! {
    #[test]
    fn chains_are_well_formed(rules in proptest::collection::vec(rule(), 0..40)) {
        let port = IfName::new("vnet0").unwrap();
        let p = lower(&BoundRules { rules: rules.clone() }, &port).unwrap();
        for (i, c) in p.chains.iter().enumerate() {
            prop_assert!(!c.rules.is_empty(), "empty chain {:?}", c.role);
            // Each (family, role) once.
            prop_assert_eq!(position(&p, c.family, &c.role), Some(i));
            if let ChainRole::BridgeSub { dir, name, .. } = &c.role {
                // Exactly one jump into it, from its own direction's root,
                // which comes later in the list.
                let root = ChainRole::BridgeRoot(*dir);
                let at = position(&p, Family::Bridge, &root).unwrap();
                prop_assert!(at > i);
                let jumps = p.chains[at]
                    .rules
                    .iter()
                    .filter(|r| r.verdict == Verdict::Jump(name.clone()))
                    .count();
                prop_assert_eq!(jumps, 1);
            }
        }
        // Bridge rules never reject; only forward-to-VM accepts for real.
        for c in &p.chains {
            for r in &c.rules {
                match (&c.role, &r.verdict) {
                    (ChainRole::BridgeRoot(_) | ChainRole::BridgeSub { .. }, Verdict::Reject) => {
                        prop_assert!(false, "bridge reject");
                    }
                    (ChainRole::ForwardFromVm | ChainRole::HostFromVm, Verdict::Accept) => {
                        prop_assert!(false, "accept in a goto chain");
                    }
                    _ => {}
                }
            }
        }
        // Every bridge rule instance lands somewhere: one per direction.
        let bridge_instances: usize = rules
            .iter()
            .filter(|r| match &r.rule.protocol {
                None => true,
                Some(p) => p.protocol.layer() == nwfilter_model::Layer::Ethernet,
            })
            .map(|r| if r.rule.direction == Direction::InOut { 2 } else { 1 })
            .sum();
        let bridge_rules: usize = p
            .chains
            .iter()
            .filter(|c| c.family == Family::Bridge)
            .flat_map(|c| &c.rules)
            .filter(|r| !matches!(r.verdict, Verdict::Jump(_)))
            .count();
        prop_assert_eq!(bridge_rules, bridge_instances);
    }

    #[test]
    fn lowering_is_deterministic(rules in proptest::collection::vec(rule(), 0..20)) {
        let port = IfName::new("vnet0").unwrap();
        let bound = BoundRules { rules };
        prop_assert_eq!(lower(&bound, &port).unwrap(), lower(&bound, &port).unwrap());
    }
}
