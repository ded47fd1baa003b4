//! Cost of classifying one captured frame: what a port at its rate limit
//! costs in user space (the kernel BPF filter drops the rest).

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{criterion_group, criterion_main, Criterion};
use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode};
use dhcproto::Encodable;
use etherparse::PacketBuilder;
use nwfilter_learn::{classify, Direction};

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
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
