//! Changing rules while packets flow: updates and redefinitions pass
//! nothing both versions forbid and drop nothing both allow; a refused
//! update leaves the old rules filtering; re-applying touches nothing;
//! ports come and go without disturbing the others.

use std::time::Duration;

use nwfilter_compile::ir::Program;

use crate::backend::{ports, Backend, Firewall};
use crate::filters::{clean_traffic, no_26_27, no_spamming};
use crate::support::{
    arrivals, assert_old_rules_filter, count_arrivals, lines_naming, program, Guest, Lab,
    SPOOFED_IP,
};

pub fn redefining_under_traffic_passes_nothing_both_definitions_forbid<B: Backend>() {
    let lab = Lab::ready(2);
    let a = &lab.guests[0];
    // The old definition allows A's address; the new one a list of two
    // (the bridge rules change).
    let old = clean_traffic(a);
    let new = program(
        &[],
        a,
        "clean-traffic",
        &[("IP", &a.ip), ("IP", "10.77.0.50")],
    );
    alternate_under_traffic::<B>(&lab, &old, &new, 10);
}

pub fn update_under_traffic_never_passes_what_both_rule_sets_forbid<B: Backend>() {
    let lab = Lab::ready(2);
    let a = &lab.guests[0];
    // The IPv4 rules change; the bridge rules stay.
    let old = no_spamming(a);
    let new = no_26_27(a, &a.ip);
    alternate_under_traffic::<B>(&lab, &old, &new, 20);
}

/// Switches guest 0 between `old` and `new` `rounds` times while it pings
/// guest 1 from its own address (allowed by both: no reply may be lost)
/// and from `SPOOFED_IP` (forbidden by both: no packet may arrive).
fn alternate_under_traffic<B: Backend>(lab: &Lab, old: &Program, new: &Program, rounds: usize) {
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    assert_ne!(B::render(old), B::render(new));
    add_spoofed_source(a, b);
    let fw = Firewall::<B>::new(lab);
    fw.apply(&[old]);
    let baseline = arrivals(b, SPOOFED_IP);

    let ping = ["ping", "-c", "400", "-i", "0.01", "-W", "1", "-q"];
    let allowed = a.ns.spawn(&[&ping[..], &[b.ip.as_str()]].concat());
    let forbidden =
        a.ns.spawn(&[&ping[..], &["-I", SPOOFED_IP, b.ip.as_str()]].concat());
    for round in 0..rounds {
        fw.apply(&[if round % 2 == 0 { new } else { old }]);
    }
    let summary = String::from_utf8_lossy(&allowed.wait().stdout).into_owned();
    let _ = forbidden.wait();
    assert!(
        summary.contains(" 0% packet loss"),
        "allowed pings all answered during {rounds} updates: {summary}"
    );
    assert_eq!(
        arrivals(b, SPOOFED_IP),
        baseline,
        "no packet from a forbidden source passed during {rounds} updates"
    );
}

/// Gives `a` a second address, `SPOOFED_IP` (with a static neighbour
/// entry for `b`, so its packets leave without ARP), and counts what
/// arrives at `b` from it; checks that, unfiltered, it does arrive.
fn add_spoofed_source(a: &Guest, b: &Guest) {
    a.ns.ok(&[
        "ip",
        "addr",
        "add",
        &format!("{SPOOFED_IP}/24"),
        "dev",
        "eth0",
    ]);
    a.ns.ok(&[
        "ip",
        "neigh",
        "replace",
        &b.ip,
        "lladdr",
        &b.mac,
        "dev",
        "eth0",
        "nud",
        "permanent",
    ]);
    count_arrivals(b, SPOOFED_IP);
    a.ns.ok(&[
        "ping", "-c", "3", "-i", "0.1", "-W", "1", "-q", "-I", SPOOFED_IP, &b.ip,
    ]);
    assert!(
        arrivals(b, SPOOFED_IP) >= 3,
        "unfiltered, the probe reaches B"
    );
}

pub fn an_update_the_kernel_refuses_leaves_the_old_rules_filtering<B: Backend>() {
    let lab = Lab::ready(2);
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let fw = Firewall::<B>::new(&lab);
    fw.apply(&[&no_spamming(a)]);
    let before = lab.snapshot();

    // The update would allow the spoofed address, tcp/25, not tcp/26.
    let error = fw.refused_update(&no_26_27(a, SPOOFED_IP));
    assert!(
        error.contains("the previous rules are still in place"),
        "{error}"
    );
    assert_eq!(lab.snapshot(), before, "nothing of the update remains");

    assert_old_rules_filter(a, b, 26);
}

pub fn reapplying_without_a_record_asks_the_kernel_and_touches_nothing<B: Backend>() {
    let lab = Lab::with_admin_rules(2);
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let before = lab.snapshot();
    let fw = Firewall::<B>::new(&lab);
    fw.apply(&[&no_spamming(a)]);
    let applied = lab.snapshot();

    // As after a daemon restart: same rules, no record of them.
    let calls = fw.calls().len();
    let outcome = fw.apply_unrecorded(&no_spamming(a));
    assert_eq!(outcome.unchanged, ports(&[a]));
    assert_eq!(lab.snapshot(), applied);
    for call in &fw.calls()[calls..] {
        assert!(
            !B::touches_live_rules(call),
            "nothing live may be switched, unhooked or renamed: {call:#?}"
        );
    }

    // A different ruleset without a record is switched in.
    let outcome = fw.apply_unrecorded(&no_26_27(a, &a.ip));
    assert_eq!(outcome.changed, ports(&[a]));
    let _l25 = b.listen(25);
    let _l26 = b.listen(26);
    std::thread::sleep(Duration::from_millis(300));
    assert!(a.connects(&b.ip, 25), "the new rules replaced the old");
    assert!(!a.connects(&b.ip, 26));
    let switched = lab.snapshot();
    fw.remove(&[a]);
    assert_eq!(lab.snapshot(), before);
    fw.apply(&[&no_26_27(a, &a.ip)]);
    assert_eq!(
        lab.snapshot(),
        switched,
        "switching left what applying afresh leaves: nothing temporary"
    );
}

pub fn adding_and_removing_ports_never_interrupts_the_others<B: Backend>() {
    let lab = Lab::with_admin_rules(4);
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let before = lab.snapshot();
    let fw = Firewall::<B>::new(&lab);
    // A's filter has IPv4 rules as well as bridge ones; B's only bridge.
    fw.apply(&[&no_spamming(a)]);
    fw.apply(&[&clean_traffic(b)]);
    let others: Vec<&Guest> = lab.guests[2..].iter().collect();
    let their_rules: Vec<Program> = others.iter().map(|g| no_spamming(g)).collect();

    let pings =
        a.ns.spawn(&["ping", "-c", "400", "-i", "0.01", "-W", "1", "-q", &b.ip]);
    for round in 0..8 {
        for rules in &their_rules {
            fw.apply(&[rules]);
        }
        if round == 0 {
            let listing = lab.ruleset();
            for guest in &others {
                let lines = lines_naming(&listing, &guest.port);
                assert!(!lines.is_empty(), "{} has rules:\n{listing}", guest.port);
            }
        }
        let outcome = fw.remove(&others);
        assert_eq!(outcome.changed, ports(&others));
    }
    let summary = String::from_utf8_lossy(&pings.wait().stdout).into_owned();
    assert!(
        summary.contains(" 0% packet loss"),
        "A's pings to B were never interrupted: {summary}"
    );
    let listing = lab.ruleset();
    for guest in &others {
        let left = lines_naming(&listing, &guest.port);
        assert!(
            left.is_empty(),
            "{} left rules behind: {left:#?}",
            guest.port
        );
    }

    // A and B are still filtered afterwards.
    let _l25 = b.listen(25);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!a.connects(&b.ip, 25), "A's tcp/25 is still blocked");
    b.set_ip(SPOOFED_IP);
    assert!(!b.pings(&a.ip), "B's clean-traffic still applies");
    b.set_ip(&b.ip);
    fw.remove(&[a, b]);
    assert_eq!(lab.snapshot(), before);
}
