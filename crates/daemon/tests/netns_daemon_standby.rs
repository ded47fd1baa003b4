//! `nwfilterd` keeps `nft` started ahead of the next change (issue 22:
//! a create does not wait for the tool to start), in a network namespace:
//! after a create one `nft -f -` waits, the next create that needs `nft`
//! runs in it (one made only of set elements needs none: the daemon
//! commits it itself and the waiting process keeps waiting), and when the
//! daemon is killed with SIGKILL the waiting process exits having applied
//! nothing.

use netns_lab as support;

mod daemon_lab;
use daemon_lab::{call, children, start_daemon, Scratch};

use std::time::{Duration, Instant};

use nwfilter_service::Op;
use support::{without_counters, Lab};

fn waiting_nft(daemon: u32) -> Vec<u32> {
    children(daemon)
        .into_iter()
        .filter(|child| child.args == "nft -f -")
        .map(|child| child.pid)
        .collect()
}

/// Gone, or a zombie nobody has reaped yet: either way it ended.
fn has_ended(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn a_tool_waits_for_the_next_change_and_ends_with_the_daemon() {
    if !support::can_run("a_tool_waits_for_the_next_change_and_ends_with_the_daemon") {
        return;
    }
    let scratch = Scratch::new("standby");
    let lab = Lab::ready(3);
    let (a, b, c) = (&lab.guests[0], &lab.guests[1], &lab.guests[2]);
    let daemon = start_daemon(&lab.host, &scratch, &["--backend", "nftables"]);
    let pid = daemon.pid();
    call(
        &scratch,
        Op::BindingCreate {
            xml: a.binding_xml("clean-traffic"),
        },
    );
    let waiting = waiting_nft(pid);
    assert_eq!(waiting.len(), 1, "{:?}", children(pid));
    // Another filter: its chains are created, through nft.
    call(
        &scratch,
        Op::BindingCreate {
            xml: b.binding_xml("no-mac-spoofing"),
        },
    );
    // Answered at its commit: the tool may still be exiting.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !has_ended(waiting[0]) || waiting_nft(pid).len() != 1 {
        assert!(
            Instant::now() < deadline,
            "the second create ran in the waiting nft, which ended, and one more waits: {:?}",
            children(pid)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let next = waiting_nft(pid);
    assert_ne!(next, waiting);
    // Beside a port of its filter: set elements only, committed by the
    // daemon itself; the waiting nft is not used and nothing is started.
    call(
        &scratch,
        Op::BindingCreate {
            xml: c.binding_xml("clean-traffic"),
        },
    );
    assert_eq!(waiting_nft(pid), next, "{:?}", children(pid));
    let nft_ruleset = || without_counters(&lab.host.ok(&["nft", "list", "ruleset"]));
    let before = nft_ruleset();
    for port in [b.port(), c.port()] {
        assert!(before.contains(&format!("\"{port}\"")), "{before}");
    }

    drop(daemon); // SIGKILL
    let deadline = Instant::now() + Duration::from_secs(5);
    while !has_ended(next[0]) {
        assert!(
            Instant::now() < deadline,
            "the waiting nft outlived the daemon"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(nft_ruleset(), before, "it applied nothing");
    assert!(a.pings(&b.ip), "the ports are still filtered and pass");
    assert!(c.pings(&a.ip), "the ports are still filtered and pass");
}
