//! The rule check is event-driven: with its timer at ten minutes, rules
//! flushed by another tool come back within two seconds, on both
//! backends; only the kernel's nf_tables change notification can explain
//! that. The daemon's own changes (a create, a delete) do not trigger a
//! repair.

use netns_lab as support;

mod daemon_lab;
use daemon_lab::{call, start_daemon_checking_every, Scratch};

use std::time::{Duration, Instant};

use nwfilter_service::Op;
use support::{without_counters, Lab};

const TEN_MINUTES_MS: &str = "600000";

/// The ruleset's lines, sorted: a repair of several ports may hook them
/// in another order (each port's jump matches only its own interface).
fn ruleset_lines(lab: &Lab) -> Vec<String> {
    let mut lines: Vec<String> = without_counters(&lab.ruleset())
        .lines()
        .map(String::from)
        .collect();
    lines.sort();
    lines
}

fn until_ruleset(lab: &Lab, want: &[String], limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if ruleset_lines(lab) == want {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Ends the daemon (by its PID) and returns its log.
fn stop(daemon: support::Background) -> String {
    let pid = daemon.pid().to_string();
    let _ = std::process::Command::new("kill")
        .args(["-s", "TERM", &pid])
        .status();
    String::from_utf8_lossy(&daemon.wait().stderr).into_owned()
}

fn flush_is_repaired_by_the_event(backend: &str, flush: &[&[&str]]) {
    let scratch = Scratch::new(&format!("ev-{backend}"));
    let lab = Lab::new(2);
    let daemon =
        start_daemon_checking_every(&lab.host, &scratch, TEN_MINUTES_MS, &["--backend", backend]);
    for guest in &lab.guests {
        call(
            &scratch,
            Op::BindingCreate {
                xml: guest.binding_xml("clean-traffic"),
            },
        );
    }
    let protected = ruleset_lines(&lab);
    for round in 0..2 {
        for argv in flush {
            lab.host.ok(argv);
        }
        // No check that the flush took: the repair can be faster than
        // reading the ruleset. The log's count of repairs shows it did.
        if until_ruleset(&lab, &protected, Duration::from_secs(2)).is_none() {
            let now = ruleset_lines(&lab);
            let missing: Vec<&String> = protected.iter().filter(|l| !now.contains(l)).collect();
            let extra: Vec<&String> = now.iter().filter(|l| !protected.contains(l)).collect();
            let found = format!("missing: {missing:#?}\nextra: {extra:#?}");
            panic!(
                "{backend}, flush {round}: not restored within 2 s with a 10-minute timer:\n\
                 {found}\ndaemon log:\n{}",
                stop(daemon)
            );
        }
    }
    call(
        &scratch,
        Op::BindingDelete {
            portdev: "vnet1".into(),
        },
    );
    std::thread::sleep(Duration::from_millis(300));
    let log = stop(daemon);
    let repairs = log.lines().filter(|l| l.contains("restored")).count();
    assert_eq!(
        repairs, 2,
        "{backend}: one repair per flush, none for our own changes:\n{log}"
    );
}

#[test]
fn xtables_flush_is_repaired_on_the_kernels_event() {
    if !support::can_run("xtables_flush_is_repaired_on_the_kernels_event") {
        return;
    }
    flush_is_repaired_by_the_event(
        "xtables",
        &[&["iptables", "-F"], &["ebtables", "-t", "nat", "-F"]],
    );
}

#[test]
fn nftables_flush_is_repaired_on_the_kernels_event() {
    if !support::can_run("nftables_flush_is_repaired_on_the_kernels_event") {
        return;
    }
    flush_is_repaired_by_the_event("nftables", &[&["nft", "flush", "ruleset"]]);
}
