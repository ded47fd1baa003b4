//! The fast path in a real kernel, in a namespace the test creates: bridge
//! prerouting accepts at once the IPv4 frames of a port's own MAC and
//! address that its chains are proven to accept, and only those. A frame
//! the lead rule does not take goes through the port's chains as before,
//! so a spoofed address is still dropped, and a filter that drops some of
//! the port's own IPv4 frames gets no fast path at all.

use backend_nftables::{Applier, Change, PortRuleset};
use host_io::{ProcessRunner, Toolset};
use netns_lab::{can_run_with, program, Guest, Lab};

fn clean_traffic(guest: &Guest) -> PortRuleset {
    let ip = guest.ip.as_str();
    backend_nftables::ruleset(&program(&[], guest, "clean-traffic", &[("IP", ip)])).unwrap()
}

/// clean-traffic, and before it a bridge-level rule dropping TCP to port
/// 2222 from the VM: some IPv4 frames of the port's own addresses are
/// dropped, so none may be accepted at once.
const NO_2222: &str = "<filter name='no-2222' chain='root'>
  <filterref filter='clean-traffic'/>
  <rule action='drop' direction='out' priority='-800'>
    <ip protocol='tcp' dstportstart='2222'/>
  </rule>
</filter>";

fn no_2222(guest: &Guest) -> PortRuleset {
    let ip = guest.ip.as_str();
    backend_nftables::ruleset(&program(&[NO_2222], guest, "no-2222", &[("IP", ip)])).unwrap()
}

fn apply(lab: &Lab, rulesets: &[&PortRuleset]) {
    let runner = ProcessRunner::new(Toolset::default()).in_netns(&lab.host.name);
    let changes: Vec<Change<'_>> = rulesets
        .iter()
        .map(|r| Change {
            ruleset: r,
            recorded: None,
        })
        .collect();
    Applier::new(&runner).apply(&changes).unwrap();
}

/// The elements of the fast-path set, as `nft` lists them.
fn fast_from(lab: &Lab) -> String {
    lab.host
        .ok(&["nft", "list", "set", "bridge", "nwfilter", "fast-from"])
}

fn element(guest: &Guest) -> String {
    format!("\"{}\" . {} . {}", guest.port, guest.mac, guest.ip)
}

#[test]
fn own_frames_are_accepted_at_the_head_and_a_spoofed_address_still_drops() {
    if !can_run_with(
        "own_frames_are_accepted_at_the_head_and_a_spoofed_address_still_drops",
        &["nc"],
    ) {
        return;
    }
    let lab = Lab::ready(2);
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    apply(&lab, &[&clean_traffic(a), &clean_traffic(b)]);
    let set = fast_from(&lab);
    for guest in [a, b] {
        assert!(set.contains(&element(guest)), "{}: {set}", guest.port);
    }
    // nft lists the rule without its `ether type ip`: `ip saddr` implies it.
    let listed = lab.ruleset();
    assert!(
        listed.contains("iifname . ether saddr . ip saddr @fast-from accept"),
        "{listed}"
    );
    assert!(a.pings(&b.ip), "own MAC and address pass");

    // Another address from the same MAC: not in the set, so the port's
    // chains decide, and they drop it.
    let own = a.ip.clone();
    let spoofed = own
        .rsplit_once('.')
        .map(|(net, _)| format!("{net}.99"))
        .unwrap();
    a.set_ip(&spoofed);
    assert!(!a.pings(&b.ip), "a spoofed source address is dropped");
    a.set_ip(&own);
    assert!(a.pings(&b.ip), "and its own passes again");
}

#[test]
fn a_filter_dropping_some_own_ipv4_frames_gets_no_fast_path() {
    if !can_run_with(
        "a_filter_dropping_some_own_ipv4_frames_gets_no_fast_path",
        &["nc"],
    ) {
        return;
    }
    let lab = Lab::ready(2);
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    apply(&lab, &[&no_2222(a), &clean_traffic(b)]);
    let set = fast_from(&lab);
    assert!(!set.contains(&a.port), "{set}");
    assert!(set.contains(&element(b)), "{set}");

    let _open = b.listen(2222);
    let _other = b.listen(2223);
    assert!(a.pings(&b.ip), "its other frames pass");
    assert!(a.connects(&b.ip, 2223), "other ports pass");
    assert!(!a.connects(&b.ip, 2222), "the filter's drop still holds");
}
