//! The restrictive rules a port has while its address is being learned
//! (lowering reference §2.9), as backend-xtables rulesets.
//!
//! They are ebtables-only, like libvirt's: applying one also removes the
//! port's iptables chains (a port under learning rules has no other
//! rules). Unlike libvirt they are applied make-before-break by the
//! backend's applier, so the port is never unfiltered while switching.

use std::net::Ipv4Addr;

use backend_xtables::{ChainRole, Family, PortRuleset, RenderedChain};
use nwfilter_compile::LearningMode;
use nwfilter_model::{IfName, MacAddr6};

/// The rules while learning in `mode` (`None` for `LearningMode::None`,
/// which never learns).
///
/// * `any`: from the guest only frames with its own MAC, only IPv4 and
///   ARP; to the guest everything.
/// * `dhcp`: from the guest only DHCP requests (UDP 68→67) with its MAC;
///   to the guest only DHCP replies (UDP 67→68, to its MAC or broadcast)
///   from one of `servers` (from any server when empty).
pub fn learning(
    port: &IfName,
    mac: MacAddr6,
    mode: LearningMode,
    servers: &[Ipv4Addr],
) -> Option<PortRuleset> {
    let mac = mac_text(mac);
    let chains = match mode {
        LearningMode::None => return None,
        LearningMode::Any => vec![from_guest(
            port,
            vec![
                words(&format!("-s ! {mac} -j DROP")),
                words("-p IPv4 -j ACCEPT"),
                words("-p ARP -j ACCEPT"),
                words("-j DROP"),
            ],
        )],
        LearningMode::Dhcp => vec![
            from_guest(
                port,
                vec![
                    words(&format!(
                        "-s {mac} -p IPv4 --ip-protocol udp --ip-sport 68 --ip-dport 67 -j ACCEPT"
                    )),
                    words("-j DROP"),
                ],
            ),
            to_guest(port, dhcp_replies(&mac, servers)),
        ],
    };
    Some(PortRuleset {
        port: port.clone(),
        chains,
    })
}

/// Everything dropped both ways: learning gave up or failed.
pub fn blocked(port: &IfName) -> PortRuleset {
    PortRuleset {
        port: port.clone(),
        chains: vec![
            from_guest(port, vec![words("-j DROP")]),
            to_guest(port, vec![words("-j DROP")]),
        ],
    }
}

fn dhcp_replies(mac: &str, servers: &[Ipv4Addr]) -> Vec<Vec<String>> {
    let sources: Vec<Option<Ipv4Addr>> = if servers.is_empty() {
        vec![None]
    } else {
        servers.iter().copied().map(Some).collect()
    };
    let mut rules = Vec::new();
    for source in sources {
        let src = source.map_or(String::new(), |s| format!(" --ip-src {s}"));
        for dst in [mac, "ff:ff:ff:ff:ff:ff"] {
            rules.push(words(&format!(
                "-d {dst} -p IPv4 --ip-protocol udp{src} --ip-sport 67 --ip-dport 68 -j ACCEPT"
            )));
        }
    }
    rules.push(words("-j DROP"));
    rules
}

/// `libvirt-I-PORT`: frames the guest sends.
fn from_guest(port: &IfName, rules: Vec<Vec<String>>) -> RenderedChain {
    RenderedChain {
        family: Family::Bridge,
        role: ChainRole::BridgeRootOut,
        name: format!("libvirt-I-{}", port.as_str()),
        rules,
    }
}

/// `libvirt-O-PORT`: frames delivered to the guest.
fn to_guest(port: &IfName, rules: Vec<Vec<String>>) -> RenderedChain {
    RenderedChain {
        family: Family::Bridge,
        role: ChainRole::BridgeRootIn,
        name: format!("libvirt-O-{}", port.as_str()),
        rules,
    }
}

/// ebtables spells MACs in lower case, as the kernel lists them back.
fn mac_text(mac: MacAddr6) -> String {
    mac.to_string().to_ascii_lowercase()
}

/// Splits a rule written for reading into its argument vector (no
/// argument here contains a space).
fn words(rule: &str) -> Vec<String> {
    rule.split(' ').map(String::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn port() -> IfName {
        IfName::new("vnet0").unwrap()
    }

    const MAC: MacAddr6 = MacAddr6::new(0x52, 0x54, 0, 0xab, 0, 0x10);

    fn lines(rules: &PortRuleset) -> Vec<String> {
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
                "libvirt-I-vnet0 -p IPv4 -j ACCEPT",
                "libvirt-I-vnet0 -p ARP -j ACCEPT",
                "libvirt-I-vnet0 -j DROP",
            ]
        );
        assert_eq!(rules.chains[0].role, ChainRole::BridgeRootOut);
    }

    #[test]
    fn dhcp_mode_passes_only_dhcp_and_only_from_trusted_servers() {
        let servers = ["10.0.0.1".parse().unwrap(), "10.0.0.2".parse().unwrap()];
        let rules = learning(&port(), MAC, LearningMode::Dhcp, &servers).unwrap();
        let m = "52:54:00:ab:00:10";
        let reply = |dst: &str, s: &str| {
            format!("libvirt-O-vnet0 -d {dst} -p IPv4 --ip-protocol udp --ip-src {s} --ip-sport 67 --ip-dport 68 -j ACCEPT")
        };
        let bc = "ff:ff:ff:ff:ff:ff";
        assert_eq!(
            lines(&rules),
            [
                format!("libvirt-I-vnet0 -s {m} -p IPv4 --ip-protocol udp --ip-sport 68 --ip-dport 67 -j ACCEPT"),
                "libvirt-I-vnet0 -j DROP".into(),
                reply(m, "10.0.0.1"),
                reply(bc, "10.0.0.1"),
                reply(m, "10.0.0.2"),
                reply(bc, "10.0.0.2"),
                "libvirt-O-vnet0 -j DROP".into(),
            ]
        );
        assert_eq!(rules.chains[1].role, ChainRole::BridgeRootIn);
    }

    #[test]
    fn dhcp_mode_without_servers_accepts_replies_from_any_source() {
        let rules = learning(&port(), MAC, LearningMode::Dhcp, &[]).unwrap();
        let replies = &rules.chains[1].rules;
        assert_eq!(replies.len(), 3);
        assert!(replies.iter().all(|r| !r.contains(&"--ip-src".to_string())));
    }

    #[test]
    fn none_mode_has_no_learning_rules_and_blocked_drops_both_ways() {
        assert_eq!(learning(&port(), MAC, LearningMode::None, &[]), None);
        assert_eq!(
            lines(&blocked(&port())),
            ["libvirt-I-vnet0 -j DROP", "libvirt-O-vnet0 -j DROP"]
        );
    }
}
