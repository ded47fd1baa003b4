//! The IPv6 learning filters (issue 16), run by the BPF interpreter of
//! `bpf_tests.rs` against frames built like the IPv6 classifier's tests.

use std::net::Ipv6Addr;

use super::tests::{run, run_tagged};
use super::*;
use crate::classify6::tests::{dhcpv6, ns, udp6, GUEST, OTHER};

fn ip(text: &str) -> Ipv6Addr {
    text.parse().unwrap()
}

#[test]
fn ipv6_claims_pass_the_guests_ipv6_only() {
    let program = ipv6_claims(GUEST);
    let dad = ns(GUEST, Ipv6Addr::UNSPECIFIED, ip("fd77::10"));
    assert_eq!(run(&program, &dad), SNAP_LEN, "duplicate address detection");
    let used = udp6((GUEST, OTHER), (ip("fd77::10"), ip("fd77::1")), (1, 2), b"");
    assert_eq!(run(&program, &used), SNAP_LEN, "first use");
    assert_eq!(run_tagged(&program, &used, true), 0, "a tagged frame");
    let other = ns(OTHER, Ipv6Addr::UNSPECIFIED, ip("fd77::11"));
    assert_eq!(run(&program, &other), 0, "another guest's claim");
    let to_guest = udp6((OTHER, GUEST), (ip("fd77::1"), ip("fd77::10")), (1, 2), b"");
    assert_eq!(run(&program, &to_guest), 0, "traffic to the guest");
    let mut ipv4 = used.clone();
    ipv4[12..14].copy_from_slice(&[0x08, 0x00]);
    assert_eq!(run(&program, &ipv4), 0, "not IPv6");
    assert_eq!(run(&program, &[0u8; 8]), 0, "a runt");
}

#[test]
fn dhcp6_passes_client_and_server_messages_and_nothing_else() {
    let program = dhcp6_frames();
    let (server, guest) = (ip("fe80::1"), ip("fe80::10"));
    let reply = dhcpv6(7, &[ip("fd77::100")]);
    let to_guest = udp6((OTHER, GUEST), (server, guest), (547, 546), &reply);
    assert_eq!(run(&program, &to_guest), SNAP_LEN, "a Reply");
    assert_eq!(run_tagged(&program, &to_guest, true), 0, "tagged");
    let release = dhcpv6(8, &[ip("fd77::100")]);
    let from_guest = udp6(
        (GUEST, OTHER),
        (guest, ip("ff02::1:2")),
        (546, 547),
        &release,
    );
    assert_eq!(run(&program, &from_guest), SNAP_LEN, "a Release");
    for (sport, dport) in [(546, 546), (547, 547), (53, 546), (547, 53), (1000, 547)] {
        let frame = udp6((OTHER, GUEST), (server, guest), (sport, dport), b"");
        assert_eq!(run(&program, &frame), 0, "{sport}->{dport}");
    }
    let dad = ns(GUEST, Ipv6Addr::UNSPECIFIED, ip("fd77::10"));
    assert_eq!(run(&program, &dad), 0, "ICMPv6");
    // Behind an extension header (next header 0, hop-by-hop): not read.
    let mut hop = to_guest.clone();
    hop[20] = 0;
    assert_eq!(run(&program, &hop), 0);
}
