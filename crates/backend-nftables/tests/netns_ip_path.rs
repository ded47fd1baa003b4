//! The IP path (port tags and the inet table) in a real kernel, in a
//! namespace the test creates: absent while every port's filter is
//! Ethernet-level only (clean-traffic), added by the transaction that adds
//! the first port with IPv4/IPv6 rules, removed by the one that removes
//! the last; after each step a plan against the kernel's listing is empty
//! (a restart converges with nothing to do).

use backend_nftables::{Applier, Change, PortRuleset};
use host_io::{ProcessRunner, RecordingRunner, Runner, Toolset};
use netns_lab::{can_run, program, Guest, Lab};
use serde_json::Value;

/// IPv4 rules that need the inet table (conntrack), letting everything
/// the lab sends through.
const STATEFUL: &str = "<filter name='stateful' chain='root'>
  <rule action='accept' direction='in' priority='100'><tcp dstportstart='22'/></rule>
</filter>";

fn clean_traffic(guest: &Guest) -> PortRuleset {
    let ip = guest.ip.as_str();
    backend_nftables::ruleset(&program(&[], guest, "clean-traffic", &[("IP", ip)])).unwrap()
}

fn stateful(guest: &Guest) -> PortRuleset {
    backend_nftables::ruleset(&program(&[STATEFUL], guest, "stateful", &[])).unwrap()
}

/// Our tables, base chains (with hook and rules) and fixed maps, as the
/// kernel lists them: the whole layout, template and port objects aside.
fn layout(lab: &Lab) -> Vec<String> {
    let json: Value =
        serde_json::from_str(&lab.host.ok(&["nft", "-j", "list", "ruleset"])).unwrap();
    let mut out = Vec::new();
    let mut rules: Vec<(String, String)> = Vec::new();
    for object in json["nftables"].as_array().unwrap() {
        let Some((kind, body)) = object.as_object().and_then(|o| o.iter().next()) else {
            continue;
        };
        let table = if kind == "table" { "name" } else { "table" };
        if body[table] != "nwfilter" {
            continue;
        }
        let family = body["family"].as_str().unwrap();
        let name = body["name"].as_str().unwrap_or_default();
        match kind.as_str() {
            "table" => out.push(format!("table {family}")),
            "chain" if body.get("hook").is_some() => out.push(format!(
                "{family} chain {name} hook {} prio {}",
                body["hook"].as_str().unwrap(),
                body["prio"]
            )),
            "map" if !name.contains('/') => out.push(format!("{family} map {name}")),
            "set" if !name.contains('/') => out.push(format!("{family} set {name}")),
            "rule" => rules.push((
                format!("{family} {}", body["chain"].as_str().unwrap()),
                body["expr"].to_string(),
            )),
            _ => {}
        }
    }
    // The base chains' rules, by what they refer to.
    for line in out.clone() {
        let Some((family, rest)) = line.split_once(" chain ") else {
            continue;
        };
        let chain = format!("{family} {}", rest.split_whitespace().next().unwrap());
        let n = rules.iter().filter(|(c, _)| *c == chain).count();
        out.push(format!("{chain}: {n} rule(s)"));
    }
    out.sort();
    out
}

fn strings(lines: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

/// The layout with only Ethernet-level ports.
fn dispatch_only() -> Vec<String> {
    strings(&[
        "table bridge",
        "bridge map from-vm",
        "bridge map to-vm",
        "bridge set fast-from",
        "bridge chain prerouting hook prerouting prio -300",
        "bridge chain postrouting hook postrouting prio 300",
        // The fast path's rule, then the dispatch.
        "bridge prerouting: 2 rule(s)",
        "bridge postrouting: 1 rule(s)",
    ])
}

/// The layout once a port has IPv4/IPv6 rules.
fn with_ip_path() -> Vec<String> {
    let mut all = dispatch_only();
    all.extend(strings(&[
        "table inet",
        "bridge map in-tag",
        "bridge map out-tag",
        "inet map from-vm",
        "inet map to-vm",
        "inet map host-from-vm",
        "bridge chain prerouting-tag hook prerouting prio -301",
        "bridge chain forward hook forward prio -200",
        "inet chain forward hook forward prio 0",
        "inet chain input hook input prio 0",
        "bridge prerouting-tag: 1 rule(s)",
        "bridge forward: 1 rule(s)",
        "inet forward: 2 rule(s)",
        "inet input: 1 rule(s)",
    ]));
    all.sort();
    all
}

/// Transactions (`nft -j -f -` runs) among `runner`'s calls since `from`.
fn writes(runner: &RecordingRunner, from: usize) -> usize {
    runner.calls()[from..]
        .iter()
        .filter(|c| c.stdin.is_some())
        .count()
}

/// A fresh read of the kernel plans nothing for `ports`: what a restarted
/// engine would find.
fn converged(runner: &dyn Runner, ports: &[&PortRuleset]) {
    let applier = Applier::new(runner);
    let mut state = applier.read().unwrap();
    let changes: Vec<Change<'_>> = ports
        .iter()
        .map(|r| Change {
            ruleset: r,
            recorded: None,
        })
        .collect();
    let (batch, report) = backend_nftables::apply::plan_apply(&mut state, &changes).unwrap();
    assert!(batch.is_empty(), "a re-read plans:\n{}", batch.text());
    assert!(report.changed.is_empty(), "{report:?}");
}

/// Two guests, and a runner into their host namespace that records calls.
fn lab_and_runner() -> (Lab, RecordingRunner) {
    let lab = Lab::ready(2);
    let runner =
        RecordingRunner::wrapping(ProcessRunner::new(Toolset::default()).in_netns(&lab.host.name));
    (lab, runner)
}

#[test]
fn the_ip_path_exists_only_while_a_port_needs_it() {
    if !can_run("the_ip_path_exists_only_while_a_port_needs_it") {
        return;
    }
    let (lab, runner) = lab_and_runner();
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let applier = Applier::new(&runner);
    let plain = clean_traffic(a);
    let ip = stateful(b);
    let change = |r| {
        [Change {
            ruleset: r,
            recorded: None,
        }]
    };

    applier.apply(&change(&plain)).unwrap();
    assert_eq!(layout(&lab), dispatch_only(), "clean-traffic: no IP path");
    converged(&runner, &[&plain]);
    assert!(a.pings(&b.ip), "clean-traffic's own address passes");

    let from = runner.calls().len();
    applier.apply(&change(&ip)).unwrap();
    assert_eq!(writes(&runner, from), 1, "one transaction");
    assert_eq!(layout(&lab), with_ip_path());
    converged(&runner, &[&plain, &ip]);
    assert!(a.pings(&b.ip), "both ports' filters let the ping through");

    let from = runner.calls().len();
    applier.remove(std::slice::from_ref(&ip.port)).unwrap();
    assert_eq!(writes(&runner, from), 1, "one transaction");
    assert_eq!(
        layout(&lab),
        dispatch_only(),
        "the IP path went with its last port"
    );
    converged(&runner, &[&plain]);

    // The same port gaining, then losing IPv4 rules by an update.
    applier.apply(&change(&ip)).unwrap();
    let moved = clean_traffic(b);
    applier.apply(&change(&moved)).unwrap();
    assert_eq!(layout(&lab), dispatch_only());
    converged(&runner, &[&plain, &moved]);

    applier
        .remove(&[plain.port.clone(), moved.port.clone()])
        .unwrap();
    assert_eq!(
        layout(&lab),
        Vec::<String>::new(),
        "nothing of ours is left"
    );
}

/// A dual-stack port's neighbour-discovery checks need nothing of the IP
/// layer: in a real kernel they sit in the bridge table and bring no IP
/// path; a restart's re-read converges with nothing to do.
#[test]
fn a_dual_stack_port_brings_no_ip_path() {
    if !can_run("a_dual_stack_port_brings_no_ip_path") {
        return;
    }
    let (lab, runner) = lab_and_runner();
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let applier = Applier::new(&runner);
    let params = [("IP", a.ip.as_str()), ("IPV6", "fd77::10")];
    let dual =
        backend_nftables::ruleset(&program(&[], a, "clean-traffic-dualstack", &params)).unwrap();
    applier
        .apply(&[Change {
            ruleset: &dual,
            recorded: None,
        }])
        .unwrap();
    assert_eq!(layout(&lab), dispatch_only(), "no IP path");
    let listed = lab.host.ok(&["nft", "list", "table", "bridge", "nwfilter"]);
    assert!(
        listed.contains(&format!("ether type ip6 jump FI/{}", dual.template)),
        "{listed}"
    );
    converged(&runner, &[&dual]);
    assert!(a.pings(&b.ip), "IPv4 from its own address passes");
    applier.remove(std::slice::from_ref(&dual.port)).unwrap();
    assert_eq!(layout(&lab), Vec::<String>::new());
}
