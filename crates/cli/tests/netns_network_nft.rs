//! End to end, on both firewall backends: virtual networks started by
//! `nwfilter net-start` with `backend = nftables` (our table `inet
//! nwfilter-net`) and `backend = xtables` (libvirt's iptables rules), each
//! also beside a Docker-like `FORWARD` policy DROP with its `DOCKER-USER`
//! chain and a ufw-like `INPUT` policy DROP (both in iptables-nft's
//! `filter` table, as those tools leave them). Destroy must leave the
//! whole nftables ruleset (`nft -s list ruleset`) as it was.
//!
//! Same lab and needs as `netns_network.rs` (plus `nft`); skips with the
//! reason otherwise, and fails instead under `CI=true`.

mod network_lab;

use network_lab::*;

const BACKENDS: [&str; 2] = ["nftables", "xtables"];

/// A lab on `backend`, with the other tools' firewalls when `crowded`;
/// returns it with the ruleset destroy must bring back.
fn lab_on(backend: &str, crowded: bool) -> (Lab, String) {
    let lab = Lab::new();
    lab.set_backend(backend);
    if backend == "xtables" {
        lab.with_iptables_tables();
    }
    if crowded {
        lab.docker_like_firewall();
        lab.ufw_like_firewall();
    }
    let before = lab.nft_ruleset();
    (lab, before)
}

fn can_run_nft(test: &str) -> bool {
    can_run(test) && netns_lab::can_run_with(test, &["nft"])
}

#[test]
fn isolated_network_serves_dhcp_and_dns_and_stays_isolated_on_both_backends() {
    if !can_run_nft("isolated_network_serves_dhcp_and_dns_and_stays_isolated_on_both_backends") {
        return;
    }
    for (backend, crowded) in BACKENDS.iter().flat_map(|b| [(*b, false), (*b, true)]) {
        let (lab, before) = lab_on(backend, crowded);
        // A host that forwards anyway: only our rules keep the guest in.
        lab.host.ok(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
        lab.outside
            .ok(&["ip", "route", "add", "10.77.0.0/24", "via", "198.51.100.1"]);
        let net = lab.start(&network(""));
        assert_dhcp_and_dns(&lab);
        let server = lab.outside.tcp_server("198.51.100.2", "8080");
        assert!(
            !lab.guest.connects("198.51.100.2", "8080"),
            "{backend} (crowded: {crowded}): an isolated guest reached the outside"
        );
        drop(server);
        net.destroy();
        assert_eq!(lab.nft_ruleset(), before, "{backend} (crowded: {crowded})");
    }
}

#[test]
fn nat_network_reaches_out_as_the_host_on_both_backends_beside_docker_and_ufw() {
    if !can_run_nft("nat_network_reaches_out_as_the_host_on_both_backends_beside_docker_and_ufw") {
        return;
    }
    for (backend, crowded) in BACKENDS.iter().flat_map(|b| [(*b, false), (*b, true)]) {
        let (lab, before) = lab_on(backend, crowded);
        lab.outside
            .ok(&["ip", "route", "add", "10.77.0.0/24", "via", "198.51.100.1"]);
        let net = lab.start(&network("<forward mode='nat' dev='up0'/>"));
        assert_dhcp_and_dns(&lab);
        let server = lab.outside.tcp_server("198.51.100.2", "8080");
        assert!(
            lab.guest.connects("198.51.100.2", "8080"),
            "{backend} (crowded: {crowded}): the guest cannot reach the outside\n{}",
            lab.nft_ruleset()
        );
        assert_eq!(
            server.peer().as_deref(),
            Some("198.51.100.1"),
            "{backend}: masqueraded to the uplink address"
        );
        let inside = lab.guest.tcp_server(GUEST_IP, "8081");
        assert!(
            !lab.outside.connects(GUEST_IP, "8081"),
            "{backend} (crowded: {crowded}): the outside opened a connection to a NAT guest"
        );
        drop(inside);
        net.destroy();
        assert_eq!(lab.nft_ruleset(), before, "{backend} (crowded: {crowded})");
    }
}

#[test]
fn routed_network_keeps_the_guests_address_on_both_backends_beside_docker_and_ufw() {
    if !can_run_nft(
        "routed_network_keeps_the_guests_address_on_both_backends_beside_docker_and_ufw",
    ) {
        return;
    }
    for (backend, crowded) in BACKENDS.iter().flat_map(|b| [(*b, false), (*b, true)]) {
        let (lab, before) = lab_on(backend, crowded);
        lab.outside
            .ok(&["ip", "route", "add", "10.77.0.0/24", "via", "198.51.100.1"]);
        let net = lab.start(&network("<forward mode='route'/>"));
        assert_dhcp_and_dns(&lab);
        let server = lab.outside.tcp_server("198.51.100.2", "8080");
        assert!(
            lab.guest.connects("198.51.100.2", "8080"),
            "{backend} (crowded: {crowded}): the guest cannot reach the outside"
        );
        assert_eq!(
            server.peer().as_deref(),
            Some(GUEST_IP),
            "{backend}: routed, not masqueraded"
        );
        net.destroy();
        assert_eq!(lab.nft_ruleset(), before, "{backend} (crowded: {crowded})");
    }
}

#[test]
fn nftables_network_lives_in_our_table_only_and_takes_it_away() {
    if !can_run_nft("nftables_network_lives_in_our_table_only_and_takes_it_away") {
        return;
    }
    let (lab, before) = lab_on("nftables", false);
    assert_eq!(before, "", "a fresh namespace has no ruleset");
    let net = lab.start(&network("<forward mode='nat' dev='up0'/>"));
    let during = lab.nft_ruleset();
    assert!(during.starts_with("table inet nwfilter-net {"), "{during}");
    assert_eq!(
        during.matches("\ntable ").count(),
        0,
        "one table only: {during}"
    );
    assert!(during.contains("chain fwd-virbr0") && during.contains("chain nat-virbr0"));
    net.destroy();
    assert_eq!(lab.nft_ruleset(), "");
}

#[test]
fn switching_the_backend_moves_a_running_network_make_before_break() {
    if !can_run_nft("switching_the_backend_moves_a_running_network_make_before_break") {
        return;
    }
    let (lab, before) = lab_on("xtables", true);
    lab.outside
        .ok(&["ip", "route", "add", "10.77.0.0/24", "via", "198.51.100.1"]);
    let net = lab.start(&network("<forward mode='nat' dev='up0'/>"));
    lab.configure_guest();
    assert!(lab.nft_ruleset().contains("LIBVIRT_FWO"));

    lab.set_backend("nftables");
    let reloaded = lab.nwfilter_ok(&["reload"]);
    assert!(
        reloaded.contains("network lab: firewall rules re-added"),
        "{reloaded}"
    );
    let moved = lab.nft_ruleset();
    assert!(moved.contains("table inet nwfilter-net"), "{moved}");
    assert!(!moved.contains("LIBVIRT_"), "iptables rules left: {moved}");
    let server = lab.outside.tcp_server("198.51.100.2", "8080");
    assert!(lab.guest.connects("198.51.100.2", "8080"), "{moved}");
    assert_eq!(server.peer().as_deref(), Some("198.51.100.1"));

    lab.set_backend("xtables");
    lab.nwfilter_ok(&["reload"]);
    let back = lab.nft_ruleset();
    assert!(
        !back.contains("nwfilter-net") && back.contains("LIBVIRT_FWO"),
        "{back}"
    );
    net.destroy();
    assert_eq!(lab.nft_ruleset(), before);
}

/// A firewall written for nftables (as NixOS makes it): its own table,
/// input and forward policy drop. Nothing in another table can overrule it.
const NIXOS_LIKE: &str = "table inet nixos-fw {
  chain input {
    type filter hook input priority filter; policy drop;
    iifname \"lo\" accept
    ct state established,related accept
    tcp dport 22 accept
  }
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
  }
}
";

fn doctor(lab: &Lab) -> serde_json::Value {
    serde_json::from_str(&lab.nwfilter_ok(&["doctor", "--json"])).unwrap()
}

/// The finding of `probe` for chain `table chain` in a doctor report.
fn finding<'r>(
    report: &'r serde_json::Value,
    table: &str,
    chain: &str,
    probe: &str,
) -> &'r serde_json::Value {
    report["chains"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["table"] == table && c["chain"] == chain)
        .and_then(|c| {
            c["findings"]
                .as_array()
                .unwrap()
                .iter()
                .find(|f| f["probe"] == probe)
        })
        .unwrap_or_else(|| panic!("no {probe} finding for {table} {chain}: {report:#}"))
}

#[test]
fn doctor_names_the_chains_that_drop_and_what_is_done_about_them() {
    if !can_run_nft("doctor_names_the_chains_that_drop_and_what_is_done_about_them") {
        return;
    }
    let (lab, _) = lab_on("nftables", true);
    let file = lab.dirs.path().join("nixos.nft");
    std::fs::write(&file, NIXOS_LIKE).unwrap();
    lab.host.ok(&["nft", "-f", file.to_str().unwrap()]);
    let xml = lab.dirs.path().join("net.xml");
    std::fs::write(&xml, network("<forward mode='nat' dev='up0'/>")).unwrap();
    lab.nwfilter_ok(&["net-define", xml.to_str().unwrap()]);

    let before = doctor(&lab);
    let input = finding(&before, "filter", "INPUT", "dhcp");
    assert_eq!(input["decision"], "dropped-by-policy", "{input:#}");
    let nixos = finding(&before, "nixos-fw", "input", "dhcp");
    assert_eq!(nixos["decision"], "dropped-by-policy", "{nixos:#}");
    let problems = before["problems"].as_array().unwrap();
    // Only the nft firewall's chains: iptables' are handled at start.
    assert_eq!(problems.len(), 3, "{problems:#?}");
    assert!(problems
        .iter()
        .all(|p| p.as_str().unwrap().contains("inet nixos-fw")));

    let net = lab.start(&network("<forward mode='nat' dev='up0'/>"));
    let after = doctor(&lab);
    let input = finding(&after, "filter", "INPUT", "dhcp");
    assert_eq!(input["decision"], "accepted", "{input:#}");
    assert_eq!(
        input["rule"]["text"],
        "iifname \"virbr0\" udp dport 67 accept"
    );
    let forward = finding(&after, "filter", "FORWARD", "forward");
    assert_eq!(forward["decision"], "accepted", "{forward:#}");
    assert_eq!(after["problems"].as_array().unwrap().len(), 3);
    // What the doctor says is what the kernel does: the nft firewall
    // still drops the guest's DHCP.
    let offer = lab.guest.python(DHCP_DISCOVER, &["g0", GUEST_MAC]);
    assert!(
        !offer.status.success(),
        "DHCP passed a policy-drop input chain"
    );
    lab.host.ok(&["nft", "delete", "table", "inet", "nixos-fw"]);
    assert_dhcp_and_dns(&lab);
    let text = lab.nwfilter_ok(&["doctor"]);
    assert!(
        text.contains("No chain drops a guest's DHCP, DNS or forwarded traffic."),
        "{text}"
    );
    net.destroy();
}

#[test]
fn ipv6_nat_on_nftables_masquerades_beside_an_ip6tables_forward_drop() {
    if !can_run_nft("ipv6_nat_on_nftables_masquerades_beside_an_ip6tables_forward_drop") {
        return;
    }
    let (lab, _) = lab_on("nftables", false);
    // Docker's IPv6 side: ip6tables FORWARD policy DROP.
    lab.host.ok(&["ip6tables", "-w", "-P", "FORWARD", "DROP"]);
    let before = lab.nft_ruleset();
    for (ns, addr, dev) in [
        (&lab.host, "2001:db8:1::1/64", "up0"),
        (&lab.outside, "2001:db8:1::2/64", "out0"),
    ] {
        ns.ok(&["ip", "addr", "add", addr, "dev", dev, "nodad"]);
    }
    let xml = network("<forward mode='nat' dev='up0'><nat ipv6='yes'/></forward>").replace(
        "</network>",
        "<ip family='ipv6' address='2001:db8:77::1' prefix='64'/></network>",
    );
    let net = lab.start(&xml);
    let during = lab.nft_ruleset();
    assert!(
        during.contains(
            "ip6 saddr 2001:db8:77::/64 ip6 daddr != 2001:db8:77::/64 oifname \"up0\" masquerade"
        ),
        "{during}"
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
    // The bridge's address is tentative until duplicate address detection
    // is over (about a second): retry for a while.
    let reached = (0..10).any(|attempt| {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        lab.guest.connects("2001:db8:1::2", "8080")
    });
    assert!(
        reached,
        "the guest cannot reach the outside over IPv6\n{during}"
    );
    assert_eq!(server.peer().as_deref(), Some("2001:db8:1::1"));
    net.destroy();
    assert_eq!(lab.nft_ruleset(), before);
}

#[test]
fn reloads_on_nftables_keep_the_rules_as_they_are_and_put_flushed_accepts_back() {
    if !can_run_nft("reloads_on_nftables_keep_the_rules_as_they_are_and_put_flushed_accepts_back") {
        return;
    }
    let (lab, before) = lab_on("nftables", true);
    let net = lab.start(&network("<forward mode='nat' dev='up0'/>"));
    let started = lab.nft_ruleset();
    for _ in 0..2 {
        lab.nwfilter_ok(&["reload"]);
        assert_eq!(lab.nft_ruleset(), started, "one copy of each rule");
    }
    // Someone rebuilds the iptables chains: a reload puts our accepts back.
    lab.host.ok(&["iptables", "-w", "-F", "INPUT"]);
    lab.host
        .ok(&["iptables", "-w", "-A", "INPUT", "-j", "ufw-before-input"]);
    lab.nwfilter_ok(&["reload"]);
    assert_eq!(lab.nft_ruleset(), started);
    assert_dhcp_and_dns(&lab);
    net.destroy();
    assert_eq!(lab.nft_ruleset(), before);
}
