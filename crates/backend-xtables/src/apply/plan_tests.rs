use super::*;
use crate::apply::kernel::parse_save;
use std::borrow::Cow;

fn port(name: &str) -> IfName {
    IfName::new(name).unwrap()
}

fn chain(family: Family, role: Hook, name: &str, rules: &[&str]) -> RenderedChain {
    RenderedChain {
        family,
        role,
        name: name.to_string(),
        rules: rules
            .iter()
            .map(|r| r.split(' ').map(String::from).collect())
            .collect(),
    }
}

/// A small bridge filter with one sub-chain plus one IPv4 chain set.
fn wanted(dev: &str) -> Desired<'static> {
    let b = Family::Bridge;
    let v4 = Family::Ipv4;
    Desired {
        port: port(dev),
        chains: Cow::Owned(vec![
            chain(
                b,
                Hook::BridgeSub,
                &format!("I-{dev}-ipv4"),
                &["-p IPv4 --ip-src 10.0.0.1 -j RETURN", "-j DROP"],
            ),
            chain(
                b,
                Hook::BridgeRootOut,
                &format!("libvirt-I-{dev}"),
                &[&format!("-p IPv4 -j I-{dev}-ipv4"), "-j DROP"],
            ),
            chain(
                v4,
                Hook::ForwardFromVm,
                &format!("FI-{dev}"),
                &["-p tcp --dport 25 -j DROP"],
            ),
        ]),
        probe: false,
    }
}

fn table(family: Family, text: &str) -> Table {
    parse_save(family, text).unwrap()
}

#[test]
fn a_new_port_is_created_and_hooked_in_one_switch_batch() {
    let empty = Table::default();
    let plan = plan_family(Family::Bridge, &empty, &[wanted("vnet0")]).unwrap();
    assert!(plan.cleanup.is_empty() && plan.build.is_empty());
    assert_eq!(
        plan.switch.text(),
        "*nat
:libvirt-I-vnet0 ACCEPT
:I-vnet0-ipv4 ACCEPT
-A I-vnet0-ipv4 -p IPv4 --ip-src 10.0.0.1 -j RETURN
-A I-vnet0-ipv4 -j DROP
-A libvirt-I-vnet0 -p IPv4 -j I-vnet0-ipv4
-A libvirt-I-vnet0 -j DROP
-A PREROUTING -i vnet0 -j libvirt-I-vnet0
COMMIT
"
    );
    let plan = plan_family(Family::Ipv4, &empty, &[wanted("vnet0")]).unwrap();
    assert_eq!(
        plan.switch.text(),
        "*filter
:libvirt-out - [0:0]
:libvirt-in-post - [0:0]
:libvirt-in - [0:0]
:libvirt-host-in - [0:0]
:FI-vnet0 - [0:0]
-A FI-vnet0 -p tcp --dport 25 -j DROP
-A libvirt-in -m physdev --physdev-in vnet0 -g FI-vnet0
-A libvirt-in-post -m physdev --physdev-in vnet0 -j ACCEPT
-I FORWARD 1 -j libvirt-in
-I FORWARD 2 -j libvirt-out
-I FORWARD 3 -j libvirt-in-post
-I INPUT 1 -j libvirt-host-in
COMMIT
"
    );
    let none = plan_family(Family::Ipv6, &empty, &[wanted("vnet0")]).unwrap();
    assert!(none.cleanup.is_empty() && none.build.is_empty() && none.switch.is_empty());
}

const LIVE_BRIDGE: &str = "*nat
:PREROUTING ACCEPT
:POSTROUTING ACCEPT
:I-vnet0-arp ACCEPT
:libvirt-I-vnet0 ACCEPT
-A PREROUTING -i eth9 -j DROP
-A PREROUTING -i vnet0 -j libvirt-I-vnet0
-A I-vnet0-arp -p ARP -j DROP
-A libvirt-I-vnet0 -p ARP -j I-vnet0-arp
";

#[test]
fn an_update_builds_beside_and_switches_in_one_commit() {
    let live = table(Family::Bridge, LIVE_BRIDGE);
    let plan = plan_family(Family::Bridge, &live, &[wanted("vnet0")]).unwrap();
    assert!(plan.cleanup.is_empty());
    assert_eq!(
        plan.build.text(),
        "*nat
:libvirt-J-vnet0 ACCEPT
:J-vnet0-ipv4 ACCEPT
-A J-vnet0-ipv4 -p IPv4 --ip-src 10.0.0.1 -j RETURN
-A J-vnet0-ipv4 -j DROP
-A libvirt-J-vnet0 -p IPv4 -j J-vnet0-ipv4
-A libvirt-J-vnet0 -j DROP
COMMIT
"
    );
    assert_eq!(plan.built, ["J-vnet0-ipv4", "libvirt-J-vnet0"]);
    // The admin's PREROUTING rule is never touched.
    assert_eq!(
        plan.switch.text(),
        "*nat
-A PREROUTING -i vnet0 -j libvirt-J-vnet0
-D PREROUTING -i vnet0 -j libvirt-I-vnet0
-F I-vnet0-arp
-F libvirt-I-vnet0
-X I-vnet0-arp
-X libvirt-I-vnet0
-E J-vnet0-ipv4 I-vnet0-ipv4
-E libvirt-J-vnet0 libvirt-I-vnet0
COMMIT
"
    );
}

#[test]
fn leftover_temporaries_are_cleaned_first() {
    let text = format!("{LIVE_BRIDGE}:libvirt-J-vnet0 ACCEPT\n:J-vnet0-x ACCEPT\n-A libvirt-J-vnet0 -j J-vnet0-x\n");
    let live = table(Family::Bridge, &text);
    let plan = plan_family(Family::Bridge, &live, &[wanted("vnet0")]).unwrap();
    assert_eq!(
        plan.cleanup.text(),
        "*nat\n-F J-vnet0-x\n-F libvirt-J-vnet0\n-X J-vnet0-x\n-X libvirt-J-vnet0\nCOMMIT\n"
    );
}

const TWO_PORTS_V4: &str = "*filter
:INPUT ACCEPT [0:0]
:FORWARD ACCEPT [0:0]
:FI-vnet0 - [0:0]
:FI-vnet1 - [0:0]
:libvirt-in - [0:0]
:libvirt-out - [0:0]
:libvirt-in-post - [0:0]
:libvirt-host-in - [0:0]
-A INPUT -j libvirt-host-in
-A FORWARD -j libvirt-in
-A FORWARD -j libvirt-out
-A FORWARD -j libvirt-in-post
-A FORWARD -j ADMIN
-A FI-vnet0 -j DROP
-A FI-vnet1 -j DROP
-A libvirt-in -m physdev --physdev-in vnet0 -g FI-vnet0
-A libvirt-in -m physdev --physdev-in vnet1 -g FI-vnet1
-A libvirt-in-post -m physdev --physdev-in vnet0 -j ACCEPT
-A libvirt-in-post -m physdev --physdev-in vnet1 -j ACCEPT
COMMIT
";

fn gone(dev: &str) -> Desired<'static> {
    Desired {
        port: port(dev),
        chains: Cow::Owned(Vec::new()),
        probe: false,
    }
}

#[test]
fn removing_one_port_keeps_the_shared_chains() {
    let live = table(Family::Ipv4, TWO_PORTS_V4);
    let plan = plan_family(Family::Ipv4, &live, &[gone("vnet0")]).unwrap();
    assert_eq!(
        plan.switch.text(),
        "*filter
-D libvirt-in -m physdev --physdev-in vnet0 -g FI-vnet0
-F FI-vnet0
-X FI-vnet0
-D libvirt-in-post -m physdev --physdev-in vnet0 -j ACCEPT
COMMIT
"
    );
}

#[test]
fn removing_the_last_ports_removes_the_shared_chains_and_hooks() {
    let live = table(Family::Ipv4, TWO_PORTS_V4);
    let plan = plan_family(Family::Ipv4, &live, &[gone("vnet0"), gone("vnet1")]).unwrap();
    let text = plan.switch.text();
    assert!(
        text.ends_with(
            "-D FORWARD -j libvirt-in
-D FORWARD -j libvirt-out
-D FORWARD -j libvirt-in-post
-D INPUT -j libvirt-host-in
-X libvirt-in
-X libvirt-out
-X libvirt-in-post
-X libvirt-host-in
COMMIT
"
        ),
        "{text}"
    );
    assert!(!text.contains("ADMIN"));
}

#[test]
fn chain_names_must_be_the_ports_libvirt_names() {
    let mut bad = wanted("vnet0");
    bad.chains.to_mut()[1].name = "libvirt-I-vnet1".into();
    let err = plan_family(Family::Bridge, &Table::default(), &[bad]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "port vnet0: chain \"libvirt-I-vnet1\" is not a libvirt name for a BridgeRootOut chain of this port in the Bridge family"
    );
    let mut wrong_family = wanted("vnet0");
    wrong_family.chains.to_mut()[2].family = Family::Bridge;
    assert!(plan_family(Family::Bridge, &Table::default(), &[wrong_family]).is_err());
}

fn current(family: Family, table: &Table, port: &IfName, chains: &[RenderedChain]) -> bool {
    is_current(family, table, &Hooks::of(family, table), port, chains)
}

#[test]
fn current_state_is_recognised_and_differences_are_not() {
    let live = table(Family::Ipv4, TWO_PORTS_V4);
    let want = vec![chain(
        Family::Ipv4,
        Hook::ForwardFromVm,
        "FI-vnet0",
        &["-j DROP"],
    )];
    assert!(current(Family::Ipv4, &live, &port("vnet0"), &want));
    let longer = vec![chain(
        Family::Ipv4,
        Hook::ForwardFromVm,
        "FI-vnet0",
        &["-j DROP", "-j DROP"],
    )];
    assert!(!current(Family::Ipv4, &live, &port("vnet0"), &longer));
    assert!(!current(Family::Ipv4, &live, &port("vnet0"), &[]));
    assert!(current(Family::Ipv4, &live, &port("vnet7"), &[]));
    let bridge = table(Family::Bridge, LIVE_BRIDGE);
    assert!(!current(
        Family::Bridge,
        &bridge,
        &port("vnet0"),
        &wanted("vnet0").chains
    ));
}

#[test]
fn the_hook_index_answers_as_scanning_the_hook_rules_does() {
    // vnet0 hooked twice, vnet1 once, vnet2's post rule not ACCEPT, vnet3
    // hooked into a chain no port has, a foreign rule in the holders.
    let live = table(
        Family::Ipv4,
        "*filter
:FORWARD ACCEPT [0:0]
:libvirt-in - [0:0]
:libvirt-out - [0:0]
:libvirt-in-post - [0:0]
-A FORWARD -j libvirt-in
-A FORWARD -j libvirt-out
-A FORWARD -j libvirt-in-post
-A libvirt-in -m physdev --physdev-in vnet0 -g FI-vnet0
-A libvirt-in -m physdev --physdev-in vnet0 -g FI-vnet0
-A libvirt-out -m physdev --physdev-out vnet0 -g FO-vnet0
-A libvirt-in -m physdev --physdev-in vnet1 -g FI-vnet1
-A libvirt-in -m physdev --physdev-in vnet3 -g FI-other
-A libvirt-in -p tcp -j ADMIN
-A libvirt-in-post -m physdev --physdev-in vnet0 -j ACCEPT
-A libvirt-in-post -m physdev --physdev-in vnet1 -j ACCEPT
-A libvirt-in-post -m physdev --physdev-in vnet2 -j DROP
COMMIT
",
    );
    let hooks = Hooks::of(Family::Ipv4, &live);
    let chains = |names: &[&str]| -> Vec<(Hook, String)> {
        names
            .iter()
            .map(|n| (Hook::ForwardFromVm, n.to_string()))
            .collect()
    };
    for names in [
        &["FI-vnet0", "FO-vnet0"][..],
        &["FI-vnet0"],
        &["FI-vnet1", "FO-vnet1", "HI-vnet1"],
        &["FI-vnet2"],
        &["FI-other"],
        &["ADMIN"],
        &[],
    ] {
        let chains = chains(names);
        assert_eq!(
            hooks.count_into(&chains),
            hooks_into(Family::Ipv4, &live, &chains).len(),
            "{names:?}"
        );
    }
    for dev in ["vnet0", "vnet1", "vnet2", "vnet3", "vnet9"] {
        assert_eq!(
            hooks.has_in_post(&port(dev)),
            in_post_of(&live, &port(dev)).is_some(),
            "{dev}"
        );
    }
    assert!(!hooks.shared_hooked(), "libvirt-host-in is not hooked");
    assert!(Hooks::of(Family::Ipv4, &table(Family::Ipv4, TWO_PORTS_V4)).shared_hooked());
}

#[test]
fn a_snapshot_puts_back_what_was_there() {
    let live = table(Family::Bridge, LIVE_BRIDGE);
    let old = snapshot_port(Family::Bridge, &live, &port("vnet0"));
    assert_eq!(
        old,
        [
            chain(
                Family::Bridge,
                Hook::BridgeSub,
                "I-vnet0-arp",
                &["-p ARP -j DROP"]
            ),
            chain(
                Family::Bridge,
                Hook::BridgeRootOut,
                "libvirt-I-vnet0",
                &["-p ARP -j I-vnet0-arp"]
            ),
        ]
    );
}

#[test]
fn chains_left_unreferenced_by_a_flush_are_replaced_not_renamed_onto() {
    // `ebtables -t nat -F` empties every chain: the hooks and the root's
    // jumps are gone, the (empty) chains stay.
    let flushed = table(
        Family::Bridge,
        "*nat
:PREROUTING ACCEPT
:POSTROUTING ACCEPT
:I-vnet0-ipv4 ACCEPT
:libvirt-I-vnet0 ACCEPT
",
    );
    let plan = plan_family(Family::Bridge, &flushed, &[wanted("vnet0")]).unwrap();
    let text = format!("{}{}", plan.build.text(), plan.switch.text());
    let delete = text.find("-X I-vnet0-ipv4").expect("orphan deleted");
    let rename = text
        .find("-E J-vnet0-ipv4 I-vnet0-ipv4")
        .expect("new chain renamed into place");
    assert!(delete < rename, "{text}");
}

#[test]
fn filling_a_bare_bridge_table_with_many_chains_leads_with_zero() {
    let ports = |n: usize| {
        (0..n)
            .map(|i| wanted(&format!("vnet{i}")))
            .collect::<Vec<_>>()
    };
    let leads = |table: &Table, family, n| {
        let plan = plan_family(family, table, &ports(n)).unwrap();
        plan.switch.text().starts_with("*nat\n-Z\n")
            || plan.switch.text().starts_with("*filter\n-Z\n")
    };
    let absent = Table::default();
    let bare = table(
        Family::Bridge,
        "*nat\n:PREROUTING ACCEPT\n:POSTROUTING ACCEPT\n",
    );
    // Two bridge chains a port: 32 ports are 64 new chains.
    assert!(leads(&absent, Family::Bridge, 32));
    assert!(leads(&bare, Family::Bridge, 32));
    assert!(
        !leads(&absent, Family::Bridge, 31),
        "few chains: text as before"
    );
    // Another tool's chain or rule: its counters are not ours to zero.
    let foreign_chain = table(Family::Bridge, "*nat\n:PREROUTING ACCEPT\n:other ACCEPT\n");
    let foreign_rule = table(
        Family::Bridge,
        "*nat\n:PREROUTING ACCEPT\n-A PREROUTING -j ACCEPT\n",
    );
    assert!(!leads(&foreign_chain, Family::Bridge, 32));
    assert!(!leads(&foreign_rule, Family::Bridge, 32));
    // iptables alike: one IPv4 chain a port, plus the shared ones.
    assert!(leads(&absent, Family::Ipv4, 64));
    let docker = table(
        Family::Ipv4,
        "*filter\n:FORWARD ACCEPT [0:0]\n:DOCKER - [0:0]\n",
    );
    assert!(!leads(&docker, Family::Ipv4, 64));
}
