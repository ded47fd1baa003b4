//! IR matches → nft statements.
//!
//! nft adds protocol dependencies itself (`arp operation` implies `ether
//! type arp`), which would contradict a RARP frame's EtherType: RARP header
//! fields are therefore matched as raw `@nh` payloads, as are the STP BPDU
//! fields (nft has no STP expression) and the whole IPv4 TOS byte.

use std::net::IpAddr;

use nftables::expr::{Expression, MetaKey, NamedExpression, PayloadBase, TcpOption};
use nftables::stmt::{CTCount, Statement};
use nwfilter_compile::ir::{
    AddrMatch, AddrRange, ConnDir, ConnStates, IpVersion, L4Proto, MacMatch, Match, Negatable,
    PortRange, StpField,
};

use crate::error::Unsupported;
use crate::term::{compare, in_flags, statement, Operand, Term};

const ETHERTYPE_RARP: u16 = 0x8035;

/// What earlier matches of the same rule established.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Context {
    /// The IP version (from the chain's family or an `EtherIp` match).
    pub ip: Option<IpVersion>,
    /// The frame was matched as RARP: ARP fields are raw payloads.
    pub rarp: bool,
    /// The layer-4 protocol the rule asked for.
    pub l4: Option<L4Proto>,
    /// An ND match already pinned the ICMPv6 header behind the IPv6 one.
    pub nd_pinned: bool,
}

/// The statements of one IR match (several for a split MAC compare).
pub(crate) fn terms(m: &Match, ctx: &mut Context) -> Result<Vec<Term>, Unsupported> {
    Ok(match m {
        Match::MacSrc(mac) => vec![mac_field("saddr", mac)],
        Match::MacDst(mac) => vec![mac_field("daddr", mac)],
        Match::EtherType(t) => {
            ctx.rarp = t.value == ETHERTYPE_RARP && !t.negated;
            vec![compare(
                Operand::field("ether", "type"),
                t.negated,
                Operand::hex(u32::from(t.value), 4),
            )]
        }
        Match::EtherIp(version) => {
            ctx.ip = Some(*version);
            let name = match version {
                IpVersion::V4 => "ip",
                IpVersion::V6 => "ip6",
            };
            vec![compare(
                Operand::field("ether", "type"),
                false,
                Operand::symbol(name),
            )]
        }
        Match::StpBpdu => vec![compare(
            Operand::field("ether", "daddr"),
            false,
            Operand::symbol("01:80:c2:00:00:00"),
        )],
        Match::VlanId(v) => vec![number_field("vlan", "id", widen(v), false)],
        Match::VlanEncap(v) => vec![number_field("vlan", "type", widen(v), true)],
        Match::StpType(v) => vec![raw_number(PayloadBase::LL, 160, 8, widen(v))],
        Match::StpFlags(v) => vec![raw_number(PayloadBase::LL, 168, 8, widen(v))],
        Match::StpRange(field, range) => vec![stp_range(*field, range)],
        Match::StpRootAddr(mac) => raw_mac(PayloadBase::LL, 192, mac)?,
        Match::StpSenderAddr(mac) => raw_mac(PayloadBase::LL, 288, mac)?,
        Match::ArpHwType(v) => vec![arp_number(ctx, "htype", 0, v)],
        Match::ArpOpcode(v) => vec![arp_number(ctx, "operation", 48, v)],
        Match::ArpProtoType(v) => vec![arp_number(ctx, "ptype", 16, v)],
        Match::ArpIpSrc(a) => vec![arp_ip(ctx, "saddr ip", 112, a)?],
        Match::ArpIpDst(a) => vec![arp_ip(ctx, "daddr ip", 192, a)?],
        Match::ArpMacSrc(mac) => arp_mac(ctx, "saddr ether", 64, mac)?,
        Match::ArpMacDst(mac) => arp_mac(ctx, "daddr ether", 144, mac)?,
        Match::ArpGratuitous { .. } => {
            // Gratuitous means sender IP == target IP: nft 1.0 cannot compare
            // two packet fields with each other.
            return Err(Unsupported::Feature(
                "arp gratuitous (sender IP = target IP)",
            ));
        }
        Match::IpSrc(a) => vec![ip_addr("saddr", a)],
        Match::IpDst(a) => vec![ip_addr("daddr", a)],
        Match::IpSrcRange(r) => vec![ip_range("saddr", r)],
        Match::IpDstRange(r) => vec![ip_range("daddr", r)],
        Match::IpProtocol(p) => vec![match ctx.ip {
            // The protocol after any extension headers, as ebtables'
            // `--ip6-proto` finds it: `ip6 nexthdr` is only the first
            // header, so an RA behind a hop-by-hop header (RFC 7113) or an
            // MLD report (always behind one) would not match.
            Some(IpVersion::V6) => compare(
                Operand::meta(MetaKey::L4proto, "l4proto"),
                p.negated,
                Operand::number(u32::from(p.value)),
            ),
            _ => number_field("ip", "protocol", widen(p), false),
        }],
        Match::IpTos(v) => vec![raw_number(PayloadBase::NH, 8, 8, widen(v))],
        Match::Dscp(v) => vec![match ctx.ip {
            Some(IpVersion::V6) => number_field("ip6", "dscp", widen(v), false),
            _ => number_field("ip", "dscp", widen(v), false),
        }],
        Match::L4(proto) => {
            ctx.l4 = Some(*proto);
            l4(*proto).into_iter().collect()
        }
        Match::SrcPort(r) => vec![port("sport", r)],
        Match::DstPort(r) => vec![port("dport", r)],
        Match::TcpFlags { mask, set, negated } => vec![compare(
            Operand::field("tcp", "flags").and(Operand::hex(u32::from(*mask), 2)),
            *negated,
            Operand::hex(u32::from(*set), 2),
        )],
        Match::TcpOption(kind) => vec![tcp_option(kind)?],
        Match::IcmpType {
            icmp_type,
            code,
            negated,
        } => icmp_type_code(ctx, *icmp_type, *code, *negated),
        Match::Icmpv6Ranges {
            types,
            codes,
            negated,
        } => icmpv6_ranges(*types, *codes, *negated),
        Match::ConnState(states) => vec![conn_state(states)],
        Match::ConnDir(dir) => vec![compare(
            Operand::ct("direction"),
            false,
            Operand::symbol(match dir {
                ConnDir::Original => "original",
                ConnDir::Reply => "reply",
            }),
        )],
        Match::IpSet { name, .. } => {
            return Err(Unsupported::Ipset(name.clone()));
        }
        Match::ConnlimitAbove(limit) => vec![connlimit(limit)],
        Match::Nd(nd) => crate::nd::terms(nd, ctx)?,
    })
}

/// A per-port match as a set lookup: the header field, its set key type
/// and this port's value (nft's canonical spelling, as listings show it).
#[derive(Debug, Clone)]
pub(crate) struct Lookup {
    pub field: Operand,
    pub key_type: &'static str,
    pub value: String,
    pub negated: bool,
}

impl Lookup {
    /// Whether the field is a raw payload (its set needs `typeof`).
    pub fn raw(&self) -> bool {
        self.key_type == RAW_KEY
    }
}

/// Big-endian bytes (an address in a raw header field) as one number.
pub(crate) fn big_endian(bytes: &[u8]) -> u128 {
    bytes.iter().fold(0, |acc, b| acc << 8 | u128::from(*b))
}

/// The key type a raw payload stands for in [`Lookup::key_type`]: no set
/// `type` holds it, so its set is declared by `typeof` ([`Lookup::raw`]).
pub(crate) const RAW_KEY: &str = "integer";

/// `m` as a set lookup, when a set can hold its value: an exact address
/// in a typed header field (no mask, no shorter prefix), or an exact
/// address in a raw header field (RARP; neighbour discovery: [`crate::nd`]),
/// whose set is declared by `typeof` and whose value is the address as one
/// decimal number (how [`crate::kernel`] reads what nft lists).
pub(crate) fn lookup(m: &Match, ctx: &Context) -> Option<Lookup> {
    let raw_mac = |offset: u32, x: &MacMatch| {
        x.mask.is_none().then(|| Lookup {
            field: Operand::raw(PayloadBase::NH, offset, 48),
            key_type: RAW_KEY,
            value: big_endian(&x.addr.into_array()).to_string(),
            negated: x.negated,
        })
    };
    let mac = |proto: &'static str, field: &'static str, x: &MacMatch| {
        x.mask.is_none().then(|| Lookup {
            field: Operand::field(proto, field),
            key_type: "ether_addr",
            value: mac_text(&x.addr),
            negated: x.negated,
        })
    };
    let ip = |proto: &'static str, field: &'static str, a: &AddrMatch| {
        let full = if a.addr.is_ipv4() { 32 } else { 128 };
        (a.prefix.unwrap_or(full) == full).then(|| Lookup {
            field: Operand::field(proto, field),
            key_type: if a.addr.is_ipv4() {
                "ipv4_addr"
            } else {
                "ipv6_addr"
            },
            value: a.addr.to_string(),
            negated: a.negated,
        })
    };
    match m {
        Match::MacSrc(x) => mac("ether", "saddr", x),
        Match::MacDst(x) => mac("ether", "daddr", x),
        Match::ArpMacSrc(x) if !ctx.rarp => mac("arp", "saddr ether", x),
        Match::ArpMacDst(x) if !ctx.rarp => mac("arp", "daddr ether", x),
        Match::ArpMacSrc(x) => raw_mac(64, x),
        Match::ArpMacDst(x) => raw_mac(144, x),
        Match::Nd(nd) => crate::nd::lookup(nd),
        Match::ArpIpSrc(a) if !ctx.rarp && a.addr.is_ipv4() => ip("arp", "saddr ip", a),
        Match::ArpIpDst(a) if !ctx.rarp && a.addr.is_ipv4() => ip("arp", "daddr ip", a),
        Match::IpSrc(a) => ip(ip_proto(a.addr), "saddr", a),
        Match::IpDst(a) => ip(ip_proto(a.addr), "daddr", a),
        _ => None,
    }
}

fn mac_text(mac: &nwfilter_model::MacAddr6) -> String {
    mac.to_string().to_ascii_lowercase()
}

fn mac_field(field: &'static str, m: &MacMatch) -> Term {
    let mut left = Operand::field("ether", field);
    let mut addr = m.addr;
    if let Some(mask) = m.mask {
        left = left.and(Operand::symbol(mac_text(&mask)));
        addr = masked_mac(&m.addr, &mask);
    }
    compare(left, m.negated, Operand::symbol(mac_text(&addr)))
}

fn masked_mac(
    addr: &nwfilter_model::MacAddr6,
    mask: &nwfilter_model::MacAddr6,
) -> nwfilter_model::MacAddr6 {
    let (a, m) = (addr.into_array(), mask.into_array());
    let mut out = [0u8; 6];
    for i in 0..6 {
        out[i] = a[i] & m[i];
    }
    nwfilter_model::MacAddr6::from(out)
}

fn number_field(proto: &'static str, field: &'static str, v: Negatable<u32>, hex: bool) -> Term {
    let right = if hex {
        Operand::hex(v.value, 4)
    } else {
        Operand::number(v.value)
    };
    compare(Operand::field(proto, field), v.negated, right)
}

fn raw_number(base: PayloadBase, offset: u32, len: u32, v: Negatable<u32>) -> Term {
    compare(
        Operand::raw(base, offset, len),
        v.negated,
        Operand::hex(v.value, (len / 4) as usize),
    )
}

/// A 48-bit address at `offset` as a 32-bit and a 16-bit raw compare (the
/// JSON numbers are 32-bit); negated as one concatenation.
fn raw_mac(base: PayloadBase, offset: u32, m: &MacMatch) -> Result<Vec<Term>, Unsupported> {
    let mask = m.mask.map_or([0xff; 6], |k| k.into_array());
    let a = m.addr.into_array();
    let word = |b: &[u8]| b.iter().fold(0u32, |acc, x| acc << 8 | u32::from(*x));
    let parts = [
        (offset, 32, word(&a[..4]), word(&mask[..4])),
        (offset + 32, 16, word(&a[4..]), word(&mask[4..])),
    ];
    let full = |len: u32| if len == 32 { u32::MAX } else { 0xffff };
    if m.negated {
        if parts.iter().any(|p| p.3 != full(p.1)) {
            return Err(Unsupported::Feature(
                "a negated, masked address in a raw header field",
            ));
        }
        let left = Operand::concat(parts.iter().map(|p| Operand::raw(base, p.0, p.1)).collect());
        let right = Operand::set(vec![Operand::concat(
            parts
                .iter()
                .map(|p| Operand::hex(p.2, (p.1 / 4) as usize))
                .collect(),
        )]);
        return Ok(vec![compare(left, true, right)]);
    }
    Ok(parts
        .iter()
        .filter(|p| p.3 != 0)
        .map(|&(off, len, value, mask)| {
            let mut left = Operand::raw(base, off, len);
            if mask != full(len) {
                left = left.and(Operand::hex(mask, (len / 4) as usize));
            }
            compare(left, false, Operand::hex(value & mask, (len / 4) as usize))
        })
        .collect())
}

fn stp_range(field: StpField, r: &PortRange<u32>) -> Term {
    // Bit offsets from the Ethernet header: 14 bytes Ethernet, 3 LLC, then
    // the BPDU (root id at BPDU byte 5).
    let (offset, len) = match field {
        StpField::RootPriority => (176, 16),
        StpField::RootCost => (240, 32),
        StpField::SenderPriority => (272, 16),
        StpField::Port => (336, 16),
        StpField::MessageAge => (352, 16),
        StpField::MaxAge => (368, 16),
        StpField::HelloTime => (384, 16),
        StpField::ForwardDelay => (400, 16),
    };
    let right = match r.end {
        Some(end) if end != r.start => {
            Operand::range(Operand::number(r.start), Operand::number(end))
        }
        _ => Operand::number(r.start),
    };
    compare(Operand::raw(PayloadBase::LL, offset, len), r.negated, right)
}

fn arp_number(ctx: &Context, field: &'static str, offset: u32, v: &Negatable<u16>) -> Term {
    let v = widen(v);
    if ctx.rarp {
        raw_number(PayloadBase::NH, offset, 16, v)
    } else {
        number_field("arp", field, v, field == "ptype")
    }
}

fn arp_ip(
    ctx: &Context,
    field: &'static str,
    offset: u32,
    a: &AddrMatch,
) -> Result<Term, Unsupported> {
    let IpAddr::V4(addr) = a.addr else {
        return Err(Unsupported::Feature("an IPv6 address in an ARP header"));
    };
    let len = a.prefix.unwrap_or(32).min(32);
    if !ctx.rarp {
        return Ok(compare(
            Operand::field("arp", field),
            a.negated,
            addr_operand(a.addr, Some(len)),
        ));
    }
    let mask = if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    };
    let mut left = Operand::raw(PayloadBase::NH, offset, 32);
    if len < 32 {
        left = left.and(Operand::hex(mask, 8));
    }
    Ok(compare(
        left,
        a.negated,
        Operand::hex(u32::from(addr) & mask, 8),
    ))
}

fn arp_mac(
    ctx: &Context,
    field: &'static str,
    offset: u32,
    m: &MacMatch,
) -> Result<Vec<Term>, Unsupported> {
    if ctx.rarp {
        return raw_mac(PayloadBase::NH, offset, m);
    }
    Ok(vec![compare(
        Operand::field("arp", field),
        m.negated,
        Operand::symbol(mac_text(&m.addr)),
    )])
}

/// An address, as a prefix when it is a network.
fn addr_operand(addr: IpAddr, prefix: Option<u8>) -> Operand {
    let full = if addr.is_ipv4() { 32 } else { 128 };
    match prefix {
        Some(len) if len < full => Operand::prefix(network(addr, len).to_string(), len),
        _ => Operand::symbol(addr.to_string()),
    }
}

/// `addr` with the host bits cleared (nft refuses host bits in a prefix).
fn network(addr: IpAddr, len: u8) -> IpAddr {
    match addr {
        IpAddr::V4(a) => {
            let mask = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len))
            };
            IpAddr::V4((u32::from(a) & mask).into())
        }
        IpAddr::V6(a) => {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len))
            };
            IpAddr::V6((u128::from(a) & mask).into())
        }
    }
}

fn ip_proto(addr: IpAddr) -> &'static str {
    if addr.is_ipv4() {
        "ip"
    } else {
        "ip6"
    }
}

fn ip_addr(field: &'static str, a: &AddrMatch) -> Term {
    compare(
        Operand::field(ip_proto(a.addr), field),
        a.negated,
        addr_operand(a.addr, a.prefix),
    )
}

fn ip_range(field: &'static str, r: &AddrRange) -> Term {
    let from = Operand::symbol(r.from.to_string());
    let right = match r.to {
        Some(to) if to != r.from => Operand::range(from, Operand::symbol(to.to_string())),
        _ => from,
    };
    compare(Operand::field(ip_proto(r.from), field), r.negated, right)
}

fn l4(proto: L4Proto) -> Option<Term> {
    let name = match proto {
        L4Proto::Tcp => "tcp",
        L4Proto::Udp => "udp",
        L4Proto::Udplite => "udplite",
        L4Proto::Sctp => "sctp",
        L4Proto::Icmp => "icmp",
        L4Proto::Icmpv6 => "ipv6-icmp",
        L4Proto::Igmp => "igmp",
        L4Proto::Esp => "esp",
        L4Proto::Ah => "ah",
        L4Proto::All => return None,
    };
    Some(compare(
        Operand::meta(MetaKey::L4proto, "l4proto"),
        false,
        Operand::symbol(name),
    ))
}

fn port(field: &'static str, r: &PortRange<u16>) -> Term {
    let start = Operand::number(u32::from(r.start));
    let right = match r.end {
        Some(end) if end != r.start => Operand::range(start, Operand::number(u32::from(end))),
        _ => start,
    };
    compare(Operand::field("th", field), r.negated, right)
}

fn tcp_option(kind: &Negatable<u8>) -> Result<Term, Unsupported> {
    let name = match kind.value {
        2 => "maxseg",
        3 => "window",
        4 => "sack-perm",
        5 => "sack",
        8 => "timestamp",
        _ => return Err(Unsupported::TcpOption(kind.value)),
    };
    let (word, present) = if kind.negated {
        ("missing", false)
    } else {
        ("exists", true)
    };
    Ok(Term {
        text: format!("tcp option {name} {word}"),
        json: Statement::Match(nftables::stmt::Match {
            left: Expression::Named(NamedExpression::TcpOption(TcpOption {
                name: name.into(),
                field: None,
            })),
            right: Expression::Boolean(present),
            op: nftables::stmt::Operator::EQ,
        }),
    })
}

fn icmp_proto(ctx: &Context) -> &'static str {
    match (ctx.l4, ctx.ip) {
        (Some(L4Proto::Icmpv6), _) | (None, Some(IpVersion::V6)) => "icmpv6",
        _ => "icmp",
    }
}

fn icmp_type_code(ctx: &Context, icmp_type: u8, code: Option<u8>, negated: bool) -> Vec<Term> {
    let proto = icmp_proto(ctx);
    let ty = Operand::number(u32::from(icmp_type));
    match (code, negated) {
        (None, _) => vec![compare(Operand::field(proto, "type"), negated, ty)],
        (Some(c), false) => vec![
            compare(Operand::field(proto, "type"), false, ty),
            compare(
                Operand::field(proto, "code"),
                false,
                Operand::number(u32::from(c)),
            ),
        ],
        // Not (type and code): one concatenated compare.
        (Some(c), true) => vec![compare(
            Operand::concat(vec![
                Operand::field(proto, "type"),
                Operand::field(proto, "code"),
            ]),
            true,
            Operand::set(vec![Operand::concat(vec![
                ty,
                Operand::number(u32::from(c)),
            ])]),
        )],
    }
}

fn span(lo: u8, hi: u8) -> Operand {
    if lo == hi {
        Operand::number(u32::from(lo))
    } else {
        Operand::range(
            Operand::number(u32::from(lo)),
            Operand::number(u32::from(hi)),
        )
    }
}

fn icmpv6_ranges(types: (u8, u8), codes: (u8, u8), negated: bool) -> Vec<Term> {
    let (t, c) = (span(types.0, types.1), span(codes.0, codes.1));
    if negated {
        return vec![compare(
            Operand::concat(vec![
                Operand::field("icmpv6", "type"),
                Operand::field("icmpv6", "code"),
            ]),
            true,
            Operand::set(vec![Operand::concat(vec![t, c])]),
        )];
    }
    vec![
        compare(Operand::field("icmpv6", "type"), false, t),
        compare(Operand::field("icmpv6", "code"), false, c),
    ]
}

fn conn_state(s: &ConnStates) -> Term {
    let names: Vec<&'static str> = [
        (s.new, "new"),
        (s.established, "established"),
        (s.related, "related"),
        (s.invalid, "invalid"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    in_flags(Operand::ct("state"), Operand::flags(&names))
}

fn connlimit(limit: &Negatable<u16>) -> Term {
    // `ct count over N` counts the connections this rule has seen; on a
    // port's from-VM chain that is the VM's connections (iptables counts
    // per source address: the same for a VM with one address).
    let over = !limit.negated;
    let text = if over {
        format!("ct count over {}", limit.value)
    } else {
        format!("ct count {}", limit.value)
    };
    statement(
        text,
        Statement::CTCount(CTCount {
            val: Expression::Number(u32::from(limit.value)),
            inv: over.then_some(true),
        }),
    )
}

fn widen<T: Copy + Into<u32>>(v: &Negatable<T>) -> Negatable<u32> {
    Negatable {
        value: v.value.into(),
        negated: v.negated,
    }
}
