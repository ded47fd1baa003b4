//! Lowering of hand-built bound rules (no parser involved).

use std::net::Ipv4Addr;

use nwfilter_model::{
    Action, Attr, AttrValue, ChainName, Direction, FilterName, IfName, IpsetDir, MacAddr6, Number,
    Protocol, ProtocolMatch, Rule as ModelRule, StateSet, Value, VarRef,
};

use super::*;
use crate::ir::{AddrMatch, ConnDir, L4Proto, MacMatch};

fn attr(attr: Attr, value: Value) -> AttrValue {
    AttrValue {
        attr,
        value,
        negated: false,
    }
}

fn num(v: u32) -> Value {
    Value::Number(Number::dec(v))
}

fn mac(s: &str) -> MacAddr6 {
    s.parse().unwrap()
}

fn bound(
    chain: &str,
    priority: i32,
    action: Action,
    direction: Direction,
    protocol: Option<(Protocol, Vec<AttrValue>)>,
) -> BoundRule {
    let chain = ChainName::new(chain).unwrap();
    let chain_priority = chain.kind().default_priority();
    BoundRule {
        filter: FilterName::new("test").unwrap(),
        rule_index: 0,
        chain,
        chain_priority,
        rule: ModelRule {
            action,
            direction,
            priority,
            statematch: true,
            protocol: protocol.map(|(protocol, attrs)| ProtocolMatch { protocol, attrs }),
        },
        vars: vec![],
    }
}

fn program(rules: Vec<BoundRule>) -> Program {
    lower(&BoundRules { rules }, &IfName::new("vnet0").unwrap()).unwrap()
}

fn roles(p: &Program) -> Vec<(Family, ChainRole)> {
    p.chains
        .iter()
        .map(|c| (c.family, c.role.clone()))
        .collect()
}

#[test]
fn an_out_tcp_accept_gives_three_instances_with_conntrack_and_swap() {
    let p = program(vec![bound(
        "root",
        500,
        Action::Accept,
        Direction::Out,
        Some((
            Protocol::Tcp,
            vec![
                attr(Attr::SrcMacAddr, Value::Mac(mac("01:02:03:04:05:06"))),
                attr(Attr::DstIpAddr, Value::Ipv4(Ipv4Addr::new(10, 1, 2, 3))),
                attr(Attr::DstIpMask, Value::Prefix(32)),
            ],
        )),
    )]);
    let dst = AddrMatch {
        addr: Ipv4Addr::new(10, 1, 2, 3).into(),
        prefix: Some(32),
        negated: false,
    };
    let states = |new| {
        Match::ConnState(crate::ir::ConnStates {
            new,
            established: true,
            related: false,
            invalid: false,
        })
    };
    let from_vm = p.chain(Family::Ipv4, &ChainRole::ForwardFromVm).unwrap();
    assert_eq!(
        from_vm.rules[0].matches,
        vec![
            Match::L4(L4Proto::Tcp),
            Match::MacSrc(MacMatch {
                addr: mac("01:02:03:04:05:06"),
                mask: None,
                negated: false
            }),
            Match::IpDst(dst),
            states(true),
            Match::ConnDir(ConnDir::Original),
        ]
    );
    assert_eq!(from_vm.rules[0].verdict, Verdict::AcceptByReturn);
    let to_vm = p.chain(Family::Ipv4, &ChainRole::ForwardToVm).unwrap();
    assert_eq!(
        to_vm.rules[0].matches,
        vec![
            Match::L4(L4Proto::Tcp),
            Match::IpSrc(dst),
            states(false),
            Match::ConnDir(ConnDir::Reply),
        ]
    );
    assert_eq!(to_vm.rules[0].verdict, Verdict::Accept);
    assert_eq!(
        p.chain(Family::Ipv4, &ChainRole::HostFromVm).unwrap().rules,
        from_vm.rules
    );
}

#[test]
fn a_swapped_copy_whose_only_match_was_the_source_mac_is_dropped() {
    let mut negated_mac = attr(Attr::SrcMacAddr, Value::Mac(mac("12:34:56:78:9a:bc")));
    negated_mac.negated = true;
    let p = program(vec![bound(
        "root",
        500,
        Action::Drop,
        Direction::InOut,
        Some((Protocol::All, vec![negated_mac])),
    )]);
    assert_eq!(roles(&p), vec![(Family::Ipv4, ChainRole::ForwardToVm)]);
}

#[test]
fn icmp_with_a_type_is_lowered_only_where_that_message_travels() {
    let icmp = |dir| {
        bound(
            "root",
            500,
            Action::Accept,
            dir,
            Some((Protocol::Icmp, vec![attr(Attr::Type, num(8))])),
        )
    };
    let out = program(vec![icmp(Direction::Out)]);
    assert_eq!(
        roles(&out),
        vec![
            (Family::Ipv4, ChainRole::ForwardFromVm),
            (Family::Ipv4, ChainRole::HostFromVm)
        ]
    );
    // A type fixes the direction, so no --ctdir.
    assert!(!out.chains[0].rules[0]
        .matches
        .iter()
        .any(|m| matches!(m, Match::ConnDir(_))));
    let inward = program(vec![icmp(Direction::In)]);
    assert_eq!(roles(&inward), vec![(Family::Ipv4, ChainRole::ForwardToVm)]);
    // libvirt emits nothing for inout; we keep all three copies.
    assert_eq!(program(vec![icmp(Direction::InOut)]).chains.len(), 3);
}

#[test]
fn an_explicit_state_selects_the_rule_direction_only_and_applies_to_drops() {
    let p = program(vec![bound(
        "root",
        500,
        Action::Drop,
        Direction::Out,
        Some((
            Protocol::Udp,
            vec![attr(Attr::State, Value::States(StateSet(StateSet::NEW)))],
        )),
    )]);
    assert_eq!(
        roles(&p),
        vec![
            (Family::Ipv4, ChainRole::ForwardFromVm),
            (Family::Ipv4, ChainRole::HostFromVm)
        ]
    );
    assert!(p.chains[0].rules[0]
        .matches
        .contains(&Match::ConnState(crate::ir::ConnStates {
            new: true,
            established: false,
            related: false,
            invalid: false
        })));
}

#[test]
fn connlimit_only_in_straight_copies_and_ipset_selectors_swap() {
    let p = program(vec![
        bound(
            "root",
            500,
            Action::Drop,
            Direction::Out,
            Some((Protocol::Tcp, vec![attr(Attr::ConnlimitAbove, num(2))])),
        ),
        bound(
            "root",
            500,
            Action::Accept,
            Direction::In,
            Some((
                Protocol::All,
                vec![
                    attr(Attr::Ipset, Value::IpsetName("s".into())),
                    attr(
                        Attr::IpsetFlags,
                        Value::IpsetFlags(vec![IpsetDir::Src, IpsetDir::Dst, IpsetDir::Src]),
                    ),
                ],
            )),
        ),
    ]);
    let from_vm = p.chain(Family::Ipv4, &ChainRole::ForwardFromVm).unwrap();
    assert_eq!(from_vm.rules.len(), 2);
    assert!(from_vm.rules[1].matches.contains(&Match::IpSet {
        name: "s".into(),
        flags: vec![IpsetDir::Dst, IpsetDir::Src, IpsetDir::Dst]
    }));
    let to_vm = p.chain(Family::Ipv4, &ChainRole::ForwardToVm).unwrap();
    assert_eq!(to_vm.rules.len(), 1, "connlimit rule has no swapped copy");
}

#[test]
fn inout_bridge_rules_reverse_the_from_vm_copy_and_keep_attribute_order() {
    let p = program(vec![bound(
        "root",
        500,
        Action::Continue,
        Direction::InOut,
        Some((
            Protocol::Vlan,
            vec![
                attr(Attr::SrcMacAddr, Value::Mac(mac("01:02:03:04:05:06"))),
                attr(Attr::DstMacAddr, Value::Mac(mac("aa:bb:cc:dd:ee:ff"))),
                attr(Attr::VlanId, num(291)),
            ],
        )),
    )]);
    let m = |a: &str| MacMatch {
        addr: mac(a),
        mask: None,
        negated: false,
    };
    let from_vm = p
        .chain(Family::Bridge, &ChainRole::BridgeRoot(BridgeDir::FromVm))
        .unwrap();
    assert!(matches!(
        &from_vm.rules[0].matches[..2],
        [Match::MacDst(a), Match::MacSrc(b)] if *a == m("01:02:03:04:05:06") && *b == m("aa:bb:cc:dd:ee:ff")
    ));
    let to_vm = p
        .chain(Family::Bridge, &ChainRole::BridgeRoot(BridgeDir::ToVm))
        .unwrap();
    assert!(matches!(
        &to_vm.rules[0].matches[..2],
        [Match::MacSrc(_), Match::MacDst(_)]
    ));
    assert_eq!(to_vm.rules[0].verdict, Verdict::Continue);
}

#[test]
fn sub_chains_are_jumped_to_by_chain_priority_interleaved_with_root_rules() {
    let arp = |chain, prio| {
        bound(
            chain,
            prio,
            Action::Return,
            Direction::Out,
            Some((Protocol::Arp, vec![])),
        )
    };
    let p = program(vec![
        bound(
            "root",
            -500,
            Action::Accept,
            Direction::Out,
            Some((Protocol::Mac, vec![attr(Attr::ProtocolId, num(0x806))])),
        ),
        arp("arp-ip", 400),
        bound("mac", 500, Action::Drop, Direction::Out, None),
        arp("arp-mac", 350),
        bound("root", 1000, Action::Drop, Direction::Out, None),
    ]);
    let names: Vec<String> = p
        .chains
        .iter()
        .map(|c| match &c.role {
            ChainRole::BridgeSub { name, .. } => name.as_str().to_owned(),
            other => format!("{other:?}"),
        })
        .collect();
    // Creation order: mac (-800), then the two arp chains (-500 each) in
    // order of first use after sorting by rule priority (arp-mac at 350).
    assert_eq!(names, ["mac", "arp-mac", "arp-ip", "BridgeRoot(FromVm)"]);
    let root = &p.chains[3].rules;
    let verdicts: Vec<&Verdict> = root.iter().map(|r| &r.verdict).collect();
    assert!(matches!(
        verdicts[..],
        [
            Verdict::Jump(_),
            Verdict::Jump(_),
            Verdict::Jump(_),
            Verdict::Accept,
            Verdict::Drop
        ]
    ));
    assert_eq!(
        root[1].matches,
        vec![Match::EtherType(Negatable {
            value: 0x0806,
            negated: false
        })]
    );
}

#[test]
fn root_layer4_rules_precede_other_chains_layer4_rules_whatever_the_priority() {
    let tcp = |chain, prio, action| {
        bound(
            chain,
            prio,
            action,
            Direction::Out,
            Some((Protocol::Tcp, vec![])),
        )
    };
    let p = program(vec![
        tcp("ipv4", 100, Action::Accept),
        tcp("root", 900, Action::Drop),
    ]);
    let from_vm = p.chain(Family::Ipv4, &ChainRole::ForwardFromVm).unwrap();
    assert_eq!(from_vm.rules[0].verdict, Verdict::Drop);
    assert_eq!(from_vm.rules[1].verdict, Verdict::AcceptByReturn);
}

#[test]
fn reject_is_a_drop_on_the_bridge() {
    let p = program(vec![bound(
        "root",
        500,
        Action::Reject,
        Direction::In,
        None,
    )]);
    assert_eq!(p.chains[0].rules[0].verdict, Verdict::Drop);
}

#[test]
fn inout_stp_with_a_source_mac_is_refused() {
    let err = lower(
        &BoundRules {
            rules: vec![bound(
                "stp-x",
                500,
                Action::Drop,
                Direction::InOut,
                Some((
                    Protocol::Stp,
                    vec![attr(Attr::SrcMacAddr, Value::Mac(mac("01:02:03:04:05:06")))],
                )),
            )],
        },
        &IfName::new("vnet0").unwrap(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("STP"), "{err}");
}

#[test]
fn an_unbound_variable_or_out_of_range_value_is_an_error_naming_the_rule() {
    let with = |a: AttrValue| {
        lower(
            &BoundRules {
                rules: vec![bound(
                    "root",
                    500,
                    Action::Accept,
                    Direction::Out,
                    Some((Protocol::Tcp, vec![a])),
                )],
            },
            &IfName::new("vnet0").unwrap(),
        )
        .unwrap_err()
        .to_string()
    };
    let var = with(attr(Attr::SrcIpAddr, Value::Var(VarRef::plain("IP"))));
    assert_eq!(
        var,
        "filter 'test', rule 1: attribute 'srcipaddr': variable $IP was not bound"
    );
    let big = with(attr(Attr::DstPortStart, num(70000)));
    assert!(
        big.contains("dstportstart") && big.contains("70000"),
        "{big}"
    );
}

#[test]
fn arp_addresses_without_a_mask_match_the_single_address() {
    let p = program(vec![bound(
        "root",
        500,
        Action::Accept,
        Direction::Out,
        Some((
            Protocol::Arp,
            vec![
                attr(Attr::ArpSrcIpAddr, Value::Ipv4(Ipv4Addr::new(10, 0, 0, 1))),
                attr(Attr::ArpSrcIpMask, Value::Prefix(24)),
                attr(Attr::ArpDstIpAddr, Value::Ipv4(Ipv4Addr::new(10, 0, 0, 2))),
            ],
        )),
    )]);
    let prefixes: Vec<Option<u8>> = p.chains[0].rules[0]
        .matches
        .iter()
        .filter_map(|m| match m {
            Match::ArpIpSrc(a) | Match::ArpIpDst(a) => Some(a.prefix),
            _ => None,
        })
        .collect();
    assert_eq!(prefixes, [Some(24), Some(32)]);
}

#[test]
fn traced_lowering_gives_the_same_program_and_names_each_rules_origin() {
    let mut rules = vec![
        bound(
            "root",
            -500,
            Action::Accept,
            Direction::InOut,
            Some((Protocol::Mac, vec![attr(Attr::ProtocolId, num(0x806))])),
        ),
        bound("mac", 500, Action::Drop, Direction::Out, None),
        bound(
            "root",
            300,
            Action::Accept,
            Direction::Out,
            Some((Protocol::Tcp, vec![attr(Attr::DstPortStart, num(25))])),
        ),
    ];
    rules[1].rule_index = 1;
    rules[2].rule_index = 2;
    let bound = BoundRules { rules };
    let port = IfName::new("vnet0").unwrap();
    let traced = lower_traced(&bound, &port).unwrap();
    assert_eq!(traced.program, lower(&bound, &port).unwrap());
    for (chain, origins) in traced.program.chains.iter().zip(&traced.origins) {
        assert_eq!(chain.rules.len(), origins.len(), "{:?}", chain.role);
        for (rule, origin) in chain.rules.iter().zip(origins) {
            // Only the jumps lowering adds have no origin.
            assert_eq!(matches!(rule.verdict, Verdict::Jump(_)), origin.is_none());
        }
    }
    let sub = traced
        .program
        .chains
        .iter()
        .position(|c| matches!(c.role, ChainRole::BridgeSub { .. }))
        .unwrap();
    let o = traced.origin(sub, 0).unwrap();
    assert_eq!(
        (o.filter.as_str(), o.rule_index, o.priority),
        ("test", 1, 500)
    );
    assert_eq!(o.chain.as_str(), "mac");
    let fwd = traced
        .program
        .chains
        .iter()
        .position(|c| c.role == ChainRole::ForwardFromVm)
        .unwrap();
    assert_eq!(traced.origin(fwd, 0).unwrap().rule_index, 2);
}
