//! One test per match kind: holds, fails, and negated.

use std::net::IpAddr;

use nwfilter_compile::ir::*;
use nwfilter_model::MacAddr6;

use super::holds;
use crate::packet::*;
use crate::spec::parse;

const VM: [u8; 6] = [0x52, 0x54, 0, 0, 0, 1];

fn pkt(spec: &str) -> Packet {
    parse(spec, Direction::Out, VM).unwrap()
}

fn n<T>(value: T, negated: bool) -> Negatable<T> {
    Negatable { value, negated }
}

fn mm(addr: &str, mask: Option<&str>, negated: bool) -> MacMatch {
    MacMatch {
        addr: addr.parse::<MacAddr6>().unwrap(),
        mask: mask.map(|m| m.parse().unwrap()),
        negated,
    }
}

fn am(addr: &str, prefix: Option<u8>, negated: bool) -> AddrMatch {
    AddrMatch {
        addr: addr.parse::<IpAddr>().unwrap(),
        prefix,
        negated,
    }
}

/// `m` holds for `yes`, not for `no`.
fn check(m: Match, yes: &Packet, no: &Packet) {
    assert!(holds(&m, yes), "{m:?} should hold for {yes:?}");
    assert!(!holds(&m, no), "{m:?} should not hold for {no:?}");
}

#[test]
fn mac_addresses_with_mask_and_negation() {
    let a = pkt("mac src=52:54:00:00:00:01 dst=ff:ff:ff:ff:ff:ff");
    let b = pkt("mac src=52:54:00:00:00:02 dst=01:00:5e:00:00:01");
    check(Match::MacSrc(mm("52:54:00:00:00:01", None, false)), &a, &b);
    check(Match::MacSrc(mm("52:54:00:00:00:01", None, true)), &b, &a);
    check(Match::MacDst(mm("ff:ff:ff:ff:ff:ff", None, false)), &a, &b);
    // Multicast bit only.
    check(
        Match::MacDst(mm("01:00:00:00:00:00", Some("01:00:00:00:00:00"), false)),
        &a,
        &pkt("mac dst=52:54:00:00:00:09"),
    );
}

#[test]
fn ether_type_and_ip_version() {
    let arp = pkt("arp");
    let ip = pkt("ip src=10.0.0.1 dst=10.0.0.2");
    let ip6 = pkt("ipv6 src=fe80::1 dst=ff02::1");
    check(Match::EtherType(n(0x0806, false)), &arp, &ip);
    check(Match::EtherType(n(0x0806, true)), &ip, &arp);
    check(Match::EtherIp(IpVersion::V4), &ip, &arp);
    check(Match::EtherIp(IpVersion::V6), &ip6, &ip);
}

#[test]
fn vlan_id_and_encapsulated_type() {
    let tagged = pkt("vlan id=7 arp");
    let other = pkt("vlan id=8 ip src=10.0.0.1 dst=10.0.0.2");
    assert_eq!(tagged.ether_type, ETHERTYPE_VLAN);
    check(Match::VlanId(n(7, false)), &tagged, &other);
    check(Match::VlanId(n(7, true)), &other, &tagged);
    check(Match::VlanEncap(n(0x0806, false)), &tagged, &other);
    // An untagged frame has no VLAN fields, even for a negated match.
    assert!(!holds(&Match::VlanId(n(7, true)), &pkt("arp")));
    // Tagged IPv4 is not IPv4 to the bridge `ip` match.
    assert!(!holds(&Match::EtherIp(IpVersion::V4), &other));
}

#[test]
fn stp_bpdu_type_flags_ranges_and_addresses() {
    let conf = pkt("stp type=0 flags=1 root-prio=4096 root-cost=10 root-addr=00:00:00:00:00:0a sender-addr=00:00:00:00:00:0b");
    let other = pkt("stp type=0 flags=0 root-prio=8192 root-cost=20");
    let tcn = pkt("stp type=128");
    assert_eq!(conf.dst_mac, STP_GROUP);
    check(Match::StpBpdu, &conf, &pkt("arp"));
    check(Match::StpType(n(0, false)), &conf, &tcn);
    check(Match::StpFlags(n(1, false)), &conf, &other);
    let prio = PortRange {
        start: 0,
        end: Some(4096),
        negated: false,
    };
    check(Match::StpRange(StpField::RootPriority, prio), &conf, &other);
    let cost = PortRange {
        start: 15,
        end: Some(25),
        negated: false,
    };
    check(Match::StpRange(StpField::RootCost, cost), &other, &conf);
    check(
        Match::StpRootAddr(mm("00:00:00:00:00:0a", None, false)),
        &conf,
        &other,
    );
    check(
        Match::StpSenderAddr(mm("00:00:00:00:00:0b", None, false)),
        &conf,
        &other,
    );
    // ebtables checks configuration fields only in configuration BPDUs.
    assert!(holds(&Match::StpFlags(n(1, false)), &tcn));
}

#[test]
fn arp_header_fields() {
    let req =
        pkt("arp op=request sha=52:54:00:00:00:01 spa=10.0.0.5 tha=00:00:00:00:00:00 tpa=10.0.0.1");
    let reply = pkt("arp op=reply htype=6 ptype=0x86dd sha=52:54:00:00:00:02 spa=10.0.0.6 tha=52:54:00:00:00:01 tpa=10.0.0.5");
    check(Match::ArpOpcode(n(1, false)), &req, &reply);
    check(Match::ArpOpcode(n(1, true)), &reply, &req);
    check(Match::ArpHwType(n(1, false)), &req, &reply);
    check(Match::ArpProtoType(n(0x0800, false)), &req, &reply);
    check(
        Match::ArpIpSrc(am("10.0.0.0", Some(24), false)),
        &req,
        &pkt("arp spa=10.0.1.5"),
    );
    check(
        Match::ArpIpDst(am("10.0.0.1", None, false)),
        &req,
        &pkt("arp tpa=10.0.0.2"),
    );
    check(
        Match::ArpMacSrc(mm("52:54:00:00:00:01", None, false)),
        &req,
        &pkt("arp sha=52:54:00:00:00:09"),
    );
    check(
        Match::ArpMacDst(mm("00:00:00:00:00:00", None, false)),
        &req,
        &pkt("arp tha=52:54:00:00:00:09"),
    );
    // An address match needs an Ethernet/IPv4 body, negated or not.
    assert!(!holds(&Match::ArpIpSrc(am("10.9.9.9", None, true)), &reply));
    assert!(!holds(
        &Match::ArpMacSrc(mm("00:00:00:00:00:09", None, true)),
        &reply
    ));
    let grat = pkt("arp spa=10.0.0.5 tpa=10.0.0.5");
    check(Match::ArpGratuitous { negated: false }, &grat, &req);
    check(Match::ArpGratuitous { negated: true }, &req, &grat);
    // RARP frames are read by the same match.
    check(Match::ArpOpcode(n(3, false)), &pkt("rarp"), &req);
}

#[test]
fn ip_addresses_prefixes_and_ranges() {
    let a = pkt("ip src=10.0.0.5 dst=192.0.2.1");
    let b = pkt("ip src=10.1.0.5 dst=192.0.2.200");
    check(Match::IpSrc(am("10.0.0.5", None, false)), &a, &b);
    check(Match::IpSrc(am("10.0.0.0", Some(16), false)), &a, &b);
    check(Match::IpSrc(am("10.0.0.0", Some(16), true)), &b, &a);
    check(Match::IpDst(am("192.0.2.0", Some(25), false)), &a, &b);
    let range = |negated| AddrRange {
        from: "192.0.2.1".parse().unwrap(),
        to: Some("192.0.2.100".parse().unwrap()),
        negated,
    };
    check(Match::IpDstRange(range(false)), &a, &b);
    check(Match::IpDstRange(range(true)), &b, &a);
    check(
        Match::IpSrcRange(AddrRange {
            from: "10.1.0.5".parse().unwrap(),
            to: None,
            negated: false,
        }),
        &b,
        &a,
    );
    let v6 = pkt("ipv6 src=2001:db8::5 dst=ff02::1");
    check(
        Match::IpSrc(am("2001:db8::", Some(64), false)),
        &v6,
        &pkt("ipv6 src=2001:db9::5 dst=ff02::1"),
    );
    // An IPv6 match never holds for IPv4, even negated.
    assert!(!holds(&Match::IpSrc(am("2001:db8::", Some(64), true)), &a));
}

#[test]
fn protocol_tos_and_dscp() {
    let tcp = pkt("ip src=10.0.0.1 dst=10.0.0.2 tos=0xb8 tcp dport=25");
    let udp = pkt("ip src=10.0.0.1 dst=10.0.0.2 udp dport=53");
    check(Match::IpProtocol(n(6, false)), &tcp, &udp);
    check(Match::IpProtocol(n(6, true)), &udp, &tcp);
    check(Match::IpTos(n(0xb8, false)), &tcp, &udp);
    check(Match::Dscp(n(46, false)), &tcp, &udp);
    check(Match::L4(L4Proto::Tcp), &tcp, &udp);
    check(Match::L4(L4Proto::Udp), &udp, &tcp);
    assert!(holds(&Match::L4(L4Proto::All), &udp));
    check(
        Match::L4(L4Proto::Icmpv6),
        &pkt("ipv6 src=::1 dst=::2 icmpv6"),
        &udp,
    );
}

#[test]
fn ports_ranges_and_negation() {
    let smtp = pkt("ip src=10.0.0.1 dst=10.0.0.2 tcp sport=40000 dport=25");
    let dns = pkt("ip src=10.0.0.1 dst=10.0.0.2 udp sport=5353 dport=53");
    let r = |start, end, negated| PortRange {
        start,
        end,
        negated,
    };
    check(Match::DstPort(r(25, None, false)), &smtp, &dns);
    check(Match::DstPort(r(25, None, true)), &dns, &smtp);
    check(Match::DstPort(r(50, Some(60), false)), &dns, &smtp);
    check(Match::SrcPort(r(32768, Some(65535), false)), &smtp, &dns);
    // ICMP has no ports: no match, negated or not.
    assert!(!holds(
        &Match::DstPort(r(25, None, true)),
        &pkt("ip src=10.0.0.1 dst=10.0.0.2 icmp")
    ));
}

#[test]
fn tcp_flags_and_options() {
    let syn = pkt("ip src=10.0.0.1 dst=10.0.0.2 tcp dport=22 flags=syn option=2");
    let ack = pkt("ip src=10.0.0.1 dst=10.0.0.2 tcp dport=22 flags=ack");
    let flags = |negated| Match::TcpFlags {
        mask: 0x12,
        set: 0x02,
        negated,
    };
    check(flags(false), &syn, &ack);
    check(flags(true), &ack, &syn);
    check(Match::TcpOption(n(2, false)), &syn, &ack);
    check(Match::TcpOption(n(2, true)), &ack, &syn);
    assert!(!holds(
        &flags(true),
        &pkt("ip src=10.0.0.1 dst=10.0.0.2 udp dport=1")
    ));
}

#[test]
fn icmp_type_code_and_icmpv6_ranges() {
    let echo = pkt("ip src=10.0.0.1 dst=10.0.0.2 icmp type=8 code=0");
    let unreach = pkt("ip src=10.0.0.1 dst=10.0.0.2 icmp type=3 code=3");
    let t = |icmp_type, code, negated| Match::IcmpType {
        icmp_type,
        code,
        negated,
    };
    check(t(8, None, false), &echo, &unreach);
    check(t(3, Some(3), false), &unreach, &echo);
    check(
        t(3, Some(1), false),
        &pkt("ip src=10.0.0.1 dst=10.0.0.2 icmp type=3 code=1"),
        &unreach,
    );
    check(t(8, None, true), &unreach, &echo);
    let ns = pkt("ipv6 src=fe80::1 dst=ff02::1:ff00:1 icmpv6 type=135");
    let ra = pkt("ipv6 src=fe80::1 dst=ff02::1 icmpv6 type=134");
    let ranges = |negated| Match::Icmpv6Ranges {
        types: (135, 136),
        codes: (0, 255),
        negated,
    };
    check(ranges(false), &ns, &ra);
    check(ranges(true), &ra, &ns);
    // An IPv4 ICMP message is not ICMPv6.
    assert!(!holds(&ranges(true), &echo));
}

#[test]
fn conntrack_state_and_direction_come_from_the_description() {
    let new = pkt("ip src=10.0.0.1 dst=10.0.0.2 tcp dport=80");
    let est = pkt("ip src=10.0.0.1 dst=10.0.0.2 tcp dport=80 ct state=established dir=reply");
    let states = |new, established| ConnStates {
        new,
        established,
        related: false,
        invalid: false,
    };
    check(Match::ConnState(states(true, false)), &new, &est);
    check(Match::ConnState(states(false, true)), &est, &new);
    check(Match::ConnDir(ConnDir::Original), &new, &est);
    check(Match::ConnDir(ConnDir::Reply), &est, &new);
    assert!(super::assumption(&Match::ConnState(states(true, true))).is_some());
}

#[test]
fn ipset_membership_and_connlimit() {
    let member = pkt("ip src=10.0.0.1 dst=10.0.0.2 ipset blocked");
    let not = pkt("ip src=10.0.0.1 dst=10.0.0.2");
    let set = Match::IpSet {
        name: "blocked".into(),
        flags: vec![],
    };
    check(set.clone(), &member, &not);
    assert!(super::assumption(&set).is_some());
    // One connection (the packet's own): above 0, not above 1.
    assert!(holds(&Match::ConnlimitAbove(n(0, false)), &not));
    assert!(!holds(&Match::ConnlimitAbove(n(1, false)), &not));
    assert!(holds(&Match::ConnlimitAbove(n(1, true)), &not));
}

/// A neighbour advertisement from 52:54:00:00:00:01 for `target`, right
/// behind the IPv6 header, with a target link-layer option holding `mac`
/// when given; behind a destination-options header when `ext`.
fn na_frame(target: &str, mac: Option<[u8; 6]>, ext: bool) -> Packet {
    let mut icmp = vec![136, 0, 0, 0, 0x20, 0, 0, 0];
    icmp.extend_from_slice(&target.parse::<std::net::Ipv6Addr>().unwrap().octets());
    if let Some(mac) = mac {
        icmp.extend_from_slice(&[2, 1]);
        icmp.extend_from_slice(&mac);
    }
    let mut payload = Vec::new();
    if ext {
        payload.extend_from_slice(&[58, 0, 1, 4, 0, 0, 0, 0]);
    }
    payload.extend_from_slice(&icmp);
    let mut f = vec![0x33, 0x33, 0, 0, 0, 1, 0x52, 0x54, 0, 0, 0, 1, 0x86, 0xdd];
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&u16::try_from(payload.len()).unwrap().to_be_bytes());
    f.extend_from_slice(&[if ext { 60 } else { 58 }, 255]);
    f.extend_from_slice(&"fe80::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
    f.extend_from_slice(&"ff02::1".parse::<std::net::Ipv6Addr>().unwrap().octets());
    f.extend_from_slice(&payload);
    crate::frame::parse(&f).unwrap()
}

#[test]
fn neighbour_discovery_fields_only_right_behind_the_ipv6_header() {
    let own = [0x52, 0x54, 0, 0, 0, 1];
    let nd = |field, negated| Match::Nd(NdMatch { field, negated });
    let target = |t: &str| NdField::Target(t.parse().unwrap());
    let plain = na_frame("2001:db8::5", None, false);
    let with_option = na_frame("2001:db8::5", Some(own), false);
    let behind_ext = na_frame("2001:db8::5", None, true);
    check(
        nd(target("2001:db8::5"), false),
        &plain,
        &na_frame("2001:db8::6", None, false),
    );
    check(
        nd(target("2001:db8::6"), true),
        &plain,
        &na_frame("2001:db8::6", None, false),
    );
    check(nd(NdField::Options(false), false), &plain, &with_option);
    check(nd(NdField::Options(true), false), &with_option, &plain);
    let mac = |b: [u8; 6]| NdField::LinkLayer(MacAddr6::from(b));
    check(
        nd(mac(own), false),
        &with_option,
        &na_frame("2001:db8::5", Some([0x52, 0x54, 0, 0, 0, 9]), false),
    );
    // Behind an extension header the fields are not there, negated or not.
    for m in [
        nd(target("2001:db8::5"), false),
        nd(target("2001:db8::6"), true),
        nd(NdField::Options(false), false),
    ] {
        assert!(!holds(&m, &behind_ext), "{m:?}");
    }
}
