//! End to end: virtual networks started by `nwfilter net-start` in network
//! namespaces this test creates and removes (Drop guards, also on failure).
//!
//! Topology per test: namespace H runs the network (bridge `virbr0`);
//! guest G hangs off the bridge through a veth; outside O stands for the
//! LAN, joined to H by the uplink veth `up0` (198.51.100.1 ↔ .2). Small
//! Python helpers act as DHCP client, DNS client and TCP endpoints.
//!
//! Needs root, `ip`, `iptables`, `ip6tables`, `dnsmasq`, `python3` and
//! `busybox` (its `nslookup` is the guest's resolver); skips with the
//! reason otherwise, and fails instead under `CI=true`.

mod network_lab;

use network_lab::*;

#[test]
fn isolated_network_serves_dhcp_and_dns_but_no_way_out() {
    if !can_run("isolated_network_serves_dhcp_and_dns_but_no_way_out") {
        return;
    }
    let lab = Lab::new();
    // A host that forwards anyway: only our rules keep the guest in.
    lab.host.ok(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    lab.outside
        .ok(&["ip", "route", "add", "10.77.0.0/24", "via", "198.51.100.1"]);
    let net = lab.start(&network(""));

    let offer = lab.guest.python(DHCP_DISCOVER, &["g0", GUEST_MAC]);
    assert!(
        offer.status.success(),
        "no DHCP offer: {}",
        String::from_utf8_lossy(&offer.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&offer.stdout).trim(),
        GUEST_IP,
        "the static host's address"
    );

    lab.configure_guest();
    let answer = lab.guest.python(DNS_QUERY, &["db.lab.test", "10.77.0.1"]);
    assert!(
        answer.status.success(),
        "no DNS answer: {}",
        String::from_utf8_lossy(&answer.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&answer.stdout).trim(), "10.77.0.99");

    lab.guest.ok(&["ping", "-c1", "-W2", "10.77.0.1"]);
    let server = lab.outside.tcp_server("198.51.100.2", "8080");
    assert!(
        !lab.guest.connects("198.51.100.2", "8080"),
        "an isolated guest reached the outside"
    );
    drop(server);

    let pid = lab.dnsmasq_pid().expect("dnsmasq runs");
    assert!(pid_alive(pid));
    net.destroy();
    assert!(!pid_alive(pid), "dnsmasq stopped");
    assert!(
        !lab.host
            .run(&["ip", "link", "show", "virbr0"])
            .status
            .success(),
        "bridge gone"
    );
    let rules = lab.ruleset();
    assert!(
        !rules.contains("virbr0") && !rules.contains("10.77.0."),
        "rules left:\n{rules}"
    );
}

/// `busybox nslookup NAME SERVER` from the guest: the addresses it printed
/// for NAME, or the failure.
fn resolve(lab: &Lab, name: &str, server: &str) -> Result<Vec<String>, String> {
    let out = lab
        .guest
        .run(&["busybox", "nslookup", "-type=a", name, server]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!("{text}{}", String::from_utf8_lossy(&out.stderr)));
    }
    // The first "Address:" line is the server's own.
    Ok(text
        .lines()
        .filter_map(|l| l.strip_prefix("Address:"))
        .skip(1)
        .map(|a| a.trim().to_owned())
        .collect())
}

#[test]
fn nat_network_answers_its_dns_hosts_and_static_leases_from_a_private_state_dir() {
    if !can_run("nat_network_answers_its_dns_hosts_and_static_leases_from_a_private_state_dir") {
        return;
    }
    let lab = Lab::new();
    // As `mktemp -d` or a root-only /var/lib makes it: dnsmasq's
    // unprivileged user cannot enter the state directory.
    std::fs::set_permissions(
        lab.dirs.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let net = lab.start(&network("<forward mode='nat' dev='up0'/>"));

    lab.configure_guest();
    for name in ["db.lab.test", "db"] {
        assert_eq!(
            resolve(&lab, name, "10.77.0.1").as_deref(),
            Ok(&["10.77.0.99".to_owned()][..]),
            "{name}"
        );
    }
    let offer = lab.guest.python(DHCP_DISCOVER, &["g0", GUEST_MAC]);
    assert_eq!(
        String::from_utf8_lossy(&offer.stdout).trim(),
        GUEST_IP,
        "the static host's address: {}",
        String::from_utf8_lossy(&offer.stderr)
    );
    net.destroy();
}

#[test]
fn nat_network_reaches_out_as_the_host_even_behind_a_forward_drop_policy() {
    if !can_run("nat_network_reaches_out_as_the_host_even_behind_a_forward_drop_policy") {
        return;
    }
    let lab = Lab::new();
    // Another tool's firewall: forwarded traffic is dropped by default.
    lab.host.ok(&["iptables", "-P", "FORWARD", "DROP"]);
    lab.outside
        .ok(&["ip", "route", "add", "10.77.0.0/24", "via", "198.51.100.1"]);
    let net = lab.start(&network("<forward mode='nat' dev='up0'/>"));
    lab.configure_guest();

    let server = lab.outside.tcp_server("198.51.100.2", "8080");
    assert!(
        lab.guest.connects("198.51.100.2", "8080"),
        "the guest cannot reach the outside"
    );
    assert_eq!(
        server.peer().as_deref(),
        Some("198.51.100.1"),
        "masqueraded to the uplink address"
    );

    let inside = lab.guest.tcp_server(GUEST_IP, "8081");
    assert!(
        !lab.outside.connects(GUEST_IP, "8081"),
        "the outside opened a connection to a NAT guest"
    );
    drop(inside);

    net.destroy();
    let rules = lab.ruleset();
    assert!(
        !rules.contains("virbr0") && !rules.contains("10.77.0."),
        "rules left:\n{rules}"
    );
}

#[test]
fn routed_network_shows_the_guests_own_address() {
    if !can_run("routed_network_shows_the_guests_own_address") {
        return;
    }
    let lab = Lab::new();
    lab.outside
        .ok(&["ip", "route", "add", "10.77.0.0/24", "via", "198.51.100.1"]);
    let net = lab.start(&network("<forward mode='route'/>"));
    lab.configure_guest();

    let server = lab.outside.tcp_server("198.51.100.2", "8080");
    assert!(lab.guest.connects("198.51.100.2", "8080"));
    assert_eq!(
        server.peer().as_deref(),
        Some(GUEST_IP),
        "routed, not masqueraded"
    );
    net.destroy();
}

#[test]
fn a_second_start_a_taken_bridge_and_an_overlapping_route_are_refused_without_side_effects() {
    if !can_run(
        "a_second_start_a_taken_bridge_and_an_overlapping_route_are_refused_without_side_effects",
    ) {
        return;
    }
    let lab = Lab::new();
    let net = lab.start(&network(""));
    let before = lab.ruleset();
    let again = lab.nwfilter(&["net-start", "lab"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already running"));
    assert_eq!(lab.ruleset(), before, "nothing changed");
    net.destroy();

    lab.host
        .ok(&["ip", "link", "add", "virbr0", "type", "bridge"]);
    let taken = lab.nwfilter(&["net-start", "lab"]);
    assert!(!taken.status.success());
    let err = String::from_utf8_lossy(&taken.stderr);
    assert!(
        err.contains("virbr0") && err.contains("already exists"),
        "{err}"
    );
    assert!(!lab.ruleset().contains("10.77.0."), "no rules were added");
    lab.host.ok(&["ip", "link", "del", "virbr0"]);

    lab.host
        .ok(&["ip", "route", "add", "10.77.0.0/16", "via", "198.51.100.2"]);
    let overlap = lab.nwfilter(&["net-start", "lab"]);
    assert!(!overlap.status.success());
    let err = String::from_utf8_lossy(&overlap.stderr);
    assert!(err.contains("10.77.0.0/16") && err.contains("up0"), "{err}");
    assert!(
        !lab.host
            .run(&["ip", "link", "show", "virbr0"])
            .status
            .success(),
        "no bridge was created"
    );
    assert!(!lab.ruleset().contains("10.77.0."), "no rules were added");
}

#[test]
fn ipv6_nat_masquerades_guests_to_the_uplink_address() {
    if !can_run("ipv6_nat_masquerades_guests_to_the_uplink_address") {
        return;
    }
    let lab = Lab::new();
    lab.host.ok(&[
        "ip",
        "addr",
        "add",
        "2001:db8:1::1/64",
        "dev",
        "up0",
        "nodad",
    ]);
    lab.outside.ok(&[
        "ip",
        "addr",
        "add",
        "2001:db8:1::2/64",
        "dev",
        "out0",
        "nodad",
    ]);
    let xml = network("<forward mode='nat' dev='up0'><nat ipv6='yes'/></forward>").replace(
        "</network>",
        "<ip family='ipv6' address='2001:db8:77::1' prefix='64'/></network>",
    );
    let net = lab.start(&xml);
    let v6 = lab.host.ok(&["ip6tables-save"]);
    assert!(
        v6.contains(
            "-A LIBVIRT_PRT -s 2001:db8:77::/64 ! -d 2001:db8:77::/64 -o up0 -j MASQUERADE"
        ),
        "IPv6 masquerading missing:\n{v6}"
    );
    lab.guest.ok(&[
        "ip",
        "addr",
        "add",
        "2001:db8:77::10/64",
        "dev",
        "g0",
        "nodad",
    ]);
    lab.guest.ok(&[
        "ip",
        "-6",
        "route",
        "add",
        "default",
        "via",
        "2001:db8:77::1",
    ]);

    let server = lab.outside.tcp_server("2001:db8:1::2", "8080");
    // The bridge's own address is tentative until duplicate address
    // detection is over (about a second): retry for a while.
    let reached = (0..10).any(|attempt| {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        lab.guest.connects("2001:db8:1::2", "8080")
    });
    assert!(reached, "the guest cannot reach the outside over IPv6");
    assert_eq!(server.peer().as_deref(), Some("2001:db8:1::1"));
    net.destroy();
    let v6 = lab.host.ok(&["ip6tables-save"]);
    assert!(
        !v6.contains("virbr0") && !v6.contains("2001:db8:77"),
        "rules left:\n{v6}"
    );
}

/// The host namespace's iptables and ip6tables rulesets, without the
/// comment lines and the counters the traffic of a test changes.
fn both_rulesets(lab: &Lab) -> String {
    let mut text = String::new();
    for tool in ["iptables-save", "ip6tables-save"] {
        for line in lab.host.ok(&[tool]).lines() {
            if line.starts_with('#') {
                continue;
            }
            // ":INPUT ACCEPT [12:345]" -> ":INPUT ACCEPT"
            let line = match line.rfind(" [") {
                Some(at) if line.starts_with(':') => &line[..at],
                _ => line,
            };
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

/// The host's own firewall before any network: a rule in each table the
/// networks use, for both families. (The tables themselves, once made by
/// iptables-nft, outlive their last rule: only chains and rules can be
/// taken back with the iptables tools.)
fn add_host_rules(lab: &Lab) {
    for tool in ["iptables", "ip6tables"] {
        for (table, chain, dev) in [
            ("filter", "INPUT", "-i"),
            ("filter", "FORWARD", "-i"),
            ("filter", "OUTPUT", "-o"),
            ("nat", "POSTROUTING", "-o"),
            ("mangle", "POSTROUTING", "-o"),
        ] {
            lab.host.ok(&[
                tool, "-w", "-t", table, "-A", chain, dev, "lo", "-j", "RETURN",
            ]);
        }
    }
}

#[test]
fn destroying_the_last_network_leaves_the_firewall_as_it_was() {
    if !can_run("destroying_the_last_network_leaves_the_firewall_as_it_was") {
        return;
    }
    let lab = Lab::new();
    add_host_rules(&lab);
    let before = both_rulesets(&lab);
    let ipv6 = network("<forward mode='nat' dev='up0'><nat ipv6='yes'/></forward>").replace(
        "</network>",
        "<ip family='ipv6' address='2001:db8:77::1' prefix='64'/></network>",
    );
    for xml in [network("<forward mode='nat' dev='up0'/>"), ipv6] {
        let net = lab.start(&xml);
        let during = both_rulesets(&lab);
        assert!(during.contains("-A FORWARD -j LIBVIRT_FWX"), "{during}");
        net.destroy();
        assert_eq!(both_rulesets(&lab), before, "after destroying\n{xml}");
    }
}

#[test]
fn private_chains_created_by_someone_else_stay() {
    if !can_run("private_chains_created_by_someone_else_stay") {
        return;
    }
    let lab = Lab::new();
    add_host_rules(&lab);
    // As a libvirtd that set up its chains would leave them.
    for tool in ["iptables", "ip6tables"] {
        lab.host.ok(&[tool, "-w", "-N", "LIBVIRT_FWX"]);
        lab.host
            .ok(&[tool, "-w", "-I", "FORWARD", "-j", "LIBVIRT_FWX"]);
    }
    let before = both_rulesets(&lab);
    lab.start(&network("<forward mode='nat' dev='up0'/>"))
        .destroy();
    let after = both_rulesets(&lab);
    assert!(after.contains(":LIBVIRT_FWX"), "{after}");
    assert!(after.contains("-A FORWARD -j LIBVIRT_FWX"), "{after}");
    assert!(!after.contains("LIBVIRT_FWI"), "{after}");
    assert_eq!(after, before);
}
