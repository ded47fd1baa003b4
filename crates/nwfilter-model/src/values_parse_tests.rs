use super::*;
use crate::protocol::Protocol as P;

/// Parses and prints back, or returns the error's reason text.
fn round(protocol: Protocol, attr: Attr, text: &str) -> Result<String, String> {
    parse_value(protocol, attr, text)
        .map(|v| format_value(protocol, attr, &v))
        .map_err(|e| e.to_string())
}

fn ok(protocol: Protocol, attr: Attr, text: &str) -> String {
    round(protocol, attr, text).unwrap_or_else(|e| panic!("{text:?} refused: {e}"))
}

fn bad(protocol: Protocol, attr: Attr, text: &str) {
    assert!(
        round(protocol, attr, text).is_err(),
        "{text:?} accepted for {}",
        attr.name()
    );
}

#[test]
fn integers_keep_their_base() {
    use Attr::*;
    use P::Stp;
    assert_eq!(ok(Stp, Type, "10"), "10");
    assert_eq!(ok(Stp, Type, "010"), "10");
    assert_eq!(ok(Stp, Type, " +80"), "80");
    assert_eq!(ok(Stp, Type, "ff"), "0xff");
    assert_eq!(ok(Stp, RootPriority, "0X0020"), "0x20");
    assert_eq!(ok(Stp, RootCost, "0xffffffff"), "0xffffffff");
    bad(Stp, Type, "256");
    bad(Stp, Type, "0x100");
    bad(Stp, Type, "8 ");
    bad(Stp, Type, "0x");
    bad(Stp, Type, "");
    bad(Stp, RootCost, "-1");
    bad(Stp, RootPriority, "65536");
}

#[test]
fn range_checked_kinds() {
    use Attr::*;
    assert_eq!(ok(P::Tcp, Dscp, "63"), "63");
    bad(P::Tcp, Dscp, "64");
    bad(P::Tcp, Dscp, "0x40");
    assert_eq!(ok(P::Vlan, VlanId, "0xfff"), "0xfff");
    bad(P::Vlan, VlanId, "4096");
    bad(P::Vlan, VlanId, "0xffff");
    assert_eq!(ok(P::Tcp, ConnlimitAbove, "10"), "10");
    bad(P::Tcp, ConnlimitAbove, "0x10");
}

#[test]
fn ethertypes_protocols_opcodes() {
    use Attr::*;
    use P::{Arp, Ip, Mac, Vlan};
    assert_eq!(ok(Mac, ProtocolId, "2048"), "ipv4");
    assert_eq!(ok(Mac, ProtocolId, "0x0800"), "ipv4");
    assert_eq!(ok(Mac, ProtocolId, "86dd"), "ipv6");
    assert_eq!(ok(Mac, ProtocolId, "ARP"), "arp");
    assert_eq!(ok(Mac, ProtocolId, "vlan"), "vlan");
    assert_eq!(ok(Mac, ProtocolId, "4660"), "4660");
    assert_eq!(ok(Mac, ProtocolId, "0x1234"), "0x1234");
    bad(Mac, ProtocolId, "15");
    bad(Mac, ProtocolId, "0x5ff");
    bad(Mac, ProtocolId, "ipx");
    assert_eq!(ok(Vlan, EncapProtocol, "0x3c"), "0x3c");
    bad(Vlan, EncapProtocol, "0x3b");
    assert_eq!(ok(Ip, Attr::Protocol, "0x11"), "udp");
    assert_eq!(ok(Ip, Attr::Protocol, "TCP"), "tcp");
    assert_eq!(ok(Ip, Attr::Protocol, "2f"), "0x2f");
    assert_eq!(ok(Ip, Attr::Protocol, "47"), "47");
    bad(Ip, Attr::Protocol, "256");
    assert_eq!(ok(Arp, Opcode, "reply"), "Reply");
    assert_eq!(ok(Arp, Opcode, "0x2"), "Reply");
    assert_eq!(ok(Arp, Opcode, "0x20"), "32");
    assert_eq!(ok(Arp, Opcode, "0"), "0");
    bad(Arp, Opcode, "65536");
    bad(Arp, Opcode, "Nope");
}

#[test]
fn the_canonical_model_forgets_the_base_of_named_numbers() {
    let a = parse_value(P::Mac, Attr::ProtocolId, "2048").unwrap();
    let b = parse_value(P::Mac, Attr::ProtocolId, "0x800").unwrap();
    let c = parse_value(P::Mac, Attr::ProtocolId, "ipv4").unwrap();
    assert_eq!(a, b);
    assert_eq!(b, c);
}

#[test]
fn addresses_and_masks() {
    use Attr::*;
    use P::{Arp, Ip, Mac, TcpIpv6};
    assert_eq!(ok(Mac, SrcMacAddr, "1:2:3:4:5:6"), "01:02:03:04:05:06");
    assert_eq!(
        ok(Mac, SrcMacMask, "FF:FF:FF:FF:FF:00"),
        "ff:ff:ff:ff:ff:00"
    );
    bad(Mac, SrcMacMask, "ff:00:ff:00:00:00");
    bad(Mac, SrcMacAddr, "aa:bb:cc:dd:ee:ff junk");
    assert_eq!(ok(Ip, SrcIpAddr, "10.1"), "10.0.0.1");
    assert_eq!(ok(Ip, SrcIpMask, "255.255.128.0"), "17");
    assert_eq!(ok(Ip, SrcIpMask, "32"), "32");
    assert_eq!(ok(Ip, SrcIpMask, "255.255.255.255"), "32");
    bad(Ip, SrcIpMask, "33");
    bad(Ip, SrcIpMask, "255.0.255.0");
    bad(Ip, SrcIpMask, "0x18");
    bad(Ip, SrcIpAddr, "::1");
    assert_eq!(ok(Arp, ArpSrcIpMask, "24"), "24");
    assert_eq!(ok(TcpIpv6, SrcIpAddr, "::ffff:10.1.2.3"), "::ffff:10.1.2.3");
    assert_eq!(ok(TcpIpv6, SrcIpMask, "ffff:ffc0::"), "26");
    assert_eq!(
        ok(
            TcpIpv6,
            SrcIpMask,
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:8000"
        ),
        "113"
    );
    bad(TcpIpv6, SrcIpMask, "129");
    bad(TcpIpv6, SrcIpAddr, "a:b:c");
    bad(TcpIpv6, SrcIpAddr, "fe80::1%eth0");
    bad(TcpIpv6, SrcIpAddr, "1.2.3.4");
    // libvirt types dstipto as IPv4 on IPv6 elements; we type it IPv6.
    assert_eq!(ok(TcpIpv6, DstIpTo, "::4"), "::4");
    bad(TcpIpv6, DstIpTo, "1.2.3.4");
}

#[test]
fn bools_comments_states_flags() {
    use Attr::*;
    use P::{Arp, Tcp};
    assert_eq!(ok(Arp, Gratuitous, "yes"), "true");
    assert_eq!(ok(Arp, Gratuitous, "0"), "false");
    bad(Arp, Gratuitous, "YES");
    bad(Arp, Gratuitous, "bogus");
    let long = "x".repeat(300);
    assert_eq!(ok(Tcp, Comment, &long).len(), 256);
    let multibyte = format!("{}é", "x".repeat(255));
    assert_eq!(ok(Tcp, Comment, &multibyte), "x".repeat(255));
    bad(Tcp, Comment, "line\nbreak");
    assert_eq!(ok(Tcp, State, "established,new"), "NEW,ESTABLISHED");
    assert_eq!(ok(Tcp, State, "NEWESTABLISHED"), "NEW,ESTABLISHED");
    assert_eq!(ok(Tcp, State, "NEW NONE"), "NONE");
    bad(Tcp, State, "");
    bad(Tcp, State, "OLD");
    assert_eq!(ok(Tcp, Flags, "ack,syn/SYN"), "SYN,ACK/SYN");
    assert_eq!(ok(Tcp, Flags, "PSH/"), "PSH/NONE");
    assert_eq!(ok(Tcp, Flags, "/"), "NONE/NONE");
    assert_eq!(ok(Tcp, Flags, "SYN,ACK,URG,PSH,FIN,RST/all"), "ALL/ALL");
    bad(Tcp, Flags, "SYN");
    bad(Tcp, Flags, "SYN/XMAS");
}

#[test]
fn ipsets() {
    use Attr::*;
    use P::All;
    assert_eq!(ok(All, Ipset, "a:b_c.d-e+f g"), "a:b_c.d-e+f g");
    bad(All, Ipset, &"x".repeat(32));
    bad(All, Ipset, "a/b");
    bad(All, Ipset, "");
    assert_eq!(ok(All, IpsetFlags, "SRC,dSt"), "src,dst");
    bad(All, IpsetFlags, "src, dst");
    bad(All, IpsetFlags, "src,src,src,src,src,src,src");
    bad(All, IpsetFlags, "");
}

#[test]
fn variables() {
    use Attr::*;
    use P::Tcp;
    assert_eq!(ok(Tcp, SrcIpAddr, "$IP"), "$IP");
    assert_eq!(ok(Tcp, SrcIpAddr, "$B[  @0 ] "), "$B");
    assert_eq!(ok(Tcp, SrcIpAddr, "$A[ 0]"), "$A[0]");
    assert_eq!(ok(Tcp, SrcIpAddr, "$A[@ 2]"), "$A[@2]");
    assert_eq!(ok(Tcp, SrcIpAddr, "$A[+2]"), "$A[2]");
    assert_eq!(ok(Tcp, Comment, "$C"), "$C");
    assert_eq!(ok(Tcp, State, "$S"), "$S");
    assert_eq!(ok(Tcp, SrcPortStart, "$P[@1000]"), "$P[@1000]");
    bad(Tcp, SrcPortStart, "$P[@1001]");
    bad(Tcp, SrcIpAddr, "$");
    bad(Tcp, SrcIpAddr, "$ A");
    bad(Tcp, SrcIpAddr, "$A.B");
    bad(Tcp, SrcIpAddr, "$A[3]xyz");
    bad(Tcp, SrcIpAddr, "$A[]");
    bad(Tcp, SrcIpAddr, "$A[-1]");
    bad(Tcp, SrcIpAddr, "$A[4294967296]");
}

#[test]
fn unknown_attribute_is_named() {
    let err = parse_value(P::TcpIpv6, Attr::Flags, "SYN/SYN").unwrap_err();
    assert_eq!(err.to_string(), "<tcp-ipv6> has no attribute 'flags'");
}

#[test]
fn parse_kind_checks_substituted_values() {
    assert!(parse_kind(ValueKind::Ipv4, "10.0.0.1").is_ok());
    assert!(parse_kind(ValueKind::Ipv4, "$IP").is_err());
    assert!(parse_kind(ValueKind::U16, "80").is_ok());
    assert!(parse_kind(ValueKind::U16, "a-b").is_err());
}

#[test]
fn parameter_names_and_values() {
    assert!(valid_param_name("CTRL_IP_LEARNING"));
    assert!(!valid_param_name(""));
    assert!(!valid_param_name("a-b"));
    assert!(valid_param_value("fe80::1"));
    assert!(valid_param_value("52:54:00:11:22:33"));
    assert!(!valid_param_value("10.0.0.0/8"));
    assert!(!valid_param_value(""));
    assert!(!valid_param_value("src,dst"));
}

/// Found by fuzzing: a name list was sliced at a byte offset that could fall
/// inside a multi-byte character, which panicked instead of refusing.
#[test]
fn non_ascii_states_and_flags_are_refused_not_panicking() {
    use Attr::*;
    use P::{All, Tcp};
    bad(All, State, "ééé");
    bad(Tcp, State, "NEW,é");
    bad(Tcp, State, "NEWé");
    bad(Tcp, State, "€STABLISHED");
    bad(Tcp, Flags, "ééé/SYN");
    bad(Tcp, Flags, "SYN/ééé");
    bad(Tcp, Flags, "SY€/SYN");
    bad(Tcp, Flags, "ALL/NON\u{1f600}");
}
