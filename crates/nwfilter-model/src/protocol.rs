//! The 24 protocol elements of a `<rule>` and, for each, its attributes in
//! libvirt's canonical order with their value kinds.
//!
//! The tables here are the single source of truth for which attribute a
//! protocol accepts, in which order the formatter prints it, and how its
//! value is parsed. libvirt keeps the same information in
//! `nwfilter_conf.c`'s per-protocol `dataTypes` arrays.

use serde::{Deserialize, Serialize};

use crate::attr::{Attr, AttrSpec, ValueKind};

/// The network layer a protocol's rules are lowered to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    /// ebtables (bridge family): `mac`, `vlan`, `stp`, `arp`, `rarp`, `ip`, `ipv6`.
    Ethernet,
    /// iptables: `tcp`, `udp`, ... `all`.
    Ipv4,
    /// ip6tables: `tcp-ipv6`, ... `icmpv6`, `all-ipv6`.
    Ipv6,
}

/// A protocol element name (`<tcp>`, `<arp>`, ...). Names are case-sensitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    Mac,
    Vlan,
    Stp,
    Arp,
    Rarp,
    Ip,
    Ipv6,
    Tcp,
    Udp,
    Udplite,
    Sctp,
    Icmp,
    Igmp,
    Esp,
    Ah,
    All,
    TcpIpv6,
    UdpIpv6,
    UdpliteIpv6,
    SctpIpv6,
    Icmpv6,
    EspIpv6,
    AhIpv6,
    AllIpv6,
}

impl Protocol {
    /// Every protocol, in the order libvirt's parser tries them.
    pub const ALL: [Protocol; 24] = [
        Protocol::Mac,
        Protocol::Vlan,
        Protocol::Stp,
        Protocol::Arp,
        Protocol::Rarp,
        Protocol::Ip,
        Protocol::Ipv6,
        Protocol::Tcp,
        Protocol::Udp,
        Protocol::Udplite,
        Protocol::Sctp,
        Protocol::Icmp,
        Protocol::Igmp,
        Protocol::Esp,
        Protocol::Ah,
        Protocol::All,
        Protocol::TcpIpv6,
        Protocol::UdpIpv6,
        Protocol::UdpliteIpv6,
        Protocol::SctpIpv6,
        Protocol::Icmpv6,
        Protocol::EspIpv6,
        Protocol::AhIpv6,
        Protocol::AllIpv6,
    ];

    /// The XML element name.
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Mac => "mac",
            Protocol::Vlan => "vlan",
            Protocol::Stp => "stp",
            Protocol::Arp => "arp",
            Protocol::Rarp => "rarp",
            Protocol::Ip => "ip",
            Protocol::Ipv6 => "ipv6",
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Udplite => "udplite",
            Protocol::Sctp => "sctp",
            Protocol::Icmp => "icmp",
            Protocol::Igmp => "igmp",
            Protocol::Esp => "esp",
            Protocol::Ah => "ah",
            Protocol::All => "all",
            Protocol::TcpIpv6 => "tcp-ipv6",
            Protocol::UdpIpv6 => "udp-ipv6",
            Protocol::UdpliteIpv6 => "udplite-ipv6",
            Protocol::SctpIpv6 => "sctp-ipv6",
            Protocol::Icmpv6 => "icmpv6",
            Protocol::EspIpv6 => "esp-ipv6",
            Protocol::AhIpv6 => "ah-ipv6",
            Protocol::AllIpv6 => "all-ipv6",
        }
    }

    /// Looks an element name up (exact, case-sensitive, as libvirt does).
    pub fn from_name(name: &str) -> Option<Protocol> {
        Protocol::ALL.into_iter().find(|p| p.name() == name)
    }

    /// Which firewall layer rules of this protocol belong to.
    pub fn layer(self) -> Layer {
        match self {
            Protocol::Mac
            | Protocol::Vlan
            | Protocol::Stp
            | Protocol::Arp
            | Protocol::Rarp
            | Protocol::Ip
            | Protocol::Ipv6 => Layer::Ethernet,
            Protocol::Tcp
            | Protocol::Udp
            | Protocol::Udplite
            | Protocol::Sctp
            | Protocol::Icmp
            | Protocol::Igmp
            | Protocol::Esp
            | Protocol::Ah
            | Protocol::All => Layer::Ipv4,
            Protocol::TcpIpv6
            | Protocol::UdpIpv6
            | Protocol::UdpliteIpv6
            | Protocol::SctpIpv6
            | Protocol::Icmpv6
            | Protocol::EspIpv6
            | Protocol::AhIpv6
            | Protocol::AllIpv6 => Layer::Ipv6,
        }
    }

    /// The attributes this element accepts, in canonical (output) order.
    pub fn attrs(self) -> &'static [AttrSpec] {
        use crate::attr::tables::*;
        match self {
            Protocol::Mac => MAC,
            Protocol::Vlan => VLAN,
            Protocol::Stp => STP,
            Protocol::Arp | Protocol::Rarp => ARP,
            Protocol::Ip => IP,
            Protocol::Ipv6 => IPV6,
            Protocol::Tcp => TCP,
            Protocol::Udp | Protocol::Sctp => UDP,
            Protocol::Icmp => ICMP,
            Protocol::Igmp | Protocol::Udplite | Protocol::Esp | Protocol::Ah | Protocol::All => {
                L4_V4
            }
            Protocol::TcpIpv6 => TCP_V6,
            Protocol::UdpIpv6 | Protocol::SctpIpv6 => UDP_V6,
            Protocol::Icmpv6 => ICMP_V6,
            Protocol::UdpliteIpv6 | Protocol::EspIpv6 | Protocol::AhIpv6 | Protocol::AllIpv6 => {
                L4_V6
            }
        }
    }

    /// The value kind of `attr` on this element, or `None` when the element
    /// does not have that attribute.
    pub fn kind_of(self, attr: Attr) -> Option<ValueKind> {
        self.attrs().iter().find(|s| s.attr == attr).map(|s| s.kind)
    }
}
