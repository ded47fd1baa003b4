//! Traffic checks between guests: what still passes, what is counted.

use std::time::Duration;

use crate::lab::Guest;

/// A guest address (in the lab's subnet) that no filter allows.
pub const SPOOFED_IP: &str = "10.77.0.99";

/// Checks that `a`'s old rules, which drop tcp/25 and a spoofed source
/// address, still filter its traffic to `b`, and that `open` (which an
/// update that did not happen would have closed) still connects.
pub fn assert_old_rules_filter(a: &Guest, b: &Guest, open: u16) {
    let _l25 = b.listen(25);
    let _lopen = b.listen(open);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!a.connects(&b.ip, 25), "the old rule still drops tcp/25");
    assert!(a.connects(&b.ip, open), "the new rules never took effect");
    a.set_ip(SPOOFED_IP);
    assert!(!a.pings(&b.ip), "the old rules still stop a spoofed IP");
    a.set_ip(&a.ip);
    assert!(a.pings(&b.ip), "and still let A's own address through");
}

/// Packets that reached `guest` from `source` (IPv4), counted by a rule
/// in the guest's own namespace (installed by `count_arrivals`).
pub fn arrivals(guest: &Guest, source: &str) -> u64 {
    let listing = guest
        .ns
        .ok(&["iptables", "-w", "-n", "-v", "-x", "-L", "INPUT"]);
    listing
        .lines()
        .filter(|l| l.split_whitespace().nth(7) == Some(source))
        .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Starts counting packets from `source` arriving at `guest`.
pub fn count_arrivals(guest: &Guest, source: &str) {
    guest.ns.ok(&[
        "iptables", "-w", "-I", "INPUT", "-s", source, "-j", "ACCEPT",
    ]);
}
