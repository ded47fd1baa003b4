//! Semantic checks of a network, one function per element.
//!
//! The parser calls each check at the element it concerns, so an error
//! carries that element's position; [`Network::validate`] runs them all
//! on a network built by hand or deserialised.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::error::Invalid;
use crate::network::{
    mac_text, Dhcp, DhcpHost, DhcpRange, Dns, Domain, ForwardMode, IpDef, Lease, LeaseUnit, Nat,
    Network,
};

/// Prefix and netmask of one `<ip>`, before its children are looked at.
pub(crate) fn ip_addressing(ip: &IpDef) -> Result<(), Invalid> {
    if ip.netmask.is_some() && ip.prefix.is_some() {
        return Err(Invalid::element(
            "ip",
            "give either 'netmask' or 'prefix', not both",
        ));
    }
    match ip.address {
        IpAddr::V4(_) => {
            if let Some(mask) = ip.netmask {
                let bits = u32::from(mask);
                if bits.leading_ones() + bits.trailing_zeros() != 32 || bits == 0 {
                    return Err(Invalid::value(
                        "ip",
                        "netmask",
                        mask,
                        "not a contiguous netmask (like 255.255.255.0)",
                    ));
                }
            }
            if let Some(prefix) = ip.prefix.filter(|p| *p > 32) {
                return Err(Invalid::value(
                    "ip",
                    "prefix",
                    prefix,
                    "an IPv4 prefix is 0..=32",
                ));
            }
        }
        IpAddr::V6(_) => {
            if let Some(mask) = ip.netmask {
                return Err(Invalid::value(
                    "ip",
                    "netmask",
                    mask,
                    "netmask is not allowed for an IPv6 address; use prefix",
                ));
            }
            if let Some(prefix) = ip.prefix.filter(|p| *p > 128) {
                return Err(Invalid::value(
                    "ip",
                    "prefix",
                    prefix,
                    "an IPv6 prefix is 0..=128",
                ));
            }
        }
    }
    if ip.tftp_root.is_some() && !ip.is_ipv4() {
        return Err(Invalid::element(
            "tftp",
            "<tftp> is supported for IPv4 only",
        ));
    }
    if let Some(root) = &ip.tftp_root {
        path_value("tftp", "root", root)?;
    }
    Ok(())
}

/// A config value that ends up in dnsmasq's configuration file: one line,
/// an absolute path.
fn path_value(element: &str, attribute: &str, value: &str) -> Result<(), Invalid> {
    if !value.starts_with('/') {
        return Err(Invalid::value(
            element,
            attribute,
            value,
            "must be an absolute path",
        ));
    }
    if value.chars().any(|c| c.is_control() || c == ',') {
        return Err(Invalid::value(
            element,
            attribute,
            value.escape_debug(),
            "control characters and ',' are not allowed",
        ));
    }
    Ok(())
}

/// Whether `addr` lies in `net` (same family, within the prefix).
fn within(net: &IpNet, addr: &IpAddr) -> bool {
    net.contains(addr)
}

/// One `<range>`: same family as the subnet, inside it, ordered, not the
/// subnet's network or broadcast address; disjoint from `earlier` ranges.
pub(crate) fn dhcp_range(
    ip: &IpDef,
    earlier: &[DhcpRange],
    range: &DhcpRange,
) -> Result<(), Invalid> {
    let subnet = ip.subnet();
    for (attr, addr) in [("start", &range.start), ("end", &range.end)] {
        if !within(&subnet, addr) {
            return Err(Invalid::value(
                "range",
                attr,
                addr,
                format!("outside the network's subnet {subnet}"),
            ));
        }
        if let (IpNet::V4(net), IpAddr::V4(a)) = (&subnet, addr) {
            if net.prefix_len() < 31 && (*a == net.network() || *a == net.broadcast()) {
                return Err(Invalid::value(
                    "range",
                    attr,
                    addr,
                    format!("is the network or broadcast address of {subnet}"),
                ));
            }
        }
    }
    if range.start > range.end {
        return Err(Invalid::value(
            "range",
            "end",
            range.end,
            format!("comes before start {}", range.start),
        ));
    }
    if let Some(other) = earlier
        .iter()
        .find(|o| o.start <= range.end && range.start <= o.end)
    {
        return Err(Invalid::element(
            "range",
            format!(
                "{}-{} overlaps the earlier range {}-{}",
                range.start, range.end, other.start, other.end
            ),
        ));
    }
    if let Some(lease) = &range.lease {
        self::lease(lease)?;
    }
    Ok(())
}

/// dnsmasq's minimum lease time is two minutes; 0 means infinite.
pub(crate) fn lease(lease: &Lease) -> Result<(), Invalid> {
    let seconds = match lease.unit {
        LeaseUnit::Seconds => lease.expiry,
        LeaseUnit::Minutes => lease.expiry.saturating_mul(60),
        LeaseUnit::Hours => lease.expiry.saturating_mul(3600),
    };
    if lease.expiry != 0 && seconds < 120 {
        return Err(Invalid::value(
            "lease",
            "expiry",
            lease.expiry,
            "the minimum lease time is 2 minutes (0 means infinite)",
        ));
    }
    Ok(())
}

/// One static `<host>`: its address in the subnet, the identifiers its
/// family needs, no duplicates of `earlier` hosts.
pub(crate) fn dhcp_host(ip: &IpDef, earlier: &[DhcpHost], host: &DhcpHost) -> Result<(), Invalid> {
    let subnet = ip.subnet();
    if !within(&subnet, &host.ip) {
        return Err(Invalid::value(
            "host",
            "ip",
            host.ip,
            format!("outside the network's subnet {subnet}"),
        ));
    }
    if ip.is_ipv4() {
        if host.id.is_some() {
            return Err(Invalid::element("host", "'id' is for IPv6 hosts only"));
        }
        if host.mac.is_none() && host.name.is_none() {
            return Err(Invalid::element(
                "host",
                "an IPv4 host needs 'mac' or 'name'",
            ));
        }
    } else {
        if let Some(mac) = host.mac {
            return Err(Invalid::value(
                "host",
                "mac",
                mac_text(&mac),
                "not allowed for an IPv6 host; use 'id' or 'name'",
            ));
        }
        if host.id.is_none() && host.name.is_none() {
            return Err(Invalid::element(
                "host",
                "an IPv6 host needs 'id' or 'name'",
            ));
        }
    }
    if let Some(mac) = host.mac {
        if mac.as_bytes()[0] & 1 == 1 {
            return Err(Invalid::value(
                "host",
                "mac",
                mac_text(&mac),
                "a multicast MAC address cannot be a host's",
            ));
        }
    }
    if let Some(id) = &host.id {
        if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit() || c == ':') {
            return Err(Invalid::value(
                "host",
                "id",
                id,
                "a client id is hex digits and ':'",
            ));
        }
    }
    if let Some(name) = &host.name {
        dns_name("host", "name", name)?;
    }
    if let Some(lease) = &host.lease {
        self::lease(lease)?;
    }
    for other in earlier {
        if other.ip == host.ip {
            return Err(Invalid::value(
                "host",
                "ip",
                host.ip,
                "already assigned to an earlier host",
            ));
        }
        if let Some(mac) = host.mac.filter(|m| other.mac == Some(*m)) {
            return Err(Invalid::value(
                "host",
                "mac",
                mac_text(&mac),
                "already used by an earlier host",
            ));
        }
        if let Some(name) = host
            .name
            .as_ref()
            .filter(|n| other.name.as_ref() == Some(*n))
        {
            return Err(Invalid::value(
                "host",
                "name",
                name,
                "already used by an earlier host",
            ));
        }
    }
    Ok(())
}

/// The `<bootp>` of a `<dhcp>`: IPv4 only, a file name fit for dnsmasq.
pub(crate) fn bootp(ip: &IpDef, dhcp: &Dhcp) -> Result<(), Invalid> {
    let Some(bootp) = &dhcp.bootp else {
        return Ok(());
    };
    if !ip.is_ipv4() {
        return Err(Invalid::element(
            "bootp",
            "<bootp> is supported for IPv4 only",
        ));
    }
    if bootp.file.is_empty() || bootp.file.chars().any(|c| c.is_control() || c == ',') {
        return Err(Invalid::value(
            "bootp",
            "file",
            bootp.file.escape_debug(),
            "must be non-empty, without ',' or control characters",
        ));
    }
    Ok(())
}

/// A DNS name: labels of letters, digits, `-` and `_`, separated by dots
/// (it becomes part of dnsmasq's configuration, so nothing else passes).
pub(crate) fn dns_name(element: &str, attribute: &str, name: &str) -> Result<(), Invalid> {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !l.starts_with('-')
    };
    let trimmed = name.strip_suffix('.').unwrap_or(name);
    if name.len() > 253 || !trimmed.split('.').all(label_ok) {
        return Err(Invalid::value(
            element,
            attribute,
            name.escape_debug(),
            "not a DNS name (labels of letters, digits, '-' separated by '.')",
        ));
    }
    Ok(())
}

pub(crate) fn domain(domain: &Domain) -> Result<(), Invalid> {
    dns_name("domain", "name", &domain.name)
}

pub(crate) fn dns(dns: &Dns) -> Result<(), Invalid> {
    if dns.enable == Some(false) && (!dns.forwarders.is_empty() || !dns.hosts.is_empty()) {
        return Err(Invalid::element(
            "dns",
            "DNS is disabled (enable='no') but forwarders or hosts are given",
        ));
    }
    for fwd in &dns.forwarders {
        if fwd.domain.is_none() && fwd.addr.is_none() {
            return Err(Invalid::element(
                "forwarder",
                "needs 'addr', 'domain' or both",
            ));
        }
        if let Some(domain) = &fwd.domain {
            dns_name("forwarder", "domain", domain)?;
        }
    }
    for host in &dns.hosts {
        if host.hostnames.is_empty() {
            return Err(Invalid::element(
                "host",
                "a DNS host needs at least one <hostname>",
            ));
        }
        for name in &host.hostnames {
            dns_name("hostname", "text", name)?;
        }
    }
    Ok(())
}

/// `<nat>`: only in NAT mode; sane address and port ranges.
pub(crate) fn nat(mode: ForwardMode, nat: &Nat) -> Result<(), Invalid> {
    if nat == &Nat::default() {
        return Ok(());
    }
    if mode != ForwardMode::Nat {
        return Err(Invalid::element(
            "nat",
            "<nat> is only allowed with <forward mode='nat'>",
        ));
    }
    if let Some(range) = nat.address {
        if range.start > range.end {
            return Err(Invalid::value(
                "address",
                "end",
                range.end,
                format!("comes before start {}", range.start),
            ));
        }
    }
    if let Some(port) = nat.port {
        if port.start == 0 {
            return Err(Invalid::value(
                "port",
                "start",
                port.start,
                "ports are 1..=65535",
            ));
        }
        if port.start >= port.end {
            return Err(Invalid::value(
                "port",
                "end",
                port.end,
                format!(
                    "must be greater than start {} (a one-port range is refused by iptables)",
                    port.start
                ),
            ));
        }
    }
    Ok(())
}

/// Rules that span several elements; reported at the `<network>` or the
/// element named.
pub(crate) fn network_wide(net: &Network) -> Result<(), Invalid> {
    let mode = net.forward.mode;
    if matches!(
        mode,
        ForwardMode::Nat | ForwardMode::Route | ForwardMode::Open
    ) && net.ips.is_empty()
    {
        return Err(Invalid::element(
            "forward",
            format!(
                "{} forwarding needs at least one <ip> on the network",
                mode.as_attr().unwrap_or_default()
            ),
        ));
    }
    if mode == ForwardMode::Open && net.forward.dev.is_some() {
        return Err(Invalid::element(
            "forward",
            "'dev' is not allowed with mode='open'",
        ));
    }
    if mode == ForwardMode::Isolated && net.forward.dev.is_some() {
        return Err(Invalid::element("forward", "'dev' needs a forward mode"));
    }
    if net.ips_v4().filter(|ip| ip.has_dhcp()).count() > 1 {
        return Err(Invalid::element(
            "dhcp",
            "DHCP is supported on one IPv4 <ip> of a network only",
        ));
    }
    if net.ips_v6().filter(|ip| ip.has_dhcp()).count() > 1 {
        return Err(Invalid::element(
            "dhcp",
            "DHCP is supported on one IPv6 <ip> of a network only",
        ));
    }
    if let Some(mac) = net.mac {
        if mac.as_bytes()[0] & 1 == 1 {
            return Err(Invalid::value(
                "mac",
                "address",
                mac_text(&mac),
                "a bridge needs a unicast MAC address",
            ));
        }
    }
    Ok(())
}

/// Every check on one `<ip>` and its `<dhcp>`.
fn whole_ip(ip: &IpDef) -> Result<(), Invalid> {
    ip_addressing(ip)?;
    for (i, range) in ip.dhcp.ranges.iter().enumerate() {
        dhcp_range(ip, &ip.dhcp.ranges[..i], range)?;
    }
    for (i, host) in ip.dhcp.hosts.iter().enumerate() {
        dhcp_host(ip, &ip.dhcp.hosts[..i], host)?;
    }
    bootp(ip, &ip.dhcp)
}

impl Network {
    /// Runs every check the parser runs. A network from
    /// [`crate::parse_network`] always passes.
    pub fn validate(&self) -> Result<(), Invalid> {
        nat(self.forward.mode, &self.forward.nat)?;
        if let Some(d) = &self.domain {
            domain(d)?;
        }
        dns(&self.dns)?;
        for ip in &self.ips {
            whole_ip(ip)?;
        }
        network_wide(self)
    }
}
