//! Neighbour-discovery fields (`Match::Nd`, ours: issue 16) as ip6tables
//! `u32` matches. ip6tables has no match for the ND target or options, and
//! ebtables (ebtables-nft here) loads no `u32`, so the `no-ipv6-nd-spoofing`
//! rules are `icmpv6` rules: ip6tables, through br_netfilter.
//!
//! `u32` reads 32-bit words at byte offsets from the IPv6 header. Every
//! test first pins the ICMPv6 header right behind the IPv6 header (next
//! header 58 in byte 6), so the message starts at byte 40: type 40, target
//! 48..64, first option 64..72; the payload length (bytes 4..6) is then the
//! message's length. Numbers are written as ip6tables-save prints them
//! (`0x` hex), so a listing reads back exactly what was applied.

use nwfilter_compile::ir::{NdField, NdMatch};

use super::check::At;
use super::RenderError;

/// Next header = ICMPv6, in the word at byte 4.
const ICMPV6_NEXT: &str = "0x4&0xff00=0x3a00";
/// The payload length of a message without options (header and target).
const BARE_LEN: u32 = 24;
const ONE_OPTION_LEN: u32 = 32;

/// The arguments of one ND match; `pin`: it is the rule's first, so it
/// also tests that the ICMPv6 header follows the IPv6 header.
pub(crate) fn args(nd: &NdMatch, pin: bool, at: &At) -> Result<Vec<String>, RenderError> {
    let mut tests: Vec<String> = Vec::new();
    if pin {
        tests.push(ICMPV6_NEXT.to_owned());
    }
    let length = |range: String| format!("0x4>>0x10={range}");
    match nd.field {
        NdField::Target(addr) if nd.negated => {
            // u32 negates a whole expression: the pin stays a test of its own.
            let mut w = Vec::new();
            if pin {
                w.extend(u32_match(false, tests.join("&&")));
            }
            w.extend(u32_match(true, words(0x30, &addr.octets()).join("&&")));
            return Ok(w);
        }
        NdField::Target(addr) => tests.extend(words(0x30, &addr.octets())),
        NdField::LinkLayer(mac) if !nd.negated => {
            let m = mac.as_bytes();
            tests.extend([
                length(format!("{ONE_OPTION_LEN:#x}")),
                "0x40>>0x18=0x1:0x2".to_owned(),
                "0x40>>0x10&0xff=0x1".to_owned(),
                format!("0x40&0xffff={:#x}", u32::from(m[0]) << 8 | u32::from(m[1])),
                format!("0x44={:#x}", u32::from_be_bytes([m[2], m[3], m[4], m[5]])),
            ]);
        }
        NdField::Options(false) if !nd.negated => tests.push(length(format!("{BARE_LEN:#x}"))),
        NdField::Options(true) if !nd.negated => {
            tests.push(length(format!("{:#x}:0xffff", BARE_LEN + 1)))
        }
        _ => return Err(at.bad("a negated ND option match cannot be expressed by ip6tables")),
    }
    Ok(u32_match(false, tests.join("&&")))
}

/// `-m u32 [!] --u32 EXPR`.
fn u32_match(negated: bool, expr: String) -> Vec<String> {
    let mut w = vec!["-m".to_owned(), "u32".to_owned()];
    if negated {
        w.push("!".to_owned());
    }
    w.extend(["--u32".to_owned(), expr]);
    w
}

/// `OFFSET=WORD` for each 32-bit word of `bytes`, from byte `offset`.
fn words(offset: u32, bytes: &[u8]) -> Vec<String> {
    bytes
        .chunks(4)
        .zip((offset..).step_by(4))
        .map(|(chunk, at)| {
            let mut word = [0u8; 4];
            word[..chunk.len()].copy_from_slice(chunk);
            format!("{at:#x}={:#x}", u32::from_be_bytes(word))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const AT: At<'static> = At {
        chain: "FI-vnet0",
        rule: 1,
    };

    fn target(negated: bool) -> NdMatch {
        NdMatch {
            field: NdField::Target("fd77::10".parse().unwrap()),
            negated,
        }
    }

    #[test]
    fn a_negated_target_keeps_the_pin_positive_in_a_match_of_its_own() {
        assert_eq!(
            args(&target(true), true, &AT).unwrap(),
            [
                "-m",
                "u32",
                "--u32",
                "0x4&0xff00=0x3a00",
                "-m",
                "u32",
                "!",
                "--u32",
                "0x30=0xfd770000&&0x34=0x0&&0x38=0x0&&0x3c=0x10",
            ]
        );
        assert_eq!(
            args(&target(false), false, &AT).unwrap(),
            [
                "-m",
                "u32",
                "--u32",
                "0x30=0xfd770000&&0x34=0x0&&0x38=0x0&&0x3c=0x10"
            ]
        );
    }

    #[test]
    fn negated_option_matches_are_an_error_naming_the_rule() {
        let nd = NdMatch {
            field: NdField::Options(true),
            negated: true,
        };
        let err = args(&nd, true, &AT).unwrap_err().to_string();
        assert!(err.contains("FI-vnet0, rule 1"), "{err}");
    }
}
