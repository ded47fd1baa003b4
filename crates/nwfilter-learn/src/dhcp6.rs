//! The few parts of a DHCPv6 message (RFC 8415) the learner reads, parsed
//! strictly by hand for the same reason as [`crate::dhcp`]: the bytes come
//! from guests, and a library that asserts on lengths can be made to
//! panic. Reads the message type and the addresses of the IA_NA / IA_TA
//! options (each IAADDR with its valid lifetime); every option must walk
//! cleanly to the end of its container, else the message is refused. It
//! never panics on any input.

use std::net::Ipv6Addr;

/// DHCPv6 message types (RFC 8415 §7.3).
pub(crate) const REPLY: u8 = 7;
pub(crate) const RELEASE: u8 = 8;
pub(crate) const DECLINE: u8 = 9;

const OPTION_IA_NA: u16 = 3;
const OPTION_IA_TA: u16 = 4;
const OPTION_IAADDR: u16 = 5;
/// At most this many addresses are read from one message: a port holds at
/// most a few (the learner's cap), and a guest's message must not make us
/// allocate without bound.
pub(crate) const MAX_ADDRESSES: usize = 32;

/// One address a message assigns or gives back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IaAddress {
    pub(crate) addr: Ipv6Addr,
    /// Seconds; `u32::MAX` is infinite (RFC 8415 §7.7), 0 means the
    /// address must no longer be used.
    pub(crate) valid_lifetime: u32,
}

/// What the learner reads of one DHCPv6 message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dhcp6Message {
    pub(crate) msg_type: u8,
    /// The IAADDRs of every IA_NA and IA_TA, in message order.
    pub(crate) addresses: Vec<IaAddress>,
}

/// Why a message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Malformed6 {
    #[error("shorter than the DHCPv6 header")]
    Short,
    #[error("option {code} runs past the end of its container")]
    Truncated { code: u16 },
    #[error("option {code} is shorter than its fixed part ({len} bytes)")]
    TooShort { code: u16, len: usize },
    #[error("more than {MAX_ADDRESSES} addresses")]
    TooManyAddresses,
}

/// Parses a client/server message (not relay messages, which a guest's
/// port never legitimately carries to or from it).
pub(crate) fn parse(bytes: &[u8]) -> Result<Dhcp6Message, Malformed6> {
    let (&msg_type, rest) = bytes.split_first().ok_or(Malformed6::Short)?;
    let options = rest.get(3..).ok_or(Malformed6::Short)?; // transaction id
    let mut msg = Dhcp6Message {
        msg_type,
        addresses: Vec::new(),
    };
    for option in Options(options) {
        let (code, body) = option?;
        let fixed = match code {
            OPTION_IA_NA => 12, // IAID, T1, T2
            OPTION_IA_TA => 4,  // IAID
            _ => continue,
        };
        let sub = body
            .get(fixed..)
            .ok_or(Malformed6::TooShort { code, len: fixed })?;
        read_ia(sub, &mut msg.addresses)?;
    }
    Ok(msg)
}

/// The IAADDR options among an IA's sub-options.
fn read_ia(sub: &[u8], out: &mut Vec<IaAddress>) -> Result<(), Malformed6> {
    for option in Options(sub) {
        let (code, body) = option?;
        if code != OPTION_IAADDR {
            continue;
        }
        // address (16), preferred lifetime (4), valid lifetime (4), options
        let too_short = Malformed6::TooShort { code, len: 24 };
        let addr: [u8; 16] = body
            .get(..16)
            .ok_or(too_short)?
            .try_into()
            .map_err(|_| too_short)?;
        let valid: [u8; 4] = body
            .get(20..24)
            .ok_or(too_short)?
            .try_into()
            .map_err(|_| too_short)?;
        if out.len() == MAX_ADDRESSES {
            return Err(Malformed6::TooManyAddresses);
        }
        out.push(IaAddress {
            addr: Ipv6Addr::from(addr),
            valid_lifetime: u32::from_be_bytes(valid),
        });
    }
    Ok(())
}

/// Walks `code (2) length (2) body` options; yields an error (and then
/// stops) when one runs past the end.
struct Options<'a>(&'a [u8]);

impl<'a> Iterator for Options<'a> {
    type Item = Result<(u16, &'a [u8]), Malformed6>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.is_empty() {
            return None;
        }
        let header = self.0.get(..4).and_then(|h| <[u8; 4]>::try_from(h).ok());
        let Some([c0, c1, l0, l1]) = header else {
            self.0 = &[];
            return Some(Err(Malformed6::Truncated { code: 0 }));
        };
        let code = u16::from_be_bytes([c0, c1]);
        let len = usize::from(u16::from_be_bytes([l0, l1]));
        let Some(body) = self.0.get(4..4 + len) else {
            self.0 = &[];
            return Some(Err(Malformed6::Truncated { code }));
        };
        self.0 = &self.0[4 + len..];
        Some(Ok((code, body)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A Reply with one IA_NA holding `addrs` (valid lifetime 3600 each).
    pub(crate) fn reply_with(addrs: &[Ipv6Addr]) -> Vec<u8> {
        let mut ia = vec![0, 0, 0, 1, 0, 0, 0, 100, 0, 0, 0, 200];
        for a in addrs {
            ia.extend([0, 5, 0, 24]);
            ia.extend(a.octets());
            ia.extend(1800u32.to_be_bytes());
            ia.extend(3600u32.to_be_bytes());
        }
        let mut msg = vec![REPLY, 0x12, 0x34, 0x56];
        msg.extend([0, 2, 0, 4, 0xde, 0xad, 0xbe, 0xef]); // server id (skipped)
        msg.extend([0, 3]);
        msg.extend(u16::try_from(ia.len()).unwrap().to_be_bytes());
        msg.extend(ia);
        msg
    }

    #[test]
    fn a_reply_gives_each_address_of_its_ia_na_with_its_valid_lifetime() {
        let a: Ipv6Addr = "2001:db8::100".parse().unwrap();
        let b: Ipv6Addr = "2001:db8::101".parse().unwrap();
        let msg = parse(&reply_with(&[a, b])).unwrap();
        assert_eq!(msg.msg_type, REPLY);
        assert_eq!(
            msg.addresses,
            [
                IaAddress {
                    addr: a,
                    valid_lifetime: 3600
                },
                IaAddress {
                    addr: b,
                    valid_lifetime: 3600
                }
            ]
        );
    }

    #[test]
    fn every_truncation_is_refused_never_a_panic() {
        let full = reply_with(&["2001:db8::100".parse().unwrap()]);
        assert!(parse(&full).is_ok());
        for end in 0..full.len() {
            let cut = &full[..end];
            // Cutting at an option boundary leaves a valid shorter message.
            let ok_boundaries = [4, 12];
            assert_eq!(
                parse(cut).is_ok(),
                ok_boundaries.contains(&end),
                "cut at {end}"
            );
        }
    }

    #[test]
    fn an_ia_shorter_than_its_fixed_part_or_too_many_addresses_is_refused() {
        let short_ia = [REPLY, 0, 0, 0, 0, 3, 0, 4, 0, 0, 0, 1];
        assert_eq!(
            parse(&short_ia),
            Err(Malformed6::TooShort { code: 3, len: 12 })
        );
        let many: Vec<Ipv6Addr> = (0..=MAX_ADDRESSES as u16)
            .map(|i| Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 1, i))
            .collect();
        assert_eq!(parse(&reply_with(&many)), Err(Malformed6::TooManyAddresses));
    }
}
