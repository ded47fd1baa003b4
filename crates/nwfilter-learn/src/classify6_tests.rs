use std::net::Ipv6Addr;

use etherparse::{Icmpv6Type, PacketBuilder};

use super::*;

pub(crate) const GUEST: [u8; 6] = [0x52, 0x54, 0, 0, 0, 0x10];
pub(crate) const OTHER: [u8; 6] = [0x52, 0x54, 0, 0, 0, 0x01];

fn ip(text: &str) -> Ipv6Addr {
    text.parse().unwrap()
}

/// A neighbour solicitation for `target` from `src`.
pub(crate) fn ns(mac: [u8; 6], src: Ipv6Addr, target: Ipv6Addr) -> Vec<u8> {
    let mut group = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 0];
    group[13..].copy_from_slice(&target.octets()[13..]);
    let builder =
        PacketBuilder::ethernet2(mac, [0x33, 0x33, 0xff, group[13], group[14], group[15]])
            .ipv6(src.octets(), group, 255)
            .icmpv6(Icmpv6Type::Unknown {
                type_u8: 135,
                code_u8: 0,
                bytes5to8: [0; 4],
            });
    let mut out = Vec::new();
    builder.write(&mut out, &target.octets()).unwrap();
    out
}

/// A UDP datagram `ports` from `src_mac`/`src` to `dst_mac`/`dst`.
pub(crate) fn udp6(
    macs: ([u8; 6], [u8; 6]),
    addrs: (Ipv6Addr, Ipv6Addr),
    ports: (u16, u16),
    payload: &[u8],
) -> Vec<u8> {
    let builder = PacketBuilder::ethernet2(macs.0, macs.1)
        .ipv6(addrs.0.octets(), addrs.1.octets(), 64)
        .udp(ports.0, ports.1);
    let mut out = Vec::new();
    builder.write(&mut out, payload).unwrap();
    out
}

/// A DHCPv6 message of `msg_type` with one IA_NA holding `addrs`.
pub(crate) fn dhcpv6(msg_type: u8, addrs: &[Ipv6Addr]) -> Vec<u8> {
    let mut ia = vec![0, 0, 0, 1, 0, 0, 0, 100, 0, 0, 0, 200];
    for a in addrs {
        ia.extend([0, 5, 0, 24]);
        ia.extend(a.octets());
        ia.extend(1800u32.to_be_bytes());
        ia.extend(3600u32.to_be_bytes());
    }
    let mut msg = vec![msg_type, 0x12, 0x34, 0x56, 0, 3];
    msg.extend(u16::try_from(ia.len()).unwrap().to_be_bytes());
    msg.extend(ia);
    msg
}

#[test]
fn dad_claims_the_target_and_first_use_claims_the_source() {
    let addr = ip("2001:db8::10");
    let dad = ns(GUEST, Ipv6Addr::UNSPECIFIED, addr);
    assert_eq!(
        classify_v6(&dad, Direction::FromGuest, GUEST),
        Some(Observation6::Claimed {
            addr,
            by: Claim::Dad
        })
    );
    let ll = ip("fe80::1234:5678:9abc:def0"); // stable privacy: not EUI-64
    let used = udp6((GUEST, OTHER), (ll, ip("fe80::1")), (5000, 53), b"q");
    assert_eq!(
        classify_v6(&used, Direction::FromGuest, GUEST),
        Some(Observation6::Claimed {
            addr: ll,
            by: Claim::FirstUse
        })
    );
}

#[test]
fn only_the_guests_own_frames_from_its_port_claim() {
    let addr = ip("2001:db8::10");
    let dad = ns(OTHER, Ipv6Addr::UNSPECIFIED, addr);
    assert_eq!(classify_v6(&dad, Direction::FromGuest, GUEST), None);
    let own = ns(GUEST, Ipv6Addr::UNSPECIFIED, addr);
    assert_eq!(classify_v6(&own, Direction::ToGuest, GUEST), None);
    // An NS from a real address claims its source, not its target.
    let lookup = ns(GUEST, ip("2001:db8::10"), ip("2001:db8::99"));
    assert_eq!(
        classify_v6(&lookup, Direction::FromGuest, GUEST),
        Some(Observation6::Claimed {
            addr,
            by: Claim::FirstUse
        })
    );
}

#[test]
fn unusable_sources_and_targets_claim_nothing() {
    for bad in ["::", "::1", "ff02::1", "::ffff:10.0.0.1"] {
        let frame = udp6((GUEST, OTHER), (ip(bad), ip("fe80::1")), (5000, 53), b"q");
        assert_eq!(
            classify_v6(&frame, Direction::FromGuest, GUEST),
            None,
            "{bad}"
        );
    }
    let dad_for_multicast = ns(GUEST, Ipv6Addr::UNSPECIFIED, ip("ff02::1"));
    assert_eq!(
        classify_v6(&dad_for_multicast, Direction::FromGuest, GUEST),
        None
    );
}

#[test]
fn a_reply_delivered_to_the_guest_assigns_its_addresses() {
    let (a, b) = (ip("2001:db8::100"), ip("2001:db8::101"));
    let server = ip("fe80::1");
    let reply = udp6(
        (OTHER, GUEST),
        (server, ip("fe80::5054:ff:fe00:10")),
        (547, 546),
        &dhcpv6(7, &[a, b]),
    );
    assert_eq!(
        classify_v6(&reply, Direction::ToGuest, GUEST),
        Some(Observation6::Assigned {
            server,
            addrs: vec![(a, 3600), (b, 3600)]
        })
    );
    // Seen from the guest (a forgery it sends), or for another MAC, or an
    // Advertise (an offer, not an assignment): nothing.
    assert_eq!(classify_v6(&reply, Direction::FromGuest, GUEST), None);
    assert_eq!(
        classify_v6(&reply, Direction::ToGuest, [0x52, 0x54, 0, 0, 0, 0x99]),
        None
    );
    let forged = udp6(
        (GUEST, GUEST),
        (server, server),
        (547, 546),
        &dhcpv6(7, &[a]),
    );
    assert_eq!(classify_v6(&forged, Direction::ToGuest, GUEST), None);
    let advertise = udp6(
        (OTHER, GUEST),
        (server, server),
        (547, 546),
        &dhcpv6(2, &[a]),
    );
    assert_eq!(classify_v6(&advertise, Direction::ToGuest, GUEST), None);
}

#[test]
fn release_and_decline_from_the_guest_give_addresses_back() {
    let a = ip("2001:db8::100");
    let ll = ip("fe80::5054:ff:fe00:10");
    for msg_type in [8, 9] {
        let frame = udp6(
            (GUEST, OTHER),
            (ll, ip("ff02::1:2")),
            (546, 547),
            &dhcpv6(msg_type, &[a]),
        );
        assert_eq!(
            classify_v6(&frame, Direction::FromGuest, GUEST),
            Some(Observation6::Released(vec![a])),
            "type {msg_type}"
        );
    }
    // A Solicit is just a use of the link-local source.
    let solicit = udp6(
        (GUEST, OTHER),
        (ll, ip("ff02::1:2")),
        (546, 547),
        &dhcpv6(1, &[]),
    );
    assert_eq!(
        classify_v6(&solicit, Direction::FromGuest, GUEST),
        Some(Observation6::Claimed {
            addr: ll,
            by: Claim::FirstUse
        })
    );
}

#[test]
fn ipv4_tagged_and_truncated_frames_give_nothing_and_never_panic() {
    let dad = ns(GUEST, Ipv6Addr::UNSPECIFIED, ip("2001:db8::10"));
    let mut tagged = dad[..12].to_vec();
    tagged.extend([0x81, 0x00, 0x00, 0x05]);
    tagged.extend(&dad[12..]);
    assert_eq!(classify_v6(&tagged, Direction::FromGuest, GUEST), None);
    for end in 0..dad.len() {
        let _ = classify_v6(&dad[..end], Direction::FromGuest, GUEST);
    }
    let reply = udp6(
        (OTHER, GUEST),
        (ip("fe80::1"), ip("fe80::2")),
        (547, 546),
        &dhcpv6(7, &[ip("2001:db8::100")]),
    );
    for end in 0..reply.len() {
        let _ = classify_v6(&reply[..end], Direction::ToGuest, GUEST);
    }
}

/// The fuzz seeds for ND and DHCPv6 (made with scapy, not with our
/// builders above) classify as their names say: byte 0 is the direction,
/// then the guest's MAC, then the frame.
#[test]
fn the_ipv6_fuzz_seeds_mean_what_their_names_say() {
    macro_rules! seed {
        ($name:literal) => {
            include_bytes!(concat!("../../../fuzz/seeds/classify_frame/", $name))
        };
    }
    let run = |seed: &[u8]| {
        let dir = if seed[0] & 1 == 0 {
            Direction::FromGuest
        } else {
            Direction::ToGuest
        };
        classify_v6(&seed[7..], dir, seed[1..7].try_into().unwrap())
    };
    let a = ip("2001:db8::100");
    let ll = ip("fe80::5054:ff:fe00:10");
    assert_eq!(
        run(seed!("nd-dad")),
        Some(Observation6::Claimed {
            addr: ip("2001:db8::10"),
            by: Claim::Dad
        })
    );
    assert_eq!(
        run(seed!("nd-na-override")),
        Some(Observation6::Claimed {
            addr: ip("2001:db8::10"),
            by: Claim::FirstUse
        })
    );
    assert_eq!(
        run(seed!("ipv6-first-use")),
        Some(Observation6::Claimed {
            addr: ip("2001:db8::10"),
            by: Claim::FirstUse
        })
    );
    assert_eq!(
        run(seed!("ra-behind-destopt")),
        Some(Observation6::Claimed {
            addr: ll,
            by: Claim::FirstUse
        })
    );
    assert_eq!(
        run(seed!("dhcpv6-reply")),
        Some(Observation6::Assigned {
            server: ip("fe80::1"),
            addrs: vec![(a, 3600)]
        })
    );
    assert_eq!(
        run(seed!("dhcpv6-release")),
        Some(Observation6::Released(vec![a]))
    );
    assert_eq!(
        run(seed!("dhcpv6-decline")),
        Some(Observation6::Released(vec![a]))
    );
    assert_eq!(
        run(seed!("dhcpv6-solicit")),
        Some(Observation6::Claimed {
            addr: ll,
            by: Claim::FirstUse
        })
    );
}
