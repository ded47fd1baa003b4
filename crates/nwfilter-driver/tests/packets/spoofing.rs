//! Who may send what: clean-traffic's anti-spoofing, a port blocker
//! built on it, IPv6 rules and traffic to the host; and that instantiating
//! and tearing down leaves the rest of the host's ruleset as it was.

use std::time::Duration;

use crate::backend::{ports, Backend, Firewall};
use crate::filters::{clean_traffic, no_spamming, NO_SPAMMING_V6, REJECTING};
use crate::support::{program, Lab, SPOOFED_IP};

/// A guest's MAC that no filter allows.
const SPOOFED_MAC: &str = "52:54:00:00:00:99";

pub fn clean_traffic_stops_spoofing_and_leaves_others_alone<B: Backend>() {
    let lab = Lab::with_admin_rules(3);
    let (a, b, c) = (&lab.guests[0], &lab.guests[1], &lab.guests[2]);
    // Without a filter, A's IPv6 works and its forged ARP poisons C.
    assert!(a.pings6(&b.ip6), "IPv6 works before filtering");
    assert!(c.pings(&b.ip));
    std::thread::sleep(Duration::from_millis(1100)); // neighbour locktime
    a.forge_arp_for(b);
    assert_eq!(
        c.neighbour_mac(&b.ip),
        a.mac,
        "unfiltered, the forgery poisons C"
    );
    c.ns.ok(&["ip", "neigh", "flush", "dev", "eth0"]);
    let before = lab.snapshot();

    let fw = Firewall::<B>::new(&lab);
    fw.apply(&[&clean_traffic(a)]);

    assert!(a.pings(&b.ip), "A reaches B");
    assert!(c.pings(&b.ip), "C (no binding) reaches B");
    assert!(c.pings6(&b.ip6), "C's IPv6 is not ours to filter");
    assert_eq!(c.neighbour_mac(&b.ip), b.mac);
    std::thread::sleep(Duration::from_millis(1100));
    a.forge_arp_for(b);
    assert_eq!(
        c.neighbour_mac(&b.ip),
        b.mac,
        "A's forged ARP reply must not change C's entry for B"
    );
    assert!(!a.pings6(&b.ip6), "A's IPv6 is dropped");
    a.set_ip(SPOOFED_IP);
    assert!(!a.pings(&b.ip), "A with a changed IP cannot reach B");
    a.set_ip(&a.ip);
    a.set_mac(SPOOFED_MAC);
    assert!(!a.pings(&b.ip), "A with a changed MAC cannot reach B");
    a.set_mac(&a.mac);
    assert!(a.pings(&b.ip), "A is back");

    fw.remove(&[a]);
    assert_eq!(
        lab.snapshot(),
        before,
        "teardown leaves the namespace's ruleset as before"
    );
    a.set_ip(SPOOFED_IP);
    assert!(a.pings(&b.ip), "no filtering left on A's port");
}

pub fn a_port_25_blocker_instantiated_reapplied_and_torn_down<B: Backend>() {
    let lab = Lab::with_admin_rules(3);
    let (a, b, c) = (&lab.guests[0], &lab.guests[1], &lab.guests[2]);
    let _l25 = b.listen(25);
    let _l80 = b.listen(80);
    std::thread::sleep(Duration::from_millis(300));
    assert!(a.connects(&b.ip, 25), "tcp/25 works before filtering");
    let before = lab.snapshot();

    let fw = Firewall::<B>::new(&lab);
    let rules = no_spamming(a);
    let outcome = fw.apply(&[&rules]);
    assert_eq!(outcome.changed, ports(&[a]));
    assert_eq!(fw.cost_since(0), B::FIRST_APPLY, "{:#?}", fw.calls());
    assert!(!a.connects(&b.ip, 25), "tcp/25 is blocked");
    assert!(a.connects(&b.ip, 80), "tcp/80 still works");
    assert!(c.connects(&b.ip, 25), "C's tcp/25 is not ours to filter");
    a.set_ip(SPOOFED_IP);
    assert!(!a.connects(&b.ip, 80), "and clean-traffic still applies");
    a.set_ip(&a.ip);

    // Re-applying the recorded ruleset reads and changes nothing.
    let applied = lab.snapshot();
    let calls = fw.calls().len();
    let outcome = fw.apply(&[&rules]);
    assert_eq!(outcome.unchanged, ports(&[a]));
    assert_eq!(fw.cost_since(calls), B::RECORDED_REAPPLY);
    assert_eq!(lab.snapshot(), applied);

    fw.remove(&[a]);
    assert_eq!(
        lab.snapshot(),
        before,
        "teardown leaves the ruleset as it was"
    );
    assert!(a.connects(&b.ip, 25), "no filtering left on A's port");
}

pub fn ipv6_rules_filter_ipv6_only<B: Backend>() {
    let lab = Lab::with_admin_rules(2);
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let before = lab.snapshot();
    let _l25 = b.listen6(25);
    let _l80 = b.listen6(80);
    let _l25v4 = b.listen(25);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        a.connects(&b.ip6, 25),
        "tcp/25 over IPv6 works before filtering"
    );
    let fw = Firewall::<B>::new(&lab);
    fw.apply(&[&program(&[NO_SPAMMING_V6], a, "no-spamming-v6", &[])]);
    assert!(!a.connects(&b.ip6, 25), "tcp/25 over IPv6 is dropped");
    assert!(a.connects(&b.ip6, 80), "tcp/80 over IPv6 works");
    assert!(a.connects(&b.ip, 25), "IPv4 is not touched by an IPv6 rule");
    fw.remove(&[a]);
    assert_eq!(lab.snapshot(), before);
}

pub fn host_bound_traffic_is_filtered<B: Backend>() {
    let lab = Lab::ready(2);
    let a = &lab.guests[0];
    let fw = Firewall::<B>::new(&lab);
    fw.apply(&[&program(&[REJECTING], a, "reject-25", &[])]);
    let _h25 = lab.host.spawn(&["nc", "-l", "-k", "25"]);
    let _h80 = lab.host.spawn(&["nc", "-l", "-k", "80"]);
    std::thread::sleep(Duration::from_millis(300));
    // Packets to the host's own address on the bridge: the host-from-VM
    // chain, not the forwarding one.
    assert!(
        !a.connects("10.77.0.1", 25),
        "A cannot open tcp/25 on the host"
    );
    assert!(a.connects("10.77.0.1", 80), "A can open tcp/80 on the host");
}
