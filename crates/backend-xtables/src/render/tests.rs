//! Spelling of hand-built IR programs, and refusal of bad values.

use std::net::Ipv4Addr;

use nwfilter_compile::ir::{
    AddrMatch, BridgeDir, Chain, ChainRole as IrRole, ConnDir, ConnStates, Family as IrFamily,
    L4Proto, MacMatch, Match, Negatable, Program, Rule, Verdict,
};
use nwfilter_model::{ChainName, IfName, IpsetDir};

use super::*;

fn port() -> IfName {
    IfName::new("vnet0").unwrap()
}

fn program(chains: Vec<Chain>) -> Program {
    Program {
        port: port(),
        chains,
    }
}

fn chain(family: IrFamily, role: IrRole, rules: Vec<Rule>) -> Chain {
    Chain {
        family,
        role,
        rules,
    }
}

fn rule(matches: Vec<Match>, verdict: Verdict) -> Rule {
    Rule {
        matches,
        comment: None,
        verdict,
        per_port: vec![],
    }
}

fn mac(s: &str) -> MacMatch {
    MacMatch {
        addr: s.parse().unwrap(),
        mask: None,
        negated: false,
    }
}

fn words(s: &str) -> Vec<String> {
    s.split(' ').map(String::from).collect()
}

fn tcp_out_accept() -> Rule {
    Rule {
        matches: vec![
            Match::L4(L4Proto::Tcp),
            Match::MacSrc(mac("01:02:03:04:05:06")),
            Match::IpDst(AddrMatch {
                addr: Ipv4Addr::new(10, 1, 2, 3).into(),
                prefix: Some(32),
                negated: false,
            }),
            Match::Dscp(Negatable {
                value: 2,
                negated: false,
            }),
            Match::ConnState(ConnStates {
                new: true,
                established: true,
                related: false,
                invalid: false,
            }),
            Match::ConnDir(ConnDir::Original),
        ],
        comment: Some("udp rule".into()),
        verdict: Verdict::AcceptByReturn,
        per_port: vec![],
    }
}

#[test]
fn iptables_rules_are_spelled_as_libvirt_does() {
    let rs = ruleset(&program(vec![chain(
        IrFamily::Ipv4,
        IrRole::ForwardFromVm,
        vec![tcp_out_accept()],
    )]))
    .unwrap();
    assert_eq!(rs.chains[0].name, "FI-vnet0");
    assert_eq!(rs.chains[0].role, Hook::ForwardFromVm);
    let mut want = words(
        "-p tcp -m mac --mac-source 01:02:03:04:05:06 --destination 10.1.2.3/32 -m dscp --dscp 2 \
         -m conntrack --ctstate NEW,ESTABLISHED -m conntrack --ctdir Original -m comment --comment",
    );
    want.extend(["udp rule".into(), "-j".into(), "RETURN".into()]);
    assert_eq!(rs.chains[0].rules[0], want);
}

#[test]
fn ebtables_negation_follows_the_option_and_dispatch_ethertypes_are_padded() {
    let mut negated = mac("52:54:00:56:44:32");
    negated.negated = true;
    let sub = ChainName::new("ipv4-ip").unwrap();
    let ether = |value| {
        Match::EtherType(Negatable {
            value,
            negated: false,
        })
    };
    let rs = ruleset(&program(vec![
        chain(
            IrFamily::Bridge,
            IrRole::BridgeSub {
                dir: BridgeDir::FromVm,
                name: sub.clone(),
                priority: -710,
            },
            vec![rule(vec![Match::MacSrc(negated)], Verdict::Drop)],
        ),
        chain(
            IrFamily::Bridge,
            IrRole::BridgeRoot(BridgeDir::FromVm),
            vec![
                rule(vec![ether(0x0800)], Verdict::Jump(sub)),
                rule(vec![ether(0x0806)], Verdict::Accept),
                rule(
                    vec![Match::ArpGratuitous { negated: true }],
                    Verdict::Reject,
                ),
            ],
        ),
    ]))
    .unwrap();
    assert_eq!(rs.chains[0].name, "I-vnet0-ipv4-ip");
    assert_eq!(
        rs.chains[0].rules[0],
        words("-s ! 52:54:00:56:44:32 -j DROP")
    );
    assert_eq!(rs.chains[1].name, "libvirt-I-vnet0");
    assert_eq!(
        rs.chains[1].rules,
        vec![
            words("-p 0x0800 -j I-vnet0-ipv4-ip"),
            words("-p 0x806 -j ACCEPT"),
            words("! --arp-gratuitous -j DROP"),
        ]
    );
}

#[test]
fn continue_in_iptables_is_a_rule_without_target() {
    let rs = ruleset(&program(vec![chain(
        IrFamily::Ipv6,
        IrRole::ForwardToVm,
        vec![rule(vec![Match::L4(L4Proto::All)], Verdict::Continue)],
    )]))
    .unwrap();
    assert_eq!(rs.chains[0].rules[0], words("-p all"));
}

fn render_error(m: Match) -> String {
    ruleset(&program(vec![chain(
        IrFamily::Ipv4,
        IrRole::HostFromVm,
        vec![rule(vec![Match::L4(L4Proto::All), m], Verdict::Drop)],
    )]))
    .unwrap_err()
    .to_string()
}

#[test]
fn comments_with_line_breaks_or_control_characters_are_refused() {
    for text in ["two\nlines", "carriage\rreturn", "bell\u{7}"] {
        let mut r = rule(vec![Match::L4(L4Proto::All)], Verdict::Drop);
        r.comment = Some(text.into());
        let err = ruleset(&program(vec![chain(
            IrFamily::Ipv4,
            IrRole::HostFromVm,
            vec![r],
        )]))
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("chain HI-vnet0, rule 1: comment"), "{err}");
        assert!(err.contains("control character"), "{err}");
    }
}

#[test]
fn bad_ipset_names_are_refused() {
    for name in ["a\"b", "new\nline", "", "x'y"] {
        let err = render_error(Match::IpSet {
            name: name.into(),
            flags: vec![IpsetDir::Src],
        });
        assert!(err.contains("ipset name"), "{name:?}: {err}");
    }
}

#[test]
fn out_of_range_values_are_refused() {
    let dscp = render_error(Match::Dscp(Negatable {
        value: 64,
        negated: false,
    }));
    assert_eq!(
        dscp,
        "chain HI-vnet0, rule 1: DSCP 64 is out of range (at most 63)"
    );
    let prefix = render_error(Match::IpSrc(AddrMatch {
        addr: Ipv4Addr::LOCALHOST.into(),
        prefix: Some(33),
        negated: false,
    }));
    assert!(prefix.contains("prefix length 33"), "{prefix}");
    let vlan = ruleset(&program(vec![chain(
        IrFamily::Bridge,
        IrRole::BridgeRoot(BridgeDir::ToVm),
        vec![rule(
            vec![Match::VlanId(Negatable {
                value: 4096,
                negated: false,
            })],
            Verdict::Drop,
        )],
    )]))
    .unwrap_err();
    assert!(vlan.to_string().contains("VLAN id 4096"), "{vlan}");
}

fn sample() -> PortRuleset {
    let mut r = tcp_out_accept();
    r.comment = Some("it's \"quoted\" \\ $x".into());
    ruleset(&program(vec![
        chain(
            IrFamily::Bridge,
            IrRole::BridgeRoot(BridgeDir::ToVm),
            vec![rule(vec![], Verdict::Drop)],
        ),
        chain(IrFamily::Ipv4, IrRole::ForwardFromVm, vec![r]),
    ]))
    .unwrap()
}

#[test]
fn commands_create_chains_append_rules_and_hook_the_port() {
    let text = command_lines(&commands(&sample()).unwrap());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "ebtables --concurrent -t nat -N libvirt-O-vnet0",
            "ebtables --concurrent -t nat -A libvirt-O-vnet0 -j DROP",
            "ebtables --concurrent -t nat -A POSTROUTING -o vnet0 -j libvirt-O-vnet0",
            "iptables -w -N FI-vnet0",
            "iptables -w -A FI-vnet0 -p tcp -m mac --mac-source 01:02:03:04:05:06 \
             --destination 10.1.2.3/32 -m dscp --dscp 2 -m conntrack --ctstate NEW,ESTABLISHED \
             -m conntrack --ctdir Original -m comment --comment \
             'it'\\''s \"quoted\" \\ $x' -j RETURN",
            "iptables -w -A libvirt-in -m physdev --physdev-in vnet0 -g FI-vnet0",
            "iptables -w -A libvirt-in-post -m physdev --physdev-in vnet0 -j ACCEPT",
        ]
    );
}

#[test]
fn restore_text_has_one_block_per_family_introduced_by_its_tool() {
    let text = restore_text(&sample()).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "ebtables-restore --noflush",
            "*nat",
            ":libvirt-O-vnet0 ACCEPT",
            "-A libvirt-O-vnet0 -j DROP",
            "-A POSTROUTING -o vnet0 -j libvirt-O-vnet0",
            "COMMIT",
            "iptables-restore -w --noflush",
            "*filter",
            ":FI-vnet0 - [0:0]",
            "-A FI-vnet0 -p tcp -m mac --mac-source 01:02:03:04:05:06 --destination 10.1.2.3/32 \
             -m dscp --dscp 2 -m conntrack --ctstate NEW,ESTABLISHED -m conntrack --ctdir Original \
             -m comment --comment \"it's \\\"quoted\\\" \\\\ $x\" -j RETURN",
            "-A libvirt-in -m physdev --physdev-in vnet0 -g FI-vnet0",
            "-A libvirt-in-post -m physdev --physdev-in vnet0 -j ACCEPT",
            "COMMIT",
        ]
    );
}

#[test]
fn a_hand_made_ruleset_with_a_line_break_is_refused_in_both_formats() {
    let mut rs = sample();
    rs.chains[1].rules[0].push("evil\n-A INPUT -j ACCEPT".into());
    assert!(commands(&rs).is_err());
    assert!(restore_text(&rs).is_err());
}

#[test]
fn a_family_with_rules_gets_all_three_libvirt_chains() {
    let drop = rule(vec![Match::L4(L4Proto::All)], Verdict::Drop);
    let p = program(vec![chain(IrFamily::Ipv4, IrRole::ForwardToVm, vec![drop])]);
    assert_eq!(
        ruleset(&p).unwrap().chains.len(),
        1,
        "the filter's own chains"
    );
    let rs = port_ruleset(&p).unwrap();
    let names: Vec<(Family, &str, usize)> = rs
        .chains
        .iter()
        .map(|c| (c.family, c.name.as_str(), c.rules.len()))
        .collect();
    assert_eq!(
        names,
        [
            (Family::Ipv4, "FO-vnet0", 1),
            (Family::Ipv4, "FI-vnet0", 0),
            (Family::Ipv4, "HI-vnet0", 0),
        ],
        "no ip6tables chains: the port has no IPv6 rules"
    );
    let roles: Vec<Hook> = rs.chains.iter().map(|c| c.role).collect();
    assert_eq!(
        roles,
        [Hook::ForwardToVm, Hook::ForwardFromVm, Hook::HostFromVm]
    );
}

#[test]
fn a_bridge_only_program_gets_no_iptables_chains() {
    let rs = port_ruleset(&program(vec![chain(
        IrFamily::Bridge,
        IrRole::BridgeRoot(BridgeDir::FromVm),
        vec![rule(vec![], Verdict::Drop)],
    )]))
    .unwrap();
    assert!(rs.chains.iter().all(|c| c.family == Family::Bridge));
}
