//! Raw Ethernet frames: `--frame HEX` parsed into a [`Packet`] (headers
//! through etherparse; the BPDU, which it does not know, by its fixed
//! layout), and [`build`], the frame of a [`Packet`] (the differential
//! test sends these to the kernel).

use std::net::{IpAddr, Ipv4Addr};

use etherparse::{
    ArpHardwareId, ArpOperation, ArpPacket, ArpPacketSlice, EtherType, Ethernet2HeaderSlice,
    IpHeaders, IpNumber, Ipv4Header, Ipv6Header, NetSlice, PacketBuilder, SingleVlanHeaderSlice,
    SlicedPacket, TcpHeader, TransportSlice,
};

use crate::packet::*;

/// A frame that cannot be read: what and where (byte offset).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("frame hex: {0}")]
    Hex(String),
    #[error("frame at byte {offset}: {reason}")]
    Bad { offset: usize, reason: String },
}

/// Parses hexadecimal text (whitespace and `:` ignored) into bytes.
pub fn hex(text: &str) -> Result<Vec<u8>, FrameError> {
    let digits: Vec<char> = text
        .chars()
        .filter(|c| !c.is_whitespace() && *c != ':')
        .collect();
    if !digits.len().is_multiple_of(2) {
        return Err(FrameError::Hex(format!(
            "odd number of hex digits ({})",
            digits.len()
        )));
    }
    digits
        .chunks(2)
        .enumerate()
        .map(|(i, pair)| {
            let s: String = pair.iter().collect();
            u8::from_str_radix(&s, 16)
                .map_err(|_| FrameError::Hex(format!("{s:?} at byte {i} is not a hex byte")))
        })
        .collect()
}

fn bad(offset: usize, reason: impl std::fmt::Display) -> FrameError {
    FrameError::Bad {
        offset,
        reason: reason.to_string(),
    }
}

/// Reads a frame as the port sees it. Conntrack state, ipsets and host
/// delivery are not in the bytes: a new connection, none, forwarded.
pub fn parse(frame: &[u8]) -> Result<Packet, FrameError> {
    let eth = Ethernet2HeaderSlice::from_slice(frame).map_err(|e| bad(0, e))?;
    let ether_type = eth.ether_type().0;
    let mut rest = &frame[14..];
    let mut offset = 14;
    let mut vlan = None;
    let mut inner = ether_type;
    if ether_type == ETHERTYPE_VLAN {
        let tag = SingleVlanHeaderSlice::from_slice(rest).map_err(|e| bad(offset, e))?;
        inner = tag.ether_type().0;
        vlan = Some(Vlan {
            id: tag.vlan_identifier().value(),
            encap: inner,
        });
        rest = &rest[4..];
        offset += 4;
    }
    let dst_mac = eth.destination();
    let net = match inner {
        ETHERTYPE_ARP | ETHERTYPE_RARP => Net::Arp(arp(rest, offset)?),
        ETHERTYPE_IPV4 | ETHERTYPE_IPV6 => Net::Ip(ip(rest, offset)?),
        len if len < 0x0600 && dst_mac == STP_GROUP => stp(rest, offset)?,
        _ => Net::Other,
    };
    Ok(Packet {
        src_mac: eth.source(),
        dst_mac,
        ether_type,
        vlan,
        net,
        ct: CtState::New,
        ct_reply: false,
        ipsets: Vec::new(),
        to_host: false,
    })
}

fn arp(body: &[u8], offset: usize) -> Result<Arp, FrameError> {
    let a = ArpPacketSlice::from_slice(body).map_err(|e| bad(offset, e))?;
    let six = |b: &[u8]| <[u8; 6]>::try_from(b).unwrap_or([0; 6]);
    let four = |b: &[u8]| <[u8; 4]>::try_from(b).map_or(Ipv4Addr::UNSPECIFIED, Ipv4Addr::from);
    Ok(Arp {
        htype: a.hw_addr_type().0,
        ptype: a.proto_addr_type().0,
        opcode: a.operation().0,
        hlen: a.hw_addr_size(),
        plen: a.proto_addr_size(),
        sha: six(a.sender_hw_addr()),
        spa: four(a.sender_protocol_addr()),
        tha: six(a.target_hw_addr()),
        tpa: four(a.target_protocol_addr()),
    })
}

fn ip(body: &[u8], offset: usize) -> Result<Ip, FrameError> {
    let sliced = SlicedPacket::from_ip(body).map_err(|e| bad(offset, e))?;
    // The ICMPv6 message when no extension header comes between (next
    // header 58 in the IPv6 header itself), for the ND field matches.
    let mut icmpv6_message = None;
    let (src, dst, protocol, tos, payload): (IpAddr, IpAddr, u8, u8, &[u8]) = match &sliced.net {
        Some(NetSlice::Ipv4(v4)) => {
            let h = v4.header();
            let tos = (h.dcp().value() << 2) | h.ecn().value();
            let p = v4.payload();
            (
                h.source_addr().into(),
                h.destination_addr().into(),
                p.ip_number.0,
                tos,
                p.payload,
            )
        }
        Some(NetSlice::Ipv6(v6)) => {
            let h = v6.header();
            let p = v6.payload();
            if h.next_header().0 == 58 && !p.fragmented {
                icmpv6_message = Some(p.payload.to_vec());
            }
            (
                h.source_addr().into(),
                h.destination_addr().into(),
                p.ip_number.0,
                h.traffic_class(),
                p.payload,
            )
        }
        _ => return Err(bad(offset, "not an IPv4/IPv6 packet")),
    };
    let l4 = match &sliced.transport {
        Some(TransportSlice::Tcp(t)) => L4::Ports {
            sport: t.source_port(),
            dport: t.destination_port(),
            tcp_flags: tcp_flags(t),
            tcp_options: option_kinds(t.options()),
        },
        Some(TransportSlice::Udp(u)) => L4::Ports {
            sport: u.source_port(),
            dport: u.destination_port(),
            tcp_flags: 0,
            tcp_options: Vec::new(),
        },
        Some(TransportSlice::Icmpv4(i)) => L4::Icmp {
            icmp_type: i.type_u8(),
            code: i.code_u8(),
        },
        Some(TransportSlice::Icmpv6(i)) => L4::Icmp {
            icmp_type: i.type_u8(),
            code: i.code_u8(),
        },
        // UDP-Lite and SCTP start with the two ports as well.
        None if matches!(protocol, 132 | 136) && payload.len() >= 4 => L4::Ports {
            sport: u16::from_be_bytes([payload[0], payload[1]]),
            dport: u16::from_be_bytes([payload[2], payload[3]]),
            tcp_flags: 0,
            tcp_options: Vec::new(),
        },
        None => L4::Other,
    };
    Ok(Ip {
        src,
        dst,
        protocol,
        tos,
        l4,
        icmpv6_message,
    })
}

fn tcp_flags(t: &etherparse::TcpSlice<'_>) -> u8 {
    [
        t.fin(),
        t.syn(),
        t.rst(),
        t.psh(),
        t.ack(),
        t.urg(),
        t.ece(),
        t.cwr(),
    ]
    .iter()
    .enumerate()
    .fold(0, |acc, (bit, set)| acc | (u8::from(*set) << bit))
}

/// The kinds of the TCP options present (EOL ends the list, NOP is one byte).
fn option_kinds(mut options: &[u8]) -> Vec<u8> {
    let mut kinds = Vec::new();
    while let Some(&kind) = options.first() {
        match kind {
            0 => break,
            1 => options = &options[1..],
            _ => {
                kinds.push(kind);
                let len = usize::from(options.get(1).copied().unwrap_or(0)).max(2);
                options = options.get(len..).unwrap_or(&[]);
            }
        }
    }
    kinds
}

/// An 802.2 LLC header (42 42 03) and a BPDU.
fn stp(body: &[u8], offset: usize) -> Result<Net, FrameError> {
    if body.len() < 7 || body[..3] != [0x42, 0x42, 0x03] {
        return Ok(Net::Other);
    }
    let b = &body[3..];
    let bpdu_type = b[3];
    if bpdu_type != BPDU_CONFIG {
        return Ok(Net::Stp(Stp {
            bpdu_type,
            ..Stp::empty()
        }));
    }
    if b.len() < 35 {
        return Err(bad(offset + 3, "a configuration BPDU has 35 bytes"));
    }
    let u16_at = |i: usize| u16::from_be_bytes([b[i], b[i + 1]]);
    let mac_at = |i: usize| <[u8; 6]>::try_from(&b[i..i + 6]).unwrap_or([0; 6]);
    Ok(Net::Stp(Stp {
        bpdu_type,
        flags: b[4],
        root_priority: u16_at(5),
        root_addr: mac_at(7),
        root_cost: u32::from_be_bytes([b[13], b[14], b[15], b[16]]),
        sender_priority: u16_at(17),
        sender_addr: mac_at(19),
        port: u16_at(25),
        message_age: u16_at(27),
        max_age: u16_at(29),
        hello_time: u16_at(31),
        forward_delay: u16_at(33),
    }))
}

impl Stp {
    fn empty() -> Stp {
        Stp {
            bpdu_type: 0,
            flags: 0,
            root_priority: 0,
            root_addr: [0; 6],
            root_cost: 0,
            sender_priority: 0,
            sender_addr: [0; 6],
            port: 0,
            message_age: 0,
            max_age: 0,
            hello_time: 0,
            forward_delay: 0,
        }
    }
}

/// A packet that [`build`] cannot write.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot build a frame: {0}")]
pub struct BuildError(pub String);

/// The frame of `p` (untagged ARP, RARP, IPv4 or IPv6 with TCP, UDP or
/// ICMP, or just an Ethernet header; VLAN tags and BPDUs are not built), padded to Ethernet's 60
/// bytes so that what the kernel sees is what was described.
pub fn build(p: &Packet) -> Result<Vec<u8>, BuildError> {
    build_with(p, &[0; 8])
}

/// As [`build`], with `trailer` as the IP payload, or after the ARP body
/// (where the padding would be): bytes no match reads, which tell frames
/// apart at a receiver (the differential test's marker).
pub fn build_with(p: &Packet, trailer: &[u8]) -> Result<Vec<u8>, BuildError> {
    let err = |e: &dyn std::fmt::Display| BuildError(e.to_string());
    if p.vlan.is_some() {
        return Err(BuildError("VLAN-tagged frames are not built".into()));
    }
    let mut out = Vec::new();
    match &p.net {
        Net::Arp(a) => {
            out.extend_from_slice(&p.dst_mac);
            out.extend_from_slice(&p.src_mac);
            out.extend_from_slice(&p.ether_type.to_be_bytes());
            let body = ArpPacket::new(
                ArpHardwareId(a.htype),
                EtherType(a.ptype),
                ArpOperation(a.opcode),
                &a.sha,
                &a.spa.octets(),
                &a.tha,
                &a.tpa.octets(),
            )
            .map_err(|e| err(&e))?;
            out.extend_from_slice(&body.to_bytes());
            out.extend_from_slice(trailer);
        }
        Net::Ip(ip) => build_ip(p, ip, trailer, &mut out)?,
        Net::Other => {
            out.extend_from_slice(&p.dst_mac);
            out.extend_from_slice(&p.src_mac);
            out.extend_from_slice(&p.ether_type.to_be_bytes());
            out.extend_from_slice(trailer);
        }
        Net::Stp(_) => return Err(BuildError("BPDUs are not built".into())),
    }
    if out.len() < 60 {
        out.resize(60, 0);
    }
    Ok(out)
}

fn build_ip(p: &Packet, ip: &Ip, payload: &[u8], out: &mut Vec<u8>) -> Result<(), BuildError> {
    let err = |e: &dyn std::fmt::Display| BuildError(e.to_string());
    let headers = match (ip.src, ip.dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut h = Ipv4Header::new(0, 64, IpNumber(ip.protocol), s.octets(), d.octets())
                .map_err(|e| err(&e))?;
            h.dscp = etherparse::IpDscp::try_new(ip.tos >> 2).map_err(|e| err(&e))?;
            h.ecn = etherparse::IpEcn::try_new(ip.tos & 3).map_err(|e| err(&e))?;
            IpHeaders::Ipv4(h, Default::default())
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => IpHeaders::Ipv6(
            Ipv6Header {
                traffic_class: ip.tos,
                flow_label: Default::default(),
                payload_length: 0,
                next_header: IpNumber(ip.protocol),
                hop_limit: 64,
                source: s.octets(),
                destination: d.octets(),
            },
            Default::default(),
        ),
        _ => {
            return Err(BuildError(
                "source and destination of different families".into(),
            ))
        }
    };
    let step = PacketBuilder::ethernet2(p.src_mac, p.dst_mac).ip(headers);
    match (&ip.l4, ip.protocol) {
        (
            L4::Ports {
                sport,
                dport,
                tcp_flags,
                ..
            },
            6,
        ) => {
            let mut t = TcpHeader::new(*sport, *dport, 1, 1024);
            let bit = |b: u8| tcp_flags & b != 0;
            (t.fin, t.syn, t.rst, t.psh) = (bit(0x01), bit(0x02), bit(0x04), bit(0x08));
            (t.ack, t.urg, t.ece, t.cwr) = (bit(0x10), bit(0x20), bit(0x40), bit(0x80));
            step.tcp_header(t).write(out, payload).map_err(|e| err(&e))
        }
        (L4::Ports { sport, dport, .. }, 17) => step
            .udp(*sport, *dport)
            .write(out, payload)
            .map_err(|e| err(&e)),
        (L4::Icmp { icmp_type, code }, 1) => step
            .icmpv4_raw(*icmp_type, *code, [0, 1, 0, 1])
            .write(out, payload)
            .map_err(|e| err(&e)),
        (L4::Icmp { icmp_type, code }, 58) => step
            .icmpv6_raw(*icmp_type, *code, [0, 1, 0, 1])
            .write(out, payload)
            .map_err(|e| err(&e)),
        (_, proto) => step
            .write(out, IpNumber(proto), payload)
            .map_err(|e| err(&e)),
    }
}

#[cfg(test)]
#[path = "frame_tests.rs"]
mod tests;
