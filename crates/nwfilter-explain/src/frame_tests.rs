use super::*;
use crate::spec;

const VM: [u8; 6] = [0x52, 0x54, 0, 0, 0, 1];

fn roundtrip(text: &str) {
    let p = spec::parse(text, Direction::Out, VM).unwrap();
    let frame = build(&p).unwrap();
    assert!(frame.len() >= 60);
    let mut back = parse(&frame).unwrap();
    // A described ICMPv6 packet has no ND body; its frame's message is too
    // short for any ND field, so no ND match holds for either.
    if let Net::Ip(ip) = &mut back.net {
        if let Some(msg) = ip.icmpv6_message.take() {
            assert!(msg.len() < 24, "{text}: {msg:?}");
        }
    }
    assert_eq!(back, p, "{text}");
}

#[test]
fn built_frames_parse_back_to_the_same_packet() {
    roundtrip("arp op=reply spa=10.0.0.5 tpa=10.0.0.1 tha=52:54:00:00:00:09");
    roundtrip("rarp op=rarp-request sha=52:54:00:00:00:02");
    roundtrip("mac dst=52:54:00:00:00:09 ip src=10.0.0.5 dst=10.0.0.1 tos=0xb8 tcp sport=1 dport=25 flags=syn,ack");
    roundtrip("ip src=10.0.0.5 dst=10.0.0.1 udp sport=68 dport=67");
    roundtrip("ip src=10.0.0.5 dst=10.0.0.1 icmp type=3 code=1");
    roundtrip("ipv6 src=fe80::1 dst=ff02::1 icmpv6 type=135");
    roundtrip("ipv6 src=2001:db8::1 dst=2001:db8::2 tcp dport=443");
    roundtrip("ip src=10.0.0.5 dst=10.0.0.1 proto=47");
}

#[test]
fn hex_frames_with_vlan_tags_stp_and_tcp_options() {
    // VLAN 5 carrying ARP: the outer type is 802.1Q.
    let mut arp = build(&spec::parse("arp", Direction::Out, VM).unwrap()).unwrap();
    arp.splice(12..12, [0x81, 0x00, 0x00, 0x05]);
    let p = parse(&arp).unwrap();
    assert_eq!(
        (p.ether_type, p.vlan),
        (
            ETHERTYPE_VLAN,
            Some(Vlan {
                id: 5,
                encap: ETHERTYPE_ARP
            })
        )
    );
    // A configuration BPDU, hex as text with separators.
    let bpdu = "01:80:c2:00:00:00 52:54:00:00:00:01 00 26 42 42 03 0000 00 00 01 \
                1000 00000000000a 0000000a 8000 00000000000b 8001 0000 1400 0200 0f00";
    let p = parse(&hex(bpdu).unwrap()).unwrap();
    let Net::Stp(s) = p.net else { panic!("{p:?}") };
    assert_eq!(
        (s.flags, s.root_priority, s.root_cost, s.port),
        (1, 0x1000, 10, 0x8001)
    );
    assert_eq!(s.sender_addr, [0, 0, 0, 0, 0, 0x0b]);
    // TCP with MSS (2) and SACK-permitted (4) options.
    let mut syn = build(
        &spec::parse(
            "ip src=1.1.1.1 dst=2.2.2.2 tcp dport=80",
            Direction::Out,
            VM,
        )
        .unwrap(),
    )
    .unwrap();
    syn.truncate(14 + 20 + 20);
    syn[14 + 3] = 48; // IPv4 total length
    syn[14 + 20 + 12] = 7 << 4; // TCP data offset: 28 bytes
    syn.extend_from_slice(&[2, 4, 5, 0xb4, 1, 4, 2, 0]);
    let Net::Ip(ip) = parse(&syn).unwrap().net else {
        panic!()
    };
    let L4::Ports { tcp_options, .. } = ip.l4 else {
        panic!()
    };
    assert_eq!(tcp_options, [2, 4]);
}

#[test]
fn bad_frames_say_what_and_where() {
    assert!(hex("abc").unwrap_err().to_string().contains("odd number"));
    assert!(hex("zz")
        .unwrap_err()
        .to_string()
        .contains("\"zz\" at byte 0"));
    assert!(parse(&[0; 10])
        .unwrap_err()
        .to_string()
        .contains("at byte 0"));
    let mut truncated =
        build(&spec::parse("ip src=1.1.1.1 dst=2.2.2.2 udp dport=1", Direction::Out, VM).unwrap())
            .unwrap();
    truncated.truncate(20);
    assert!(parse(&truncated)
        .unwrap_err()
        .to_string()
        .contains("at byte 14"));
}
