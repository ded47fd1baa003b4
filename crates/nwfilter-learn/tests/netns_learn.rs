//! IP learning end to end in network namespaces (issue 7, item 6): real
//! guests, a real dnsmasq, a real DHCP client, the learner capturing on
//! the port, and the learned address wired into clean-traffic.

mod support;

use std::net::Ipv4Addr;
use std::time::Duration;

use nwfilter_learn::LearnEvent;
use support::{
    apply, clean_traffic, next_event, start_learning, udhcpc_script, Backend, Lab, LearnLab,
    HOST_IP,
};

const B_IP: &str = "10.77.0.11";

#[test]
fn dhcp_lease_is_learned_and_then_the_guest_is_held_to_it() {
    if !support::can_run("dhcp_lease_is_learned_and_then_the_guest_is_held_to_it") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::with_guests(&[None, Some(B_IP)]);
    let (a, _b) = (&lab.guests[0], &lab.guests[1]);
    let _dnsmasq = lab.dnsmasq(dir.path(), "2m");
    let learner = lab.learner(&dir.path().join("state"), None);
    let params = [("CTRL_IP_LEARNING", "dhcp"), ("DHCPSERVER", HOST_IP)];
    let (_watch, events) = start_learning(&learner, a, &params);

    assert!(a.dhcp(&udhcpc_script(dir.path())), "A gets a lease");
    let leased = a.address().expect("A configured its lease");
    let event = next_event(&events, Duration::from_secs(5));
    assert_eq!(event, Some(LearnEvent::Learned(vec![leased])));
    let key = nwfilter_learn::LeaseKey::new("test-vm", a.mac());
    let stored: Vec<Ipv4Addr> = learner.leases(&key).iter().map(|l| l.addr).collect();
    assert_eq!(stored, vec![leased], "the lease is persisted");

    // What the daemon does on Learned: bind IP, apply the full filter.
    apply(&lab, &clean_traffic(a, &[leased]));
    assert!(a.pings(B_IP), "A reaches B with its leased address");
    a.set_ip("10.77.0.99");
    assert!(!a.pings(B_IP), "A cannot use another address");
}

#[test]
fn dhcp_from_an_untrusted_server_teaches_nothing_and_the_guest_stays_blocked() {
    untrusted_server_teaches_nothing(Backend::Xtables);
}

#[test]
fn dhcp_from_an_untrusted_server_teaches_nothing_with_nftables_rules() {
    untrusted_server_teaches_nothing(Backend::Nftables);
}

fn untrusted_server_teaches_nothing(backend: Backend) {
    if !support::can_run("dhcp_from_an_untrusted_server_teaches_nothing") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::with_guests(&[None, Some(B_IP)]);
    let (a, _b) = (&lab.guests[0], &lab.guests[1]);
    let _dnsmasq = lab.dnsmasq(dir.path(), "2m");
    let learner = lab.learner_with(&dir.path().join("state"), None, backend);
    // The real server is 10.77.0.1; only 10.77.0.254 is trusted.
    let params = [("CTRL_IP_LEARNING", "dhcp"), ("DHCPSERVER", "10.77.0.254")];
    let (_watch, events) = start_learning(&learner, a, &params);

    assert!(!a.dhcp(&udhcpc_script(dir.path())), "no lease gets through");
    assert_eq!(a.address(), None);
    assert_eq!(next_event(&events, Duration::from_secs(2)), None);
    a.set_ip("10.77.0.55");
    assert!(!a.pings(B_IP), "the guest stays blocked");
}

#[test]
fn a_lease_that_is_not_renewed_is_dropped_and_a_renewed_one_kept() {
    if !support::can_run("a_lease_that_is_not_renewed_is_dropped_and_a_renewed_one_kept") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::with_guests(&[None, Some(B_IP), None]);
    let (a, c) = (&lab.guests[0], &lab.guests[2]);
    // dnsmasq's shortest lease is two minutes.
    let _dnsmasq = lab.dnsmasq(dir.path(), "2m");
    let learner = lab.learner(&dir.path().join("state"), None);
    let params = [("CTRL_IP_LEARNING", "dhcp")];
    let (_watch_a, events_a) = start_learning(&learner, a, &params);
    let (_watch_c, events_c) = start_learning(&learner, c, &params);
    let script = udhcpc_script(dir.path());

    // A: udhcpc -q exits after the lease, nobody renews it.
    assert!(a.dhcp(&script));
    let leased = a.address().unwrap();
    assert_eq!(
        next_event(&events_a, Duration::from_secs(5)),
        Some(LearnEvent::Learned(vec![leased]))
    );
    apply(&lab, &clean_traffic(a, &[leased]));
    assert!(a.pings(B_IP), "with the lease A reaches B");

    // C: udhcpc stays and renews at half the lease, through the full
    // filter the daemon applies once C is learned.
    let _client = c.dhcp_client(&script);
    let Some(LearnEvent::Learned(c_addrs)) = next_event(&events_c, Duration::from_secs(10)) else {
        panic!("C is learned");
    };
    apply(&lab, &clean_traffic(c, &c_addrs));
    let c_key = nwfilter_learn::LeaseKey::new("test-vm", c.mac());
    let first_end = learner.leases(&c_key)[0].expires.unwrap();

    let expired = next_event(&events_a, Duration::from_secs(150));
    assert_eq!(
        expired,
        Some(LearnEvent::Expired {
            remaining: Vec::new()
        })
    );
    assert!(!a.pings(B_IP), "without it A is back under DHCP-only rules");
    let a_key = nwfilter_learn::LeaseKey::new("test-vm", a.mac());
    assert!(learner.leases(&a_key).is_empty(), "and A's lease is gone");

    // C's first lease would have ended by now too (it started later, by
    // at most a few seconds).
    assert_eq!(next_event(&events_c, Duration::from_secs(6)), None);
    let renewed_end = learner.leases(&c_key)[0].expires.unwrap();
    assert!(
        renewed_end >= first_end + 30,
        "the renewal moved C's lease end from {first_end} to {renewed_end}"
    );
    assert!(c.pings(B_IP), "C keeps its address");
}

#[test]
fn a_static_guest_is_learned_from_its_first_packet() {
    if !support::can_run("a_static_guest_is_learned_from_its_first_packet") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::with_guests(&[Some("10.77.0.10"), Some(B_IP)]);
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let learner = lab.learner(dir.path(), None);
    let (watch, events) = start_learning(&learner, a, &[]);

    // Under the learning rules A's ARP and IPv4 pass; its first packet
    // (the ARP request for B) names its address.
    assert!(a.pings(B_IP));
    let learned = next_event(&events, Duration::from_secs(5));
    assert_eq!(
        learned,
        Some(LearnEvent::Learned(vec!["10.77.0.10".parse().unwrap()]))
    );
    assert!(watch.finished() || next_event(&events, Duration::from_millis(500)).is_none());

    apply(&lab, &clean_traffic(a, &["10.77.0.10".parse().unwrap()]));
    assert!(a.pings(B_IP), "A reaches B with its learned address");
    assert!(b.pings("10.77.0.10"), "and B reaches A");
    a.set_ip("10.77.0.98");
    assert!(!a.pings(B_IP), "A cannot switch to another address");
}

#[test]
fn learning_gives_up_and_leaves_the_port_blocked() {
    if !support::can_run("learning_gives_up_and_leaves_the_port_blocked") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A has no address, so it sends nothing that teaches one.
    let lab = Lab::with_guests(&[None, Some(B_IP)]);
    let (a, _b) = (&lab.guests[0], &lab.guests[1]);
    let learner = lab.learner(dir.path(), Some(Duration::from_secs(1)));
    let (watch, events) = start_learning(&learner, a, &[]);

    assert_eq!(
        next_event(&events, Duration::from_secs(5)),
        Some(LearnEvent::TimedOut)
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(watch.finished());
    a.set_ip("10.77.0.10");
    assert!(!a.pings(B_IP), "a port that timed out is blocked");
    let rules = lab
        .host
        .ok(&["ebtables", "-t", "nat", "-L", "libvirt-I-vnet0"]);
    assert!(rules.contains("-j DROP"), "{rules}");
}

#[test]
fn a_flooding_guest_costs_only_its_rate_and_others_still_learn() {
    if !support::can_run("a_flooding_guest_costs_only_its_rate_and_others_still_learn") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::with_guests(&[Some("10.77.0.10"), None]);
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let _dnsmasq = lab.dnsmasq(dir.path(), "2m");
    // One worker thread serves both ports.
    let learner = lab.learner(&dir.path().join("state"), None);
    let params = [("CTRL_IP_LEARNING", "dhcp"), ("DHCPSERVER", HOST_IP)];
    let (watch_a, _events_a) = start_learning(&learner, a, &params);
    let (_watch_b, events_b) = start_learning(&learner, b, &params);

    // A floods DHCP-port datagrams (which its learning rules let out) at
    // the host; its ARP is dropped while learning, so give it the
    // host's MAC by hand.
    let br0 = support::link_mac(&lab.host, "br0");
    a.ns.ok(&[
        "ip", "neigh", "replace", HOST_IP, "lladdr", &br0, "dev", "eth0",
    ]);
    let sent_before = support::rx_packets(&lab.host, &a.port);
    let started = std::time::Instant::now();
    let flood =
        a.ns.spawn_with_zero_stdin(&["nc", "-u", "-p", "68", HOST_IP, "67"]);

    assert!(
        b.dhcp(&udhcpc_script(dir.path())),
        "B gets a lease meanwhile"
    );
    let leased = b.address().unwrap();
    assert_eq!(
        next_event(&events_b, Duration::from_secs(5)),
        Some(LearnEvent::Learned(vec![leased])),
        "B is learned although A floods the same worker"
    );
    std::thread::sleep(Duration::from_secs(2));
    let read = watch_a.frames_read();
    let elapsed = started.elapsed().as_secs_f64();
    drop(flood);
    let sent = support::rx_packets(&lab.host, &a.port) - sent_before;
    // Burst 50, then 10 per second (the defaults), plus one tick of slack.
    let allowed = 50.0 + 10.0 * (elapsed + 0.5);
    assert!(
        (read as f64) <= allowed,
        "read {read} frames of A's flood in {elapsed:.1}s (allowed {allowed:.0})"
    );
    assert!(
        sent > 20 * read.max(1),
        "A really flooded: {sent} frames sent, {read} read"
    );
}

#[test]
fn a_port_that_disappears_ends_learning_with_a_failure() {
    if !support::can_run("a_port_that_disappears_ends_learning_with_a_failure") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::with_guests(&[None]);
    let a = &lab.guests[0];
    let learner = lab.learner(dir.path(), None);
    let (watch, events) = start_learning(&learner, a, &[]);

    lab.host.ok(&["ip", "link", "del", &a.port]);
    match next_event(&events, Duration::from_secs(5)) {
        Some(LearnEvent::Failed(reason)) => assert!(reason.contains("vnet0"), "{reason}"),
        other => panic!("expected a failure, got {other:?}"),
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(watch.finished());
}

#[test]
fn in_any_mode_a_dhcp_guest_is_learned_from_the_servers_reply() {
    if !support::can_run("in_any_mode_a_dhcp_guest_is_learned_from_the_servers_reply") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::with_guests(&[None, Some(B_IP)]);
    let a = &lab.guests[0];
    let _dnsmasq = lab.dnsmasq(dir.path(), "2m");
    let learner = lab.learner(&dir.path().join("state"), None);
    let (watch, events) = start_learning(&learner, a, &[]);

    // Its DHCPDISCOVER comes from 0.0.0.0 and teaches nothing; the
    // server's offer of the address it then acknowledges does.
    assert!(a.dhcp(&udhcpc_script(dir.path())));
    let leased = a.address().unwrap();
    assert_eq!(
        next_event(&events, Duration::from_secs(5)),
        Some(LearnEvent::Learned(vec![leased]))
    );
    std::thread::sleep(Duration::from_millis(300));
    assert!(watch.finished(), "any mode learns once");
}
