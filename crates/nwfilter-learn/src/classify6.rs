//! What one captured IPv6 frame tells us about the guest's IPv6 addresses
//! (issue 16): the building block of IPv6 learning, pure like
//! [`crate::classify`] (a frame, its side of the port and the guest's
//! MAC in; an [`Observation6`] or nothing out; never a panic).
//!
//! Semantics follow the standards (reference `ipv6.md`):
//! * `any` (FCFS SAVI, RFC 6620): the guest claims an address by duplicate
//!   address detection (a neighbour solicitation from `::` whose target is
//!   the address) or by its first use as a source. Link-local addresses
//!   count like any other (stable-privacy and temporary ones are not
//!   derived from the MAC).
//! * `dhcp` (SAVI for DHCP, RFC 7513): a DHCPv6 Reply delivered to the
//!   guest assigns the addresses of its IA_NA / IA_TA options; a Release
//!   or Decline from the guest gives them back. Whether the server is
//!   trusted is the caller's decision (the Reply's IPv6 source is given).
//!
//! As for IPv4, the side of the port is checked: a Reply counts only when
//! delivered *to* the guest's own MAC by another MAC, the guest's own
//! claims only when they come *from* its port with its MAC; only untagged
//! IPv6 frames count.

use std::net::Ipv6Addr;

use etherparse::{IpNumber, LinkSlice, NetSlice, SlicedPacket, TransportSlice};

use crate::classify::Direction;
use crate::dhcp6;

/// How the guest claimed an address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// Duplicate address detection: a neighbour solicitation from `::`.
    Dad,
    /// The address was the source of a packet the guest sent.
    FirstUse,
}

/// What an IPv6 frame says about the guest's addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observation6 {
    /// The guest claimed `addr` (`CTRL_IP_LEARNING=any`).
    Claimed { addr: Ipv6Addr, by: Claim },
    /// A DHCPv6 server (IPv6 source `server`) assigned these addresses to
    /// the guest in a Reply, each with its valid lifetime in seconds
    /// (`u32::MAX`: infinite; 0: withdrawn).
    Assigned {
        server: Ipv6Addr,
        addrs: Vec<(Ipv6Addr, u32)>,
    },
    /// The guest gave these back (Release) or refused them (Decline).
    Released(Vec<Ipv6Addr>),
}

const ETHERTYPE_IPV6: [u8; 2] = [0x86, 0xdd];
const CLIENT_PORT: u16 = 546;
const SERVER_PORT: u16 = 547;
/// ICMPv6 neighbour solicitation (RFC 4861).
const NEIGHBOR_SOLICITATION: u8 = 135;

/// Classifies one Ethernet frame seen on the guest's port.
pub fn classify_v6(frame: &[u8], dir: Direction, guest: [u8; 6]) -> Option<Observation6> {
    if frame.get(12..14)? != ETHERTYPE_IPV6 {
        return None;
    }
    let packet = SlicedPacket::from_ethernet(frame).ok()?;
    let Some(LinkSlice::Ethernet2(eth)) = &packet.link else {
        return None;
    };
    let Some(NetSlice::Ipv6(ip)) = &packet.net else {
        return None;
    };
    let source = ip.header().source_addr();
    match dir {
        Direction::FromGuest if eth.source() == guest => from_guest(&packet, source),
        // A server never uses the guest's MAC: such a frame is a forgery.
        Direction::ToGuest if eth.source() != guest && eth.destination() == guest => {
            let msg = dhcpv6(&packet, SERVER_PORT, CLIENT_PORT)?;
            if msg.msg_type != dhcp6::REPLY {
                return None;
            }
            let addrs: Vec<(Ipv6Addr, u32)> = msg
                .addresses
                .iter()
                .filter(|a| usable(a.addr))
                .map(|a| (a.addr, a.valid_lifetime))
                .collect();
            (!addrs.is_empty()).then_some(Observation6::Assigned {
                server: source,
                addrs,
            })
        }
        _ => None,
    }
}

fn from_guest(packet: &SlicedPacket<'_>, source: Ipv6Addr) -> Option<Observation6> {
    if let Some(msg) = dhcpv6(packet, CLIENT_PORT, SERVER_PORT) {
        if matches!(msg.msg_type, dhcp6::RELEASE | dhcp6::DECLINE) {
            let addrs: Vec<Ipv6Addr> = msg
                .addresses
                .iter()
                .map(|a| a.addr)
                .filter(|a| usable(*a))
                .collect();
            return (!addrs.is_empty()).then_some(Observation6::Released(addrs));
        }
    }
    if source.is_unspecified() {
        let target = dad_target(packet)?;
        return usable(target).then_some(Observation6::Claimed {
            addr: target,
            by: Claim::Dad,
        });
    }
    usable(source).then_some(Observation6::Claimed {
        addr: source,
        by: Claim::FirstUse,
    })
}

/// The target of a neighbour solicitation (DAD when sent from `::`).
fn dad_target(packet: &SlicedPacket<'_>) -> Option<Ipv6Addr> {
    let Some(TransportSlice::Icmpv6(icmp)) = &packet.transport else {
        return None;
    };
    if icmp.type_u8() != NEIGHBOR_SOLICITATION || icmp.code_u8() != 0 {
        return None;
    }
    // After type, code, checksum and 4 reserved bytes: the target.
    let target: [u8; 16] = icmp.payload().get(..16)?.try_into().ok()?;
    Some(Ipv6Addr::from(target))
}

/// The DHCPv6 message of a UDP datagram `sport` → `dport`, if it parses.
fn dhcpv6(packet: &SlicedPacket<'_>, sport: u16, dport: u16) -> Option<dhcp6::Dhcp6Message> {
    let Some(NetSlice::Ipv6(ip)) = &packet.net else {
        return None;
    };
    if ip.payload().ip_number != IpNumber::UDP {
        return None;
    }
    let Some(TransportSlice::Udp(udp)) = &packet.transport else {
        return None;
    };
    if udp.source_port() != sport || udp.destination_port() != dport {
        return None;
    }
    dhcp6::parse(udp.payload()).ok()
}

/// An address a guest can own: unicast, not `::`, not loopback, not an
/// IPv4-mapped address.
fn usable(addr: Ipv6Addr) -> bool {
    !(addr.is_unspecified()
        || addr.is_loopback()
        || addr.is_multicast()
        || addr.to_ipv4_mapped().is_some())
}

#[cfg(test)]
#[path = "classify6_tests.rs"]
pub(crate) mod tests;
