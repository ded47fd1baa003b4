//! What one captured frame tells us about the guest's IPv4 addresses.
//!
//! Pure: a frame, the side of the port it was seen on and the guest's MAC
//! in; an [`Observation`] (or nothing) out. Frames are parsed with
//! etherparse (Ethernet, ARP, IPv4, UDP) and our own strict DHCP parser
//! ([`crate::dhcp`]); nothing here panics on any input.
//!
//! Only untagged IPv4 and ARP frames count: the learning rules pass
//! nothing else (`-p ipv4`, `-p 0x806`), and a VLAN- or QinQ-tagged frame
//! that the port drops must not teach an address (issue 23, item 9).
//!
//! Which frames count follows libvirt's learner (lowering reference §7.2,
//! §7.3), with three deliberate differences, each closing a way for one
//! guest to make us learn a wrong address:
//! * the side of the port is checked, not only MAC addresses: a "server
//!   reply" must be delivered *to* the guest (a guest cannot make us learn
//!   by sending a forged DHCPACK itself), and the guest's own traffic must
//!   come *from* its port (another guest using its MAC does not count);
//! * ARP counts (libvirt's ARP branch is unreachable code): the sender
//!   address of an ARP request or reply whose sender hardware address is
//!   the guest's; probes (sender 0.0.0.0) do not count, and neither does
//!   the target of a request (that is the address the guest looks for);
//! * DHCPDECLINE counts when sent by the guest (the client declines), not
//!   when seen towards it.

use std::net::Ipv4Addr;

use crate::dhcp::{self, DhcpMessage};
use etherparse::{ArpHardwareId, ArpOperation, EtherType, LinkSlice, NetSlice, SlicedPacket};
use etherparse::{IpNumber, TransportSlice};

/// Which way a frame crossed the port (the host side of the guest's NIC).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Sent by the guest (received on the port).
    FromGuest,
    /// Delivered to the guest (transmitted on the port).
    ToGuest,
}

/// A DHCP lease time (option 51).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseTime {
    /// Seconds from now. A reply without option 51 has 0: the lease
    /// expires at once, as in libvirt.
    Secs(u32),
    /// `0xffffffff`: the lease never expires.
    Infinite,
}

/// A server's answer to the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReplyKind {
    Offer,
    Ack,
}

/// What a frame says about the guest's addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Observation {
    /// The guest used `0` as its own address (IPv4 source or ARP sender).
    GuestAddress(Ipv4Addr),
    /// A DHCP server (IPv4 source `server`) offered or acknowledged `addr`
    /// for the guest's MAC.
    ServerReply {
        kind: ReplyKind,
        addr: Ipv4Addr,
        server: Ipv4Addr,
        lease: LeaseTime,
    },
    /// The guest gave `0` back (DHCPRELEASE) or refused it (DHCPDECLINE).
    Released(Ipv4Addr),
}

/// The DHCP ports (RFC 2131).
const SERVER_PORT: u16 = 67;
const CLIENT_PORT: u16 = 68;
const BROADCAST: [u8; 6] = [0xff; 6];
/// The EtherTypes the learning rules let through (untagged).
const ETHERTYPE_IPV4: [u8; 2] = [0x08, 0x00];
const ETHERTYPE_ARP: [u8; 2] = [0x08, 0x06];

/// Classifies one Ethernet frame seen on the guest's port.
pub fn classify(frame: &[u8], dir: Direction, guest: [u8; 6]) -> Option<Observation> {
    let ethertype = frame.get(12..14)?;
    if ethertype != ETHERTYPE_IPV4 && ethertype != ETHERTYPE_ARP {
        return None;
    }
    let packet = SlicedPacket::from_ethernet(frame).ok()?;
    let Some(LinkSlice::Ethernet2(eth)) = &packet.link else {
        return None;
    };
    match dir {
        Direction::FromGuest if eth.source() == guest => from_guest(&packet, guest),
        // A server never uses the guest's MAC: such a frame is a forgery.
        Direction::ToGuest
            if eth.source() != guest
                && (eth.destination() == guest || eth.destination() == BROADCAST) =>
        {
            to_guest(&packet, guest)
        }
        _ => None,
    }
}

fn from_guest(packet: &SlicedPacket<'_>, guest: [u8; 6]) -> Option<Observation> {
    match packet.net.as_ref()? {
        NetSlice::Ipv4(ip) => {
            if let Some(msg) = dhcp(packet, CLIENT_PORT, SERVER_PORT) {
                if let Some(released) = released(&msg, guest) {
                    return Some(released);
                }
            }
            let source = ip.header().source_addr();
            usable(source).then_some(Observation::GuestAddress(source))
        }
        NetSlice::Arp(arp) => {
            let ethernet_ipv4 = arp.hw_addr_type() == ArpHardwareId::ETHERNET
                && arp.proto_addr_type() == EtherType::IPV4
                && arp.hw_addr_size() == 6
                && arp.proto_addr_size() == 4;
            let op = arp.operation();
            let ours = arp.sender_hw_addr() == guest;
            if !(ethernet_ipv4
                && ours
                && (op == ArpOperation::REQUEST || op == ArpOperation::REPLY))
            {
                return None;
            }
            let sender: [u8; 4] = arp.sender_protocol_addr().try_into().ok()?;
            let sender = Ipv4Addr::from(sender);
            usable(sender).then_some(Observation::GuestAddress(sender))
        }
        NetSlice::Ipv6(_) => None,
    }
}

fn to_guest(packet: &SlicedPacket<'_>, guest: [u8; 6]) -> Option<Observation> {
    let NetSlice::Ipv4(ip) = packet.net.as_ref()? else {
        return None;
    };
    let msg = dhcp(packet, SERVER_PORT, CLIENT_PORT)?;
    if msg.op != dhcp::BOOT_REPLY || !for_guest(&msg, guest) {
        return None;
    }
    let kind = match msg.message_type? {
        dhcp::OFFER => ReplyKind::Offer,
        dhcp::ACK => ReplyKind::Ack,
        _ => return None,
    };
    let addr = msg.yiaddr;
    if !usable(addr) {
        return None;
    }
    let lease = match msg.lease_time {
        Some(u32::MAX) => LeaseTime::Infinite,
        Some(secs) => LeaseTime::Secs(secs),
        None => LeaseTime::Secs(0),
    };
    Some(Observation::ServerReply {
        kind,
        addr,
        server: ip.header().source_addr(),
        lease,
    })
}

/// A DHCPRELEASE (address in `ciaddr`) or DHCPDECLINE (address in option
/// 50) from the guest for its own MAC.
fn released(msg: &DhcpMessage, guest: [u8; 6]) -> Option<Observation> {
    if msg.op != dhcp::BOOT_REQUEST || !for_guest(msg, guest) {
        return None;
    }
    let addr = match msg.message_type? {
        dhcp::RELEASE => msg.ciaddr,
        dhcp::DECLINE => msg.requested?,
        _ => return None,
    };
    usable(addr).then_some(Observation::Released(addr))
}

/// The message's client hardware address is the guest's MAC.
fn for_guest(msg: &DhcpMessage, guest: [u8; 6]) -> bool {
    msg.hlen == 6 && msg.chaddr[..6] == guest
}

/// The DHCP message carried by a UDP datagram `sport` → `dport`, if the
/// frame is one and it parses (magic cookie, every option's length).
fn dhcp(packet: &SlicedPacket<'_>, sport: u16, dport: u16) -> Option<DhcpMessage> {
    let NetSlice::Ipv4(ip) = packet.net.as_ref()? else {
        return None;
    };
    if ip.payload_ip_number() != IpNumber::UDP {
        return None;
    }
    let Some(TransportSlice::Udp(udp)) = &packet.transport else {
        return None;
    };
    if udp.source_port() != sport || udp.destination_port() != dport {
        return None;
    }
    dhcp::parse(udp.payload()).ok()
}

/// An address a guest can own: not 0.0.0.0, not multicast, class E or
/// broadcast (libvirt: below 224.0.0.0).
fn usable(addr: Ipv4Addr) -> bool {
    !addr.is_unspecified() && addr < Ipv4Addr::new(224, 0, 0, 0)
}

#[cfg(test)]
#[path = "classify_tests.rs"]
pub(crate) mod tests;
