//! The nftables backend against real packets in network namespaces: the
//! xtables backend's scenarios (same lab, same guests, same filters), plus
//! ports coming and going under traffic and refused transactions.

#[path = "../../backend-xtables/tests/support/mod.rs"]
mod support;

use std::time::Duration;

use backend_nftables::{Applier, Change, PortRuleset};
use backend_xtables::{ProcessRunner, RecordingRunner, Toolset};
use support::{add_admin_rules, arrivals, count_arrivals, without_counters, Guest, Lab};

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

/// `filter` (built-in or one of `extra`) for `guest`, compiled and rendered
/// for nftables.
fn compile(extra: &[&str], guest: &Guest, filter: &str, params: &[(&str, &str)]) -> PortRuleset {
    use nwfilter_compile::{compile, Compiled, MemorySource};
    use nwfilter_model::{builtin_filters, parse_filter, FilterName, FilterRef, IfName, Params};
    let mut source = MemorySource::new();
    for f in builtin_filters() {
        source.insert(f);
    }
    for xml in extra {
        source.insert(parse_filter(xml).expect("test filter parses"));
    }
    let mut p = Params::default();
    for (name, value) in params {
        p.push(*name, *value);
    }
    let top = FilterRef {
        filter: FilterName::new(filter).unwrap(),
        params: p,
    };
    let port = IfName::new(guest.port.clone()).unwrap();
    let mac = guest.mac.parse().unwrap();
    let Compiled::Program(program) = compile(&source, &top, mac, &port).expect("compiles") else {
        panic!("{filter}: every variable must be bound in these tests");
    };
    backend_nftables::ruleset(&program).expect("renders")
}

fn clean_traffic(guest: &Guest) -> PortRuleset {
    compile(&[], guest, "clean-traffic", &[("IP", &guest.ip)])
}

fn listen(guest: &Guest, port: u16) -> support::Background {
    guest.ns.spawn(&["nc", "-l", "-k", &port.to_string()])
}

fn forge_arp(a: &Guest, b: &Guest) {
    let _ = a.ns.run(&[
        "arping", "-q", "-A", "-c", "3", "-w", "2", "-i", "eth0", "-S", &b.ip, &b.ip,
    ]);
}

#[test]
fn clean_traffic_stops_spoofing_and_teardown_restores_the_ruleset() {
    if !support::can_run("nft: clean_traffic_stops_spoofing_and_teardown_restores_the_ruleset") {
        return;
    }
    let lab = Lab::new(3);
    lab.wait_ready();
    add_admin_rules(&lab.host);
    let (a, b, c) = (&lab.guests[0], &lab.guests[1], &lab.guests[2]);
    let before = without_counters(&lab.ruleset());
    let runner = runner(&lab);
    let rules = clean_traffic(a);
    apply(&runner, &rules, None);
    // One listing of the maps and ONE transaction.
    assert_eq!(runner.process_starts(), 2);

    assert!(a.pings(&b.ip), "A reaches B");
    assert!(c.pings(&b.ip), "C (no binding) reaches B");
    assert!(c.pings6(&b.ip6), "C's IPv6 is not ours to filter");
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

    // Re-applying the recorded ruleset reads and changes nothing.
    let starts = runner.process_starts();
    let report = Applier::new(&runner)
        .apply(&[Change {
            ruleset: &rules,
            recorded: Some(&rules),
        }])
        .unwrap();
    assert_eq!(report.unchanged, std::slice::from_ref(&rules.port));
    assert_eq!(
        runner.process_starts() - starts,
        1,
        "one read, no transaction"
    );

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
    if !support::can_run("nft: a_port_25_blocker_referencing_clean_traffic") {
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

const STATEFUL: &str = "<filter name='stateful-example' chain='root'>
  <rule action='accept' direction='in' priority='100'><tcp dstportstart='22'/></rule>
  <rule action='accept' direction='in' priority='200'><icmp/></rule>
  <rule action='accept' direction='out' priority='300'><all/></rule>
  <rule action='drop' direction='inout' priority='1000'><all/></rule>
</filter>";

#[test]
fn stateful_rules_allow_replies_but_not_new_inbound_connections() {
    if !support::can_run("nft: stateful_rules_allow_replies_but_not_new_inbound_connections") {
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
  <rule action='reject' direction='out' priority='500'><udp dstportstart='53'/></rule>
  <rule action='drop' direction='out' priority='500'><tcp-ipv6 dstportstart='27'/></rule>
</filter>";

#[test]
fn reject_sends_an_error_where_drop_times_out() {
    if !support::can_run("nft: reject_sends_an_error_where_drop_times_out") {
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
    let _ = a.ns.run(&["sh", "-c", "echo x | nc -u -w 1 10.77.0.11 53"]);
    let listing =
        a.ns.ok(&["iptables", "-w", "-n", "-v", "-x", "-L", "INPUT"]);
    let unreachables: u64 = listing
        .lines()
        .filter(|l| l.contains("type 3 code 3"))
        .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .sum();
    assert!(
        unreachables >= 1,
        "reject of UDP sends ICMP port unreachable: {listing}"
    );
}

#[test]
fn ipv6_and_host_bound_traffic_are_filtered_too() {
    if !support::can_run("nft: ipv6_and_host_bound_traffic_are_filtered_too") {
        return;
    }
    let lab = Lab::new(2);
    lab.wait_ready();
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let rules = compile(&[REJECTING], a, "reject-25", &[]);
    apply(&runner(&lab), &rules, None);
    let _l27 = b.ns.spawn(&["nc", "-6", "-l", "-k", "27"]);
    let _l28 = b.ns.spawn(&["nc", "-6", "-l", "-k", "28"]);
    let _h25 = lab.host.spawn(&["nc", "-l", "-k", "25"]);
    let _h80 = lab.host.spawn(&["nc", "-l", "-k", "80"]);
    std::thread::sleep(Duration::from_millis(300));
    let connects6 = |port: &str| {
        a.ns.run(&["nc", "-6", "-z", "-w", "2", &b.ip6, port])
            .status
            .success()
    };
    assert!(
        !connects6("27"),
        "A's IPv6 tcp/27 is dropped (inet chain, nfproto ipv6)"
    );
    assert!(connects6("28"), "A's other IPv6 tcp works");
    // The host-from-VM chain (inet input, dispatched by the in-port tag).
    assert!(
        !a.connects("10.77.0.1", 25),
        "A cannot open tcp/25 on the host"
    );
    assert!(a.connects("10.77.0.1", 80), "A can open tcp/80 on the host");
}

#[test]
fn redefining_under_traffic_passes_nothing_both_definitions_forbid() {
    if !support::can_run("nft: redefining_under_traffic_passes_nothing_both_definitions_forbid") {
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
    let runner = runner(&lab);
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

#[test]
fn adding_and_removing_ports_never_interrupts_the_others() {
    if !support::can_run("nft: adding_and_removing_ports_never_interrupts_the_others") {
        return;
    }
    let lab = Lab::new(4);
    lab.wait_ready();
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let runner = runner(&lab);
    let applier = Applier::new(&runner);
    // A's filter has IPv4 rules too, so it is dispatched by tag as well.
    let a_rules = compile(&[NO_SPAMMING], a, "no-spamming", &[("IP", &a.ip)]);
    let b_rules = clean_traffic(b);
    apply(&runner, &a_rules, None);
    apply(&runner, &b_rules, None);
    let others: Vec<PortRuleset> = lab.guests[2..]
        .iter()
        .map(|g| compile(&[NO_SPAMMING], g, "no-spamming", &[("IP", &g.ip)]))
        .collect();
    let pings =
        a.ns.spawn(&["ping", "-c", "400", "-i", "0.01", "-W", "1", "-q", &b.ip]);
    for _ in 0..8 {
        for rules in &others {
            apply(&runner, rules, None);
        }
        let ports: Vec<_> = others.iter().map(|r| r.port.clone()).collect();
        applier.remove(&ports).unwrap();
    }
    let summary = String::from_utf8_lossy(&pings.wait().stdout).into_owned();
    assert!(
        summary.contains(" 0% packet loss"),
        "A's pings to B were never interrupted: {summary}"
    );
    // And A is still filtered afterwards.
    let _l25 = listen(b, 25);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!a.connects(&b.ip, 25), "A's tcp/25 is still blocked");
}

#[test]
fn a_refused_transaction_leaves_the_old_rules_filtering() {
    if !support::can_run("nft: a_refused_transaction_leaves_the_old_rules_filtering") {
        return;
    }
    let lab = Lab::new(2);
    lab.wait_ready();
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let real = runner(&lab);
    let old = clean_traffic(a);
    apply(&real, &old, None);
    let spoofing_allowed = compile(&[], a, "clean-traffic", &[("IP", "10.77.0.99")]);

    // The recording runner fails the transaction (call 2, after the read).
    let recording = RecordingRunner::wrapping(runner(&lab));
    recording.fail_call(2);
    let err = Applier::new(&recording)
        .apply(&[Change {
            ruleset: &spoofing_allowed,
            recorded: Some(&old),
        }])
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("previous rules are still in place"),
        "{err}"
    );

    // The kernel refuses a transaction whose last rule jumps nowhere.
    let mut broken = spoofing_allowed.clone();
    let chain = broken.chains.last_mut().unwrap();
    chain.rules.push(backend_nftables::Rule {
        terms: vec![backend_nftables::term::statement(
            "jump no-such-chain",
            nftables::stmt::Statement::Jump(nftables::stmt::JumpTarget {
                target: "no-such-chain".into(),
            }),
        )],
        comment: None,
    });
    let err = Applier::new(&real)
        .apply(&[Change {
            ruleset: &broken,
            recorded: Some(&old),
        }])
        .unwrap_err();
    assert!(err.to_string().contains("nft -j -f -"), "{err}");

    a.set_ip("10.77.0.99");
    assert!(
        !a.pings(&b.ip),
        "the old rules still stop A's spoofed address"
    );
    a.set_ip(&a.ip);
    assert!(a.pings(&b.ip), "and still let A's own address through");
}
