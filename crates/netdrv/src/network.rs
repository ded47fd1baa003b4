//! The `<network>` document: a host bridge with addresses, optional
//! forwarding (NAT, routing), DHCP and DNS.
//!
//! Plain data. A `Network` that came from [`crate::parse_network`] is valid;
//! one built by hand or deserialised can be checked with
//! [`Network::validate`].

use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use ipnet::IpNet;
use macaddr::MacAddr6;
use nwfilter_model::{FilterRef, IfName};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A `<network>` document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    pub name: NetworkName,
    /// Absent until the network is defined (define assigns one).
    pub uuid: Option<Uuid>,
    /// `<network ipv6='yes'>`: allow IPv6 between guests even without an
    /// IPv6 address on the bridge.
    pub ipv6_without_gateway: bool,
    pub forward: Forward,
    pub bridge: Bridge,
    pub mtu: Option<u32>,
    /// The bridge's own MAC address.
    pub mac: Option<MacAddr6>,
    pub domain: Option<Domain>,
    pub dns: Dns,
    /// In document order; the order decides rule order and which address
    /// carries DHCP.
    pub ips: Vec<IpDef>,
    /// `<filterref>`: our extension (libvirt has none on networks). Every
    /// port on the bridge without a binding of its own is filtered by it,
    /// through a binding the network owns (see docs/networks.md).
    #[serde(default)]
    pub filterref: Option<FilterRef>,
    /// `<portgroup>`s: only their name, `default` and (our extension) a
    /// `<filterref>` for the ports that name the group.
    #[serde(default)]
    pub portgroups: Vec<PortGroup>,
}

/// `<portgroup name='…' default='yes'>`: a set of the network's ports. A
/// port names its group in its interface alias (`portgroup=NAME`, see
/// docs/networks.md); ports that name none belong to the default group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortGroup {
    pub name: String,
    pub default: bool,
    /// Our extension: the filter of the group's ports, instead of the
    /// network's.
    pub filterref: Option<FilterRef>,
}

impl Network {
    /// The filter of a port in portgroup `group` (`None`: the port names
    /// none): the group's own filter, else the network's. An unknown group
    /// gets the network's filter, so that a typo never unfilters a port.
    pub fn port_filter(&self, group: Option<&str>) -> Option<&FilterRef> {
        let group = match group {
            Some(name) => self.portgroups.iter().find(|g| g.name == name),
            None => self.portgroups.iter().find(|g| g.default),
        };
        group
            .and_then(|g| g.filterref.as_ref())
            .or(self.filterref.as_ref())
    }

    /// Whether any port of the network gets a filter.
    pub fn has_port_filters(&self) -> bool {
        self.filterref.is_some() || self.portgroups.iter().any(|g| g.filterref.is_some())
    }
}

/// A network's name: also its file name and part of dnsmasq's paths.
///
/// Stricter than libvirt (which refuses only `/`): no whitespace, control
/// characters, quotes or markup, so it is safe in a path, a config line and
/// the XML we print.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NetworkName(String);

impl NetworkName {
    pub fn new(name: impl Into<String>) -> Result<NetworkName, String> {
        let name = name.into();
        let why = if name.is_empty() {
            Some("it is empty")
        } else if name.len() > 255 {
            Some("it is longer than 255 bytes")
        } else if name == "." || name == ".." {
            Some("'.' and '..' are not network names")
        } else if name.starts_with('-') {
            Some("it starts with '-'")
        } else if name.contains('/') {
            Some("it contains '/'")
        } else if name.contains(['\'', '"', '<', '>', '&', '\\', ',', '=']) {
            Some("it contains a quote, '<', '>', '&', '\\', ',' or '='")
        } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Some("it contains whitespace or a control character")
        } else {
            None
        };
        match why {
            Some(why) => Err(why.to_owned()),
            None => Ok(NetworkName(name)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for NetworkName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for NetworkName {
    type Error = String;
    fn try_from(s: String) -> Result<NetworkName, String> {
        NetworkName::new(s)
    }
}

impl From<NetworkName> for String {
    fn from(n: NetworkName) -> String {
        n.0
    }
}

/// `<bridge name='virbr0' stp='on' delay='0'/>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bridge {
    /// Absent until define picks a free `virbrN`.
    pub name: Option<IfName>,
    /// Spanning tree protocol; libvirt's default is on.
    pub stp: bool,
    /// Forward delay in seconds.
    pub delay: u32,
}

impl Default for Bridge {
    fn default() -> Bridge {
        Bridge {
            name: None,
            stp: true,
            delay: 0,
        }
    }
}

/// What the network does with traffic that leaves the bridge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForwardMode {
    /// No `<forward>`: guests reach each other and the host only.
    Isolated,
    /// Masquerade (or SNAT) to the outside; `<forward/>` without a mode.
    Nat,
    /// Plain routing; the outside sees the guests' own addresses.
    Route,
    /// Routing with no firewall rules at all.
    Open,
}

impl ForwardMode {
    /// The `mode` attribute's spelling (`None` for isolated).
    pub fn as_attr(self) -> Option<&'static str> {
        match self {
            ForwardMode::Isolated => None,
            ForwardMode::Nat => Some("nat"),
            ForwardMode::Route => Some("route"),
            ForwardMode::Open => Some("open"),
        }
    }
}

/// `<forward mode=… dev=…>` and its `<nat>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Forward {
    pub mode: ForwardMode,
    /// Restrict forwarding to this uplink (`dev=` or `<interface dev=>`).
    pub dev: Option<IfName>,
    /// Only meaningful in NAT mode (the parser refuses it elsewhere).
    pub nat: Nat,
}

impl Default for Forward {
    fn default() -> Forward {
        Forward {
            mode: ForwardMode::Isolated,
            dev: None,
            nat: Nat::default(),
        }
    }
}

/// `<nat ipv6=…><address start end/><port start end/></nat>`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Nat {
    /// `ipv6='yes'`: masquerade IPv6 too (else IPv6 is routed).
    pub ipv6: Option<bool>,
    /// SNAT pool; without it, MASQUERADE.
    pub address: Option<Ipv4Range>,
    /// Source ports for tcp/udp; libvirt's default is 1024-65535.
    pub port: Option<PortRange>,
}

impl Nat {
    /// The port range used for tcp/udp masquerading.
    pub fn effective_ports(&self) -> PortRange {
        self.port.unwrap_or(PortRange {
            start: 1024,
            end: 65535,
        })
    }
}

/// An inclusive IPv4 address range, `start <= end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ipv4Range {
    pub start: Ipv4Addr,
    pub end: Ipv4Addr,
}

/// An inclusive port range, `1 <= start < end <= 65535` (iptables refuses
/// a one-port range for masquerading, and so does libvirt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortRange {
    pub start: u16,
    pub end: u16,
}

/// `<domain name='example.com' localOnly='yes'/>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Domain {
    /// A DNS name (validated: letters, digits, `-`, `.`).
    pub name: String,
    /// Answer queries for the domain locally only, never forward them.
    pub local_only: Option<bool>,
}

/// `<dns>`: the basic settings of the network's DNS server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dns {
    /// `enable='no'` turns the DNS server off (DHCP still runs).
    pub enable: Option<bool>,
    /// `forwardPlainNames='no'`: never forward single-label names.
    pub forward_plain_names: Option<bool>,
    pub forwarders: Vec<DnsForwarder>,
    pub hosts: Vec<DnsHost>,
}

impl Dns {
    pub fn is_empty(&self) -> bool {
        self == &Dns::default()
    }
}

/// `<forwarder domain='…' addr='…'/>`: at least one of the two.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsForwarder {
    pub domain: Option<String>,
    pub addr: Option<IpAddr>,
}

/// `<host ip='…'><hostname>a</hostname>…</host>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DnsHost {
    pub ip: IpAddr,
    /// At least one.
    pub hostnames: Vec<String>,
}

/// One `<ip>`: an address of the bridge with its subnet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IpDef {
    /// The bridge's address (the guests' gateway and DNS server).
    pub address: IpAddr,
    /// `netmask=` (IPv4 only), as written.
    pub netmask: Option<Ipv4Addr>,
    /// `prefix=`, as written; never given together with `netmask`.
    pub prefix: Option<u8>,
    /// `localPtr='yes'`: answer reverse lookups for the subnet locally.
    pub local_ptr: Option<bool>,
    /// `<tftp root=…/>` (IPv4 only).
    pub tftp_root: Option<String>,
    pub dhcp: Dhcp,
}

impl IpDef {
    pub fn is_ipv4(&self) -> bool {
        self.address.is_ipv4()
    }

    /// The prefix length in force: the netmask's, the prefix, or libvirt's
    /// default (class-based for IPv4, 64 for IPv6).
    pub fn prefix_len(&self) -> u8 {
        if let Some(mask) = self.netmask {
            return u32::from(mask).count_ones() as u8;
        }
        if let Some(prefix) = self.prefix.filter(|p| *p > 0) {
            // Validation refuses longer prefixes; clamping keeps a
            // hand-built, unvalidated network from panicking here.
            let max = if self.address.is_ipv4() { 32 } else { 128 };
            return prefix.min(max);
        }
        match self.address {
            IpAddr::V4(a) => match a.octets()[0] {
                0..=127 => 8,
                128..=191 => 16,
                192..=223 => 24,
                _ => 32,
            },
            IpAddr::V6(_) => 64,
        }
    }

    /// The subnet with host bits cleared (`192.168.122.0/24`).
    pub fn subnet(&self) -> IpNet {
        IpNet::new(self.address, self.prefix_len())
            .expect("prefix_len never exceeds the family's length")
            .trunc()
    }

    /// Whether this address serves DHCP (has ranges or static hosts).
    pub fn has_dhcp(&self) -> bool {
        !self.dhcp.ranges.is_empty() || !self.dhcp.hosts.is_empty()
    }
}

/// `<dhcp>`: dynamic ranges, static hosts, boot file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dhcp {
    pub ranges: Vec<DhcpRange>,
    pub hosts: Vec<DhcpHost>,
    /// IPv4 only.
    pub bootp: Option<Bootp>,
}

impl Dhcp {
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty() && self.hosts.is_empty() && self.bootp.is_none()
    }
}

/// `<range start end>`, inside the subnet, `start <= end`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DhcpRange {
    pub start: IpAddr,
    pub end: IpAddr,
    pub lease: Option<Lease>,
}

/// `<host mac id name ip>`: a static assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DhcpHost {
    /// IPv4 only; unicast.
    pub mac: Option<MacAddr6>,
    /// DHCPv6 client id (hex digits and `:`), IPv6 only.
    pub id: Option<String>,
    pub name: Option<String>,
    pub ip: IpAddr,
    pub lease: Option<Lease>,
}

/// `<lease expiry='N' unit='…'/>`; `expiry = 0` means infinite.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub expiry: u64,
    pub unit: LeaseUnit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LeaseUnit {
    Seconds,
    Minutes,
    Hours,
}

impl LeaseUnit {
    pub fn as_str(self) -> &'static str {
        match self {
            LeaseUnit::Seconds => "seconds",
            LeaseUnit::Minutes => "minutes",
            LeaseUnit::Hours => "hours",
        }
    }
}

/// `<bootp file='pxelinux.0' server='…'/>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bootp {
    pub file: String,
    pub server: Option<IpAddr>,
}

impl Network {
    /// The `<ip>` elements of one family, in document order.
    pub fn ips_v4(&self) -> impl Iterator<Item = &IpDef> {
        self.ips.iter().filter(|ip| ip.is_ipv4())
    }

    pub fn ips_v6(&self) -> impl Iterator<Item = &IpDef> {
        self.ips.iter().filter(|ip| !ip.is_ipv4())
    }
}

/// A MAC address as libvirt prints it: lower-case, colon-separated.
pub fn mac_text(mac: &MacAddr6) -> String {
    let b = mac.as_bytes();
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[0], b[1], b[2], b[3], b[4], b[5]
    )
}
