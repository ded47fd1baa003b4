//! The generated packets: every kind the default filters tell apart
//! (ARP, RARP, IPv4, IPv6 with TCP, UDP and ICMP, other EtherTypes),
//! genuine and spoofed, both directions.

use std::net::Ipv4Addr;

use nwfilter_explain::packet::{mac_text, Packet};
use nwfilter_explain::spec;
use nwfilter_explain::Direction;

/// Who is who on the bridge.
pub struct Parties {
    pub vm_mac: [u8; 6],
    pub vm_ip: Ipv4Addr,
    pub peer_mac: [u8; 6],
    pub peer_ip: Ipv4Addr,
}

/// A MAC nobody on the bridge has.
const STRANGER: &str = "52:54:00:aa:bb:cc";
const BROADCAST: &str = "ff:ff:ff:ff:ff:ff";

/// Every packet with its direction and description (the description is
/// how a disagreement is reported).
pub fn generate(p: &Parties) -> Vec<(Direction, String, Packet)> {
    let vm_mac = mac_text(&p.vm_mac);
    let peer_mac = mac_text(&p.peer_mac);
    let mut out = Vec::new();
    // From the VM: its own MAC and a stranger's, always to broadcast (a
    // unicast MAC the bridge has not learned would be flooded anyway).
    for src in [vm_mac.as_str(), STRANGER] {
        let mac = format!("mac src={src} dst={BROADCAST}");
        for body in bodies(p, Direction::Out, src) {
            out.push((Direction::Out, format!("{mac} {body}")));
        }
    }
    // To the VM: from the peer's MAC and a stranger's (never the VM's
    // own: the bridge would learn it on the peer's port), to the VM's MAC
    // and to broadcast.
    for src in [peer_mac.as_str(), "52:54:00:cc:dd:ee"] {
        for dst in [vm_mac.as_str(), BROADCAST] {
            let mac = format!("mac src={src} dst={dst}");
            for body in bodies(p, Direction::In, src) {
                out.push((Direction::In, format!("{mac} {body}")));
            }
        }
    }
    out.into_iter()
        .map(|(d, text)| {
            let packet = spec::parse(&text, d, p.vm_mac)
                .unwrap_or_else(|e| panic!("generated {text:?}: {e}"));
            (d, text, packet)
        })
        .collect()
}

/// The network layers sent with one Ethernet header.
fn bodies(p: &Parties, d: Direction, src_mac: &str) -> Vec<String> {
    let (own, other) = match d {
        Direction::Out => (p.vm_ip, p.peer_ip),
        Direction::In => (p.peer_ip, p.vm_ip),
    };
    let spoofed = Ipv4Addr::new(10, 77, 0, 99);
    let mut out = Vec::new();
    // ARP: genuine, spoofed sender IP, spoofed sender MAC, DHCP probe,
    // gratuitous; requests and replies.
    for op in ["request", "reply"] {
        for (sha, spa) in [
            (src_mac, own),
            (src_mac, spoofed),
            (STRANGER, own),
            (src_mac, Ipv4Addr::UNSPECIFIED),
        ] {
            out.push(format!("arp op={op} sha={sha} spa={spa} tpa={other}"));
        }
        out.push(format!("arp op={op} sha={src_mac} spa={own} tpa={own}"));
    }
    // RARP: qemu's announcement (sender and target its MAC), and others.
    for op in ["rarp-request", "rarp-reply", "request"] {
        for tha in [src_mac, "00:00:00:00:00:00"] {
            out.push(format!("rarp op={op} sha={src_mac} tha={tha}"));
        }
    }
    out.push(format!(
        "rarp op=rarp-request sha={STRANGER} tha={STRANGER}"
    ));
    // IPv4 from the right and wrong addresses, to the peer, to broadcast.
    for src in [own, spoofed, Ipv4Addr::UNSPECIFIED] {
        for dst in [other, Ipv4Addr::BROADCAST, Ipv4Addr::new(10, 77, 0, 1)] {
            for l4 in [
                "tcp dport=22",
                "tcp sport=25 dport=40000 flags=ack",
                "udp sport=68 dport=67",
                "udp sport=67 dport=68",
                "udp dport=53",
                "icmp type=8",
                "icmp type=0",
                "proto=47",
            ] {
                out.push(format!("ip src={src} dst={dst} {l4}"));
            }
        }
    }
    // IPv6: link-local, the lab's ULA, a stranger's.
    for src in ["fe80::5054:ff:fe00:a", "fd77::10", "2001:db8::99"] {
        for l4 in [
            "tcp dport=22",
            "udp sport=546 dport=547",
            "icmpv6 type=128",
            "icmpv6 type=135",
        ] {
            out.push(format!("ipv6 src={src} dst=ff02::1 {l4}"));
        }
    }
    // Other EtherTypes (LLDP, a local experimental one).
    out.push("type=0x88cc".to_owned());
    out.push("type=0x88b5".to_owned());
    out
}
