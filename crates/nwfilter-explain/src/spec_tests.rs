use super::*;

const VM: [u8; 6] = [0x52, 0x54, 0, 0, 0, 1];

fn err(spec: &str) -> String {
    parse(spec, Direction::Out, VM).unwrap_err().to_string()
}

#[test]
fn defaults_put_the_vm_on_its_side_of_the_frame() {
    let out = parse("arp", Direction::Out, VM).unwrap();
    assert_eq!((out.src_mac, out.dst_mac), (VM, [0xff; 6]));
    let Net::Arp(a) = out.net else { panic!() };
    assert_eq!((a.sha, a.opcode, a.ptype), (VM, 1, ETHERTYPE_IPV4));
    let inbound = parse(
        "ip src=10.0.0.1 dst=10.0.0.5 tcp dport=22",
        Direction::In,
        VM,
    )
    .unwrap();
    assert_eq!(inbound.dst_mac, VM);
    assert_eq!(inbound.ether_type, ETHERTYPE_IPV4);
    let Net::Ip(ip) = &inbound.net else { panic!() };
    assert_eq!(ip.protocol, 6);
    assert_eq!(
        ip.l4,
        L4::Ports {
            sport: 32768,
            dport: 22,
            tcp_flags: TCP_SYN,
            tcp_options: vec![]
        }
    );
    assert_eq!(inbound.ct, CtState::New);
    let rarp = parse("rarp", Direction::Out, VM).unwrap();
    assert_eq!(rarp.ether_type, ETHERTYPE_RARP);
}

#[test]
fn every_layer_and_extra_reads_its_fields() {
    let p = parse(
        "mac src=52:54:00:00:00:02 dst=52:54:00:00:00:03 ipv6 src=fe80::1 dst=fe80::2 tos=0x10 \
         udp sport=546 dport=547 ct state=related dir=reply ipset a ipset b host",
        Direction::Out,
        VM,
    )
    .unwrap();
    assert_eq!(p.src_mac, [0x52, 0x54, 0, 0, 0, 2]);
    assert_eq!(p.ether_type, ETHERTYPE_IPV6);
    assert_eq!(
        (p.ct, p.ct_reply, p.to_host),
        (CtState::Related, true, true)
    );
    assert_eq!(p.ipsets, ["a", "b"]);
    let Net::Ip(ip) = &p.net else { panic!() };
    assert_eq!((ip.tos, ip.protocol), (0x10, 17));
    let icmp = parse("ip src=1.2.3.4 dst=5.6.7.8 icmp", Direction::Out, VM).unwrap();
    let Net::Ip(ip) = &icmp.net else { panic!() };
    assert_eq!(
        ip.l4,
        L4::Icmp {
            icmp_type: 8,
            code: 0
        }
    );
    let typed = parse("mac type=0x88cc", Direction::Out, VM).unwrap();
    assert_eq!((typed.ether_type, &typed.net), (0x88cc, &Net::Other));
}

#[test]
fn mistakes_name_the_word_and_what_is_expected() {
    assert!(err("tcp dport=25").contains("tcp needs an ip or ipv6 layer"));
    assert!(err("ip src=10.0.0.1").contains("ip needs dst=ADDRESS"));
    assert!(
        err("ip src=fe80::1 dst=10.0.0.1").contains("\"src=fe80::1\": src must be an IPv4 address")
    );
    assert!(err("mac src=52:54:00").contains("src must be a MAC address"));
    assert!(err("ip src=1.1.1.1 dst=2.2.2.2 tcp port=25").contains("tcp has no field \"port\""));
    assert!(err("dport=25").contains("needs a layer first"));
    assert!(err("ipx").contains("not a layer"));
    assert!(err("arp ip src=1.1.1.1 dst=2.2.2.2").contains("one network layer at most"));
    assert!(err("ipv6 src=::1 dst=::2 icmp").contains("icmp is IPv4's"));
    assert!(err("ip src=1.1.1.1 dst=2.2.2.2 proto=17 tcp dport=1").contains("contradicts"));
    assert!(err("ip src=1.1.1.1 dst=2.2.2.2 tcp dport=70000").contains("a port (0-65535)"));
    assert!(err("ip src=1.1.1.1 dst=2.2.2.2 tcp").contains("tcp needs dport=PORT"));
    assert!(err("ct state=weird").contains("new, established, related or invalid"));
    assert!(err("mac mac").contains("described twice"));
    assert!(err("ipset").contains("ipset needs a set name"));
}
