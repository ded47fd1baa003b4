//! Parsing one attribute value from its XML text, and printing it back in
//! libvirt's canonical form (reference §4, §5, §10.3).
//!
//! [`parse_value`] is used by the XML parser and by the compiler, which
//! type-checks variable values against the attribute they are substituted
//! into (libvirt pastes them in unchecked). Deliberate differences from
//! libvirt are listed in docs/compatibility.md.

use std::net::Ipv4Addr;

use crate::addr;
use crate::attr::{Attr, ValueKind};
use crate::protocol::Protocol;
use crate::value::{IpsetDir, Number, StateSet, TcpFlags, Value};
use crate::var::{VarAccess, VarRef, MAX_ITERATOR_ID};

/// The longest comment libvirt keeps (iptables' comment limit).
pub const MAX_COMMENT_BYTES: usize = 256;
/// The longest ipset name (the kernel's `IPSET_MAXNAMELEN` − 1).
pub const MAX_IPSET_NAME: usize = 31;

/// Why an attribute value was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    /// The protocol element has no such attribute.
    #[error("<{protocol}> has no attribute '{attr}'")]
    NoSuchAttr {
        protocol: &'static str,
        attr: &'static str,
    },
    /// The text is not a valid value of the attribute's kind.
    #[error("illegal value {value:?}: {reason}")]
    Illegal { value: String, reason: String },
}

fn illegal(value: &str, reason: impl Into<String>) -> ValueError {
    ValueError::Illegal {
        value: value.to_owned(),
        reason: reason.into(),
    }
}

/// Parses the text of attribute `attr` on element `protocol`.
///
/// Text starting with `$` is a variable reference for every attribute
/// (checked when the variable is bound, see [`parse_kind`]).
pub fn parse_value(protocol: Protocol, attr: Attr, text: &str) -> Result<Value, ValueError> {
    let kind = protocol.kind_of(attr).ok_or(ValueError::NoSuchAttr {
        protocol: protocol.name(),
        attr: attr.name(),
    })?;
    if text.starts_with('$') {
        return parse_var(text).map(Value::Var);
    }
    parse_kind(kind, text)
}

/// Parses a concrete (non-variable) value of `kind`. A leading `$` is not
/// special here: use this to check a variable's value against the
/// attribute it is substituted into.
pub fn parse_kind(kind: ValueKind, text: &str) -> Result<Value, ValueError> {
    use ValueKind as K;
    let number = |max: u32, what: &str| {
        parse_number(text, max, true)
            .map(Value::Number)
            .ok_or_else(|| illegal(text, format!("expected {what}, decimal or 0x hex")))
    };
    match kind {
        K::U8 => number(0xff, "an integer 0-255"),
        K::U16 => number(0xffff, "an integer 0-65535"),
        K::U32 => number(u32::MAX, "an integer 0-4294967295"),
        K::U16Dec => parse_number(text, 0xffff, false)
            .map(Value::Number)
            .ok_or_else(|| illegal(text, "expected a decimal integer 0-65535")),
        K::Dscp => number(63, "a DSCP value 0-63"),
        K::VlanId => number(4095, "a VLAN id 0-4095"),
        K::EtherType => parse_ethertype(text, 0x600),
        K::EncapEtherType => parse_ethertype(text, 0x3c),
        K::ArpOpcode => parse_opcode(text),
        K::IpProtocol => parse_ip_protocol(text),
        K::Mac => addr::parse_mac(text)
            .map(Value::Mac)
            .ok_or_else(|| illegal(text, "expected a MAC address xx:xx:xx:xx:xx:xx")),
        K::MacMask => {
            let mac = addr::parse_mac(text)
                .ok_or_else(|| illegal(text, "expected a MAC mask xx:xx:xx:xx:xx:xx"))?;
            addr::mac_prefix(&mac)
                .map(|_| Value::Mac(mac))
                .ok_or_else(|| illegal(text, "MAC mask bits must be ones followed by zeros"))
        }
        K::Ipv4 => addr::parse_ipv4(text)
            .map(Value::Ipv4)
            .ok_or_else(|| illegal(text, "expected an IPv4 address")),
        K::Ipv4Mask => parse_mask(text, 32),
        K::Ipv6 => addr::parse_ipv6(text)
            .map(Value::Ipv6)
            .ok_or_else(|| illegal(text, "expected an IPv6 address (without a zone)")),
        K::Ipv6Mask => parse_mask(text, 128),
        K::Bool => match text {
            "true" | "yes" | "1" => Ok(Value::Bool(true)),
            "false" | "no" | "0" => Ok(Value::Bool(false)),
            _ => Err(illegal(text, "expected true/yes/1 or false/no/0")),
        },
        K::Comment => parse_comment(text),
        K::StateSet => parse_states(text),
        K::TcpFlags => parse_tcp_flags(text),
        K::IpsetName => parse_ipset_name(text),
        K::IpsetFlags => parse_ipset_flags(text),
    }
}

/// C `strtoul` over the whole string, as libvirt uses it: optional leading
/// whitespace, optional `+`, digits (base 16 also takes `0x`), nothing after.
/// A leading `-` (which C wraps modulo 2^32) is refused.
fn parse_uint(text: &str, radix: u32) -> Option<u64> {
    let s = text.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let s = s.strip_prefix('+').unwrap_or(s);
    let s = if radix == 16 {
        s.strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .unwrap_or(s)
    } else {
        s
    };
    if s.is_empty() || !s.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u64::from_str_radix(s, radix).ok()
}

/// Decimal first, then (if allowed) hex; the winning form is remembered.
fn parse_number(text: &str, max: u32, allow_hex: bool) -> Option<Number> {
    if let Some(v) = parse_uint(text, 10) {
        // Decimal digits read as hex only grow, so no fall-through needed.
        return (v <= u64::from(max)).then(|| Number::dec(v as u32));
    }
    if !allow_hex {
        return None;
    }
    let v = parse_uint(text, 16)?;
    (v <= u64::from(max)).then_some(Number {
        value: v as u32,
        hex: true,
    })
}

/// EtherType names libvirt knows (`protocolid`, `encap-protocol`).
pub(crate) const ETHERTYPE_NAMES: [(u32, &str); 5] = [
    (0x0806, "arp"),
    (0x8035, "rarp"),
    (0x0800, "ipv4"),
    (0x86dd, "ipv6"),
    (0x8100, "vlan"),
];

/// IP protocol names (`protocol` on `ip`/`ipv6`).
pub(crate) const IP_PROTOCOL_NAMES: [(u32, &str); 9] = [
    (6, "tcp"),
    (17, "udp"),
    (136, "udplite"),
    (50, "esp"),
    (51, "ah"),
    (1, "icmp"),
    (2, "igmp"),
    (132, "sctp"),
    (58, "icmpv6"),
];

/// ARP opcodes 1..=9 by name, in numeric order.
pub(crate) const ARP_OPCODE_NAMES: [&str; 9] = [
    "Request",
    "Reply",
    "Request_Reverse",
    "Reply_Reverse",
    "DRARP_Request",
    "DRARP_Reply",
    "DRARP_Error",
    "InARP_Request",
    "ARP_NAK",
];

fn lookup(table: &[(u32, &str)], text: &str) -> Option<u32> {
    table
        .iter()
        .find(|(_, name)| name.eq_ignore_ascii_case(text))
        .map(|(n, _)| *n)
}

/// A number that prints as a name forgets its written base: the base
/// cannot show in the output, and the canonical model must not differ
/// between `2048` and `0x800`.
fn canonical_named(n: Number, names: &[(u32, &str)]) -> Number {
    let named = names.iter().any(|(v, _)| *v == n.value);
    Number {
        value: n.value,
        hex: n.hex && !named,
    }
}

fn parse_ethertype(text: &str, min: u32) -> Result<Value, ValueError> {
    let value = match parse_number(text, 0xffff, true) {
        Some(n) if n.value < min => {
            return Err(illegal(
                text,
                format!("an EtherType number must be at least {min:#x}"),
            ))
        }
        Some(n) => canonical_named(n, &ETHERTYPE_NAMES),
        None => lookup(&ETHERTYPE_NAMES, text)
            .map(Number::dec)
            .ok_or_else(|| illegal(text, "expected arp, rarp, ipv4, ipv6, vlan or a number"))?,
    };
    Ok(Value::Number(value))
}

fn parse_opcode(text: &str) -> Result<Value, ValueError> {
    if let Some(n) = parse_number(text, 0xffff, true) {
        // libvirt prints opcodes outside 1..=9 in decimal whatever the input.
        return Ok(Value::Number(Number::dec(n.value)));
    }
    ARP_OPCODE_NAMES
        .iter()
        .position(|name| name.eq_ignore_ascii_case(text))
        .map(|i| Value::Number(Number::dec(i as u32 + 1)))
        .ok_or_else(|| {
            illegal(
                text,
                "expected an ARP opcode name (Request, Reply, ...) or 0-65535",
            )
        })
}

fn parse_ip_protocol(text: &str) -> Result<Value, ValueError> {
    if let Some(n) = parse_number(text, 0xff, true) {
        return Ok(Value::Number(canonical_named(n, &IP_PROTOCOL_NAMES)));
    }
    lookup(&IP_PROTOCOL_NAMES, text)
        .map(|n| Value::Number(Number::dec(n)))
        .ok_or_else(|| {
            illegal(
                text,
                "expected tcp, udp, udplite, esp, ah, icmp, igmp, sctp, icmpv6 or 0-255",
            )
        })
}

/// A prefix length in decimal, or a contiguous netmask in address form.
fn parse_mask(text: &str, width: u32) -> Result<Value, ValueError> {
    if let Some(len) = parse_uint(text, 10) {
        return if len <= u64::from(width) {
            Ok(Value::Prefix(len as u8))
        } else {
            Err(illegal(text, format!("a prefix length must be 0-{width}")))
        };
    }
    let bits = if width == 32 {
        addr::parse_ipv4(text).map(|a| u128::from(u32::from(a)))
    } else {
        addr::parse_ipv6(text).map(u128::from)
    };
    let bits = bits.ok_or_else(|| {
        illegal(
            text,
            format!("expected a prefix length 0-{width} or a netmask"),
        )
    })?;
    addr::contiguous_prefix(bits, width)
        .map(Value::Prefix)
        .ok_or_else(|| illegal(text, "netmask bits must be ones followed by zeros"))
}

/// Comments are cut to 256 bytes like libvirt does (but at a character
/// boundary). Control characters are refused: they would end up in a
/// firewall command or restore file.
fn parse_comment(text: &str) -> Result<Value, ValueError> {
    if text.chars().any(char::is_control) {
        return Err(illegal(
            text,
            "a comment may not contain control characters",
        ));
    }
    let mut end = text.len().min(MAX_COMMENT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Ok(Value::Text(text[..end].to_owned()))
}

/// Reads names from `table` out of `text`, separated by commas and/or
/// blanks and (as in libvirt) possibly run together; returns their bits.
fn parse_name_list(text: &str, table: &[(u8, &str)]) -> Option<u8> {
    let mut rest = text;
    let mut bits = 0;
    loop {
        rest = rest.trim_start_matches([',', ' ', '\t', '\n', '\r']);
        if rest.is_empty() {
            return Some(bits);
        }
        // `get` rather than slicing: the text may hold multi-byte characters
        // and a name's length need not fall on a character boundary. A match
        // is all ASCII, so the cut after it is on a boundary.
        let (bit, name) = table.iter().find(|(_, name)| {
            rest.get(..name.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(name))
        })?;
        bits |= bit;
        rest = &rest[name.len()..];
    }
}

fn parse_states(text: &str) -> Result<Value, ValueError> {
    let bits = parse_name_list(text, &StateSet::NAMES).ok_or_else(|| {
        illegal(
            text,
            "expected a list of NEW, ESTABLISHED, RELATED, INVALID or NONE",
        )
    })?;
    match bits {
        0 => Err(illegal(text, "the state list is empty")),
        b if b & StateSet::NONE != 0 => Ok(Value::States(StateSet(StateSet::NONE))),
        b => Ok(Value::States(StateSet(b))),
    }
}

fn parse_flag_side(text: &str) -> Option<u8> {
    const EXTRA: [(u8, &str); 2] = [(TcpFlags::ALL, "ALL"), (0, "NONE")];
    let table: Vec<(u8, &str)> = TcpFlags::NAMES
        .iter()
        .chain(EXTRA.iter())
        .copied()
        .collect();
    parse_name_list(text, &table)
}

fn parse_tcp_flags(text: &str) -> Result<Value, ValueError> {
    let bad = || {
        illegal(
            text,
            "expected MASK/SET, each a list of SYN, ACK, URG, PSH, FIN, RST, ALL or NONE",
        )
    };
    let (mask, set) = text.split_once('/').ok_or_else(bad)?;
    let mask = parse_flag_side(mask).ok_or_else(bad)?;
    let set = parse_flag_side(set).ok_or_else(bad)?;
    Ok(Value::TcpFlags(TcpFlags { mask, set }))
}

fn parse_ipset_name(text: &str) -> Result<Value, ValueError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || "_.:+ -".contains(c);
    if text.is_empty() || text.len() > MAX_IPSET_NAME {
        return Err(illegal(text, "an ipset name has 1 to 31 characters"));
    }
    if !text.chars().all(ok_char) {
        return Err(illegal(
            text,
            "an ipset name may only contain [A-Za-z0-9_.:+ -]",
        ));
    }
    Ok(Value::IpsetName(text.to_owned()))
}

fn parse_ipset_flags(text: &str) -> Result<Value, ValueError> {
    let bad = || illegal(text, "expected 1 to 6 comma-separated 'src' or 'dst'");
    let dirs = text
        .split(',')
        .map(|s| match s.to_ascii_lowercase().as_str() {
            "src" => Ok(IpsetDir::Src),
            "dst" => Ok(IpsetDir::Dst),
            _ => Err(bad()),
        })
        .collect::<Result<Vec<_>, _>>()?;
    if dirs.len() > 6 {
        return Err(bad());
    }
    Ok(Value::IpsetFlags(dirs))
}

/// `$NAME`, `$NAME[@N]`, `$NAME[N]` (reference §6.1). Blanks are allowed
/// inside the brackets and after `]`; other trailing text and a lone `$`
/// are refused (libvirt ignores the one and accepts the other).
pub fn parse_var(text: &str) -> Result<VarRef, ValueError> {
    let body = text
        .strip_prefix('$')
        .ok_or_else(|| illegal(text, "a variable reference starts with '$'"))?;
    let name_len = body
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(body.len());
    let (name, rest) = body.split_at(name_len);
    if name.is_empty() {
        return Err(illegal(text, "a variable reference needs a name: $NAME"));
    }
    if rest.is_empty() {
        return Ok(VarRef::plain(name));
    }
    let inner = rest
        .strip_prefix('[')
        .and_then(|r| r.split_once(']'))
        .filter(|(_, after)| after.trim().is_empty())
        .map(|(inner, _)| inner.trim())
        .ok_or_else(|| illegal(text, "expected $NAME, $NAME[@N] or $NAME[N]"))?;
    let (iterator, digits) = match inner.strip_prefix('@') {
        Some(d) => (true, d),
        None => (false, inner),
    };
    let n = parse_uint(digits, 10)
        .filter(|n| *n <= u64::from(u32::MAX))
        .ok_or_else(|| illegal(text, "malformed iterator id or index"))? as u32;
    let access = if iterator {
        if n > MAX_ITERATOR_ID {
            return Err(illegal(text, "iterator id exceeds the maximum of 1000"));
        }
        VarAccess::Iterator(n)
    } else {
        VarAccess::Index(n)
    };
    Ok(VarRef {
        name: name.to_owned(),
        access,
    })
}

/// `$NAME` for iterator 0, `$NAME[@N]`, `$NAME[N]`.
pub fn format_var(var: &VarRef) -> String {
    match var.access {
        VarAccess::Iterator(0) => format!("${}", var.name),
        VarAccess::Iterator(n) => format!("${}[@{n}]", var.name),
        VarAccess::Index(n) => format!("${}[{n}]", var.name),
    }
}

/// A `<parameter name=…>`: `[A-Za-z0-9_]+`.
pub fn valid_param_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A `<parameter value=…>`: `[A-Za-z0-9_.:]+` (IPv4, IPv6, MAC, numbers, names).
pub fn valid_param_value(value: &str) -> bool {
    !value.is_empty()
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':'))
}

/// The canonical text of `value` for attribute `attr` of `protocol`
/// (unescaped; the XML writer escapes). Falls back to the value's own
/// shape when the protocol has no such attribute.
pub fn format_value(protocol: Protocol, attr: Attr, value: &Value) -> String {
    let kind = protocol.kind_of(attr);
    format_kind(kind, value)
}

/// The canonical text of `value` read as `kind` (names for known EtherTypes,
/// IP protocols and ARP opcodes; `None` prints numbers as written).
pub fn format_kind(kind: Option<ValueKind>, value: &Value) -> String {
    match value {
        Value::Var(var) => format_var(var),
        Value::Number(n) => format_number(kind, *n),
        Value::Mac(mac) => addr::format_mac(mac),
        Value::Ipv4(a) => Ipv4Addr::to_string(a),
        Value::Ipv6(a) => addr::format_ipv6(a),
        Value::Prefix(p) => p.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Text(t) | Value::IpsetName(t) => t.clone(),
        Value::States(s) => format_states(*s),
        Value::TcpFlags(f) => format!("{}/{}", format_flag_side(f.mask), format_flag_side(f.set)),
        Value::IpsetFlags(dirs) => dirs.iter().map(|d| d.name()).collect::<Vec<_>>().join(","),
    }
}

fn format_number(kind: Option<ValueKind>, n: Number) -> String {
    let name = match kind {
        Some(ValueKind::EtherType | ValueKind::EncapEtherType) => ETHERTYPE_NAMES
            .iter()
            .find(|(v, _)| *v == n.value)
            .map(|(_, name)| *name),
        Some(ValueKind::IpProtocol) => IP_PROTOCOL_NAMES
            .iter()
            .find(|(v, _)| *v == n.value)
            .map(|(_, name)| *name),
        Some(ValueKind::ArpOpcode) => (1..=9)
            .contains(&n.value)
            .then(|| ARP_OPCODE_NAMES[n.value as usize - 1]),
        _ => None,
    };
    match name {
        Some(name) => name.to_owned(),
        None if n.hex && kind != Some(ValueKind::ArpOpcode) => format!("{:#x}", n.value),
        None => n.value.to_string(),
    }
}

fn format_states(s: StateSet) -> String {
    StateSet::NAMES
        .iter()
        .filter(|(bit, _)| s.contains(*bit))
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join(",")
}

fn format_flag_side(bits: u8) -> String {
    match bits {
        0 => "NONE".to_owned(),
        TcpFlags::ALL => "ALL".to_owned(),
        _ => TcpFlags::NAMES
            .iter()
            .filter(|(bit, _)| bits & bit != 0)
            .map(|(_, name)| *name)
            .collect::<Vec<_>>()
            .join(","),
    }
}

#[cfg(test)]
#[path = "values_parse_tests.rs"]
mod tests;
