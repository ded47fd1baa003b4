//! IP learning probed by a hostile guest (issue 23, items 1, 9, 10, 11),
//! in network namespaces with real packets: a real dnsmasq that is not
//! the trusted server, hand-built tagged frames, forged ACKs from another
//! guest, a guest claiming its neighbour's address.

mod support;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nwfilter_learn::{AddressBook, Config, LearnEvent, DEFAULT_MAX_ADDRESSES};
use nwfilter_model::IfName;
use support::{
    arp_request, dhcp_ack, drain_events, next_event, start_learning, tagged, udhcpc_script,
    udp_frame, Backend, Lab, LearnLab, HOST_IP,
};

const B_IP: &str = "10.77.0.11";

/// Item 1, `any` mode: with `DHCPSERVER` set, a DHCP server that is not
/// trusted (dnsmasq at 10.77.0.1) must not hand the learning guest an
/// address, and nothing is learned from it.
fn untrusted_server_in_any_mode(backend: Backend) {
    if !support::can_run("untrusted_server_in_any_mode") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::with_guests(&[None, Some(B_IP)]);
    let a = &lab.guests[0];
    let _dnsmasq = lab.dnsmasq(dir.path(), "2m");
    let learner = lab.learner_with(&dir.path().join("state"), None, backend);
    let params = [("CTRL_IP_LEARNING", "any"), ("DHCPSERVER", "10.77.0.254")];
    let (_watch, events) = start_learning(&learner, a, &params);

    assert!(
        !a.dhcp(&udhcpc_script(dir.path())),
        "the untrusted server's lease reached the guest"
    );
    assert_eq!(a.address(), None);
    assert_eq!(next_event(&events, Duration::from_secs(1)), None);
}

#[test]
fn any_mode_with_dhcpserver_keeps_other_servers_replies_from_the_guest_xtables() {
    untrusted_server_in_any_mode(Backend::Xtables);
}

#[test]
fn any_mode_with_dhcpserver_keeps_other_servers_replies_from_the_guest_nftables() {
    untrusted_server_in_any_mode(Backend::Nftables);
}

/// Item 9: tagged IPv4 and ARP frames never leave the port under the
/// learning rules, so they teach nothing; the guest's first untagged
/// frame does.
#[test]
fn tagged_frames_the_port_drops_teach_nothing() {
    if !support::can_send_frames("tagged_frames_the_port_drops_teach_nothing") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::with_guests(&[None]);
    let a = &lab.guests[0];
    let learner = lab.learner(dir.path(), None);
    let (_watch, events) = start_learning(&learner, a, &[]);

    let mac = a.mac_bytes();
    let host: Ipv4Addr = HOST_IP.parse().unwrap();
    let spoofed = Ipv4Addr::new(10, 77, 0, 66);
    let ip = udp_frame((mac, [0xff; 6]), (spoofed, host), (1000, 2000), b"x");
    let arp = arp_request(mac, spoofed, host);
    let mut frames = Vec::new();
    for frame in [&ip, &arp] {
        frames.push(tagged(frame, 0x8100, 5));
        frames.push(tagged(&tagged(frame, 0x8100, 7), 0x8100, 5));
        frames.push(tagged(&tagged(frame, 0x8100, 7), 0x88a8, 5));
    }
    a.send_frames(&frames, Duration::from_millis(20));
    assert_eq!(
        next_event(&events, Duration::from_secs(1)),
        None,
        "a tagged frame taught an address"
    );

    let own = Ipv4Addr::new(10, 77, 0, 10);
    a.send_frames(&[arp_request(mac, own, host)], Duration::ZERO);
    assert_eq!(
        next_event(&events, Duration::from_secs(3)),
        Some(LearnEvent::Learned(vec![own])),
        "an untagged ARP frame is learned"
    );
}

/// Item 10: with `DHCPSERVER` unset, another guest forges ACKs for a's
/// MAC; a holds at most the cap's worth of addresses.
#[test]
fn forged_acks_add_at_most_the_cap_of_addresses() {
    if !support::can_send_frames("forged_acks_add_at_most_the_cap_of_addresses") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::with_guests(&[None, Some(B_IP)]);
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let learner = lab.learner(&dir.path().join("state"), None);
    let (_watch, events) = start_learning(&learner, a, &[("CTRL_IP_LEARNING", "dhcp")]);

    let forger = (b.mac_bytes(), B_IP.parse().unwrap());
    let forged: Vec<Vec<u8>> = (0..40)
        .map(|i| dhcp_ack(forger, a.mac_bytes(), Ipv4Addr::new(10, 77, 1, i), 3600))
        .collect();
    b.send_frames(&forged, Duration::from_millis(15));

    let learned: Vec<usize> = drain_events(&events, Duration::from_secs(2))
        .into_iter()
        .filter_map(|e| match e {
            LearnEvent::Learned(addrs) => Some(addrs.len()),
            _ => None,
        })
        .collect();
    assert_eq!(learned.last(), Some(&DEFAULT_MAX_ADDRESSES), "{learned:?}");
    assert!(learned.iter().all(|&n| n <= DEFAULT_MAX_ADDRESSES));
    let key = nwfilter_learn::LeaseKey::new("test-vm", a.mac());
    assert_eq!(learner.leases(&key).len(), DEFAULT_MAX_ADDRESSES);
}

/// The addresses of the lab's ports, as the daemon's book would have them.
#[derive(Default)]
struct Book(Mutex<HashMap<String, Vec<Ipv4Addr>>>);

impl AddressBook for Book {
    fn taken_by_another(&self, port: &IfName, addr: Ipv4Addr) -> bool {
        let ports = self.0.lock().unwrap();
        ports
            .iter()
            .any(|(p, addrs)| p != port.as_str() && addrs.contains(&addr))
    }

    fn taken6_by_another(&self, _port: &IfName, _addr: std::net::Ipv6Addr) -> bool {
        false
    }
}

/// Item 11: in `any` mode, a guest whose first packets claim the address
/// of another port on the bridge is not locked to it; it is learned from
/// its own address.
#[test]
fn an_address_bound_to_another_port_is_not_learned() {
    if !support::can_run("an_address_bound_to_another_port_is_not_learned") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let a_ip = "10.77.0.10";
    let lab = Lab::with_guests(&[Some(a_ip), Some(a_ip)]);
    let b = &lab.guests[1];
    let book = Arc::new(Book::default());
    // a is bound with its fixed IP.
    let a_addr: Ipv4Addr = a_ip.parse().unwrap();
    book.0.lock().unwrap().insert("vnet0".into(), vec![a_addr]);
    let config = Config {
        workers: 1,
        give_up_after: None,
        ..Config::default()
    };
    let learner = lab.learner_configured(dir.path(), config, Backend::Xtables, book);
    let (_watch, events) = start_learning(&learner, b, &[]);

    let _ = b.pings(HOST_IP);
    assert_eq!(
        next_event(&events, Duration::from_secs(1)),
        None,
        "b was locked to a's address"
    );
    b.set_ip("10.77.0.12");
    let _ = b.pings(HOST_IP);
    assert_eq!(
        next_event(&events, Duration::from_secs(3)),
        Some(LearnEvent::Learned(vec!["10.77.0.12".parse().unwrap()]))
    );
}
