//! `nft` started ahead of need (`ProcessRunner::with_standby`, as the
//! daemon runs it), in a real kernel, in namespaces the tests create: a
//! batch is evaluated against the kernel as it is when the batch is
//! written, not as it was when the waiting process started.

use backend_nftables::{Applier, Change, PortRuleset};
use host_io::{Command, ProcessRunner, Runner, Tool, Toolset};
use netns_lab::{can_run, program, Guest, Lab, Netns};

fn nft_batch(text: &str) -> Command {
    Command::new(Tool::Nft, ["-f", "-"]).with_stdin(text)
}

#[test]
fn nft_on_standby_sees_what_was_created_after_it_started() {
    if !can_run("nft_on_standby_sees_what_was_created_after_it_started") {
        return;
    }
    let ns = Netns::new("standby");
    let runner = ProcessRunner::new(Toolset::default())
        .in_netns(&ns.name)
        .with_standby();
    runner
        .run(&nft_batch("add table inet t\n"))
        .expect("the first batch (its process started on demand)");
    let started = runner.process_starts();
    assert_eq!(started, 2, "the batch's process and the one waiting");
    // Created by someone else while the next `nft` waits: nft must learn
    // the set's type from the kernel after its input, or this fails.
    ns.ok(&["nft", "add", "set", "inet", "t", "s", "{ type ipv4_addr; }"]);
    runner
        .run(&nft_batch("add element inet t s { 192.0.2.7 }\n"))
        .expect("the waiting nft plans against the set that exists now");
    assert_eq!(
        runner.process_starts(),
        started + 1,
        "the batch ran in the waiting process (one more started ahead)"
    );
    let listed = ns.ok(&["nft", "list", "set", "inet", "t", "s"]);
    assert!(listed.contains("192.0.2.7"), "{listed}");
}

fn clean_traffic(guest: &Guest) -> PortRuleset {
    let ip = guest.ip.as_str();
    backend_nftables::ruleset(&program(&[], guest, "clean-traffic", &[("IP", ip)])).unwrap()
}

#[test]
fn with_nft_on_standby_a_stale_kept_state_is_refused_and_planned_again() {
    if !can_run("with_nft_on_standby_a_stale_kept_state_is_refused_and_planned_again") {
        return;
    }
    let lab = Lab::ready(2);
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let runner = ProcessRunner::new(Toolset::default())
        .in_netns(&lab.host.name)
        .with_standby();
    let applier = Applier::new(&runner);
    let mut state = None;
    let (first, second) = (clean_traffic(a), clean_traffic(b));
    let change = |r| {
        [Change {
            ruleset: r,
            recorded: None,
        }]
    };
    applier.apply_tracked(&mut state, &change(&first)).unwrap();
    // Another tool removes our tables while the next nft waits: the kept
    // state says they exist, so the plan adds only elements, which the
    // kernel refuses; the applier reads and plans once more.
    lab.host.ok(&["nft", "flush", "ruleset"]);
    applier.apply_tracked(&mut state, &change(&second)).unwrap();
    let listed = lab.host.ok(&["nft", "list", "ruleset"]);
    assert!(listed.contains(b.port().as_str()), "{listed}");
    assert!(!listed.contains(a.port().as_str()), "{listed}");
    // What the applier keeps is what the kernel has: nothing to do.
    let mut read = applier.read().unwrap();
    let (batch, _) = backend_nftables::apply::plan_apply(
        &mut read,
        &[Change {
            ruleset: &second,
            recorded: None,
        }],
    )
    .unwrap();
    assert!(batch.is_empty(), "{}", batch.text());
}
