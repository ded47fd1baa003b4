//! The few fields of a DHCPv4 message (RFC 2131) the learner reads, parsed
//! strictly by hand.
//!
//! Why not a DHCP library: these bytes come from guests. dhcproto 0.14
//! `debug_assert!`s option lengths (and subtracts from them unchecked), so
//! a guest's DHCP message with a client-FQDN option of length 0 panicked
//! debug and test builds (issue 18). The learner needs five fields; this
//! parser reads exactly those, checks every bound, and refuses a message
//! whose options do not walk cleanly. It never panics on any input.

use std::net::Ipv4Addr;

/// `op` of a server's reply (BOOTREPLY) and of a client's request.
pub(crate) const BOOT_REQUEST: u8 = 1;
pub(crate) const BOOT_REPLY: u8 = 2;

/// DHCP message types (option 53).
pub(crate) const OFFER: u8 = 2;
pub(crate) const DECLINE: u8 = 4;
pub(crate) const ACK: u8 = 5;
pub(crate) const RELEASE: u8 = 7;

/// The fixed header: op .. file, then the magic cookie.
const HEADER: usize = 236;
const MAGIC: [u8; 4] = [99, 130, 83, 99];

const PAD: u8 = 0;
const END: u8 = 255;
const REQUESTED_ADDRESS: u8 = 50;
const LEASE_TIME: u8 = 51;
const MESSAGE_TYPE: u8 = 53;

/// What the learner reads of one DHCP message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DhcpMessage {
    pub(crate) op: u8,
    pub(crate) hlen: u8,
    pub(crate) ciaddr: Ipv4Addr,
    pub(crate) yiaddr: Ipv4Addr,
    pub(crate) chaddr: [u8; 16],
    /// Option 53.
    pub(crate) message_type: Option<u8>,
    /// Option 51, seconds.
    pub(crate) lease_time: Option<u32>,
    /// Option 50.
    pub(crate) requested: Option<Ipv4Addr>,
}

/// Why a message was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Malformed {
    #[error("shorter than the DHCP header and magic cookie")]
    Short,
    #[error("no DHCP magic cookie")]
    NoMagic,
    #[error("option {code} runs past the end of the message")]
    Truncated { code: u8 },
    #[error("option {code} has length {len}, expected {expected}")]
    BadLength {
        code: u8,
        len: usize,
        expected: &'static str,
    },
    #[error("option {code} appears twice")]
    Repeated { code: u8 },
}

/// Parses `payload` (a UDP datagram's payload).
pub(crate) fn parse(payload: &[u8]) -> Result<DhcpMessage, Malformed> {
    let header = payload
        .get(..HEADER + MAGIC.len())
        .ok_or(Malformed::Short)?;
    if header[HEADER..] != MAGIC {
        return Err(Malformed::NoMagic);
    }
    let mut chaddr = [0u8; 16];
    chaddr.copy_from_slice(&header[28..44]);
    let mut msg = DhcpMessage {
        op: header[0],
        hlen: header[2],
        ciaddr: ipv4(&header[12..16]),
        yiaddr: ipv4(&header[16..20]),
        chaddr,
        message_type: None,
        lease_time: None,
        requested: None,
    };
    for option in Options(&payload[HEADER + MAGIC.len()..]) {
        let (code, value) = option?;
        check_length(code, value.len())?;
        match code {
            MESSAGE_TYPE => set(&mut msg.message_type, code, fixed::<1>(code, value)?[0])?,
            LEASE_TIME => {
                let secs = u32::from_be_bytes(fixed::<4>(code, value)?);
                set(&mut msg.lease_time, code, secs)?;
            }
            REQUESTED_ADDRESS => {
                let addr = Ipv4Addr::from(fixed::<4>(code, value)?);
                set(&mut msg.requested, code, addr)?;
            }
            // Not read: only its length had to fit.
            _ => {}
        }
    }
    Ok(msg)
}

/// The options field as `(code, value)` pairs, up to the End option (or
/// the end of the datagram); padding skipped.
struct Options<'a>(&'a [u8]);

impl<'a> Iterator for Options<'a> {
    type Item = Result<(u8, &'a [u8]), Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let (&code, rest) = self.0.split_first()?;
            match code {
                PAD => self.0 = rest,
                END => {
                    self.0 = &[];
                    return None;
                }
                _ => {
                    let parsed = rest.split_first().and_then(|(&len, rest)| {
                        let len = usize::from(len);
                        Some((rest.get(..len)?, rest.get(len..)?))
                    });
                    let Some((value, after)) = parsed else {
                        self.0 = &[];
                        return Some(Err(Malformed::Truncated { code }));
                    };
                    self.0 = after;
                    return Some(Ok((code, value)));
                }
            }
        }
    }
}

/// Options whose length the RFCs fix (or bound below): one with another
/// length is not from a DHCP implementation but crafted, and the whole
/// message is refused. (dhcproto 0.14 asserted these in debug builds.)
fn check_length(code: u8, len: usize) -> Result<(), Malformed> {
    let (ok, expected) = match code {
        // Subnet mask, time offset, requested address, lease time, server
        // identifier, renewal and rebinding times, BLQ times (RFC 6926).
        1 | 2 | 50 | 51 | 54 | 58 | 59 | 152..=155 => (len == 4, "4"),
        // Option overload, message type.
        52 | 53 => (len == 1, "1"),
        // Maximum message size.
        57 => (len == 2, "2"),
        // Rapid commit (RFC 4039).
        80 => (len == 0, "0"),
        // Client FQDN (RFC 4702): flags, two RCODEs, then the name.
        81 => (len >= 3, "at least 3"),
        // Client network interface identifier (RFC 4578).
        94 => (len == 3, "3"),
        // BLQ status code (RFC 6926): the code, then a message.
        151 => (len >= 1, "at least 1"),
        _ => (true, ""),
    };
    if ok {
        Ok(())
    } else {
        Err(Malformed::BadLength {
            code,
            len,
            expected,
        })
    }
}

/// `value` as exactly `N` bytes (its length was checked already; this
/// only converts, and refuses rather than panics should the two differ).
fn fixed<const N: usize>(code: u8, value: &[u8]) -> Result<[u8; N], Malformed> {
    value.try_into().map_err(|_| Malformed::BadLength {
        code,
        len: value.len(),
        expected: "a fixed length",
    })
}

/// Records an option's value; a second copy is refused (RFC 3396 splits
/// only long options, never these fixed-length ones).
fn set<T>(slot: &mut Option<T>, code: u8, value: T) -> Result<(), Malformed> {
    if slot.is_some() {
        return Err(Malformed::Repeated { code });
    }
    *slot = Some(value);
    Ok(())
}

fn ipv4(bytes: &[u8]) -> Ipv4Addr {
    let mut octets = [0u8; 4];
    octets.copy_from_slice(bytes);
    Ipv4Addr::from(octets)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(options: &[u8]) -> Vec<u8> {
        let mut out = vec![0u8; HEADER];
        out[0] = BOOT_REPLY;
        out[2] = 6;
        out[16..20].copy_from_slice(&[10, 0, 0, 5]);
        out.extend_from_slice(&MAGIC);
        out.extend_from_slice(options);
        out
    }

    #[test]
    fn reads_the_fields_the_learner_needs() {
        let msg = parse(&message(&[53, 1, ACK, 0, 0, 51, 4, 0, 0, 1, 0, 255, 7])).unwrap();
        assert_eq!(msg.op, BOOT_REPLY);
        assert_eq!(msg.yiaddr, Ipv4Addr::new(10, 0, 0, 5));
        assert_eq!(msg.message_type, Some(ACK));
        assert_eq!(msg.lease_time, Some(256));
        assert_eq!(msg.requested, None);
    }

    #[test]
    fn refuses_what_does_not_walk_cleanly() {
        assert_eq!(parse(&[0; 100]), Err(Malformed::Short));
        let mut no_magic = message(&[]);
        no_magic[HEADER] = 0;
        assert_eq!(parse(&no_magic), Err(Malformed::NoMagic));
        assert_eq!(
            parse(&message(&[53, 1, ACK, 12])),
            Err(Malformed::Truncated { code: 12 })
        );
        assert_eq!(
            parse(&message(&[12, 5, 1])),
            Err(Malformed::Truncated { code: 12 })
        );
        assert_eq!(
            parse(&message(&[53, 0])),
            Err(Malformed::BadLength {
                code: 53,
                len: 0,
                expected: "1"
            })
        );
        assert_eq!(
            parse(&message(&[53, 1, ACK, 53, 1, OFFER])),
            Err(Malformed::Repeated { code: 53 })
        );
    }

    #[test]
    fn every_prefix_of_every_byte_pattern_parses_or_is_refused() {
        // Cheap exhaustive check of the bounds: no input panics.
        for fill in [0u8, 1, 53, 81, 255] {
            for len in 0..HEADER + 16 {
                let mut bytes = message(&[fill; 12]);
                bytes.truncate(len);
                let _ = parse(&bytes);
            }
        }
    }
}
