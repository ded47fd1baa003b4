//! Filters on virtual networks (issue 19): a guest whose port joins the
//! bridge of a network with a `<filterref>` is filtered without a binding
//! of its own, by one the network owns, from the kernel's link events;
//! leaving the bridge removes it; an explicit binding replaces it and,
//! deleted, gives the port back; it survives a daemon restart; a new
//! filter for the running network reaches its ports. On both backends.

use netns_lab as support;

mod daemon_lab;
use daemon_lab::{call, start_daemon, Scratch};

use std::time::{Duration, Instant};

use nwfilter_service::net_ops::NetOp;
use nwfilter_service::{BindingEntry, Op, Reply};
use support::{Guest, Lab, HOST_IP, SPOOFED_IP};

/// Polls `check` until it holds, failing after `limit`.
fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The firewall listing of `backend`'s tables that hold a port's rules
/// (and the learner's, while the address is learned).
fn port_rules(lab: &Lab, backend: &str) -> String {
    let tools: &[&[&str]] = match backend {
        "nftables" => &[&["nft", "list", "ruleset"]],
        _ => &[&["ebtables-save"], &["iptables-save"]],
    };
    tools.iter().map(|argv| lab.host.ok(argv)).collect()
}

fn bindings(scratch: &Scratch) -> Vec<BindingEntry> {
    match call(scratch, Op::BindingList) {
        Reply::Bindings { bindings } => bindings,
        other => panic!("binding-list: {other:?}"),
    }
}

/// The owner binding-list shows for `port` (`network NAME` for a
/// network's), or `None` when it has no binding.
fn owner(scratch: &Scratch, port: &str) -> Option<String> {
    let entry = bindings(scratch).into_iter().find(|b| b.portdev == port)?;
    let owner = entry.owner.expect("binding-list names the owner");
    Some(if owner.network {
        format!("network {}", owner.name)
    } else {
        owner.name
    })
}

/// Waits until the daemon learned the guest's address from its traffic
/// (the learning rules let any address through until then).
fn wait_learned(scratch: &Scratch, guest: &Guest) {
    wait_for(
        "the guest's address learned",
        Duration::from_secs(15),
        || {
            let _ = guest.pings(HOST_IP);
            bindings(scratch)
                .iter()
                .any(|b| b.portdev == guest.port && b.learned.contains(&guest.ip))
        },
    );
}

/// Whether the guest reaches the host from a spoofed source address.
fn spoof_passes(guest: &Guest) -> bool {
    guest.set_ip(SPOOFED_IP);
    let passes = guest.pings(HOST_IP);
    guest.set_ip(&guest.ip);
    passes
}

/// The network: isolated, the lab's host address on its bridge, no DHCP
/// or DNS (no dnsmasq), and clean-traffic for every port without a
/// binding (its `IP` learned, its MAC from the tap's).
const NETWORK: &str = "<network><name>lab</name><bridge name='virbr9' stp='off'/>\
    <dns enable='no'/><ip address='10.77.0.1' prefix='24'/>\
    <filterref filter='clean-traffic'/></network>";

fn a_guest_on_a_filtered_network_is_filtered_without_a_binding(backend: &str) {
    let test = format!("a_guest_on_a_filtered_network_is_filtered_without_a_binding ({backend})");
    if !support::can_run(&test) {
        return;
    }
    let scratch = Scratch::new(&format!("netflt-{backend}"));
    let lab = Lab::new(1);
    let guest = &lab.guests[0];
    // The guest leaves the lab's bridge (which gives its address to the
    // network's) and its port gets a libvirt tap's MAC: the guest's, with
    // the first byte 0xfe.
    lab.host.ok(&["ip", "addr", "flush", "dev", "br0"]);
    lab.host.ok(&["ip", "link", "set", "vnet0", "nomaster"]);
    let tap_mac = format!("fe{}", &guest.mac[2..]);
    lab.host
        .ok(&["ip", "link", "set", "vnet0", "address", &tap_mac]);
    let store = netdrv::Store::new(
        scratch.etc().join("networks"),
        scratch.run().join("networks"),
    );
    store.define(NETWORK, &|_| false).unwrap();
    store.set_autostart("lab", true).unwrap();
    let daemon = start_daemon(&lab.host, &scratch, &["--backend", backend]);
    // Serving means the network was autostarted and the port watch runs.
    call(&scratch, Op::Status);
    assert!(store.run_state("lab").unwrap().is_some(), "lab runs");
    assert!(!port_rules(&lab, backend).contains("vnet0"));

    // Joining: filtered within a second.
    lab.host
        .ok(&["ip", "link", "set", "vnet0", "master", "virbr9"]);
    wait_for(
        "the network's rules on vnet0",
        Duration::from_secs(1),
        || port_rules(&lab, backend).contains("vnet0"),
    );
    assert_eq!(owner(&scratch, "vnet0").as_deref(), Some("network lab"));
    // Its address is learned from its first packets; then only it passes.
    wait_learned(&scratch, guest);
    assert!(guest.pings(HOST_IP), "the genuine address passes");
    assert!(
        !spoof_passes(guest),
        "the network's filter drops a spoofed source"
    );
    assert!(
        guest.pings(HOST_IP),
        "and lets the genuine one through again"
    );

    // An explicit binding wins: here one that allows only the spoofed
    // address.
    let explicit = guest
        .binding_xml("clean-traffic")
        .replace(&guest.ip, SPOOFED_IP);
    call(&scratch, Op::BindingCreate { xml: explicit });
    assert_eq!(owner(&scratch, "vnet0").as_deref(), Some("vm-vnet0"));
    assert!(spoof_passes(guest), "the explicit binding's address passes");
    // Deleted, the port goes back to the network.
    call(
        &scratch,
        Op::BindingDelete {
            portdev: "vnet0".into(),
        },
    );
    assert_eq!(owner(&scratch, "vnet0").as_deref(), Some("network lab"));
    wait_learned(&scratch, guest);
    assert!(guest.pings(HOST_IP), "the genuine address passes again");
    assert!(!spoof_passes(guest), "the network's filter is back");

    // The network's binding survives a restart of the daemon.
    drop(daemon);
    let daemon = start_daemon(&lab.host, &scratch, &["--backend", backend]);
    assert_eq!(owner(&scratch, "vnet0").as_deref(), Some("network lab"));
    assert!(port_rules(&lab, backend).contains("vnet0"));

    // A new filter for the running network: its ports get it at once
    // (through the engine's all-or-nothing rebind), still the network's.
    let redefined = NETWORK.replace("clean-traffic", "no-mac-spoofing");
    call(
        &scratch,
        Op::Net {
            net: NetOp::Define { xml: redefined },
        },
    );
    let entry = bindings(&scratch)
        .into_iter()
        .find(|b| b.portdev == "vnet0");
    let entry = entry.expect("vnet0 keeps a binding");
    assert_eq!(entry.filter, "no-mac-spoofing");
    assert!(entry.owner.is_some_and(|o| o.network && o.name == "lab"));
    assert!(
        spoof_passes(guest),
        "the new filter does not check addresses"
    );

    // Leaving the bridge removes the binding and its rules.
    lab.host.ok(&["ip", "link", "set", "vnet0", "nomaster"]);
    // (The rules go first, then the stored binding.)
    wait_for("vnet0's binding to go", Duration::from_secs(5), || {
        owner(&scratch, "vnet0").is_none()
    });
    assert!(
        !port_rules(&lab, backend).contains("vnet0"),
        "its rules went"
    );
    drop(daemon);
}

#[test]
fn a_guest_on_a_filtered_network_is_filtered_without_a_binding_xtables() {
    a_guest_on_a_filtered_network_is_filtered_without_a_binding("xtables");
}

#[test]
fn a_guest_on_a_filtered_network_is_filtered_without_a_binding_nftables() {
    a_guest_on_a_filtered_network_is_filtered_without_a_binding("nftables");
}

/// A network whose ports get clean-traffic, except those of portgroup
/// `open` (alias `portgroup=open`), which get only no-mac-spoofing.
const WITH_PORTGROUP: &str = "<network><name>lab</name><bridge name='virbr9' stp='off'/>\
    <dns enable='no'/><ip address='10.77.0.1' prefix='24'/>\
    <portgroup name='open'><filterref filter='no-mac-spoofing'/></portgroup>\
    <filterref filter='clean-traffic'/></network>";

fn a_port_gets_its_portgroups_filter_named_in_its_alias(backend: &str) {
    let test = format!("a_port_gets_its_portgroups_filter_named_in_its_alias ({backend})");
    if !support::can_run(&test) {
        return;
    }
    let scratch = Scratch::new(&format!("netpg-{backend}"));
    let lab = Lab::new(1);
    let guest = &lab.guests[0];
    lab.host.ok(&["ip", "addr", "flush", "dev", "br0"]);
    lab.host.ok(&["ip", "link", "set", "vnet0", "nomaster"]);
    let tap_mac = format!("fe{}", &guest.mac[2..]);
    lab.host
        .ok(&["ip", "link", "set", "vnet0", "address", &tap_mac]);
    let store = netdrv::Store::new(
        scratch.etc().join("networks"),
        scratch.run().join("networks"),
    );
    store.define(WITH_PORTGROUP, &|_| false).unwrap();
    store.set_autostart("lab", true).unwrap();
    let daemon = start_daemon(&lab.host, &scratch, &["--backend", backend]);
    call(&scratch, Op::Status);

    let filter = || {
        let entry = bindings(&scratch)
            .into_iter()
            .find(|b| b.portdev == "vnet0");
        entry.map(|b| b.filter)
    };
    lab.host
        .ok(&["ip", "link", "set", "vnet0", "master", "virbr9"]);
    wait_for(
        "the network's filter on vnet0",
        Duration::from_secs(1),
        || filter().as_deref() == Some("clean-traffic"),
    );
    wait_learned(&scratch, guest);
    assert!(guest.pings(HOST_IP), "the genuine address passes");
    assert!(
        !spoof_passes(guest),
        "the network's filter drops a spoofed source"
    );

    // The port says it is in portgroup `open`: it gets that group's filter.
    lab.host.ok(&[
        "ip",
        "link",
        "set",
        "dev",
        "vnet0",
        "alias",
        "portgroup=open",
    ]);
    wait_for(
        "the portgroup's filter on vnet0",
        Duration::from_secs(1),
        || filter().as_deref() == Some("no-mac-spoofing"),
    );
    assert_eq!(owner(&scratch, "vnet0").as_deref(), Some("network lab"));
    assert!(
        spoof_passes(guest),
        "the portgroup's filter checks no address"
    );
    drop(daemon);
}

#[test]
fn a_port_gets_its_portgroups_filter_named_in_its_alias_xtables() {
    a_port_gets_its_portgroups_filter_named_in_its_alias("xtables");
}

#[test]
fn a_port_gets_its_portgroups_filter_named_in_its_alias_nftables() {
    a_port_gets_its_portgroups_filter_named_in_its_alias("nftables");
}

fn a_port_without_a_tap_mac_learns_the_guests_from_its_first_frame(backend: &str) {
    let test =
        format!("a_port_without_a_tap_mac_learns_the_guests_from_its_first_frame ({backend})");
    if !support::can_run(&test) {
        return;
    }
    let scratch = Scratch::new(&format!("netmac-{backend}"));
    let lab = Lab::new(1);
    let guest = &lab.guests[0];
    lab.host.ok(&["ip", "addr", "flush", "dev", "br0"]);
    lab.host.ok(&["ip", "link", "set", "vnet0", "nomaster"]);
    // Not a libvirt tap's MAC: nothing tells the guest's.
    lab.host
        .ok(&["ip", "link", "set", "vnet0", "address", "02:00:00:00:00:0a"]);
    let store = netdrv::Store::new(
        scratch.etc().join("networks"),
        scratch.run().join("networks"),
    );
    store.define(NETWORK, &|_| false).unwrap();
    store.set_autostart("lab", true).unwrap();
    let _daemon = start_daemon(&lab.host, &scratch, &["--backend", backend]);
    call(&scratch, Op::Status);
    lab.host
        .ok(&["ip", "link", "set", "vnet0", "master", "virbr9"]);
    // The guest's first frames teach its MAC, then its address.
    wait_for(
        "the network's binding on vnet0",
        Duration::from_secs(10),
        || {
            let _ = guest.pings(HOST_IP);
            owner(&scratch, "vnet0").is_some()
        },
    );
    let xml = match call(
        &scratch,
        Op::BindingDumpxml {
            portdev: "vnet0".into(),
        },
    ) {
        Reply::Xml { xml } => xml,
        other => panic!("binding-dumpxml: {other:?}"),
    };
    assert!(
        xml.contains(&format!("<mac address='{}'/>", guest.mac)),
        "the guest's MAC, learned: {xml}"
    );
    wait_learned(&scratch, guest);
    assert!(guest.pings(HOST_IP), "the genuine address passes");
    assert!(
        !spoof_passes(guest),
        "the network's filter drops a spoofed source"
    );
}

#[test]
fn a_port_without_a_tap_mac_learns_the_guests_from_its_first_frame_xtables() {
    a_port_without_a_tap_mac_learns_the_guests_from_its_first_frame("xtables");
}

#[test]
fn a_port_without_a_tap_mac_learns_the_guests_from_its_first_frame_nftables() {
    a_port_without_a_tap_mac_learns_the_guests_from_its_first_frame("nftables");
}
