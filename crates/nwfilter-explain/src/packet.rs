//! One packet as explain sees it: the header fields the IR's matches test,
//! plus what the kernel knows beside the bytes (connection state, ipset
//! membership, whether the host itself is the destination).

use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_RARP: u16 = 0x8035;
pub const ETHERTYPE_VLAN: u16 = 0x8100;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;

/// The STP bridge-group address BPDUs are sent to.
pub const STP_GROUP: [u8; 6] = [0x01, 0x80, 0xc2, 0, 0, 0];

/// Which way the packet crosses the port, seen from the VM (as a rule's
/// `direction`): `out` is sent by the VM, `in` is delivered to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    In,
    Out,
}

/// A packet with everything the IR's matches may ask about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Packet {
    pub src_mac: [u8; 6],
    pub dst_mac: [u8; 6],
    /// The frame's EtherType (0x8100 for a VLAN-tagged frame).
    pub ether_type: u16,
    pub vlan: Option<Vlan>,
    pub net: Net,
    /// Conntrack's view of the packet (IPv4/IPv6 chains only).
    pub ct: CtState,
    pub ct_reply: bool,
    /// The ipsets the packet's addresses are members of (by set name).
    pub ipsets: Vec<String>,
    /// The packet is addressed to the host itself (the IP layer's
    /// host-from-VM chain instead of the forward chains).
    pub to_host: bool,
}

/// The 802.1Q tag of a VLAN frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Vlan {
    pub id: u16,
    /// The EtherType of what the tag encapsulates.
    pub encap: u16,
}

/// What the Ethernet payload is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Net {
    /// ARP or RARP (the EtherType tells which).
    Arp(Arp),
    Ip(Ip),
    Stp(Stp),
    /// Anything else: only the Ethernet header is known.
    Other,
}

/// An ARP/RARP body (Ethernet and IPv4 sizes: other sizes are kept out
/// by the parsers, and an address match never holds on them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Arp {
    pub htype: u16,
    pub ptype: u16,
    pub opcode: u16,
    /// Hardware and protocol address lengths.
    pub hlen: u8,
    pub plen: u8,
    pub sha: [u8; 6],
    pub spa: Ipv4Addr,
    pub tha: [u8; 6],
    pub tpa: Ipv4Addr,
}

/// An IPv4 or IPv6 header with its layer-4 header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ip {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// Protocol (IPv4) or final next header (IPv6).
    pub protocol: u8,
    /// The TOS (IPv4) or traffic-class (IPv6) byte.
    pub tos: u8,
    pub l4: L4,
    /// An ICMPv6 message of at least 24 bytes right behind the IPv6 header
    /// (next header 58, no extension header): what the neighbour-discovery
    /// matches read. Only frames carry one (a packet described by fields
    /// has no ND body, and no ND match holds for it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nd: Option<NdBody>,
}

/// The bytes of an ICMPv6 message that directly follows its IPv6 header,
/// as the fixed-offset neighbour-discovery matches see it (`Match::Nd`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NdBody {
    /// The whole ICMPv6 message, header included.
    pub message: Vec<u8>,
}

impl Ip {
    pub fn is_v4(&self) -> bool {
        self.src.is_ipv4()
    }
}

/// The layer-4 header fields matches read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum L4 {
    /// TCP, UDP, UDP-Lite or SCTP ports (`protocol` tells which), with
    /// TCP's flags and option kinds.
    Ports {
        sport: u16,
        dport: u16,
        tcp_flags: u8,
        tcp_options: Vec<u8>,
    },
    Icmp {
        icmp_type: u8,
        code: u8,
    },
    Other,
}

/// A BPDU's fields (configuration fields only in a configuration BPDU).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Stp {
    pub bpdu_type: u8,
    pub flags: u8,
    pub root_priority: u16,
    pub root_addr: [u8; 6],
    pub root_cost: u32,
    pub sender_priority: u16,
    pub sender_addr: [u8; 6],
    pub port: u16,
    pub message_age: u16,
    pub max_age: u16,
    pub hello_time: u16,
    pub forward_delay: u16,
}

/// The configuration BPDU type (the others carry no configuration).
pub const BPDU_CONFIG: u8 = 0x00;

/// Conntrack's state for the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CtState {
    New,
    Established,
    Related,
    Invalid,
}

impl Packet {
    /// The EtherType of the network layer (inside a VLAN tag if any).
    pub fn inner_type(&self) -> u16 {
        self.vlan.map_or(self.ether_type, |v| v.encap)
    }

    /// The IP header, when the frame is untagged IPv4/IPv6 (what the
    /// bridge `ip`/`ipv6` matches and br_netfilter see).
    pub fn ip(&self) -> Option<&Ip> {
        match &self.net {
            Net::Ip(ip) if self.vlan.is_none() => Some(ip),
            _ => None,
        }
    }

    pub fn arp(&self) -> Option<&Arp> {
        match &self.net {
            Net::Arp(arp) if self.vlan.is_none() => Some(arp),
            _ => None,
        }
    }
}

/// `52:54:00:ab:cd:ef`.
pub fn mac_text(mac: &[u8; 6]) -> String {
    let b = mac;
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[0], b[1], b[2], b[3], b[4], b[5]
    )
}
