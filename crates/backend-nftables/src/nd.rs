//! Neighbour-discovery fields (`Match::Nd`, ours: issue 16) as nft
//! statements. nft 1.0.6 has no name for the ND target or options
//! (`icmpv6 taddr` came later), so they are raw transport-header payloads;
//! `ip6 nexthdr ipv6-icmp` first pins the ICMPv6 header right behind the
//! IPv6 header, where `@th` and `ip6 length` then describe the message.

use nftables::expr::PayloadBase;
use nwfilter_compile::ir::{NdField, NdMatch};

use crate::error::Unsupported;
use crate::matches::{big_endian, Context, Lookup, RAW_KEY};
use crate::term::{compare, Operand, Term};

/// ICMPv6 header and target: the length of an ND message without options.
const BARE_LEN: u32 = 24;
/// With one link-layer address option (8 bytes).
const ONE_OPTION_LEN: u32 = 32;

pub(crate) fn terms(nd: &NdMatch, ctx: &mut Context) -> Result<Vec<Term>, Unsupported> {
    let mut out = guards(nd, ctx)?;
    match nd.field {
        NdField::Target(addr) => out.extend(raw_bytes(TARGET_AT, &addr.octets(), nd.negated)),
        NdField::LinkLayer(mac) => out.extend(raw_bytes(LINK_LAYER_AT, mac.as_bytes(), false)),
        NdField::Options(false) => out.push(length(false, BARE_LEN)),
        NdField::Options(true) => out.push(compare(
            Operand::field("ip6", "length"),
            false,
            Operand::range(Operand::number(BARE_LEN + 1), Operand::number(65535)),
        )),
    }
    Ok(out)
}

/// What a test of `nd`'s value needs beside it: the pin (once per rule)
/// and, for a link-layer address, the one option's length, type and size.
pub(crate) fn guards(nd: &NdMatch, ctx: &mut Context) -> Result<Vec<Term>, Unsupported> {
    if nd.negated && !matches!(nd.field, NdField::Target(_)) {
        return Err(Unsupported::Feature("a negated ND option match"));
    }
    let mut out = Vec::new();
    if !ctx.nd_pinned {
        ctx.nd_pinned = true;
        out.push(compare(
            Operand::field("ip6", "nexthdr"),
            false,
            Operand::symbol("ipv6-icmp"),
        ));
    }
    if let NdField::LinkLayer(_) = nd.field {
        out.push(length(false, ONE_OPTION_LEN));
        out.push(compare(
            Operand::raw(PayloadBase::TH, 192, 8),
            false,
            Operand::range(Operand::number(1), Operand::number(2)),
        ));
        out.push(compare(
            Operand::raw(PayloadBase::TH, 200, 8),
            false,
            Operand::number(1),
        ));
    }
    Ok(out)
}

/// A per-port ND value as a set lookup: the target, or the address of a
/// link-layer option, as a raw transport-header field (a `typeof` set's),
/// its value one decimal number. Its [`guards`] go beside the lookup.
pub(crate) fn lookup(nd: &NdMatch) -> Option<Lookup> {
    let (at, bits, value) = match nd.field {
        NdField::Target(addr) => (TARGET_AT, 128, u128::from(addr)),
        NdField::LinkLayer(mac) if !nd.negated => (LINK_LAYER_AT, 48, big_endian(mac.as_bytes())),
        _ => return None,
    };
    Some(Lookup {
        field: Operand::raw(PayloadBase::TH, at, bits),
        key_type: RAW_KEY,
        value: value.to_string(),
        negated: nd.negated,
    })
}

/// Bit offsets in the ICMPv6 header: the target address, the link-layer
/// address of the first option.
const TARGET_AT: u32 = 64;
const LINK_LAYER_AT: u32 = 208;

fn length(negated: bool, len: u32) -> Term {
    compare(
        Operand::field("ip6", "length"),
        negated,
        Operand::number(len),
    )
}

/// `bytes` at bit `offset` of the transport header, as 32- and 16-bit
/// raw compares (JSON numbers are 32-bit); negated as one concatenation
/// compared with a one-element set, so that it means "not all equal".
fn raw_bytes(offset: u32, bytes: &[u8], negated: bool) -> Vec<Term> {
    let mut parts = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let n = (bytes.len() - at).min(4);
        let value = bytes[at..at + n]
            .iter()
            .fold(0u32, |acc, b| acc << 8 | u32::from(*b));
        let bits = 8 * n as u32;
        let left = Operand::raw(PayloadBase::TH, offset + 8 * at as u32, bits);
        parts.push((left, Operand::hex(value, 2 * n)));
        at += n;
    }
    if negated {
        let (left, right): (Vec<_>, Vec<_>) = parts.into_iter().unzip();
        return vec![compare(
            Operand::concat(left),
            true,
            Operand::set(vec![Operand::concat(right)]),
        )];
    }
    parts
        .into_iter()
        .map(|(left, right)| compare(left, false, right))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(nd: NdMatch, ctx: &mut Context) -> String {
        terms(&nd, ctx)
            .unwrap()
            .iter()
            .map(|t| t.text.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn the_pin_comes_once_and_a_negated_target_is_one_compare() {
        let mut ctx = Context::default();
        let target = NdMatch {
            field: NdField::Target("fd77::10".parse().unwrap()),
            negated: true,
        };
        assert_eq!(
            text(target, &mut ctx),
            "ip6 nexthdr ipv6-icmp @th,64,32 . @th,96,32 . @th,128,32 . @th,160,32 \
             != { 0xfd770000 . 0x00000000 . 0x00000000 . 0x00000010 }"
        );
        let bare = NdMatch {
            field: NdField::Options(false),
            negated: false,
        };
        assert_eq!(text(bare, &mut ctx), "ip6 length 24");
    }

    #[test]
    fn negated_option_matches_are_unsupported() {
        let nd = NdMatch {
            field: NdField::LinkLayer(nwfilter_model::MacAddr6::nil()),
            negated: true,
        };
        assert!(terms(&nd, &mut Context::default()).is_err());
    }
}
