//! Address syntaxes as libvirt's C library accepts and prints them: MACs
//! with 1–2 digit groups, IPv4 in `inet_aton` form, netmasks, and IPv6 text
//! as glibc's `inet_ntop` writes it (which differs from Rust's `Display`).

use std::net::{Ipv4Addr, Ipv6Addr};

use macaddr::MacAddr6;

/// `xx:xx:xx:xx:xx:xx` with one or two hex digits per group, nothing else
/// (libvirt also ignores text after a blank; we refuse it). The
/// `<mac address>` of a binding is read with it; so is the typed binding
/// builder's MAC, which must accept exactly the same values.
pub fn parse_mac(text: &str) -> Option<MacAddr6> {
    let mut bytes = [0u8; 6];
    let mut groups = text.split(':');
    for byte in &mut bytes {
        let group = groups.next()?;
        if group.is_empty() || group.len() > 2 || !group.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        *byte = u8::from_str_radix(group, 16).ok()?;
    }
    if groups.next().is_some() {
        return None;
    }
    Some(MacAddr6::from(bytes))
}

/// Lower case, two digits per byte.
pub(crate) fn format_mac(mac: &MacAddr6) -> String {
    let b = mac.as_bytes();
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[0], b[1], b[2], b[3], b[4], b[5]
    )
}

/// Prefix length of a contiguous mask (ones then zeros) held in the low
/// `width` bits of `bits`, else `None`.
pub(crate) fn contiguous_prefix(bits: u128, width: u32) -> Option<u8> {
    // Align the mask to the top of 128 bits so leading_ones counts its ones.
    let aligned = bits << (128 - width);
    let ones = aligned.leading_ones();
    let expected = if ones == 0 {
        0
    } else {
        u128::MAX << (128 - ones)
    };
    (aligned == expected).then_some(ones as u8)
}

/// Prefix length of a contiguous MAC mask.
pub(crate) fn mac_prefix(mac: &MacAddr6) -> Option<u8> {
    let value = mac
        .as_bytes()
        .iter()
        .fold(0u128, |acc, b| (acc << 8) | u128::from(*b));
    contiguous_prefix(value, 48)
}

/// IPv4 in `inet_aton` syntax: 1 to 4 parts, each decimal, octal (leading
/// `0`) or hex (`0x`); the last part fills the remaining bytes. No blanks.
pub(crate) fn parse_ipv4(text: &str) -> Option<Ipv4Addr> {
    let parts: Vec<&str> = text.split('.').collect();
    if parts.is_empty() || parts.len() > 4 {
        return None;
    }
    let mut values = Vec::with_capacity(parts.len());
    for part in &parts {
        values.push(parse_aton_part(part)?);
    }
    let (last, leading) = values.split_last()?;
    let mut addr: u32 = 0;
    for (i, v) in leading.iter().enumerate() {
        if *v > 0xff {
            return None;
        }
        addr |= v << (24 - 8 * i);
    }
    let remaining_bits = 32 - 8 * leading.len() as u32;
    if remaining_bits < 32 && u64::from(*last) >= 1u64 << remaining_bits {
        return None;
    }
    Some(Ipv4Addr::from(addr | last))
}

fn parse_aton_part(part: &str) -> Option<u32> {
    let (digits, radix) =
        if let Some(hex) = part.strip_prefix("0x").or_else(|| part.strip_prefix("0X")) {
            (hex, 16)
        } else if part.len() > 1 && part.starts_with('0') {
            (&part[1..], 8)
        } else {
            (part, 10)
        };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    u32::from_str_radix(digits, radix).ok()
}

/// IPv6 as `inet_pton` accepts it. Zone suffixes (`%eth0`) are refused:
/// a firewall rule cannot use them.
pub(crate) fn parse_ipv6(text: &str) -> Option<Ipv6Addr> {
    text.parse().ok()
}

/// glibc `inet_ntop` text: lower-case groups without leading zeros, the
/// first longest run (two or more) of zero groups as `::`, and the last 32
/// bits dotted when the first 96 bits are zero (six zero groups) or the
/// address is IPv4-mapped.
pub(crate) fn format_ipv6(addr: &Ipv6Addr) -> String {
    let words = addr.segments();
    let (mut best_base, mut best_len) = (None::<usize>, 0usize);
    let mut i = 0;
    while i < 8 {
        if words[i] == 0 {
            let start = i;
            while i < 8 && words[i] == 0 {
                i += 1;
            }
            if i - start > best_len {
                best_base = Some(start);
                best_len = i - start;
            }
        } else {
            i += 1;
        }
    }
    if best_len < 2 {
        best_base = None;
    }
    let mut out = String::new();
    let mut i = 0;
    while i < 8 {
        if best_base == Some(i) {
            out.push(':');
            i += best_len;
            if i == 8 {
                out.push(':');
            }
            continue;
        }
        if i != 0 {
            out.push(':');
        }
        let embedded_v4 = i == 6
            && best_base == Some(0)
            && (best_len == 6 || (best_len == 5 && words[5] == 0xffff));
        if embedded_v4 {
            let o = addr.octets();
            out.push_str(&format!("{}.{}.{}.{}", o[12], o[13], o[14], o[15]));
            break;
        }
        out.push_str(&format!("{:x}", words[i]));
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v6(s: &str) -> String {
        format_ipv6(&s.parse().unwrap())
    }

    #[test]
    fn ipv6_text_matches_glibc() {
        assert_eq!(v6("::"), "::");
        assert_eq!(v6("::1"), "::1");
        assert_eq!(v6("::10.1.2.3"), "::10.1.2.3");
        assert_eq!(v6("::1:2"), "::0.1.0.2");
        assert_eq!(v6("::ffff:1.2.3.4"), "::ffff:1.2.3.4");
        assert_eq!(v6("FE80:0:0:0:0:0:0:1"), "fe80::1");
        assert_eq!(v6("1:0:0:2:0:0:0:3"), "1:0:0:2::3");
        assert_eq!(v6("1:0:0:2:0:0:3:4"), "1::2:0:0:3:4");
        assert_eq!(v6("1:0:2:3:4:5:6:7"), "1:0:2:3:4:5:6:7");
        assert_eq!(v6("1::"), "1::");
        assert_eq!(v6("::2:3:4:5:6:7"), "::2:3:4:5:6:7");
    }

    #[test]
    fn ipv4_follows_inet_aton() {
        let p = |s| parse_ipv4(s).map(|a| a.to_string());
        assert_eq!(p("10"), Some("0.0.0.10".into()));
        assert_eq!(p("10.1"), Some("10.0.0.1".into()));
        assert_eq!(p("010.0.0.1"), Some("8.0.0.1".into()));
        assert_eq!(p("0x0a.0.0.1"), Some("10.0.0.1".into()));
        assert_eq!(p("4294967295"), Some("255.255.255.255".into()));
        assert_eq!(p("10.0.0.256"), None);
        assert_eq!(p("1.2.3.4.5"), None);
        assert_eq!(p(" 1.2.3.4"), None);
        assert_eq!(p("1..2"), None);
        assert_eq!(p("09.1.1.1"), None);
    }

    #[test]
    fn macs_and_masks() {
        assert_eq!(
            parse_mac("1:2:3:4:5:6").map(|m| format_mac(&m)),
            Some("01:02:03:04:05:06".into())
        );
        assert_eq!(parse_mac("aa-bb-cc-dd-ee-ff"), None);
        assert_eq!(parse_mac("1:2:3:4:5"), None);
        assert_eq!(parse_mac("1:2:3:4:5:6:7"), None);
        assert_eq!(parse_mac("1:2:3:4:5:6 junk"), None);
        assert_eq!(parse_mac("001:2:3:4:5:6"), None);
        let m = |s| mac_prefix(&parse_mac(s).unwrap());
        assert_eq!(m("ff:ff:ff:00:00:00"), Some(24));
        assert_eq!(m("00:00:00:00:00:00"), Some(0));
        assert_eq!(m("ff:ff:ff:ff:ff:ff"), Some(48));
        assert_eq!(m("ff:00:ff:00:00:00"), None);
    }

    #[test]
    fn contiguous_masks() {
        assert_eq!(contiguous_prefix(0xffff_ff00, 32), Some(24));
        assert_eq!(contiguous_prefix(0, 32), Some(0));
        assert_eq!(contiguous_prefix(0xffff_ffff, 32), Some(32));
        assert_eq!(contiguous_prefix(0xff00_ff00, 32), None);
        assert_eq!(contiguous_prefix(u128::MAX, 128), Some(128));
    }
}
