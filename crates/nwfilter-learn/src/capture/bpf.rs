//! The kernel filters (classic BPF) of the capture sockets: the kernel
//! drops what learning cannot use before it is queued or copied, so a
//! busy guest costs us nothing but the packets that matter.
//!
//! They only narrow; every accepted frame is still parsed and checked in
//! full by [`crate::classify`]. Offsets are Ethernet's (dst 0, src 6,
//! EtherType 12) and IPv4's (protocol 23, fragment field 20, header
//! length in the low nibble of byte 14).

use socket2::SockFilter;

use libc::{BPF_ABS, BPF_B, BPF_H, BPF_IND, BPF_JEQ, BPF_JMP, BPF_JSET, BPF_K, BPF_LD};
use libc::{BPF_LDX, BPF_MSH, BPF_RET, BPF_W};

/// Ethernet header fields and EtherTypes.
const DST: u32 = 0;
const SRC: u32 = 6;
const ETHERTYPE: u32 = 12;
const IPV4: u32 = 0x0800;
const ARP: u32 = 0x0806;
const IPV6: u32 = 0x86dd;

/// The kernel's ancillary load "has a VLAN tag been taken off this frame":
/// on receive the kernel (or the NIC, veth included) strips a VLAN or
/// QinQ tag into the socket buffer, so the frame a packet socket sees has
/// none and looks like plain IPv4 or ARP. Such a frame was tagged on the
/// wire, and the learning rules drop it.
const VLAN_TAG_PRESENT: u32 = (libc::SKF_AD_OFF + libc::SKF_AD_VLAN_TAG_PRESENT) as u32;

/// Bytes of each accepted frame copied to us: a full Ethernet frame, so
/// a DHCP message with long options is never cut.
const SNAP_LEN: u32 = 1600;

/// One instruction (`struct sock_filter`), kept as plain data so tests
/// can run the programs; [`to_socket`] converts for the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Insn {
    pub(crate) code: u32,
    pub(crate) jt: u8,
    pub(crate) jf: u8,
    pub(crate) k: u32,
}

pub(crate) fn to_socket(program: &[Insn]) -> Vec<SockFilter> {
    program
        .iter()
        .map(|i| SockFilter::new(i.code as u16, i.jt, i.jf, i.k))
        .collect()
}

fn insn(code: u32, jt: u8, jf: u8, k: u32) -> Insn {
    Insn { code, jt, jf, k }
}

fn load_abs(size: u32, offset: u32) -> Insn {
    insn(BPF_LD | size | BPF_ABS, 0, 0, offset)
}

fn load_ind(size: u32, offset: u32) -> Insn {
    insn(BPF_LD | size | BPF_IND, 0, 0, offset)
}

/// Jumps `jt` / `jf` instructions forward when A == k / A != k.
fn jump_eq(k: u32, jt: u8, jf: u8) -> Insn {
    insn(BPF_JMP | BPF_JEQ | BPF_K, jt, jf, k)
}

fn ret(len: u32) -> Insn {
    insn(BPF_RET | BPF_K, 0, 0, len)
}

/// `any` mode: untagged IPv4 and ARP frames from the guest's MAC (what
/// the learning rules let out: a tagged frame is dropped by the port and
/// must not teach an address), and IPv4 frames to its MAC or broadcast
/// (where DHCP replies come). Narrower than libvirt's `ether host MAC or
/// ether dst ff:ff:ff:ff:ff:ff`: the guest's IPv6 chatter (neighbour
/// discovery, MLD at boot) never uses up its rate limit.
pub(crate) fn guest_frames(mac: [u8; 6]) -> Vec<Insn> {
    untagged_only(guest_frames_untagged(mac))
}

/// Learning a guest's MAC: every untagged frame, only its Ethernet header
/// (the source address is all that is read).
pub(crate) fn any_frame_header() -> Vec<Insn> {
    untagged_only(vec![ret(14)])
}

/// `program`, for frames that carried no VLAN tag: a frame whose tag the
/// kernel took off (see [`VLAN_TAG_PRESENT`]) is dropped first.
fn untagged_only(program: Vec<Insn>) -> Vec<Insn> {
    let skip = u8::try_from(program.len()).expect("a short program");
    let mut out = vec![
        load_abs(BPF_B, VLAN_TAG_PRESENT),
        // Tagged: jump over `program` to the final drop.
        jump_eq(0, 0, skip),
    ];
    out.extend(program);
    out.push(ret(0));
    out
}

fn guest_frames_untagged(mac: [u8; 6]) -> Vec<Insn> {
    const TO_GUEST: u8 = 7;
    const BROADCAST: u8 = 13;
    const DROP: u8 = 17;
    const ACCEPT: u8 = 18;
    let to = |pc: u8, target: u8| target - pc - 1;
    let high = u32::from(u16::from_be_bytes([mac[0], mac[1]]));
    let low = u32::from_be_bytes([mac[2], mac[3], mac[4], mac[5]]);
    vec![
        /* 0 */ load_abs(BPF_H, SRC),
        /* 1 */ jump_eq(high, 0, to(1, TO_GUEST)),
        /* 2 */ load_abs(BPF_W, SRC + 2),
        /* 3 */ jump_eq(low, 0, to(3, TO_GUEST)),
        /* 4 */ load_abs(BPF_H, ETHERTYPE),
        /* 5 */ jump_eq(IPV4, to(5, ACCEPT), 0),
        /* 6 */ jump_eq(ARP, to(6, ACCEPT), to(6, DROP)),
        /* 7: TO_GUEST */ load_abs(BPF_H, ETHERTYPE),
        /* 8 */ jump_eq(IPV4, 0, to(8, DROP)),
        /* 9 */ load_abs(BPF_H, DST),
        /* 10 */ jump_eq(high, 0, to(10, BROADCAST)),
        /* 11 */ load_abs(BPF_W, DST + 2),
        /* 12 */ jump_eq(low, to(12, ACCEPT), 0),
        /* 13: BROADCAST */ load_abs(BPF_H, DST),
        /* 14 */ jump_eq(0xffff, 0, to(14, DROP)),
        /* 15 */ load_abs(BPF_W, DST + 2),
        /* 16 */ jump_eq(0xffff_ffff, to(16, ACCEPT), to(16, DROP)),
        /* 17: DROP */ ret(0),
        /* 18: ACCEPT */ ret(SNAP_LEN),
    ]
}

/// `dhcp` mode: unfragmented IPv4 UDP 68→67 or 67→68 (libvirt's two
/// pcap filters, `src port 68 and dst port 67` / `src port 67 and dst
/// port 68`, in one program).
pub(crate) fn dhcp_frames() -> Vec<Insn> {
    untagged_only(dhcp_frames_untagged())
}

fn dhcp_frames_untagged() -> Vec<Insn> {
    const DROP: u8 = 14;
    const ACCEPT: u8 = 15;
    // Relative jump from the instruction at `pc` to `target`.
    let to = |pc: u8, target: u8| target - pc - 1;
    vec![
        /* 0 */ load_abs(BPF_H, ETHERTYPE),
        /* 1 */ jump_eq(IPV4, 0, to(1, DROP)),
        /* 2 */ load_abs(BPF_B, 23),
        /* 3 */ jump_eq(17, 0, to(3, DROP)),
        /* 4 */ load_abs(BPF_H, 20),
        /* 5 */ insn(BPF_JMP | BPF_JSET | BPF_K, to(5, DROP), 0, 0x1fff),
        /* 6 */ insn(BPF_LDX | BPF_B | BPF_MSH, 0, 0, 14),
        /* 7 */ load_ind(BPF_H, 14),
        /* 8 */ jump_eq(67, to(8, 12), 0),
        /* 9 */ jump_eq(68, 0, to(9, DROP)),
        /* 10 */ load_ind(BPF_H, 16),
        /* 11 */ jump_eq(67, to(11, ACCEPT), to(11, DROP)),
        /* 12 */ load_ind(BPF_H, 16),
        /* 13 */ jump_eq(68, to(13, ACCEPT), to(13, DROP)),
        /* 14 */ ret(0),
        /* 15 */ ret(SNAP_LEN),
    ]
}

/// IPv6 learning in `any` mode (issue 16; FCFS SAVI claims: duplicate
/// address detection and first use): untagged IPv6 frames from the
/// guest's MAC. Every source address the guest uses may be a claim, so
/// nothing narrower is possible here; the port's rate limit bounds them.
pub(crate) fn ipv6_claims(mac: [u8; 6]) -> Vec<Insn> {
    untagged_only(ipv6_claims_untagged(mac))
}

fn ipv6_claims_untagged(mac: [u8; 6]) -> Vec<Insn> {
    const DROP: u8 = 6;
    const ACCEPT: u8 = 7;
    let to = |pc: u8, target: u8| target - pc - 1;
    let high = u32::from(u16::from_be_bytes([mac[0], mac[1]]));
    let low = u32::from_be_bytes([mac[2], mac[3], mac[4], mac[5]]);
    vec![
        /* 0 */ load_abs(BPF_H, SRC),
        /* 1 */ jump_eq(high, 0, to(1, DROP)),
        /* 2 */ load_abs(BPF_W, SRC + 2),
        /* 3 */ jump_eq(low, 0, to(3, DROP)),
        /* 4 */ load_abs(BPF_H, ETHERTYPE),
        /* 5 */ jump_eq(IPV6, to(5, ACCEPT), to(5, DROP)),
        /* 6: DROP */ ret(0),
        /* 7: ACCEPT */ ret(SNAP_LEN),
    ]
}

/// IPv6 learning in `dhcp` mode (SAVI for DHCP): untagged IPv6 UDP
/// 546→547 (the guest's Release and Decline) or 547→546 (a server's
/// Reply) right behind the IPv6 header (next header 17 at byte 20; ports
/// at 54 and 56). DHCPv6 messages carry no extension header in practice;
/// one that does is not learned from.
pub(crate) fn dhcp6_frames() -> Vec<Insn> {
    untagged_only(dhcp6_frames_untagged())
}

fn dhcp6_frames_untagged() -> Vec<Insn> {
    const DROP: u8 = 11;
    const ACCEPT: u8 = 12;
    let to = |pc: u8, target: u8| target - pc - 1;
    vec![
        /* 0 */ load_abs(BPF_H, ETHERTYPE),
        /* 1 */ jump_eq(IPV6, 0, to(1, DROP)),
        /* 2 */ load_abs(BPF_B, 20),
        /* 3 */ jump_eq(17, 0, to(3, DROP)),
        /* 4 */ load_abs(BPF_H, 54),
        /* 5 */ jump_eq(546, 0, to(5, 8)),
        /* 6 */ load_abs(BPF_H, 56),
        /* 7 */ jump_eq(547, to(7, ACCEPT), to(7, DROP)),
        /* 8 */ jump_eq(547, 0, to(8, DROP)),
        /* 9 */ load_abs(BPF_H, 56),
        /* 10 */ jump_eq(546, to(10, ACCEPT), to(10, DROP)),
        /* 11: DROP */ ret(0),
        /* 12: ACCEPT */ ret(SNAP_LEN),
    ]
}

#[cfg(test)]
#[path = "bpf_tests.rs"]
mod tests;

#[cfg(test)]
#[path = "bpf6_tests.rs"]
mod tests6;
