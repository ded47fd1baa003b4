//! The restrictive rules a port has while its address is being learned
//! (lowering reference §2.9), as chain IR: whichever backend the caller
//! applies with renders them, exactly like a binding's own rules.
//!
//! They are bridge-only, like libvirt's: applying them replaces all of the
//! port's rules (a port under learning rules has no other rules). Unlike
//! libvirt they are applied make-before-break by the backend's applier,
//! so the port is never unfiltered while switching.

use std::net::{IpAddr, Ipv4Addr};

use nwfilter_compile::ir::{
    AddrMatch, BridgeDir, Chain, ChainRole, Family, IpVersion, MacMatch, Match, Negatable,
    PortRange, Program, Rule, Verdict,
};
use nwfilter_compile::LearningMode;
use nwfilter_model::{IfName, MacAddr6};

const ETHERTYPE_ARP: u16 = 0x0806;
const UDP: u8 = 17;
const BROADCAST: MacAddr6 = MacAddr6::new(0xff, 0xff, 0xff, 0xff, 0xff, 0xff);

/// The rules while learning in `mode` (`None` for `LearningMode::None`,
/// which never learns).
///
/// * `any`: from the guest only frames with its own MAC, only IPv4 and
///   ARP; to the guest everything, except DHCP replies (UDP 67→68) from
///   servers not in `servers` when it is not empty (libvirt lets those
///   through: a rogue server could hand the guest the address we learn).
/// * `dhcp`: from the guest only DHCP requests (UDP 68→67) with its MAC;
///   to the guest only DHCP replies (UDP 67→68, to its MAC or broadcast)
///   from one of `servers` (from any server when empty).
pub fn learning(
    port: &IfName,
    mac: MacAddr6,
    mode: LearningMode,
    servers: &[Ipv4Addr],
) -> Option<Program> {
    let mut chains = match mode {
        LearningMode::None => return None,
        LearningMode::Any => vec![chain(
            BridgeDir::FromVm,
            vec![
                rule(vec![Match::MacSrc(mac_is(mac, true))], Verdict::Drop),
                rule(vec![Match::EtherIp(IpVersion::V4)], Verdict::Accept),
                rule(
                    vec![Match::EtherType(Negatable {
                        value: ETHERTYPE_ARP,
                        negated: false,
                    })],
                    Verdict::Accept,
                ),
                rule(Vec::new(), Verdict::Drop),
            ],
        )],
        LearningMode::Dhcp => vec![
            chain(
                BridgeDir::FromVm,
                vec![
                    rule(
                        [vec![Match::MacSrc(mac_is(mac, false))], udp(None, 68, 67)].concat(),
                        Verdict::Accept,
                    ),
                    rule(Vec::new(), Verdict::Drop),
                ],
            ),
            chain(BridgeDir::ToVm, dhcp_replies(mac, servers)),
        ],
    };
    if mode == LearningMode::Any && !servers.is_empty() {
        chains.push(chain(BridgeDir::ToVm, trusted_replies_only(servers)));
    }
    Some(Program {
        port: port.clone(),
        chains,
    })
}

/// Everything dropped both ways: learning gave up or failed.
pub fn blocked(port: &IfName) -> Program {
    Program {
        port: port.clone(),
        chains: vec![
            chain(BridgeDir::FromVm, vec![rule(Vec::new(), Verdict::Drop)]),
            chain(BridgeDir::ToVm, vec![rule(Vec::new(), Verdict::Drop)]),
        ],
    }
}

fn dhcp_replies(mac: MacAddr6, servers: &[Ipv4Addr]) -> Vec<Rule> {
    let sources: Vec<Option<Ipv4Addr>> = if servers.is_empty() {
        vec![None]
    } else {
        servers.iter().copied().map(Some).collect()
    };
    let mut rules = Vec::new();
    for source in sources {
        for dst in [mac, BROADCAST] {
            let matches = [vec![Match::MacDst(mac_is(dst, false))], udp(source, 67, 68)].concat();
            rules.push(rule(matches, Verdict::Accept));
        }
    }
    rules.push(rule(Vec::new(), Verdict::Drop));
    rules
}

/// `any` mode with trusted servers, towards the guest: their DHCP replies
/// pass, other DHCP replies are dropped, everything else passes.
fn trusted_replies_only(servers: &[Ipv4Addr]) -> Vec<Rule> {
    let mut rules: Vec<Rule> = servers
        .iter()
        .map(|&server| rule(udp(Some(server), 67, 68), Verdict::Accept))
        .collect();
    rules.push(rule(udp(None, 67, 68), Verdict::Drop));
    rules.push(rule(Vec::new(), Verdict::Accept));
    rules
}

/// IPv4 UDP from `sport` to `dport` (and from `source`, when given).
fn udp(source: Option<Ipv4Addr>, sport: u16, dport: u16) -> Vec<Match> {
    let mut matches = vec![
        Match::EtherIp(IpVersion::V4),
        Match::IpProtocol(Negatable {
            value: UDP,
            negated: false,
        }),
    ];
    if let Some(addr) = source {
        matches.push(Match::IpSrc(AddrMatch {
            addr: IpAddr::V4(addr),
            prefix: None,
            negated: false,
        }));
    }
    matches.push(Match::SrcPort(port_is(sport)));
    matches.push(Match::DstPort(port_is(dport)));
    matches
}

/// The port's root chain: frames the guest sends (`FromVm`) or those
/// delivered to it (`ToVm`).
fn chain(dir: BridgeDir, rules: Vec<Rule>) -> Chain {
    Chain {
        family: Family::Bridge,
        role: ChainRole::BridgeRoot(dir),
        rules,
    }
}

fn rule(matches: Vec<Match>, verdict: Verdict) -> Rule {
    Rule {
        matches,
        comment: None,
        verdict,
        // The guest's MAC is written into the rule: these rules are the
        // port's alone.
        per_port: Vec::new(),
    }
}

fn mac_is(addr: MacAddr6, negated: bool) -> MacMatch {
    MacMatch {
        addr,
        mask: None,
        negated,
    }
}

fn port_is(port: u16) -> PortRange<u16> {
    PortRange {
        start: port,
        end: None,
        negated: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nwfilter_driver::{Backend, Rendered};

    fn port() -> IfName {
        IfName::new("vnet0").unwrap()
    }

    const MAC: MacAddr6 = MacAddr6::new(0x52, 0x54, 0, 0xab, 0, 0x10);

    /// Each rule as ebtables words (the xtables backend's rendering), so a
    /// reader sees what the kernel gets.
    fn lines(program: &Program) -> Vec<String> {
        let Rendered::Xtables(rules) =
            Rendered::render(Backend::Xtables, program).expect("renders for ebtables")
        else {
            unreachable!("rendered for xtables");
        };
        let mut out = Vec::new();
        for chain in &rules.chains {
            for rule in &chain.rules {
                out.push(format!("{} {}", chain.name, rule.join(" ")));
            }
        }
        out
    }

    #[test]
    fn any_mode_passes_only_the_guests_ipv4_and_arp() {
        let rules = learning(&port(), MAC, LearningMode::Any, &[]).unwrap();
        assert_eq!(
            lines(&rules),
            [
                "libvirt-I-vnet0 -s ! 52:54:00:ab:00:10 -j DROP",
                "libvirt-I-vnet0 -p ipv4 -j ACCEPT",
                "libvirt-I-vnet0 -p 0x806 -j ACCEPT",
                "libvirt-I-vnet0 -j DROP",
            ]
        );
        assert_eq!(
            rules.chains[0].role,
            ChainRole::BridgeRoot(BridgeDir::FromVm)
        );
    }

    #[test]
    fn any_mode_with_trusted_servers_drops_other_servers_replies_to_the_guest() {
        let servers = ["10.0.0.1".parse().unwrap()];
        let rules = learning(&port(), MAC, LearningMode::Any, &servers).unwrap();
        let to_guest: Vec<String> = lines(&rules)
            .into_iter()
            .filter(|l| l.starts_with("libvirt-O-"))
            .collect();
        let udp = "-p ipv4 --ip-protocol 17";
        let ports = "--ip-source-port 67 --ip-destination-port 68";
        assert_eq!(
            to_guest,
            [
                format!("libvirt-O-vnet0 {udp} --ip-source 10.0.0.1 {ports} -j ACCEPT"),
                format!("libvirt-O-vnet0 {udp} {ports} -j DROP"),
                "libvirt-O-vnet0 -j ACCEPT".into(),
            ]
        );
    }

    #[test]
    fn dhcp_mode_passes_only_dhcp_and_only_from_trusted_servers() {
        let servers = ["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()];
        let rules = learning(&port(), MAC, LearningMode::Dhcp, &servers).unwrap();
        let m = "52:54:00:ab:00:10";
        let reply = |dst: &str, s: &str| {
            format!("libvirt-O-vnet0 -d {dst} -p ipv4 --ip-protocol 17 --ip-source {s} --ip-source-port 67 --ip-destination-port 68 -j ACCEPT")
        };
        let bc = "ff:ff:ff:ff:ff:ff";
        assert_eq!(
            lines(&rules),
            [
                format!("libvirt-I-vnet0 -s {m} -p ipv4 --ip-protocol 17 --ip-source-port 68 --ip-destination-port 67 -j ACCEPT"),
                "libvirt-I-vnet0 -j DROP".into(),
                reply(m, "10.0.0.1"),
                reply(bc, "10.0.0.1"),
                reply(m, "10.0.0.2"),
                reply(bc, "10.0.0.2"),
                "libvirt-O-vnet0 -j DROP".into(),
            ]
        );
        assert_eq!(rules.chains[1].role, ChainRole::BridgeRoot(BridgeDir::ToVm));
    }

    #[test]
    fn dhcp_mode_without_servers_accepts_replies_from_any_source() {
        let rules = learning(&port(), MAC, LearningMode::Dhcp, &[]).unwrap();
        let replies = &rules.chains[1].rules;
        assert_eq!(replies.len(), 3);
        assert!(replies
            .iter()
            .all(|r| !r.matches.iter().any(|m| matches!(m, Match::IpSrc(_)))));
    }

    #[test]
    fn none_mode_has_no_learning_rules_and_blocked_drops_both_ways() {
        assert_eq!(learning(&port(), MAC, LearningMode::None, &[]), None);
        assert_eq!(
            lines(&blocked(&port())),
            ["libvirt-I-vnet0 -j DROP", "libvirt-O-vnet0 -j DROP"]
        );
    }

    #[test]
    fn nftables_renders_every_learning_rule() {
        for mode in [LearningMode::Any, LearningMode::Dhcp] {
            let servers = ["10.0.0.1".parse().unwrap()];
            let program = learning(&port(), MAC, mode, &servers).unwrap();
            Rendered::render(Backend::Nftables, &program).expect("nft can express it");
        }
        Rendered::render(Backend::Nftables, &blocked(&port())).expect("nft can express it");
    }
}
