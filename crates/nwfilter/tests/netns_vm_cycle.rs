//! A VM manager's cycle through the public entry point only, in network
//! namespaces with real packets (issue 17, item 6): two "VMs" start
//! (veth ports), one with a fixed address and one whose address is
//! learned from its first packet; spoofing is dropped; rules another tool
//! flushes are put back by the rule check; the VMs stop and nothing of
//! their rules is left.

use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use netns_lab::Lab;
use nwfilter::{BindingBuilder, Created, Event, Firewall, Host, HostConfig, Uuid};

const A_IP: &str = "10.77.0.10";
const B_IP: &str = "10.77.0.11";
const SPOOFED: &str = "10.77.0.98";

#[test]
fn vms_start_learn_get_repaired_and_stop_with_xtables() {
    cycle(Firewall::Xtables);
}

#[test]
fn vms_start_learn_get_repaired_and_stop_with_nftables() {
    cycle(Firewall::Nftables);
}

fn cycle(firewall: Firewall) {
    if !netns_lab::can_run_with("vm_cycle", &["nft", "ebtables"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::with_guests(&[Some(A_IP), Some(B_IP)]);
    lab.wait_ready();
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let (host, events) = open(&dir, &lab, firewall, Duration::from_secs(30));

    // VM start: A learns its address, B has a fixed one.
    let vm = Uuid::parse_str("d54df46f-1ab5-4a22-8618-4560ef5fac2c").unwrap();
    let learned = BindingBuilder::new("vm-a", vm, &a.port, &a.mac, "clean-traffic")
        .build()
        .unwrap();
    assert_eq!(
        host.create_binding(&learned).unwrap(),
        Created::LearningAddress
    );
    let fixed = BindingBuilder::new("vm-b", vm, &b.port, &b.mac, "clean-traffic")
        .ip(B_IP.parse().unwrap())
        .build()
        .unwrap();
    assert_eq!(host.create_binding(&fixed).unwrap(), Created::Filtering);

    // A's first packet teaches its address; its full filter follows.
    assert!(a.pings(B_IP), "under learning rules A's ARP and IPv4 pass");
    let event = wait_for(&events, |e| matches!(e, Event::AddressesLearned { .. }));
    assert_eq!(
        event,
        Event::AddressesLearned {
            port: a.port.clone(),
            addresses: vec![A_IP.parse().unwrap()],
        }
    );
    let listed = host.bindings().unwrap();
    assert_eq!(
        listed[0].learned,
        [A_IP.parse::<std::net::IpAddr>().unwrap()]
    );
    assert!(host.binding_xml(&a.port).unwrap().contains(A_IP));
    assert!(a.pings(B_IP) && b.pings(A_IP), "both reach each other");
    a.set_ip(SPOOFED);
    assert!(!a.pings(B_IP), "A cannot use another address");

    // Another tool flushes the tables: the rule check puts them back.
    flush(&lab, firewall);
    let repaired = wait_for(&events, |e| matches!(e, Event::RulesRepaired { .. }));
    let Event::RulesRepaired { ports } = repaired else {
        unreachable!()
    };
    assert!(ports.contains(&a.port), "{ports:?}");
    assert!(!a.pings(B_IP), "still filtered after the flush");

    // VM stop: no rule of theirs is left, A's spoofed address passes.
    host.delete_binding(&a.port).unwrap();
    host.delete_binding(&b.port).unwrap();
    assert!(host.bindings().unwrap().is_empty());
    // The resolution of B that the filter starved is still pending.
    a.ns.ok(&["ip", "neigh", "flush", "dev", "eth0"]);
    assert!(a.pings(B_IP), "unfiltered again");
    let ruleset = lab.ruleset();
    assert!(
        !ruleset.contains(&a.port) && !ruleset.contains(&b.port),
        "{ruleset}"
    );
    drop(host);
}

#[test]
fn a_vm_that_never_shows_its_address_is_reported_blocked() {
    if !netns_lab::can_run_with("vm_blocked", &["ebtables"]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A has no address: it sends nothing that teaches one.
    let lab = Lab::with_guests(&[None, Some(B_IP)]);
    let a = &lab.guests[0];
    let (host, events) = open(&dir, &lab, Firewall::Xtables, Duration::from_secs(1));
    let vm = Uuid::parse_str("d54df46f-1ab5-4a22-8618-4560ef5fac2c").unwrap();
    let binding = BindingBuilder::new("vm-a", vm, &a.port, &a.mac, "clean-traffic")
        .build()
        .unwrap();
    assert_eq!(
        host.create_binding(&binding).unwrap(),
        Created::LearningAddress
    );
    let Event::Blocked { port, reason } = wait_for(&events, |e| matches!(e, Event::Blocked { .. }))
    else {
        unreachable!()
    };
    assert_eq!(port, a.port);
    assert!(reason.contains("no IP address learned in time"), "{reason}");
    let state = host.bindings().unwrap()[0]
        .state
        .clone()
        .unwrap_or_default();
    assert!(state.starts_with("blocked"), "{state}");
    a.set_ip(A_IP);
    assert!(!a.pings(B_IP), "a blocked port passes nothing");
    host.delete_binding(&a.port).unwrap();
}

fn open(
    dir: &tempfile::TempDir,
    lab: &Lab,
    firewall: Firewall,
    learn_timeout: Duration,
) -> (Host, Receiver<Event>) {
    let (sender, events) = mpsc::channel();
    let host = HostConfig::new(dir.path().join("etc"), dir.path().join("run"))
        .firewall(firewall)
        .network_namespace(lab.host.name.clone())
        .tables_lock(Some(dir.path().join("tables.lock")))
        .learn_timeout(Some(learn_timeout))
        .rule_check_every(Some(Duration::from_millis(200)))
        .on_event(move |event| {
            let _ = sender.send(event);
        })
        .open()
        .unwrap();
    (host, events)
}

/// The first event `wanted` accepts, within 10 seconds.
fn wait_for(events: &Receiver<Event>, wanted: impl Fn(&Event) -> bool) -> Event {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(event) if wanted(&event) => return event,
            Ok(_) => {}
            Err(e) => panic!("no such event in time: {e}"),
        }
    }
}

/// What a careless firewall reload does to our rules.
fn flush(lab: &Lab, firewall: Firewall) {
    match firewall {
        Firewall::Nftables => {
            lab.host.ok(&["nft", "flush", "ruleset"]);
        }
        _ => {
            lab.host.ok(&["ebtables", "-t", "nat", "-F"]);
            lab.host.ok(&["iptables", "-F"]);
        }
    }
}
