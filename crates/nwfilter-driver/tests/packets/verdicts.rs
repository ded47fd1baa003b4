//! What a rule's verdict does to a connection: conntrack state lets
//! replies back in, reject answers where drop stays silent.

use std::time::Duration;

use crate::backend::{Backend, Firewall};
use crate::filters::{REJECTING, STATEFUL};
use crate::support::{program, Guest, Lab};

pub fn stateful_rules_allow_replies_but_not_new_inbound_connections<B: Backend>() {
    let lab = Lab::ready(2);
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let fw = Firewall::<B>::new(&lab);
    fw.apply(&[&program(&[STATEFUL], a, "stateful-example", &[])]);
    let _a22 = a.listen(22);
    let _a80 = a.listen(80);
    let _b80 = b.listen(80);
    std::thread::sleep(Duration::from_millis(300));
    assert!(b.connects(&a.ip, 22), "B may open ssh to A");
    assert!(!b.connects(&a.ip, 80), "B may not open anything else to A");
    assert!(
        a.connects(&b.ip, 80),
        "A's own outgoing connections work (replies pass)"
    );
    assert!(b.pings(&a.ip), "ping to A is allowed");
}

pub fn reject_sends_an_error_where_drop_times_out<B: Backend>() {
    let lab = Lab::ready(2);
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let fw = Firewall::<B>::new(&lab);
    fw.apply(&[&program(&[REJECTING], a, "reject-25", &[])]);
    let _l25 = b.listen(25);
    let _l26 = b.listen(26);
    std::thread::sleep(Duration::from_millis(300));
    let attempt = |port: &str| {
        let out = a.ns.run(&["nc", "-v", "-z", "-w", "2", &b.ip, port]);
        assert!(!out.status.success(), "port {port} must not connect");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let rejected = attempt("25");
    assert!(
        rejected.contains("refused"),
        "reject: the sender sees a reset: {rejected}"
    );
    let dropped = attempt("26");
    assert!(
        dropped.contains("timed out"),
        "drop: the sender waits: {dropped}"
    );

    // UDP: B listens (so B itself would not answer with an error); A
    // receives our ICMP port-unreachable, counted in its own namespace.
    let _u53 = b.ns.spawn(&["nc", "-u", "-l", "53"]);
    std::thread::sleep(Duration::from_millis(200));
    a.ns.ok(&[
        "iptables",
        "-w",
        "-I",
        "INPUT",
        "-p",
        "icmp",
        "--icmp-type",
        "port-unreachable",
    ]);
    let _ = a.ns.run_stdin(&["nc", "-u", "-w", "1", &b.ip, "53"], "x\n");
    let (count, listing) = port_unreachables(a);
    assert!(
        count >= 1,
        "reject of UDP sends ICMP port unreachable: {listing}"
    );
}

/// ICMP port-unreachable messages `guest` received (counted by the rule
/// the scenario put in its INPUT chain), and the listing they were read
/// from.
fn port_unreachables(guest: &Guest) -> (u64, String) {
    let listing = guest
        .ns
        .ok(&["iptables", "-w", "-n", "-v", "-x", "-L", "INPUT"]);
    let count = listing
        .lines()
        .filter(|l| l.contains("type 3 code 3"))
        .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    (count, listing)
}
