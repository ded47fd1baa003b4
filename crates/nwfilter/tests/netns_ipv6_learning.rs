//! IPv6 address learning through the public entry point, in network
//! namespaces with real packets, on both backends (issue 16, items 3
//! and 5). A dual-stack binding gives its IPv4 address and leaves `IPV6`
//! to learning:
//! * `any`: the guest's first use of an address and its duplicate address
//!   detection teach it (a second address too); another port's claim of
//!   a learned address is refused and its packets dropped; the addresses
//!   show in `binding-dumpxml` and survive a restart of the host.
//! * `dhcp`: the address a trusted DHCPv6 server (dnsmasq) assigns is
//!   learned and usable, others are not, a Release removes it; with an
//!   untrusted server nothing is learned and its replies never reach the
//!   guest.

use std::net::IpAddr;
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use netns_lab::{Guest, Lab};
use nwfilter::{BindingBuilder, Created, Event, Firewall, Host, HostConfig, LearningMode, Uuid};

const HOST6: &str = "fd77::1";
/// An address guest A adds later: learned from its duplicate address
/// detection.
const DAD_ADDR: &str = "fd77::a0";
/// Debian's interpreter, where `python3-scapy` installs (a `python3`
/// earlier on PATH may lack it).
const PYTHON: &str = "/usr/bin/python3";
const CLIENT: &str = include_str!("dhcp6_client.py");

#[test]
fn ipv6_is_learned_by_first_use_and_dad_first_come_first_served_with_xtables() {
    any_mode(Firewall::Xtables);
}

#[test]
fn ipv6_is_learned_by_first_use_and_dad_first_come_first_served_with_nftables() {
    any_mode(Firewall::Nftables);
}

#[test]
fn ipv6_is_learned_from_trusted_dhcpv6_replies_only_with_xtables() {
    dhcp_mode(Firewall::Xtables);
}

#[test]
fn ipv6_is_learned_from_trusted_dhcpv6_replies_only_with_nftables() {
    dhcp_mode(Firewall::Nftables);
}

/// The per-port limit (`learn_max_addresses`): with 2, a guest using three
/// addresses gets two learned, and the third stays dropped. The limit is
/// the learner's, the same whichever backend applies the rules.
#[test]
fn a_port_learns_at_most_its_limit_of_ipv6_addresses() {
    if !can_run("ipv6_learning_limit", &[]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::ready(1);
    let a = &lab.guests[0];
    lab.host.ok(&[
        "ip",
        "addr",
        "add",
        &format!("{HOST6}/64"),
        "dev",
        "br0",
        "nodad",
    ]);
    let (sender, _events) = mpsc::channel();
    let host = HostConfig::new(dir.path().join("etc"), dir.path().join("run"))
        .firewall(Firewall::Nftables)
        .network_namespace(lab.host.name.clone())
        .tables_lock(Some(dir.path().join("tables.lock")))
        .rule_check_every(None)
        .learn_max_addresses(2)
        .on_event(move |event| {
            let _ = sender.send(event);
        })
        .open()
        .unwrap();
    host.create_binding(&dualstack(a).build().unwrap()).unwrap();
    let addrs = ["fd77::c1", "fd77::c2", "fd77::c3"];
    for addr in addrs {
        a.ns.ok(&[
            "ip",
            "addr",
            "add",
            &format!("{addr}/64"),
            "dev",
            "eth0",
            "nodad",
        ]);
    }
    let ping_from = |src: &str| {
        a.ns.run(&["ping", "-6", "-c", "1", "-W", "1", "-I", src, HOST6])
            .status
            .success()
    };
    // Each address is used until it passes or, for the third, its
    // packets are seen (and refused) several times.
    let passing: Vec<&str> = addrs
        .into_iter()
        .filter(|addr| (0..4).any(|_| ping_from(addr)))
        .collect();
    let held = learned(&host, &a.port);
    assert_eq!(held.len(), 2, "{held:?}");
    assert!(passing.len() <= 2, "{passing:?} passed with {held:?}");
    assert!(
        addrs
            .iter()
            .any(|addr| !held.contains(&ip(addr)) && !ping_from(addr)),
        "an address beyond the limit stays dropped: {held:?}"
    );
    host.delete_binding(&a.port).unwrap();
}

fn can_run(test: &str, extra: &[&str]) -> bool {
    let mut tools = vec!["nft", "ebtables", "ip6tables"];
    tools.extend_from_slice(extra);
    netns_lab::can_run_with(test, &tools)
}

fn any_mode(firewall: Firewall) {
    if !can_run("ipv6_learning_any", &[]) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // Guests A and B with IPv4 10.77.0.10/11 and IPv6 fd77::10/11.
    let lab = Lab::ready(2);
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    lab.host.ok(&[
        "ip",
        "addr",
        "add",
        &format!("{HOST6}/64"),
        "dev",
        "br0",
        "nodad",
    ]);
    let (host, events) = open(&dir, &lab, firewall);
    for guest in [a, b] {
        let binding = dualstack(guest).build().unwrap();
        assert_eq!(host.create_binding(&binding).unwrap(), Created::Filtering);
    }

    // First use: the first packets from B's and A's addresses are
    // dropped (nothing learned yet) but seen, and teach them.
    assert!(
        retry(|| b.pings6(HOST6)),
        "B's address is learned and passes"
    );
    assert!(
        retry(|| a.pings6(HOST6)),
        "A's address is learned and passes"
    );
    assert!(learned(&host, &b.port).contains(&ip(&b.ip6)));
    assert!(learned(&host, &a.port).contains(&ip(&a.ip6)));

    // DAD: a new address of A is learned from its probe alone.
    a.ns.ok(&[
        "ip",
        "addr",
        "add",
        &format!("{DAD_ADDR}/64"),
        "dev",
        "eth0",
    ]);
    wait_for(&events, |e| learned_event(e, &a.port, DAD_ADDR));
    // The address is usable once the guest's DAD is over (a second).
    assert!(retry(|| !a
        .ns
        .ok(&["ip", "-6", "addr", "show", "dev", "eth0"])
        .lines()
        .any(|l| l.contains(DAD_ADDR) && l.contains("tentative"))));
    assert!(
        a.ns.run(&["ping", "-6", "-c", "2", "-i", "0.2", "-W", "1", "-I", DAD_ADDR, HOST6])
            .status
            .success(),
        "A's second address passes"
    );
    let xml = host.binding_xml(&a.port).unwrap();
    for addr in [a.ip6.as_str(), DAD_ADDR] {
        assert!(
            xml.contains(&format!("<parameter name='IPV6' value='{addr}'/>")),
            "{xml}"
        );
    }

    // B claims A's address: refused, and its packets from it dropped.
    b.ns.ok(&[
        "ip",
        "addr",
        "add",
        &format!("{}/64", a.ip6),
        "dev",
        "eth0",
        "nodad",
    ]);
    for _ in 0..3 {
        assert!(
            !b.ns
                .run(&["ping", "-6", "-c", "1", "-W", "1", "-I", &a.ip6, HOST6])
                .status
                .success(),
            "B cannot use A's learned address"
        );
    }
    assert!(!learned(&host, &b.port).contains(&ip(&a.ip6)));
    assert!(a.pings6(HOST6), "A keeps its address");
    // An address nobody holds is still B's to claim (a second address).
    b.ns.ok(&["ip", "addr", "del", &format!("{}/64", a.ip6), "dev", "eth0"]);
    b.ns.ok(&["ip", "addr", "add", "fd77::b0/64", "dev", "eth0", "nodad"]);
    assert!(retry(|| b
        .ns
        .run(&["ping", "-6", "-c", "1", "-W", "1", "-I", "fd77::b0", HOST6])
        .status
        .success()));

    // A restart: the learned addresses are bound again at once.
    let before = learned(&host, &a.port);
    drop(host);
    let (host, _events) = open(&dir, &lab, firewall);
    host.reload().unwrap();
    assert_eq!(learned(&host, &a.port), before);
    let xml = host.binding_xml(&a.port).unwrap();
    assert!(
        xml.contains(&format!("<parameter name='IPV6' value='{DAD_ADDR}'/>")),
        "{xml}"
    );
    assert!(a.pings6(HOST6), "A's addresses pass after the restart");
    assert!(
        !learned(&host, &b.port).contains(&ip(&a.ip6)),
        "B still holds nothing of A's"
    );
    for guest in [a, b] {
        host.delete_binding(&guest.port).unwrap();
    }
    let ruleset = lab.ruleset();
    assert!(!ruleset.contains(&a.port), "{ruleset}");
}

fn dhcp_mode(firewall: Firewall) {
    if !can_run("ipv6_learning_dhcp", &["dnsmasq", PYTHON]) || !has_scapy() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let lab = Lab::with_guests(&[Some("10.77.0.10"), Some("10.77.0.11")]);
    lab.wait_ready();
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    lab.host.ok(&[
        "ip",
        "addr",
        "add",
        &format!("{HOST6}/64"),
        "dev",
        "br0",
        "nodad",
    ]);
    let _server = lab.dnsmasq_v6(dir.path(), "2m");
    let server = link_local(&lab.host, "br0");
    let (host, events) = open(&dir, &lab, firewall);
    // A trusts the server that answers; B trusts another one.
    let trusting = |guest: &Guest, trusted: &str| {
        dualstack(guest)
            .learning(LearningMode::Dhcp)
            .parameter("DHCPSERVERV6", trusted)
            .build()
            .unwrap()
    };
    host.create_binding(&trusting(a, &server)).unwrap();
    host.create_binding(&trusting(b, "fe80::99")).unwrap();

    // A: its link-local address is learned from its first Solicit, the
    // exchange goes through, and the assigned address is learned.
    let a_ll = link_local(&a.ns, "eth0");
    let assigned = client(a, &["lease", &a_ll, "10"]);
    assert!(
        assigned.starts_with("fd77::1"),
        "a lease from dnsmasq: {assigned}"
    );
    wait_for(&events, |e| learned_event(e, &a.port, &assigned));
    let held = learned(&host, &a.port);
    assert!(held.contains(&ip(&a_ll)), "{held:?}");
    a.ns.ok(&[
        "ip",
        "addr",
        "add",
        &format!("{assigned}/64"),
        "dev",
        "eth0",
        "nodad",
    ]);
    a.ns.ok(&["ip", "addr", "add", "fd77::99/64", "dev", "eth0", "nodad"]);
    let ping_from = |src: &str| {
        a.ns.run(&[
            "ping", "-6", "-c", "2", "-i", "0.2", "-W", "1", "-I", src, HOST6,
        ])
        .status
        .success()
    };
    assert!(ping_from(&assigned), "the assigned address passes");
    assert!(!ping_from("fd77::99"), "an address not assigned does not");
    assert!(!learned(&host, &a.port).contains(&ip("fd77::99")));

    // A Release gives it back.
    client(a, &["release", &a_ll, &assigned]);
    wait_for(&events, |e| {
        matches!(e, Event::AddressesLearned { port, addresses }
            if port == &a.port && !addresses.contains(&ip(&assigned)))
    });
    assert!(!ping_from(&assigned), "released: dropped again");

    // B: the server is not the one it trusts. Its replies never reach B
    // and teach nothing.
    let b_ll = link_local(&b.ns, "eth0");
    assert_eq!(client(b, &["lease", &b_ll, "4"]), "none");
    let held = learned(&host, &b.port);
    // Its link-local address was learned from its first Solicit, so the
    // later ones went out: the Advertise was dropped on the way back.
    assert!(held.contains(&ip(&b_ll)), "{held:?}");
    assert!(
        held.iter().all(|a| a.to_string().starts_with("fe80:")),
        "{held:?}"
    );
    for guest in [a, b] {
        host.delete_binding(&guest.port).unwrap();
    }
}

/// Whether Debian's python3-scapy is installed; skips (with the reason)
/// when not, except under CI, where that is a failure.
fn has_scapy() -> bool {
    let ok = std::process::Command::new(PYTHON)
        .args(["-c", "import scapy"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let why = "python3-scapy is not installed";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
        netns_lab::note_skip("ipv6_learning_dhcp", why);
    }
    ok
}

/// clean-traffic-dualstack for `guest` with its IPv4 address given and
/// `IPV6` left to learning.
fn dualstack(guest: &Guest) -> BindingBuilder {
    let vm = Uuid::parse_str("d54df46f-1ab5-4a22-8618-4560ef5fac2c").unwrap();
    BindingBuilder::new(
        format!("vm-{}", guest.port),
        vm,
        &guest.port,
        &guest.mac,
        "clean-traffic-dualstack",
    )
    .ip(guest.ip.parse().unwrap())
}

fn open(dir: &tempfile::TempDir, lab: &Lab, firewall: Firewall) -> (Host, Receiver<Event>) {
    let (sender, events) = mpsc::channel();
    let host = HostConfig::new(dir.path().join("etc"), dir.path().join("run"))
        .firewall(firewall)
        .network_namespace(lab.host.name.clone())
        .tables_lock(Some(dir.path().join("tables.lock")))
        .rule_check_every(None)
        .on_event(move |event| {
            let _ = sender.send(event);
        })
        .open()
        .unwrap();
    (host, events)
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// The port's learned addresses, as `binding-list` shows them.
fn learned(host: &Host, port: &str) -> Vec<IpAddr> {
    host.bindings()
        .unwrap()
        .into_iter()
        .find(|b| b.port == port)
        .map(|b| b.learned)
        .unwrap_or_default()
}

fn learned_event(event: &Event, on: &str, addr: &str) -> bool {
    matches!(event, Event::AddressesLearned { port, addresses }
        if port == on && addresses.contains(&ip(addr)))
}

/// Tries `f` until it succeeds, for at most 10 seconds: the first packets
/// of an address not learned yet are dropped.
fn retry(f: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
    }
    false
}

/// The first event `wanted` accepts, within 15 seconds.
fn wait_for(events: &Receiver<Event>, wanted: impl Fn(&Event) -> bool) -> Event {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match events.recv_timeout(left) {
            Ok(event) if wanted(&event) => return event,
            Ok(_) => {}
            Err(e) => panic!("no such event in time: {e}"),
        }
    }
}

/// The link-local address of `dev` in `ns`.
fn link_local(ns: &netns_lab::Netns, dev: &str) -> String {
    let out = ns.ok(&[
        "ip", "-6", "-o", "addr", "show", "dev", dev, "scope", "link",
    ]);
    out.split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .and_then(|cidr| cidr.split('/').next())
        .unwrap_or_else(|| panic!("no link-local address on {dev}: {out}"))
        .to_owned()
}

/// Runs dhcp6_client.py in `guest`'s namespace; its printed line.
fn client(guest: &Guest, args: &[&str]) -> String {
    let mut argv = vec![PYTHON, "-c", CLIENT];
    argv.extend_from_slice(args);
    let out = guest.ns.run(&argv);
    assert!(
        out.status.success(),
        "dhcp6_client.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}
