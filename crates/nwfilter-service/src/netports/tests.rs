//! The network-port decisions on a recording runner (no kernel): link
//! events in, bindings out. The kernel side is covered by the daemon's
//! namespace tests (`netns_daemon_network_filter`).

use std::sync::Arc;

use host_io::RecordingRunner;
use nwfilter_driver::{BindingStore, Engine, FilterStore};

use super::links::{Link, LinkEvent};
use crate::protocol::{Op, Reply};
use crate::service::EngineService;

const NETWORK: &str = "<network><name>lab</name><bridge name='virbr9'/>\
    <portgroup name='open'><filterref filter='allow-arp'/></portgroup>\
    <filterref filter='no-mac-spoofing'/></network>";

struct Setup {
    _dir: tempfile::TempDir,
    service: EngineService<Arc<RecordingRunner>>,
}

/// A service whose network `lab` (bridge virbr9, index 3) runs.
fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::new(
        FilterStore::open(dir.path().join("etc")),
        BindingStore::open(dir.path().join("run")),
        Arc::new(RecordingRunner::new()),
    );
    let store = crate::net_ops::store(&dir.path().join("etc"), &dir.path().join("run"));
    let network = store.define(NETWORK, &|_| false).unwrap();
    // Running, as far as the store tells: what start leaves behind.
    let state = netdrv::RunState {
        network,
        dnsmasq_pid: None,
        firewall: Default::default(),
        coexistence: Vec::new(),
    };
    let state_dir = dir.path().join("run/networks");
    std::fs::create_dir_all(&state_dir).unwrap();
    std::fs::write(
        state_dir.join("lab.json"),
        serde_json::to_vec(&state).unwrap(),
    )
    .unwrap();
    let service = EngineService::new(engine)
        .with_networks(store)
        .with_network_ports();
    let setup = Setup { _dir: dir, service };
    setup.service.link_dump_started();
    setup
        .service
        .link_event(LinkEvent::Present(link(3, "virbr9", None, None)));
    setup.service.link_event(LinkEvent::DumpDone);
    setup
}

fn link(index: u32, name: &str, master: Option<u32>, alias: Option<&str>) -> Link {
    Link {
        index,
        name: name.into(),
        mac: Some([0xfe, 0x54, 0, 0, 0, index as u8]),
        master,
        alias: alias.map(Into::into),
    }
}

/// `port`'s binding: its filter and whether the network owns it.
fn binding(s: &Setup, port: &str) -> Option<(String, bool)> {
    let Reply::Bindings { bindings } = s.service.call(Op::BindingList).unwrap() else {
        panic!("binding-list")
    };
    let entry = bindings.into_iter().find(|b| b.portdev == port)?;
    Some((entry.filter, entry.owner.unwrap().network))
}

fn explicit(port: &str) -> String {
    format!(
        "<filterbinding><owner><name>vm</name>\
         <uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner>\
         <portdev name='{port}'/><mac address='52:54:00:00:00:07'/>\
         <filterref filter='allow-arp'/></filterbinding>"
    )
}

#[test]
fn a_joining_port_gets_the_networks_binding_with_the_guest_mac_and_loses_it_leaving() {
    let s = setup();
    s.service
        .link_event(LinkEvent::Present(link(7, "vnet0", Some(3), None)));
    assert_eq!(binding(&s, "vnet0"), Some(("no-mac-spoofing".into(), true)));
    let stored = s.service.engine().bindings().get("vnet0").unwrap().unwrap();
    assert_eq!(stored.mac.to_string(), "52:54:00:00:00:07");
    assert_eq!(stored.owner.name, "lab");
    // A port of another bridge, or of none, gets nothing.
    s.service
        .link_event(LinkEvent::Present(link(8, "vnet1", Some(99), None)));
    s.service
        .link_event(LinkEvent::Present(link(9, "eth0", None, None)));
    assert_eq!(binding(&s, "vnet1"), None);
    assert_eq!(binding(&s, "eth0"), None);
    // Leaving the bridge, or disappearing, removes it.
    s.service
        .link_event(LinkEvent::Present(link(7, "vnet0", None, None)));
    assert_eq!(binding(&s, "vnet0"), None);
    s.service
        .link_event(LinkEvent::Present(link(7, "vnet0", Some(3), None)));
    s.service
        .link_event(LinkEvent::Gone(link(7, "vnet0", None, None)));
    assert_eq!(binding(&s, "vnet0"), None);
}

#[test]
fn an_explicit_binding_replaces_the_networks_and_deleted_gives_the_port_back() {
    let s = setup();
    s.service
        .link_event(LinkEvent::Present(link(7, "vnet0", Some(3), None)));
    s.service.binding_create(&explicit("vnet0")).unwrap();
    assert_eq!(binding(&s, "vnet0"), Some(("allow-arp".into(), false)));
    // Link events leave an explicit binding alone, even leaving the bridge.
    s.service
        .link_event(LinkEvent::Present(link(7, "vnet0", Some(3), None)));
    assert_eq!(binding(&s, "vnet0"), Some(("allow-arp".into(), false)));
    s.service.binding_delete("vnet0").unwrap();
    assert_eq!(binding(&s, "vnet0"), Some(("no-mac-spoofing".into(), true)));
    // A second explicit create on a port with an explicit binding is
    // refused as before, and leaves it.
    s.service.binding_create(&explicit("vnet0")).unwrap();
    assert!(s.service.binding_create(&explicit("vnet0")).is_err());
    assert_eq!(binding(&s, "vnet0"), Some(("allow-arp".into(), false)));
}

#[test]
fn the_alias_picks_the_portgroup_and_a_dump_removes_bindings_of_vanished_ports() {
    let s = setup();
    let open = Some("portgroup=open");
    s.service
        .link_event(LinkEvent::Present(link(7, "vnet0", Some(3), open)));
    assert_eq!(binding(&s, "vnet0"), Some(("allow-arp".into(), true)));
    s.service
        .link_event(LinkEvent::Present(link(7, "vnet0", Some(3), None)));
    assert_eq!(binding(&s, "vnet0"), Some(("no-mac-spoofing".into(), true)));
    // The port vanished while nobody listened: the next dump ends it.
    s.service.link_dump_started();
    s.service
        .link_event(LinkEvent::Present(link(3, "virbr9", None, None)));
    s.service.link_event(LinkEvent::DumpDone);
    assert_eq!(binding(&s, "vnet0"), None);
}

#[test]
fn a_port_without_a_libvirt_tap_mac_is_not_bound() {
    let s = setup();
    let mut other = link(7, "vnet0", Some(3), None);
    other.mac = Some([0x02, 0, 0, 0, 0, 7]);
    s.service.link_event(LinkEvent::Present(other));
    assert_eq!(binding(&s, "vnet0"), None);
}

/// The restore batches and commands sent while `f` runs.
fn commands_during(s: &Setup, f: impl FnOnce()) -> Vec<String> {
    let before = s.service.engine().runner().calls().len();
    f();
    s.service.engine().runner().calls()[before..]
        .iter()
        .map(|c| c.stdin.clone().unwrap_or_else(|| c.args.join(" ")))
        .collect()
}

#[test]
fn an_explicit_binding_takes_a_network_port_over_without_a_moment_unfiltered() {
    let s = setup();
    s.service
        .link_event(LinkEvent::Present(link(7, "vnet0", Some(3), None)));
    let sent = commands_during(&s, || {
        s.service.binding_create(&explicit("vnet0")).unwrap();
    });
    assert_eq!(binding(&s, "vnet0"), Some(("allow-arp".into(), false)));
    // The old jump into the port's chains goes only in or after the batch
    // that puts the new one in: never a batch that only removes it.
    let new_jump = sent
        .iter()
        .position(|c| c.contains("-A PREROUTING -i vnet0") || c.contains("-I PREROUTING -i vnet0"))
        .unwrap_or_else(|| panic!("no new jump for vnet0 in {sent:#?}"));
    let first_removal = sent
        .iter()
        .position(|c| c.contains("-D PREROUTING -i vnet0"))
        .unwrap_or(usize::MAX);
    assert!(
        first_removal >= new_jump,
        "removed before replaced: {sent:#?}"
    );
}

#[test]
fn an_explicit_binding_that_cannot_be_applied_leaves_the_networks_in_force() {
    let s = setup();
    s.service
        .link_event(LinkEvent::Present(link(7, "vnet0", Some(3), None)));
    let bad = explicit("vnet0").replace("allow-arp", "no-such-filter");
    let sent = commands_during(&s, || {
        let err = s.service.binding_create(&bad).unwrap_err().to_string();
        assert!(err.contains("no-such-filter"), "{err}");
    });
    assert!(sent.is_empty(), "the kernel was touched: {sent:#?}");
    assert_eq!(binding(&s, "vnet0"), Some(("no-mac-spoofing".into(), true)));
}
