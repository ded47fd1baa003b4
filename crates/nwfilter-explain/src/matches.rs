//! One IR match against one packet, with the kernel's semantics: the
//! ebtables/iptables modules and the nft expressions our backends render
//! test the same fields the same way, so one function serves both.
//!
//! A field the packet does not have (an ARP field of an IPv4 frame, ports
//! of an ICMP packet) never matches, negated or not: the kernel modules
//! return "no match" before applying the inversion.

use std::net::IpAddr;

use nwfilter_compile::ir::{
    AddrMatch, AddrRange, ConnDir, ConnStates, IpVersion, L4Proto, MacMatch, Match, NdField,
    NdMatch, Negatable, PortRange, StpField,
};

use crate::packet::{
    Arp, CtState, Ip, Packet, Stp, BPDU_CONFIG, ETHERTYPE_IPV4, ETHERTYPE_IPV6, L4, STP_GROUP,
};

/// Whether `m` holds for `p`.
pub fn holds(m: &Match, p: &Packet) -> bool {
    match m {
        Match::MacSrc(mm) => mac(mm, &p.src_mac),
        Match::MacDst(mm) => mac(mm, &p.dst_mac),
        Match::EtherType(n) => neg(n, p.ether_type == n.value),
        Match::EtherIp(v) => {
            let t = match v {
                IpVersion::V4 => ETHERTYPE_IPV4,
                IpVersion::V6 => ETHERTYPE_IPV6,
            };
            p.ether_type == t
        }
        Match::StpBpdu => p.dst_mac == STP_GROUP,
        Match::VlanId(n) => p.vlan.is_some_and(|v| neg(n, v.id == n.value)),
        Match::VlanEncap(n) => p.vlan.is_some_and(|v| neg(n, v.encap == n.value)),
        Match::StpType(n) => stp(p).is_some_and(|s| neg(n, s.bpdu_type == n.value)),
        Match::StpFlags(n) => config(p, |s| neg(n, s.flags == n.value)),
        Match::StpRange(field, r) => config(p, |s| range(r, stp_field(s, *field))),
        Match::StpRootAddr(mm) => config(p, |s| mac(mm, &s.root_addr)),
        Match::StpSenderAddr(mm) => config(p, |s| mac(mm, &s.sender_addr)),
        Match::ArpHwType(n) => p.arp().is_some_and(|a| neg(n, a.htype == n.value)),
        Match::ArpOpcode(n) => p.arp().is_some_and(|a| neg(n, a.opcode == n.value)),
        Match::ArpProtoType(n) => p.arp().is_some_and(|a| neg(n, a.ptype == n.value)),
        Match::ArpIpSrc(am) => arp_ip(p).is_some_and(|a| addr(am, IpAddr::V4(a.spa))),
        Match::ArpIpDst(am) => arp_ip(p).is_some_and(|a| addr(am, IpAddr::V4(a.tpa))),
        Match::ArpMacSrc(mm) => arp_eth(p).is_some_and(|a| mac(mm, &a.sha)),
        Match::ArpMacDst(mm) => arp_eth(p).is_some_and(|a| mac(mm, &a.tha)),
        Match::ArpGratuitous { negated } => arp_ip(p).is_some_and(|a| (a.spa == a.tpa) != *negated),
        Match::IpSrc(am) => p.ip().is_some_and(|ip| addr(am, ip.src)),
        Match::IpDst(am) => p.ip().is_some_and(|ip| addr(am, ip.dst)),
        Match::IpSrcRange(r) => p.ip().is_some_and(|ip| addr_range(r, ip.src)),
        Match::IpDstRange(r) => p.ip().is_some_and(|ip| addr_range(r, ip.dst)),
        Match::IpProtocol(n) => p.ip().is_some_and(|ip| neg(n, ip.protocol == n.value)),
        Match::IpTos(n) => p.ip().is_some_and(|ip| neg(n, ip.tos == n.value)),
        Match::Dscp(n) => p.ip().is_some_and(|ip| neg(n, ip.tos >> 2 == n.value)),
        Match::L4(proto) => p.ip().is_some_and(|ip| l4_proto(*proto, ip)),
        Match::SrcPort(r) => ports(p).is_some_and(|(s, _)| range(r, s)),
        Match::DstPort(r) => ports(p).is_some_and(|(_, d)| range(r, d)),
        Match::TcpFlags { mask, set, negated } => {
            tcp(p).is_some_and(|(flags, _)| (flags & mask == *set) != *negated)
        }
        Match::TcpOption(n) => tcp(p).is_some_and(|(_, opts)| neg(n, opts.contains(&n.value))),
        Match::IcmpType {
            icmp_type,
            code,
            negated,
        } => icmp(p).is_some_and(|(t, c)| {
            (t == *icmp_type && code.is_none_or(|want| want == c)) != *negated
        }),
        Match::Icmpv6Ranges {
            types,
            codes,
            negated,
        } => icmpv6(p).is_some_and(|(t, c)| {
            let inside = (types.0..=types.1).contains(&t) && (codes.0..=codes.1).contains(&c);
            inside != *negated
        }),
        Match::Nd(nd) => neighbour_discovery(nd, p),
        Match::ConnState(states) => state(states, p.ct),
        Match::ConnDir(dir) => match dir {
            ConnDir::Original => !p.ct_reply,
            ConnDir::Reply => p.ct_reply,
        },
        Match::IpSet { name, .. } => p.ipsets.iter().any(|s| s == name),
        // The packet is the only connection explain knows of: one.
        Match::ConnlimitAbove(n) => neg(n, 1 > n.value),
    }
}

/// Whether the match depends on state outside the packet's bytes, and so
/// on an assumption explain states with its answer.
pub fn assumption(m: &Match) -> Option<&'static str> {
    match m {
        Match::ConnState(_) | Match::ConnDir(_) => Some(
            "conntrack state taken from the packet description (default: ct state=new, \
             original direction)",
        ),
        Match::IpSet { .. } => Some(
            "ipset membership taken from the packet description (`ipset NAME`; default: \
             member of none)",
        ),
        Match::ConnlimitAbove(_) => {
            Some("connlimit counts the packet's own connection only (no other connections)")
        }
        _ => None,
    }
}

fn neg<T>(n: &Negatable<T>, equal: bool) -> bool {
    equal != n.negated
}

fn mac(m: &MacMatch, actual: &[u8; 6]) -> bool {
    let want = m.addr.as_bytes();
    let mask = m.mask.map_or([0xff; 6], |mask| {
        let b = mask.as_bytes();
        [b[0], b[1], b[2], b[3], b[4], b[5]]
    });
    let equal = (0..6).all(|i| actual[i] & mask[i] == want[i] & mask[i]);
    equal != m.negated
}

/// Prefix comparison; no prefix is a host address (as the tools read it).
fn addr(m: &AddrMatch, actual: IpAddr) -> bool {
    let inside = match (m.addr, actual) {
        (IpAddr::V4(want), IpAddr::V4(got)) => {
            let bits = u32::from(m.prefix.unwrap_or(32).min(32));
            let mask = u32::MAX.checked_shl(32 - bits).unwrap_or(0);
            u32::from(want) & mask == u32::from(got) & mask
        }
        (IpAddr::V6(want), IpAddr::V6(got)) => {
            let bits = u32::from(m.prefix.unwrap_or(128).min(128));
            let mask = u128::MAX.checked_shl(128 - bits).unwrap_or(0);
            u128::from(want) & mask == u128::from(got) & mask
        }
        // Another family's address is not this field at all.
        _ => return false,
    };
    inside != m.negated
}

fn addr_range(r: &AddrRange, actual: IpAddr) -> bool {
    let to = r.to.unwrap_or(r.from);
    let inside = match (r.from, to, actual) {
        (IpAddr::V4(a), IpAddr::V4(b), IpAddr::V4(x)) => a <= x && x <= b,
        (IpAddr::V6(a), IpAddr::V6(b), IpAddr::V6(x)) => a <= x && x <= b,
        _ => return false,
    };
    inside != r.negated
}

fn range<T: PartialOrd + Copy>(r: &PortRange<T>, actual: T) -> bool {
    let end = r.end.unwrap_or(r.start);
    (r.start <= actual && actual <= end) != r.negated
}

fn l4_proto(proto: L4Proto, ip: &Ip) -> bool {
    let number = match proto {
        L4Proto::Tcp => 6,
        L4Proto::Udp => 17,
        L4Proto::Udplite => 136,
        L4Proto::Sctp => 132,
        L4Proto::Icmp => 1,
        L4Proto::Icmpv6 => 58,
        L4Proto::Igmp => 2,
        L4Proto::Esp => 50,
        L4Proto::Ah => 51,
        L4Proto::All => return true,
    };
    ip.protocol == number
}

fn ports(p: &Packet) -> Option<(u16, u16)> {
    match &p.ip()?.l4 {
        L4::Ports { sport, dport, .. } => Some((*sport, *dport)),
        _ => None,
    }
}

fn tcp(p: &Packet) -> Option<(u8, &[u8])> {
    let ip = p.ip().filter(|ip| ip.protocol == 6)?;
    match &ip.l4 {
        L4::Ports {
            tcp_flags,
            tcp_options,
            ..
        } => Some((*tcp_flags, tcp_options)),
        _ => None,
    }
}

fn icmp(p: &Packet) -> Option<(u8, u8)> {
    match &p.ip()?.l4 {
        L4::Icmp { icmp_type, code } => Some((*icmp_type, *code)),
        _ => None,
    }
}

/// A neighbour-discovery field at its fixed place (the backends read raw
/// bytes after pinning the ICMPv6 header right behind the IPv6 header):
/// no such message, or one too short for the field, never matches,
/// negated or not, as a raw payload load that runs out fails the rule.
fn neighbour_discovery(nd: &NdMatch, p: &Packet) -> bool {
    let Some(msg) = p.ip().and_then(|ip| ip.icmpv6_message.as_deref()) else {
        return false;
    };
    match nd.field {
        NdField::Target(addr) => msg.len() >= 24 && ((msg[8..24] == addr.octets()) != nd.negated),
        NdField::LinkLayer(want) => {
            let holds = msg.len() == 32
                && matches!(msg[24], 1 | 2)
                && msg[25] == 1
                && msg[26..32] == *want.as_bytes();
            holds != nd.negated
        }
        NdField::Options(with) => {
            let holds = if with {
                msg.len() > 24
            } else {
                msg.len() == 24
            };
            holds != nd.negated
        }
    }
}

fn icmpv6(p: &Packet) -> Option<(u8, u8)> {
    let ip = p.ip().filter(|ip| !ip.is_v4() && ip.protocol == 58)?;
    match &ip.l4 {
        L4::Icmp { icmp_type, code } => Some((*icmp_type, *code)),
        _ => None,
    }
}

/// ebtables' ARP address matches need an Ethernet/IPv4 ARP body.
fn arp_ip(p: &Packet) -> Option<&Arp> {
    p.arp().filter(|a| a.ptype == ETHERTYPE_IPV4 && a.plen == 4)
}

fn arp_eth(p: &Packet) -> Option<&Arp> {
    p.arp().filter(|a| a.htype == 1 && a.hlen == 6)
}

fn stp(p: &Packet) -> Option<&Stp> {
    match &p.net {
        crate::packet::Net::Stp(s) if p.dst_mac == STP_GROUP => Some(s),
        _ => None,
    }
}

/// ebtables' stp match checks configuration fields only in configuration
/// BPDUs: any other BPDU passes them.
fn config(p: &Packet, test: impl Fn(&Stp) -> bool) -> bool {
    stp(p).is_some_and(|s| s.bpdu_type != BPDU_CONFIG || test(s))
}

fn stp_field(s: &Stp, field: StpField) -> u32 {
    match field {
        StpField::RootPriority => u32::from(s.root_priority),
        StpField::RootCost => s.root_cost,
        StpField::SenderPriority => u32::from(s.sender_priority),
        StpField::Port => u32::from(s.port),
        StpField::MessageAge => u32::from(s.message_age),
        StpField::MaxAge => u32::from(s.max_age),
        StpField::HelloTime => u32::from(s.hello_time),
        StpField::ForwardDelay => u32::from(s.forward_delay),
    }
}

fn state(states: &ConnStates, ct: CtState) -> bool {
    match ct {
        CtState::New => states.new,
        CtState::Established => states.established,
        CtState::Related => states.related,
        CtState::Invalid => states.invalid,
    }
}

#[cfg(test)]
#[path = "matches_tests.rs"]
mod tests;
