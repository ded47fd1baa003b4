//! The real filters — compiled, rendered and applied — against real
//! packets in network namespaces (issue 4, item 7).

mod support;

use std::time::Duration;

use backend_xtables::{Applier, Change, PortRuleset, ProcessRunner, Toolset};
use support::{add_admin_rules, arrivals, compile, count_arrivals, without_counters, Guest, Lab};

fn runner(lab: &Lab) -> ProcessRunner {
    ProcessRunner::new(Toolset::default()).in_netns(lab.host.name.clone())
}

fn apply(runner: &ProcessRunner, rules: &PortRuleset, recorded: Option<&PortRuleset>) {
    let change = Change {
        ruleset: rules,
        recorded,
    };
    Applier::new(runner).apply(&[change]).unwrap();
}

fn clean_traffic(guest: &Guest) -> PortRuleset {
    compile(&[], guest, "clean-traffic", &[("IP", &guest.ip)])
}

fn listen(guest: &Guest, port: u16) -> support::Background {
    guest.ns.spawn(&["nc", "-l", "-k", &port.to_string()])
}

/// A sends ARP replies claiming B's address (`arping -A -S B`).
fn forge_arp(a: &Guest, b: &Guest) {
    let _ = a.ns.run(&[
        "arping", "-q", "-A", "-c", "3", "-w", "2", "-i", "eth0", "-S", &b.ip, &b.ip,
    ]);
}

#[test]
fn clean_traffic_stops_spoofing_and_leaves_others_alone() {
    if !support::can_run("clean_traffic_stops_spoofing_and_leaves_others_alone") {
        return;
    }
    let lab = Lab::new(3);
    lab.wait_ready();
    add_admin_rules(&lab.host);
    let (a, b, c) = (&lab.guests[0], &lab.guests[1], &lab.guests[2]);
    // Without a filter, A's IPv6 works and its forged ARP poisons C.
    assert!(a.pings6(&b.ip6), "IPv6 works before filtering");
    assert!(c.pings(&b.ip));
    std::thread::sleep(Duration::from_millis(1100)); // neighbour locktime
    forge_arp(a, b);
    assert_eq!(
        c.neighbour_mac(&b.ip),
        a.mac,
        "unfiltered, the forgery poisons C"
    );
    c.ns.ok(&["ip", "neigh", "flush", "dev", "eth0"]);
    let before = without_counters(&lab.ruleset());

    let runner = runner(&lab);
    let rules = clean_traffic(a);
    apply(&runner, &rules, None);

    assert!(a.pings(&b.ip), "A reaches B");
    assert!(c.pings(&b.ip), "C (no binding) reaches B");
    assert!(c.pings6(&b.ip6), "C's IPv6 is not ours to filter");
    assert_eq!(c.neighbour_mac(&b.ip), b.mac);
    std::thread::sleep(Duration::from_millis(1100));
    forge_arp(a, b);
    assert_eq!(
        c.neighbour_mac(&b.ip),
        b.mac,
        "A's forged ARP reply must not change C's entry for B"
    );
    assert!(!a.pings6(&b.ip6), "A's IPv6 is dropped");
    a.set_ip("10.77.0.99");
    assert!(!a.pings(&b.ip), "A with a changed IP cannot reach B");
    a.set_ip(&a.ip);
    a.set_mac("52:54:00:00:00:99");
    assert!(!a.pings(&b.ip), "A with a changed MAC cannot reach B");
    a.set_mac(&a.mac);
    assert!(a.pings(&b.ip), "A is back");

    Applier::new(&runner)
        .remove(std::slice::from_ref(&rules.port))
        .unwrap();
    assert_eq!(
        without_counters(&lab.ruleset()),
        before,
        "teardown leaves the namespace's ruleset as before"
    );
}

const NO_SPAMMING: &str = "<filter name='no-spamming' chain='root'>
  <filterref filter='clean-traffic'/>
  <rule action='drop' direction='out' priority='500'>
    <tcp dstportstart='25'/>
  </rule>
</filter>";

#[test]
fn a_port_25_blocker_referencing_clean_traffic() {
    if !support::can_run("a_port_25_blocker_referencing_clean_traffic") {
        return;
    }
    let lab = Lab::new(2);
    lab.wait_ready();
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let _l25 = listen(b, 25);
    let _l80 = listen(b, 80);
    std::thread::sleep(Duration::from_millis(300));
    assert!(a.connects(&b.ip, 25), "tcp/25 works before filtering");
    let rules = compile(&[NO_SPAMMING], a, "no-spamming", &[("IP", &a.ip)]);
    apply(&runner(&lab), &rules, None);
    assert!(!a.connects(&b.ip, 25), "tcp/25 is blocked");
    assert!(a.connects(&b.ip, 80), "tcp/80 still works");
    a.set_ip("10.77.0.99");
    assert!(!a.connects(&b.ip, 80), "and clean-traffic still applies");
}

/// libvirt's example-1 shape: in, only ssh and ping; out, anything.
const STATEFUL: &str = "<filter name='stateful-example' chain='root'>
  <rule action='accept' direction='in' priority='100'><tcp dstportstart='22'/></rule>
  <rule action='accept' direction='in' priority='200'><icmp/></rule>
  <rule action='accept' direction='out' priority='300'><all/></rule>
  <rule action='drop' direction='inout' priority='1000'><all/></rule>
</filter>";

#[test]
fn stateful_rules_allow_replies_but_not_new_inbound_connections() {
    if !support::can_run("stateful_rules_allow_replies_but_not_new_inbound_connections") {
        return;
    }
    let lab = Lab::new(2);
    lab.wait_ready();
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let rules = compile(&[STATEFUL], a, "stateful-example", &[]);
    apply(&runner(&lab), &rules, None);
    let _a22 = listen(a, 22);
    let _a80 = listen(a, 80);
    let _b80 = listen(b, 80);
    std::thread::sleep(Duration::from_millis(300));
    assert!(b.connects(&a.ip, 22), "B may open ssh to A");
    assert!(!b.connects(&a.ip, 80), "B may not open anything else to A");
    assert!(
        a.connects(&b.ip, 80),
        "A's own outgoing connections work (replies pass)"
    );
    assert!(b.pings(&a.ip), "ping to A is allowed");
}

const REJECTING: &str = "<filter name='reject-25' chain='root'>
  <rule action='reject' direction='out' priority='500'><tcp dstportstart='25'/></rule>
  <rule action='drop' direction='out' priority='500'><tcp dstportstart='26'/></rule>
</filter>";

#[test]
fn reject_sends_an_error_where_drop_times_out() {
    if !support::can_run("reject_sends_an_error_where_drop_times_out") {
        return;
    }
    let lab = Lab::new(2);
    lab.wait_ready();
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let rules = compile(&[REJECTING], a, "reject-25", &[]);
    apply(&runner(&lab), &rules, None);
    let _l25 = listen(b, 25);
    let _l26 = listen(b, 26);
    std::thread::sleep(Duration::from_millis(300));
    let attempt = |port: &str| {
        let out = a.ns.run(&["nc", "-v", "-z", "-w", "2", &b.ip, port]);
        assert!(!out.status.success(), "port {port} must not connect");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let rejected = attempt("25");
    assert!(
        rejected.contains("refused"),
        "reject: the sender sees an error: {rejected}"
    );
    let dropped = attempt("26");
    assert!(
        dropped.contains("timed out"),
        "drop: the sender waits: {dropped}"
    );
}

#[test]
fn redefining_under_traffic_passes_nothing_both_definitions_forbid() {
    if !support::can_run("redefining_under_traffic_passes_nothing_both_definitions_forbid") {
        return;
    }
    let lab = Lab::new(2);
    lab.wait_ready();
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    a.ns.ok(&["ip", "addr", "add", "10.77.0.99/24", "dev", "eth0"]);
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
    count_arrivals(b, "10.77.0.99");
    let probe = [
        "ping",
        "-c",
        "3",
        "-i",
        "0.1",
        "-W",
        "1",
        "-q",
        "-I",
        "10.77.0.99",
        &b.ip,
    ];
    a.ns.ok(&probe);
    assert!(
        arrivals(b, "10.77.0.99") >= 3,
        "unfiltered, the probe reaches B"
    );
    let runner = runner(&lab);
    // The old definition allows A's address; the new one a list of two.
    let old = clean_traffic(a);
    let new = compile(
        &[],
        a,
        "clean-traffic",
        &[("IP", &a.ip), ("IP", "10.77.0.50")],
    );
    assert_ne!(old, new);
    apply(&runner, &old, None);
    let baseline = arrivals(b, "10.77.0.99");

    let allowed =
        a.ns.spawn(&["ping", "-c", "300", "-i", "0.01", "-W", "1", "-q", &b.ip]);
    let forbidden = a.ns.spawn(&[
        "ping",
        "-c",
        "300",
        "-i",
        "0.01",
        "-W",
        "1",
        "-q",
        "-I",
        "10.77.0.99",
        &b.ip,
    ]);
    let mut current = &old;
    for _ in 0..10 {
        let next = if std::ptr::eq(current, &old) {
            &new
        } else {
            &old
        };
        apply(&runner, next, Some(current));
        current = next;
    }
    let summary = String::from_utf8_lossy(&allowed.wait().stdout).into_owned();
    drop(forbidden);
    assert!(
        summary.contains(" 0% packet loss"),
        "allowed pings all answered: {summary}"
    );
    assert_eq!(
        arrivals(b, "10.77.0.99"),
        baseline,
        "no packet from a forbidden source passed"
    );
}

const NO_SPAMMING_V6: &str = "<filter name='no-spamming-v6' chain='root'>
  <rule action='drop' direction='out' priority='500'><tcp-ipv6 dstportstart='25'/></rule>
</filter>";

#[test]
fn ipv6_rules_go_through_ip6tables() {
    if !support::can_run("ipv6_rules_go_through_ip6tables") {
        return;
    }
    let lab = Lab::new(2);
    lab.wait_ready();
    add_admin_rules(&lab.host);
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let before = without_counters(&lab.ruleset());
    let _l25 = b.ns.spawn(&["nc", "-6", "-l", "-k", "25"]);
    let _l80 = b.ns.spawn(&["nc", "-6", "-l", "-k", "80"]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        a.connects(&b.ip6, 25),
        "tcp/25 over IPv6 works before filtering"
    );
    let runner = runner(&lab);
    let rules = compile(&[NO_SPAMMING_V6], a, "no-spamming-v6", &[]);
    apply(&runner, &rules, None);
    let saved = lab.host.ok(&["ip6tables-save", "-t", "filter"]);
    assert!(
        saved.contains("-A libvirt-in -m physdev --physdev-in vnet0 -g FI-vnet0"),
        "{saved}"
    );
    assert!(!a.connects(&b.ip6, 25), "tcp/25 over IPv6 is dropped");
    assert!(a.connects(&b.ip6, 80), "tcp/80 over IPv6 works");
    assert!(a.connects(&b.ip, 25), "IPv4 is not touched by an IPv6 rule");
    Applier::new(&runner)
        .remove(std::slice::from_ref(&rules.port))
        .unwrap();
    assert_eq!(without_counters(&lab.ruleset()), before);
}
