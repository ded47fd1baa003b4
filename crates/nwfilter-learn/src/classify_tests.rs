//! Frames built with etherparse and dhcproto, classified as the learner
//! would see them on the port.

use std::net::Ipv4Addr;

use dhcproto::v4::{DhcpOption, Message, MessageType, Opcode};
use dhcproto::Encodable;
use etherparse::{ArpHardwareId, ArpOperation, ArpPacket, EtherType, PacketBuilder};

use super::*;

const GUEST: [u8; 6] = [0x52, 0x54, 0, 0, 0, 0x10];
const OTHER: [u8; 6] = [0x52, 0x54, 0, 0, 0, 0x99];
const SERVER_MAC: [u8; 6] = [0x52, 0x54, 0, 0, 0, 0x01];
const SERVER: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 1);
const LEASED: Ipv4Addr = Ipv4Addr::new(10, 77, 0, 50);

/// A UDP datagram in IPv4 in Ethernet.
pub(crate) fn udp(
    (src_mac, dst_mac): ([u8; 6], [u8; 6]),
    (src, dst): (Ipv4Addr, Ipv4Addr),
    (sport, dport): (u16, u16),
    payload: &[u8],
) -> Vec<u8> {
    let builder = PacketBuilder::ethernet2(src_mac, dst_mac)
        .ipv4(src.octets(), dst.octets(), 64)
        .udp(sport, dport);
    let mut out = Vec::with_capacity(builder.size(payload.len()));
    builder.write(&mut out, payload).unwrap();
    out
}

/// A DHCP message of `kind` with client hardware address `chaddr`.
pub(crate) fn dhcp_message(
    kind: MessageType,
    chaddr: [u8; 6],
    yiaddr: Ipv4Addr,
    lease: Option<u32>,
) -> Vec<u8> {
    let unspecified = Ipv4Addr::UNSPECIFIED;
    let mut msg = Message::new(unspecified, yiaddr, unspecified, unspecified, &chaddr);
    let reply = matches!(
        kind,
        MessageType::Offer | MessageType::Ack | MessageType::Nak
    );
    msg.set_opcode(if reply {
        Opcode::BootReply
    } else {
        Opcode::BootRequest
    });
    msg.opts_mut().insert(DhcpOption::MessageType(kind));
    if let Some(secs) = lease {
        msg.opts_mut().insert(DhcpOption::AddressLeaseTime(secs));
    }
    msg.to_vec().unwrap()
}

/// A server's reply to the guest, as dnsmasq sends it (unicast to the MAC).
pub(crate) fn reply(kind: MessageType, server: Ipv4Addr, lease: Option<u32>) -> Vec<u8> {
    let payload = dhcp_message(kind, GUEST, LEASED, lease);
    udp((SERVER_MAC, GUEST), (server, LEASED), (67, 68), &payload)
}

fn arp(op: ArpOperation, sender_mac: [u8; 6], sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let packet = ArpPacket::new(
        ArpHardwareId::ETHERNET,
        EtherType::IPV4,
        op,
        &sender_mac,
        &sender.octets(),
        &[0; 6],
        &target.octets(),
    )
    .unwrap();
    let builder = PacketBuilder::ethernet2(sender_mac, [0xff; 6]).arp(packet);
    let mut out = Vec::with_capacity(builder.size());
    builder.write(&mut out).unwrap();
    out
}

fn ping_from(src: Ipv4Addr) -> Vec<u8> {
    udp((GUEST, SERVER_MAC), (src, SERVER), (5000, 53), b"x")
}

#[test]
fn the_guests_ipv4_source_address_counts() {
    let frame = ping_from(Ipv4Addr::new(10, 77, 0, 10));
    assert_eq!(
        classify(&frame, Direction::FromGuest, GUEST),
        Some(Observation::GuestAddress(Ipv4Addr::new(10, 77, 0, 10)))
    );
}

#[test]
fn unusable_source_addresses_do_not_count() {
    for addr in ["0.0.0.0", "224.0.0.1", "240.0.0.1", "255.255.255.255"] {
        let frame = ping_from(addr.parse().unwrap());
        assert_eq!(
            classify(&frame, Direction::FromGuest, GUEST),
            None,
            "{addr}"
        );
    }
}

#[test]
fn only_frames_from_the_guests_mac_and_port_count() {
    let other = udp(
        (OTHER, SERVER_MAC),
        (Ipv4Addr::new(10, 77, 0, 99), SERVER),
        (1, 2),
        b"",
    );
    assert_eq!(classify(&other, Direction::FromGuest, GUEST), None);
    // The guest's MAC towards the guest: someone else spoofing it.
    let frame = ping_from(Ipv4Addr::new(10, 77, 0, 10));
    assert_eq!(classify(&frame, Direction::ToGuest, GUEST), None);
}

/// Issue 23, item 9: the learning rules pass only untagged IPv4 and ARP,
/// so a tagged frame (which the port drops) teaches nothing.
#[test]
fn ipv4_or_arp_inside_a_vlan_or_qinq_tag_does_not_count() {
    let vlan = |id| etherparse::VlanId::try_new(id).unwrap();
    let single = PacketBuilder::ethernet2(GUEST, SERVER_MAC)
        .single_vlan(vlan(7))
        .ipv4([10, 77, 0, 10], SERVER.octets(), 64)
        .udp(1, 2);
    let mut frame = Vec::new();
    single.write(&mut frame, b"").unwrap();
    assert_eq!(classify(&frame, Direction::FromGuest, GUEST), None);
    let double = PacketBuilder::ethernet2(GUEST, SERVER_MAC)
        .double_vlan(vlan(7), vlan(8))
        .ipv4([10, 77, 0, 10], SERVER.octets(), 64)
        .udp(1, 2);
    let mut frame = Vec::new();
    double.write(&mut frame, b"").unwrap();
    assert_eq!(classify(&frame, Direction::FromGuest, GUEST), None);
    // ARP with an 802.1Q tag spliced in after the MAC addresses.
    let untagged = arp(
        ArpOperation::REQUEST,
        GUEST,
        Ipv4Addr::new(10, 77, 0, 10),
        SERVER,
    );
    assert!(classify(&untagged, Direction::FromGuest, GUEST).is_some());
    let mut tagged = untagged[..12].to_vec();
    tagged.extend_from_slice(&[0x81, 0x00, 0x00, 0x07]);
    tagged.extend_from_slice(&untagged[12..]);
    assert_eq!(classify(&tagged, Direction::FromGuest, GUEST), None);
    // A tagged server reply is not what the guest's untagged NIC takes.
    let mut reply = reply(MessageType::Ack, SERVER, Some(60));
    reply.splice(12..12, [0x81, 0x00, 0x00, 0x07]);
    assert_eq!(classify(&reply, Direction::ToGuest, GUEST), None);
}

#[test]
fn arp_sender_address_counts_but_not_probes_or_targets() {
    let me = Ipv4Addr::new(10, 77, 0, 10);
    for op in [ArpOperation::REQUEST, ArpOperation::REPLY] {
        let frame = arp(op, GUEST, me, SERVER);
        assert_eq!(
            classify(&frame, Direction::FromGuest, GUEST),
            Some(Observation::GuestAddress(me)),
            "{op:?}"
        );
    }
    let probe = arp(ArpOperation::REQUEST, GUEST, Ipv4Addr::UNSPECIFIED, me);
    assert_eq!(classify(&probe, Direction::FromGuest, GUEST), None);
    // The frame comes from the guest's MAC but names another sender.
    let mut forged = arp(ArpOperation::REPLY, OTHER, me, SERVER);
    forged[6..12].copy_from_slice(&GUEST);
    assert_eq!(classify(&forged, Direction::FromGuest, GUEST), None);
}

#[test]
fn an_ack_to_the_guest_names_address_server_and_lease() {
    let frame = reply(MessageType::Ack, SERVER, Some(120));
    assert_eq!(
        classify(&frame, Direction::ToGuest, GUEST),
        Some(Observation::ServerReply {
            kind: ReplyKind::Ack,
            addr: LEASED,
            server: SERVER,
            lease: LeaseTime::Secs(120),
        })
    );
}

#[test]
fn lease_time_all_ones_is_infinite_and_absent_is_zero() {
    let lease_of = |lease| match classify(
        &reply(MessageType::Ack, SERVER, lease),
        Direction::ToGuest,
        GUEST,
    ) {
        Some(Observation::ServerReply { lease, .. }) => lease,
        other => panic!("{other:?}"),
    };
    assert_eq!(lease_of(Some(u32::MAX)), LeaseTime::Infinite);
    assert_eq!(lease_of(None), LeaseTime::Secs(0));
}

#[test]
fn offers_count_as_offers_and_naks_not_at_all() {
    let offer = classify(
        &reply(MessageType::Offer, SERVER, Some(60)),
        Direction::ToGuest,
        GUEST,
    );
    assert!(matches!(
        offer,
        Some(Observation::ServerReply {
            kind: ReplyKind::Offer,
            ..
        })
    ));
    let nak = reply(MessageType::Nak, SERVER, None);
    assert_eq!(classify(&nak, Direction::ToGuest, GUEST), None);
}

#[test]
fn a_reply_for_another_mac_or_seen_from_the_guest_does_not_count() {
    let payload = dhcp_message(MessageType::Ack, OTHER, LEASED, Some(60));
    let frame = udp(
        (SERVER_MAC, [0xff; 6]),
        (SERVER, LEASED),
        (67, 68),
        &payload,
    );
    assert_eq!(classify(&frame, Direction::ToGuest, GUEST), None);
    // A forged ACK carrying the guest's own MAC as source, seen either way.
    let payload = dhcp_message(MessageType::Ack, GUEST, LEASED, Some(60));
    let forged = udp((GUEST, [0xff; 6]), (SERVER, LEASED), (67, 68), &payload);
    assert_eq!(classify(&forged, Direction::ToGuest, GUEST), None);
    assert_ne!(
        classify(&forged, Direction::FromGuest, GUEST),
        Some(Observation::GuestAddress(LEASED))
    );
}

#[test]
fn a_broadcast_reply_counts() {
    let payload = dhcp_message(MessageType::Ack, GUEST, LEASED, Some(60));
    let frame = udp(
        (SERVER_MAC, [0xff; 6]),
        (SERVER, Ipv4Addr::BROADCAST),
        (67, 68),
        &payload,
    );
    assert!(classify(&frame, Direction::ToGuest, GUEST).is_some());
}

#[test]
fn wrong_ports_or_garbage_payload_do_not_count() {
    let payload = dhcp_message(MessageType::Ack, GUEST, LEASED, Some(60));
    let frame = udp((SERVER_MAC, GUEST), (SERVER, LEASED), (67, 69), &payload);
    assert_eq!(classify(&frame, Direction::ToGuest, GUEST), None);
    let garbage = udp((SERVER_MAC, GUEST), (SERVER, LEASED), (67, 68), b"\x02junk");
    assert_eq!(classify(&garbage, Direction::ToGuest, GUEST), None);
    assert_eq!(classify(b"short", Direction::ToGuest, GUEST), None);
}

#[test]
fn release_and_decline_from_the_guest_give_the_address_back() {
    let me = LEASED;
    let unspecified = Ipv4Addr::UNSPECIFIED;
    let mut release = Message::new(me, unspecified, unspecified, unspecified, &GUEST);
    release.set_opcode(Opcode::BootRequest);
    release
        .opts_mut()
        .insert(DhcpOption::MessageType(MessageType::Release));
    let frame = udp(
        (GUEST, SERVER_MAC),
        (me, SERVER),
        (68, 67),
        &release.to_vec().unwrap(),
    );
    assert_eq!(
        classify(&frame, Direction::FromGuest, GUEST),
        Some(Observation::Released(me))
    );

    let mut decline = Message::new(unspecified, unspecified, unspecified, unspecified, &GUEST);
    decline.set_opcode(Opcode::BootRequest);
    let opts = decline.opts_mut();
    opts.insert(DhcpOption::MessageType(MessageType::Decline));
    opts.insert(DhcpOption::RequestedIpAddress(me));
    let frame = udp(
        (GUEST, [0xff; 6]),
        (unspecified, Ipv4Addr::BROADCAST),
        (68, 67),
        &decline.to_vec().unwrap(),
    );
    assert_eq!(
        classify(&frame, Direction::FromGuest, GUEST),
        Some(Observation::Released(me))
    );
}

#[test]
fn a_discover_from_0_0_0_0_teaches_nothing() {
    let payload = dhcp_message(MessageType::Discover, GUEST, Ipv4Addr::UNSPECIFIED, None);
    let frame = udp(
        (GUEST, [0xff; 6]),
        (Ipv4Addr::UNSPECIFIED, Ipv4Addr::BROADCAST),
        (68, 67),
        &payload,
    );
    assert_eq!(classify(&frame, Direction::FromGuest, GUEST), None);
}

/// An ACK to the guest whose options end with `extra` (raw option bytes,
/// before the End option).
fn ack_with_options(extra: &[u8]) -> Vec<u8> {
    let mut payload = dhcp_message(MessageType::Ack, GUEST, LEASED, Some(60));
    assert_eq!(
        payload.pop(),
        Some(255),
        "dhcproto ends its options with End"
    );
    payload.extend_from_slice(extra);
    payload.push(255);
    udp((SERVER_MAC, GUEST), (SERVER, LEASED), (67, 68), &payload)
}

/// Issue 18: options shorter than their fixed or minimum length failed
/// `debug_assert!`s (or overflowed `len - 1`, `len - 3`) inside dhcproto
/// 0.14, so a guest's frame panicked debug and test builds. Each frame
/// is classified without panicking, and a malformed message teaches
/// nothing.
#[test]
fn too_short_options_from_a_guest_never_panic_and_teach_nothing() {
    let frames: [(&str, &[u8]); 8] = [
        ("client FQDN (81) of length 0", &[81, 0]),
        ("rapid commit (80) of length 1", &[80, 1, 0]),
        ("client network interface (94) of length 0", &[94, 0]),
        ("BLQ status code (151) of length 0", &[151, 0]),
        ("BLQ base time (152) of length 0", &[152, 0]),
        ("BLQ start time of state (153) of length 1", &[153, 1, 9]),
        ("BLQ query start time (154) of length 2", &[154, 2, 9, 9]),
        ("BLQ query end time (155) of length 3", &[155, 3, 9, 9, 9]),
    ];
    for (what, option) in frames {
        let frame = ack_with_options(option);
        assert_eq!(classify(&frame, Direction::ToGuest, GUEST), None, "{what}");
        assert_eq!(
            classify(&frame, Direction::FromGuest, GUEST),
            None,
            "{what}"
        );
    }
}

#[test]
fn options_running_past_the_datagram_or_of_the_wrong_length_are_refused() {
    // The message type (53) is one byte and the lease time (51) four.
    for option in [&[53u8, 2, 5, 5][..], &[51, 3, 0, 0, 60], &[42, 9, 1, 2]] {
        let frame = ack_with_options(option);
        assert_eq!(
            classify(&frame, Direction::ToGuest, GUEST),
            None,
            "{option:?}"
        );
    }
    // A well-formed unknown option is skipped: the ACK still counts.
    let frame = ack_with_options(&[224, 3, 1, 2, 3]);
    assert!(classify(&frame, Direction::ToGuest, GUEST).is_some());
}
