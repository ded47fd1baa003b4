//! Cost of classifying one captured frame: what a port at its rate limit
//! costs in user space (the kernel BPF filter drops the rest).

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{criterion_group, criterion_main, Criterion};
use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode};
use dhcproto::Encodable;
use etherparse::PacketBuilder;
use nwfilter_learn::{classify, classify_v6, Direction};

const GUEST: [u8; 6] = [0x52, 0x54, 0, 0, 0, 0x10];
const SERVER: [u8; 6] = [0x52, 0x54, 0, 0, 0, 0x01];

fn udp(src: [u8; 6], dst: [u8; 6], ports: (u16, u16), payload: &[u8]) -> Vec<u8> {
    let builder = PacketBuilder::ethernet2(src, dst)
        .ipv4([10, 0, 0, 1], [10, 0, 0, 50], 64)
        .udp(ports.0, ports.1);
    let mut out = Vec::new();
    builder.write(&mut out, payload).unwrap();
    out
}

fn ack() -> Vec<u8> {
    let zero = Ipv4Addr::UNSPECIFIED;
    let mut msg = Message::new(zero, Ipv4Addr::new(10, 0, 0, 50), zero, zero, &GUEST);
    msg.set_opcode(Opcode::BootReply);
    msg.opts_mut()
        .insert(DhcpOption::MessageType(MessageType::Ack));
    msg.opts_mut().insert(DhcpOption::AddressLeaseTime(3600));
    udp(SERVER, GUEST, (67, 68), &msg.to_vec().unwrap())
}

/// Duplicate address detection for 2001:db8::10: an ICMPv6 neighbour
/// solicitation from `::` to its solicited-node group.
fn dad_ns() -> Vec<u8> {
    let target = [
        0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let group = [0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0, 0x10];
    let builder = PacketBuilder::ethernet2(GUEST, [0x33, 0x33, 0xff, 0, 0, 0x10])
        .ipv6([0; 16], group, 255)
        .icmpv6(etherparse::Icmpv6Type::Unknown {
            type_u8: 135,
            code_u8: 0,
            bytes5to8: [0; 4],
        });
    let mut out = Vec::new();
    builder.write(&mut out, &target).unwrap();
    out
}

/// A DHCPv6 Reply to the guest assigning 2001:db8::100 (one IA_NA).
fn dhcpv6_reply() -> Vec<u8> {
    let mut ia = vec![0, 0, 0, 1, 0, 0, 0, 100, 0, 0, 0, 200, 0, 5, 0, 24];
    ia.extend([0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0]);
    ia.extend(1800u32.to_be_bytes());
    ia.extend(3600u32.to_be_bytes());
    let mut msg = vec![
        7, 0x12, 0x34, 0x56, 0, 2, 0, 4, 0xde, 0xad, 0xbe, 0xef, 0, 3, 0, 40,
    ];
    msg.extend(ia);
    let server = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
    let client = [
        0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x50, 0x54, 0, 0xff, 0xfe, 0, 0, 0x10,
    ];
    let builder = PacketBuilder::ethernet2(SERVER, GUEST)
        .ipv6(server, client, 64)
        .udp(547, 546);
    let mut out = Vec::new();
    builder.write(&mut out, &msg).unwrap();
    out
}

fn bench(c: &mut Criterion) {
    let ack = ack();
    let guest_ip = udp(GUEST, SERVER, (5000, 53), b"query");
    let junk = udp(GUEST, SERVER, (68, 67), &[0u8; 300]);
    let mut group = c.benchmark_group("classify");
    group.bench_function("dhcp_ack_to_guest", |b| {
        b.iter(|| classify(black_box(&ack), Direction::ToGuest, GUEST))
    });
    group.bench_function("ipv4_from_guest", |b| {
        b.iter(|| classify(black_box(&guest_ip), Direction::FromGuest, GUEST))
    });
    group.bench_function("undecodable_dhcp_from_guest", |b| {
        b.iter(|| classify(black_box(&junk), Direction::FromGuest, GUEST))
    });
    // IPv6 learning (issue 16): the frames a dual-stack port's learner reads.
    let dad = dad_ns();
    let reply6 = dhcpv6_reply();
    assert!(classify_v6(&dad, Direction::FromGuest, GUEST).is_some());
    assert!(classify_v6(&reply6, Direction::ToGuest, GUEST).is_some());
    group.bench_function("nd_dad_from_guest", |b| {
        b.iter(|| classify_v6(black_box(&dad), Direction::FromGuest, GUEST))
    });
    group.bench_function("dhcpv6_reply_to_guest", |b| {
        b.iter(|| classify_v6(black_box(&reply6), Direction::ToGuest, GUEST))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
