//! The readable packet description of `nwfilter explain --packet`:
//! layers by keyword, each followed by its `field=value`s.
//!
//! ```text
//! mac src=52:54:00:00:00:01 dst=ff:ff:ff:ff:ff:ff
//! ip src=10.0.0.5 dst=10.0.0.1 tcp dport=25 flags=syn
//! arp op=reply sha=52:54:00:00:00:01 spa=10.0.0.5 tpa=10.0.0.1
//! ipv6 src=fe80::1 dst=ff02::1 icmpv6 type=135 ct state=established
//! ```
//!
//! Keywords: `mac` (src, dst, type), `vlan` (id, encap), `arp`/`rarp`
//! (op, htype, ptype, sha, spa, tha, tpa), `stp` (type, flags, root-prio,
//! root-addr, root-cost, sender-prio, sender-addr, port, msg-age,
//! max-age, hello, fwd-delay), `ip`/`ipv6` (src, dst, proto, tos),
//! `tcp`/`udp`/`udplite`/`sctp` (sport, dport; tcp also flags, option),
//! `icmp`/`icmpv6` (type, code), `ct` (state, dir), `ipset NAME`, and
//! `host` (addressed to the host itself). Defaults are those of a real
//! first packet: the VM's MAC on its side and broadcast on the other,
//! TCP flags `syn`, ICMP echo request, conntrack state `new`.

use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use crate::packet::*;

/// A description that cannot be a packet: the word and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("packet description, at {word:?}: {reason}")]
pub struct SpecError {
    pub word: String,
    pub reason: String,
}

fn bad(word: &str, reason: impl Into<String>) -> SpecError {
    SpecError {
        word: word.to_owned(),
        reason: reason.into(),
    }
}

/// The layers described, before defaults fill the rest.
#[derive(Debug, Default)]
struct Parts {
    mac: Fields,
    vlan: Option<Fields>,
    arp: Option<(u16, Fields)>,
    stp: Option<Fields>,
    ip: Option<(bool, Fields)>,
    l4: Option<(String, Fields)>,
    ct: Fields,
    ipsets: Vec<String>,
    to_host: bool,
}

/// `field=value`s of one layer, in order, with the word they came from.
#[derive(Debug, Default, Clone)]
struct Fields(Vec<(String, String, String)>);

impl Fields {
    fn get(&self, key: &str) -> Option<(&str, &str)> {
        self.0
            .iter()
            .rev()
            .find(|(k, _, _)| k == key)
            .map(|(_, v, w)| (v.as_str(), w.as_str()))
    }

    fn parse<T>(
        &self,
        key: &str,
        f: impl Fn(&str) -> Option<T>,
        what: &str,
    ) -> Result<Option<T>, SpecError> {
        match self.get(key) {
            None => Ok(None),
            Some((v, word)) => f(v)
                .map(Some)
                .ok_or_else(|| bad(word, format!("{key} must be {what}"))),
        }
    }

    fn all<'a>(&'a self, key: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.0
            .iter()
            .filter(move |(k, _, _)| k == key)
            .map(|(_, v, w)| (v.as_str(), w.as_str()))
    }
}

const KNOWN: &[(&str, &[&str])] = &[
    ("mac", &["src", "dst", "type"]),
    ("vlan", &["id", "encap"]),
    ("arp", &["op", "htype", "ptype", "sha", "spa", "tha", "tpa"]),
    (
        "rarp",
        &["op", "htype", "ptype", "sha", "spa", "tha", "tpa"],
    ),
    (
        "stp",
        &[
            "type",
            "flags",
            "root-prio",
            "root-addr",
            "root-cost",
            "sender-prio",
            "sender-addr",
            "port",
            "msg-age",
            "max-age",
            "hello",
            "fwd-delay",
        ],
    ),
    ("ip", &["src", "dst", "proto", "tos"]),
    ("ipv6", &["src", "dst", "proto", "tos"]),
    ("tcp", &["sport", "dport", "flags", "option"]),
    ("udp", &["sport", "dport"]),
    ("udplite", &["sport", "dport"]),
    ("sctp", &["sport", "dport"]),
    ("icmp", &["type", "code"]),
    ("icmpv6", &["type", "code"]),
    ("ct", &["state", "dir"]),
];

/// Parses `text` for a packet crossing the port in `direction` of a VM
/// whose MAC is `vm_mac`.
pub fn parse(text: &str, direction: Direction, vm_mac: [u8; 6]) -> Result<Packet, SpecError> {
    let parts = split(text)?;
    build(&parts, direction, vm_mac)
}

fn split(text: &str) -> Result<Parts, SpecError> {
    let mut parts = Parts::default();
    let mut words = text.split_whitespace().peekable();
    let mut current: Option<(&str, Fields)> = None;
    let mut seen: Vec<&str> = Vec::new();
    while let Some(word) = words.next() {
        if let Some((key, value)) = word.split_once('=') {
            let Some((layer, fields)) = current.as_mut() else {
                return Err(bad(word, "a field needs a layer first (mac, ip, tcp, …)"));
            };
            let known = KNOWN
                .iter()
                .find(|(l, _)| l == layer)
                .map_or(&[][..], |(_, f)| f);
            if !known.contains(&key) {
                return Err(bad(
                    word,
                    format!("{layer} has no field {key:?} (known: {})", known.join(", ")),
                ));
            }
            fields
                .0
                .push((key.to_owned(), value.to_owned(), word.to_owned()));
            continue;
        }
        if let Some((layer, fields)) = current.take() {
            store(&mut parts, layer, fields);
        }
        match word {
            "host" => parts.to_host = true,
            "ipset" => {
                let name = words
                    .next()
                    .ok_or_else(|| bad(word, "ipset needs a set name"))?;
                parts.ipsets.push(name.to_owned());
            }
            layer if KNOWN.iter().any(|(l, _)| *l == layer) => {
                if seen.contains(&layer) {
                    return Err(bad(word, "this layer is described twice"));
                }
                seen.push(layer);
                current = Some((layer, Fields::default()));
            }
            _ => {
                let layers: Vec<&str> = KNOWN.iter().map(|(l, _)| *l).collect();
                return Err(bad(
                    word,
                    format!(
                        "not a layer ({}, ipset NAME, host) nor field=value",
                        layers.join(", ")
                    ),
                ));
            }
        }
    }
    if let Some((layer, fields)) = current.take() {
        store(&mut parts, layer, fields);
    }
    check_layers(&parts, text)?;
    Ok(parts)
}

fn store(parts: &mut Parts, layer: &str, fields: Fields) {
    match layer {
        "mac" => parts.mac = fields,
        "vlan" => parts.vlan = Some(fields),
        "arp" => parts.arp = Some((ETHERTYPE_ARP, fields)),
        "rarp" => parts.arp = Some((ETHERTYPE_RARP, fields)),
        "stp" => parts.stp = Some(fields),
        "ip" => parts.ip = Some((true, fields)),
        "ipv6" => parts.ip = Some((false, fields)),
        "ct" => parts.ct = fields,
        l4 => parts.l4 = Some((l4.to_owned(), fields)),
    }
}

fn check_layers(parts: &Parts, text: &str) -> Result<(), SpecError> {
    let nets = [parts.arp.is_some(), parts.stp.is_some(), parts.ip.is_some()];
    if nets.iter().filter(|n| **n).count() > 1 {
        return Err(bad(
            text,
            "one network layer at most (arp, rarp, stp, ip or ipv6)",
        ));
    }
    if let Some((l4, _)) = &parts.l4 {
        match &parts.ip {
            None => return Err(bad(l4, format!("{l4} needs an ip or ipv6 layer before it"))),
            Some((v4, _)) if l4 == "icmp" && !v4 => {
                return Err(bad(l4, "icmp is IPv4's: use icmpv6 with ipv6"))
            }
            Some((true, _)) if l4 == "icmpv6" => {
                return Err(bad(l4, "icmpv6 is IPv6's: use icmp with ip"))
            }
            _ => {}
        }
    }
    Ok(())
}

fn build(parts: &Parts, direction: Direction, vm_mac: [u8; 6]) -> Result<Packet, SpecError> {
    let (src_default, dst_default) = match direction {
        Direction::Out => (vm_mac, [0xff; 6]),
        Direction::In => ([0xff; 6], vm_mac),
    };
    let src_mac = parts
        .mac
        .parse("src", mac, "a MAC address")?
        .unwrap_or(src_default);
    let stp_dst = parts.stp.is_some().then_some(STP_GROUP);
    let dst_mac = parts
        .mac
        .parse("dst", mac, "a MAC address")?
        .or(stp_dst)
        .unwrap_or(dst_default);
    let (net, net_type) = network(parts, src_mac)?;
    let vlan = match &parts.vlan {
        None => None,
        Some(f) => Some(Vlan {
            id: f.parse("id", number, "a number (0-4095)")?.unwrap_or(0),
            encap: f
                .parse("encap", ether_type, "an EtherType")?
                .unwrap_or(net_type),
        }),
    };
    let implied = if vlan.is_some() {
        ETHERTYPE_VLAN
    } else {
        net_type
    };
    let ether_type = parts
        .mac
        .parse("type", ether_type, "an EtherType")?
        .unwrap_or(implied);
    let ct = parts
        .ct
        .parse("state", ct_state, "new, established, related or invalid")?;
    let reply = parts.ct.parse(
        "dir",
        |v| match v {
            "original" => Some(false),
            "reply" => Some(true),
            _ => None,
        },
        "original or reply",
    )?;
    Ok(Packet {
        src_mac,
        dst_mac,
        ether_type,
        vlan,
        net,
        ct: ct.unwrap_or(CtState::New),
        ct_reply: reply.unwrap_or(false),
        ipsets: parts.ipsets.clone(),
        to_host: parts.to_host,
    })
}

/// The network layer and the EtherType it implies.
fn network(parts: &Parts, src_mac: [u8; 6]) -> Result<(Net, u16), SpecError> {
    if let Some((kind, f)) = &parts.arp {
        return Ok((Net::Arp(arp(*kind, f, src_mac)?), *kind));
    }
    if let Some(f) = &parts.stp {
        return Ok((Net::Stp(stp(f)?), STP_LENGTH));
    }
    if let Some((v4, f)) = &parts.ip {
        let kind = if *v4 { ETHERTYPE_IPV4 } else { ETHERTYPE_IPV6 };
        return Ok((Net::Ip(ip(*v4, f, parts.l4.as_ref())?), kind));
    }
    Ok((Net::Other, 0x0000))
}

/// The 802.3 length field of a configuration BPDU frame (LLC + 35 bytes).
pub const STP_LENGTH: u16 = 38;

fn arp(kind: u16, f: &Fields, src_mac: [u8; 6]) -> Result<Arp, SpecError> {
    let op_default = if kind == ETHERTYPE_RARP { 3 } else { 1 };
    let ipv4 = |v: &str| v.parse::<Ipv4Addr>().ok();
    Ok(Arp {
        htype: f.parse("htype", number, "a number")?.unwrap_or(1),
        ptype: f
            .parse("ptype", ether_type, "an EtherType")?
            .unwrap_or(ETHERTYPE_IPV4),
        opcode: f
            .parse(
                "op",
                arp_op,
                "request, reply, rarp-request, rarp-reply or a number",
            )?
            .unwrap_or(op_default),
        hlen: 6,
        plen: 4,
        sha: f.parse("sha", mac, "a MAC address")?.unwrap_or(src_mac),
        spa: f
            .parse("spa", ipv4, "an IPv4 address")?
            .unwrap_or(Ipv4Addr::UNSPECIFIED),
        tha: f.parse("tha", mac, "a MAC address")?.unwrap_or([0; 6]),
        tpa: f
            .parse("tpa", ipv4, "an IPv4 address")?
            .unwrap_or(Ipv4Addr::UNSPECIFIED),
    })
}

fn stp(f: &Fields) -> Result<Stp, SpecError> {
    let n16 = |k| f.parse::<u16>(k, number, "a number");
    Ok(Stp {
        bpdu_type: f
            .parse("type", number, "a number (0: configuration, 128: TCN)")?
            .unwrap_or(BPDU_CONFIG),
        flags: f.parse("flags", number, "a number")?.unwrap_or(0),
        root_priority: n16("root-prio")?.unwrap_or(32768),
        root_addr: f
            .parse("root-addr", mac, "a MAC address")?
            .unwrap_or([0; 6]),
        root_cost: f.parse("root-cost", number, "a number")?.unwrap_or(0),
        sender_priority: n16("sender-prio")?.unwrap_or(32768),
        sender_addr: f
            .parse("sender-addr", mac, "a MAC address")?
            .unwrap_or([0; 6]),
        port: n16("port")?.unwrap_or(0x8001),
        message_age: n16("msg-age")?.unwrap_or(0),
        max_age: n16("max-age")?.unwrap_or(20),
        hello_time: n16("hello")?.unwrap_or(2),
        forward_delay: n16("fwd-delay")?.unwrap_or(15),
    })
}

fn ip(v4: bool, f: &Fields, layer4: Option<&(String, Fields)>) -> Result<Ip, SpecError> {
    let addr = |v: &str| v.parse::<IpAddr>().ok().filter(|a| a.is_ipv4() == v4);
    let what = if v4 {
        "an IPv4 address"
    } else {
        "an IPv6 address"
    };
    let layer = if v4 { "ip" } else { "ipv6" };
    let need = |key| bad(layer, format!("{layer} needs {key}=ADDRESS"));
    let src = f.parse("src", addr, what)?.ok_or_else(|| need("src"))?;
    let dst = f.parse("dst", addr, what)?.ok_or_else(|| need("dst"))?;
    let (implied, l4) = match layer4 {
        Some((name, lf)) => transport(name, lf)?,
        None => (0, L4::Other),
    };
    let protocol = f.parse(
        "proto",
        ip_proto,
        "a protocol (tcp, udp, icmp, … or a number)",
    )?;
    if let (Some(p), Some((name, _))) = (protocol, layer4) {
        if p != implied {
            return Err(bad(name, format!("proto={p} contradicts the {name} layer")));
        }
    }
    Ok(Ip {
        src,
        dst,
        protocol: protocol.unwrap_or(implied),
        tos: f.parse("tos", number, "a number (0-255)")?.unwrap_or(0),
        l4,
        nd: None,
    })
}

fn transport(name: &str, f: &Fields) -> Result<(u8, L4), SpecError> {
    let number_of = match name {
        "tcp" => 6,
        "udp" => 17,
        "udplite" => 136,
        "sctp" => 132,
        "icmp" => 1,
        _ => 58,
    };
    if name.starts_with("icmp") {
        let echo = if name == "icmp" { 8 } else { 128 };
        let icmp_type = f.parse("type", number, "a number (0-255)")?.unwrap_or(echo);
        let code = f.parse("code", number, "a number (0-255)")?.unwrap_or(0);
        return Ok((number_of, L4::Icmp { icmp_type, code }));
    }
    let dport = f
        .parse("dport", number, "a port (0-65535)")?
        .ok_or_else(|| bad(name, format!("{name} needs dport=PORT")))?;
    let mut options = Vec::new();
    for (v, word) in f.all("option") {
        options
            .push(number(v).ok_or_else(|| bad(word, "option must be a TCP option kind (0-255)"))?);
    }
    Ok((
        number_of,
        L4::Ports {
            sport: f
                .parse("sport", number, "a port (0-65535)")?
                .unwrap_or(32768),
            dport,
            tcp_flags: if name == "tcp" {
                f.parse("flags", tcp_flags, "TCP flags like syn,ack (or none)")?
                    .unwrap_or(TCP_SYN)
            } else {
                0
            },
            tcp_options: options,
        },
    ))
}

pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;

fn tcp_flags(v: &str) -> Option<u8> {
    if v.eq_ignore_ascii_case("none") {
        return Some(0);
    }
    v.split(',').try_fold(0u8, |acc, name| {
        let bit = match name.to_ascii_lowercase().as_str() {
            "fin" => 0x01,
            "syn" => 0x02,
            "rst" => 0x04,
            "psh" => 0x08,
            "ack" => 0x10,
            "urg" => 0x20,
            "ece" => 0x40,
            "cwr" => 0x80,
            _ => return None,
        };
        Some(acc | bit)
    })
}

/// A decimal or `0x` hexadecimal number of type `T`.
fn number<T: TryFrom<u64>>(v: &str) -> Option<T> {
    let n = match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok()?,
        None => u64::from_str(v).ok()?,
    };
    T::try_from(n).ok()
}

fn mac(v: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = v.split(':');
    for byte in &mut out {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 2 {
            return None;
        }
        *byte = u8::from_str_radix(p, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}

fn ether_type(v: &str) -> Option<u16> {
    match v {
        "ipv4" => Some(ETHERTYPE_IPV4),
        "arp" => Some(ETHERTYPE_ARP),
        "rarp" => Some(ETHERTYPE_RARP),
        "ipv6" => Some(ETHERTYPE_IPV6),
        "vlan" => Some(ETHERTYPE_VLAN),
        _ => number(v),
    }
}

fn arp_op(v: &str) -> Option<u16> {
    match v {
        "request" => Some(1),
        "reply" => Some(2),
        "rarp-request" => Some(3),
        "rarp-reply" => Some(4),
        _ => number(v),
    }
}

fn ip_proto(v: &str) -> Option<u8> {
    match v {
        "icmp" => Some(1),
        "igmp" => Some(2),
        "tcp" => Some(6),
        "udp" => Some(17),
        "esp" => Some(50),
        "ah" => Some(51),
        "icmpv6" => Some(58),
        "sctp" => Some(132),
        "udplite" => Some(136),
        _ => number(v),
    }
}

fn ct_state(v: &str) -> Option<CtState> {
    match v {
        "new" => Some(CtState::New),
        "established" => Some(CtState::Established),
        "related" => Some(CtState::Related),
        "invalid" => Some(CtState::Invalid),
        _ => None,
    }
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
