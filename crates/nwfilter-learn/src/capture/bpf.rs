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

/// Bytes of each accepted frame copied to us: a full Ethernet frame, so
/// a DHCP message with long options is never cut.
const SNAP_LEN: u32 = 1600;

fn op(code: u32) -> u16 {
    code as u16
}

fn load_abs(size: u32, offset: u32) -> SockFilter {
    SockFilter::new(op(BPF_LD | size | BPF_ABS), 0, 0, offset)
}

fn load_ind(size: u32, offset: u32) -> SockFilter {
    SockFilter::new(op(BPF_LD | size | BPF_IND), 0, 0, offset)
}

/// Jumps `jt` / `jf` instructions forward when A == k / A != k.
fn jump_eq(k: u32, jt: u8, jf: u8) -> SockFilter {
    SockFilter::new(op(BPF_JMP | BPF_JEQ | BPF_K), jt, jf, k)
}

fn ret(len: u32) -> SockFilter {
    SockFilter::new(op(BPF_RET | BPF_K), 0, 0, len)
}

/// `any` mode: frames from or to the guest's MAC, and broadcasts (libvirt:
/// `ether host MAC or ether dst ff:ff:ff:ff:ff:ff`).
pub(crate) fn guest_frames(mac: [u8; 6]) -> Vec<SockFilter> {
    const SRC: u32 = 6;
    const DST: u32 = 0;
    let blocks = [(SRC, mac), (DST, mac), (DST, [0xff; 6])];
    let n = blocks.len();
    let mut program = Vec::with_capacity(4 * n + 2);
    for (i, (offset, addr)) in blocks.into_iter().enumerate() {
        let high = u32::from(u16::from_be_bytes([addr[0], addr[1]]));
        let low = u32::from_be_bytes([addr[2], addr[3], addr[4], addr[5]]);
        // Block i: 4 instructions; on a full match jump to the final
        // "accept" at 4n+1, otherwise fall through to block i+1.
        let to_accept = (4 * (n - i) - 3) as u8;
        program.push(load_abs(BPF_H, offset));
        program.push(jump_eq(high, 0, 2));
        program.push(load_abs(BPF_W, offset + 2));
        program.push(jump_eq(low, to_accept, 0));
    }
    program.push(ret(0));
    program.push(ret(SNAP_LEN));
    program
}

/// `dhcp` mode: unfragmented IPv4 UDP 68→67 or 67→68 (libvirt's two
/// pcap filters, `src port 68 and dst port 67` / `src port 67 and dst
/// port 68`, in one program).
pub(crate) fn dhcp_frames() -> Vec<SockFilter> {
    const DROP: u8 = 14;
    const ACCEPT: u8 = 15;
    // Relative jump from the instruction at `pc` to `target`.
    let to = |pc: u8, target: u8| target - pc - 1;
    vec![
        /* 0 */ load_abs(BPF_H, 12),
        /* 1 */ jump_eq(0x0800, 0, to(1, DROP)),
        /* 2 */ load_abs(BPF_B, 23),
        /* 3 */ jump_eq(17, 0, to(3, DROP)),
        /* 4 */ load_abs(BPF_H, 20),
        /* 5 */ SockFilter::new(op(BPF_JMP | BPF_JSET | BPF_K), to(5, DROP), 0, 0x1fff),
        /* 6 */ SockFilter::new(op(BPF_LDX | BPF_B | BPF_MSH), 0, 0, 14),
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
