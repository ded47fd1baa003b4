//! A change made only of set and map elements committed by the runner's
//! own netlink socket (`ProcessRunner::removing_by_handle`, as the daemon
//! runs it), in a real kernel, in namespaces the tests create: the kernel
//! ends up with exactly what `nft` would have given it, no `nft` runs,
//! the commit is known for ours, and a refusal changes nothing and goes
//! through `nft`, which decides.

use std::sync::Arc;

use backend_nftables::{Applier, Change, PortRuleset};
use host_io::{ProcessRunner, RecordingRunner, Tool, Toolset};
use netns_lab::{can_run, program, Guest, Lab, Netns};

fn clean_traffic(guest: &Guest) -> PortRuleset {
    let ip = guest.ip.as_str();
    backend_nftables::ruleset(&program(&[], guest, "clean-traffic", &[("IP", ip)])).unwrap()
}

fn change(ruleset: &PortRuleset) -> [Change<'_>; 1] {
    [Change {
        ruleset,
        recorded: None,
    }]
}

/// Our tables as `nft` lists them, line by line in order (element lines
/// of a hash set may come in any order).
fn listing(ns: &Netns) -> Vec<String> {
    let text = ns.ok(&["nft", "list", "table", "bridge", "nwfilter"]);
    let mut lines: Vec<String> = text.lines().map(|l| l.trim().to_owned()).collect();
    lines.sort();
    lines
}

fn nft_runs(recording: &RecordingRunner) -> usize {
    (recording.calls().iter())
        .filter(|c| c.tool == Tool::Nft)
        .count()
}

#[test]
fn a_port_beside_others_is_created_and_deleted_by_netlink_as_nft_would() {
    let name = "a_port_beside_others_is_created_and_deleted_by_netlink_as_nft_would";
    if !can_run(name) {
        return;
    }
    let lab = Lab::ready(3);
    let (a, b, c) = (&lab.guests[0], &lab.guests[1], &lab.guests[2]);
    let rules: Vec<PortRuleset> = lab.guests.iter().map(clean_traffic).collect();

    // What `nft` alone makes of the same steps, in a namespace of its own.
    let twin = Netns::new("elements-twin");
    let by_nft = ProcessRunner::new(Toolset::default()).in_netns(&twin.name);
    let plain = Applier::new(&by_nft);
    let mut plain_state = None;
    plain
        .apply_tracked(&mut plain_state, &change(&rules[0]))
        .unwrap();
    let only_a = listing(&twin);
    plain
        .apply_tracked(&mut plain_state, &change(&rules[1]))
        .unwrap();
    let a_and_b = listing(&twin);

    lab.host.inside(|| {
        let real = Arc::new(
            ProcessRunner::new(Toolset::default())
                .watching_commits()
                .removing_by_handle(),
        );
        let recording = RecordingRunner::wrapping(Arc::clone(&real));
        let applier = Applier::new(&recording);
        let mut state = None;
        applier
            .apply_tracked(&mut state, &change(&rules[0]))
            .unwrap();
        let runs = nft_runs(&recording);
        assert!(runs > 0, "the tables and the template come through nft");
        assert_eq!(listing(&lab.host), only_a);

        let notices = host_io::nft_events::subscribe(1 << 20).unwrap();
        applier
            .apply_tracked(&mut state, &change(&rules[1]))
            .unwrap();
        assert_eq!(nft_runs(&recording), runs, "b's elements without nft");
        assert_eq!(listing(&lab.host), a_and_b, "the kernel has what nft gives");
        let found = host_io::nft_events::committers(&notices);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found
                .iter()
                .all(|pid| pid.is_some_and(host_io::spawned_recently)),
            "the commit is known for ours: {found:?}"
        );
        // The port is filtered by those elements: its own address passes,
        // another one does not.
        assert!(b.pings(&a.ip), "b with its own address");
        b.set_ip("10.99.0.77");
        assert!(!b.pings(&a.ip), "b with a spoofed address");
        b.set_ip(&b.ip);

        applier.remove_tracked(&mut state, &[b.port()]).unwrap();
        assert_eq!(nft_runs(&recording), runs, "b's removal without nft");
        assert_eq!(listing(&lab.host), only_a);

        // Someone else deletes one of c's elements: the kept state is
        // stale, the kernel refuses our deletion whole, nft refuses it
        // too, and the applier reads and plans again.
        applier
            .apply_tracked(&mut state, &change(&rules[2]))
            .unwrap();
        let port = c.port();
        let key = format!("{{ \"{}\" }}", port.as_str());
        lab.host.ok(&[
            "nft", "delete", "element", "bridge", "nwfilter", "from-vm", &key,
        ]);
        applier.remove_tracked(&mut state, &[c.port()]).unwrap();
        assert!(nft_runs(&recording) > runs, "the refusal went through nft");
        assert_eq!(listing(&lab.host), only_a, "nothing of c is left");
    });
}
