//! The BPF programs, run by a small interpreter of the instructions they
//! use (with the kernel's semantics: big-endian loads; a load past the
//! end of the frame drops it), against frames built with etherparse.

use std::net::Ipv4Addr;

use dhcproto::v4::MessageType;
use etherparse::{ArpHardwareId, ArpOperation, ArpPacket, EtherType, PacketBuilder};

use super::*;
use crate::classify::tests::{dhcp_message, udp};

/// How many bytes `program` accepts of `frame` (0: dropped).
pub(super) fn run(program: &[Insn], frame: &[u8]) -> u32 {
    run_tagged(program, frame, false)
}

/// Like [`run`]; `tag_taken_off`: the kernel took a VLAN tag off the frame
/// (what the ancillary load [`VLAN_TAG_PRESENT`] reports).
pub(super) fn run_tagged(program: &[Insn], frame: &[u8], tag_taken_off: bool) -> u32 {
    let load = |offset: u32, size: usize| -> Option<u32> {
        if offset == VLAN_TAG_PRESENT {
            return Some(u32::from(tag_taken_off));
        }
        let start = offset as usize;
        let bytes = frame.get(start..start + size)?;
        Some(bytes.iter().fold(0, |acc, b| (acc << 8) | u32::from(*b)))
    };
    let width = |code: u32| match code & 0x18 {
        BPF_W => 4,
        BPF_H => 2,
        _ => 1,
    };
    let (mut a, mut x, mut pc) = (0u32, 0u32, 0usize);
    loop {
        let i = program[pc];
        pc += 1;
        let (class, mode) = (i.code & 0x07, i.code & 0xe0);
        match (class, mode) {
            (BPF_LD, BPF_ABS) => match load(i.k, width(i.code)) {
                Some(v) => a = v,
                None => return 0,
            },
            (BPF_LD, BPF_IND) => match load(x + i.k, width(i.code)) {
                Some(v) => a = v,
                None => return 0,
            },
            (BPF_LDX, BPF_MSH) => match load(i.k, 1) {
                Some(v) => x = 4 * (v & 0xf),
                None => return 0,
            },
            (BPF_JMP, _) => {
                let taken = match i.code & 0xf0 {
                    BPF_JEQ => a == i.k,
                    BPF_JSET => a & i.k != 0,
                    other => panic!("jump {other:#x} not interpreted"),
                };
                pc += usize::from(if taken { i.jt } else { i.jf });
            }
            (BPF_RET, _) => return i.k,
            _ => panic!("instruction {:#x} not interpreted", i.code),
        }
    }
}

const GUEST: [u8; 6] = [0x52, 0x54, 0, 0, 0, 0x10];
const OTHER: [u8; 6] = [0x52, 0x54, 0, 0, 0, 0x99];
const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 10);
const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 11);

fn ipv6(src: [u8; 6], dst: [u8; 6]) -> Vec<u8> {
    let builder = PacketBuilder::ethernet2(src, dst)
        .ipv6([0xfe; 16], [0xff; 16], 1)
        .udp(1, 2);
    let mut out = Vec::new();
    builder.write(&mut out, b"").unwrap();
    out
}

fn arp_from(src: [u8; 6]) -> Vec<u8> {
    let packet = ArpPacket::new(
        ArpHardwareId::ETHERNET,
        EtherType::IPV4,
        ArpOperation::REQUEST,
        &src,
        &A.octets(),
        &[0; 6],
        &B.octets(),
    )
    .unwrap();
    let builder = PacketBuilder::ethernet2(src, [0xff; 6]).arp(packet);
    let mut out = Vec::new();
    builder.write(&mut out).unwrap();
    out
}

#[test]
fn any_mode_passes_the_guests_ipv4_and_arp_and_ipv4_to_it() {
    let program = guest_frames(GUEST);
    let pass = |frame: &[u8]| run(&program, frame) == SNAP_LEN;
    assert!(pass(&udp((GUEST, OTHER), (A, B), (1, 2), b"")));
    assert!(pass(&arp_from(GUEST)));
    assert!(pass(&udp((OTHER, GUEST), (B, A), (67, 68), b"")));
    assert!(pass(&udp((OTHER, [0xff; 6]), (B, A), (67, 68), b"")));
}

#[test]
fn any_mode_drops_ipv6_other_guests_and_arp_to_the_guest() {
    let program = guest_frames(GUEST);
    let dropped = |frame: &[u8]| run(&program, frame) == 0;
    assert!(dropped(&ipv6(GUEST, OTHER)), "the guest's IPv6");
    assert!(dropped(&ipv6(OTHER, GUEST)));
    assert!(dropped(&udp(
        (OTHER, [0x52, 0x54, 0, 0, 0, 0x11]),
        (B, A),
        (1, 2),
        b""
    )));
    assert!(dropped(&arp_from(OTHER)), "another guest's ARP broadcast");
    // A MAC that shares the guest's first two bytes only.
    let near = [0x52, 0x54, 0, 0, 0, 0x11];
    assert!(dropped(&udp((near, OTHER), (A, B), (1, 2), b"")));
    assert!(dropped(&[0u8; 8]), "runt frames");
}

/// Issue 23, item 9: the learning rules drop tagged frames, so the
/// kernel does not even queue them for us.
#[test]
fn any_mode_drops_the_guests_tagged_frames() {
    let program = guest_frames(GUEST);
    let tag = |frame: Vec<u8>, tpid: [u8; 2]| {
        let mut tagged = frame;
        tagged.splice(12..12, [tpid[0], tpid[1], 0x00, 0x07]);
        tagged
    };
    for tpid in [[0x81, 0x00], [0x88, 0xa8]] {
        let ip = tag(udp((GUEST, OTHER), (A, B), (1, 2), b""), tpid);
        assert_eq!(run(&program, &ip), 0, "{tpid:x?} IPv4");
        assert_eq!(
            run(&program, &tag(arp_from(GUEST), tpid)),
            0,
            "{tpid:x?} ARP"
        );
    }
    // The kernel usually takes the tag off before we see the frame.
    let ip = udp((GUEST, OTHER), (A, B), (1, 2), b"");
    assert_eq!(run_tagged(&program, &ip, true), 0, "untagged by the kernel");
    assert_eq!(run_tagged(&program, &arp_from(GUEST), true), 0);
    assert_eq!(run_tagged(&program, &ip, false), SNAP_LEN);
}

#[test]
fn dhcp_mode_drops_frames_the_kernel_took_a_tag_off() {
    let program = dhcp_frames();
    let payload = dhcp_message(MessageType::Discover, GUEST, Ipv4Addr::UNSPECIFIED, None);
    let frame = udp(
        (GUEST, [0xff; 6]),
        (Ipv4Addr::UNSPECIFIED, B),
        (68, 67),
        &payload,
    );
    assert_eq!(run_tagged(&program, &frame, false), SNAP_LEN);
    assert_eq!(run_tagged(&program, &frame, true), 0);
}

#[test]
fn dhcp_mode_passes_dhcp_both_ways_and_nothing_else() {
    let program = dhcp_frames();
    let pass = |frame: &[u8]| run(&program, frame) == SNAP_LEN;
    let ack = dhcp_message(MessageType::Ack, GUEST, A, Some(60));
    assert!(pass(&udp((OTHER, GUEST), (B, A), (67, 68), &ack)));
    assert!(pass(&udp((GUEST, [0xff; 6]), (A, B), (68, 67), b"")));
    for (sport, dport) in [(67, 67), (68, 68), (53, 68), (67, 69), (1000, 67)] {
        let frame = udp((OTHER, GUEST), (B, A), (sport, dport), b"");
        assert_eq!(run(&program, &frame), 0, "{sport}->{dport}");
    }
    assert_eq!(run(&program, &arp_from(GUEST)), 0);
    assert_eq!(run(&program, &ipv6(OTHER, GUEST)), 0);
}

#[test]
fn dhcp_mode_finds_ports_behind_ip_options_and_drops_later_fragments() {
    let program = dhcp_frames();
    let mut frame = udp((OTHER, GUEST), (B, A), (67, 68), b"");
    assert_eq!(run(&program, &frame), SNAP_LEN);
    // Mark it a later fragment (offset 1): no UDP header in it.
    frame[14 + 7] = 1;
    assert_eq!(run(&program, &frame), 0);

    // IHL 6 (one option word): ports move 4 bytes on.
    let mut with_option = udp((OTHER, GUEST), (B, A), (67, 68), b"");
    with_option[14] = 0x46;
    with_option.splice(14 + 20..14 + 20, [1, 1, 1, 0]);
    assert_eq!(run(&program, &with_option), SNAP_LEN);
}

#[test]
fn mac_learning_takes_the_header_of_every_untagged_frame_only() {
    let program = any_frame_header();
    let guest = [0x52, 0x54, 0, 0, 0, 0x0a];
    assert_eq!(run(&program, &arp_from(guest)), 14);
    assert_eq!(run(&program, &ipv6(guest, [0x33, 0x33, 0, 0, 0, 1])), 14);
    assert_eq!(run_tagged(&program, &arp_from(guest), true), 0);
}
