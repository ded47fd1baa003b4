//! clean-traffic-dualstack against real IPv6 packets (issue 16, items 2,
//! 4 and 5): each attack is first shown to work on an unfiltered port,
//! then to fail once the guest's port is filtered; and what a normal
//! dual-stack guest needs keeps working. Forged frames are built with
//! scapy (`forge6.py`, Debian `python3-scapy`).

use std::process::Output;
use std::time::{Duration, Instant};

use nwfilter_compile::ir::Program;

use crate::backend::{Backend, Firewall};
use crate::support::{program, Background, Guest, Lab, Scratch, SPOOFED_IP};

const FORGE: &str = include_str!("forge6.py");
/// Debian's interpreter, where `python3-scapy` installs (a `python3`
/// earlier on PATH may be another one).
const PYTHON: &str = "/usr/bin/python3";
/// A guest's MAC that no filter allows.
const SPOOFED_MAC: &str = "52:54:00:00:00:99";
/// An IPv6 address in the lab's prefix that no filter allows.
const SPOOFED_IP6: &str = "fd77::99";
/// The host's address on the bridge.
const HOST_IP6: &str = "fd77::1";

/// A lab whose host has `HOST_IP6` and whose guests' link-local addresses
/// are usable (duplicate address detection over).
fn lab(guests: usize) -> Lab {
    let lab = Lab::with_admin_rules(guests);
    let cidr = format!("{HOST_IP6}/64");
    lab.host
        .ok(&["ip", "addr", "add", &cidr, "dev", "br0", "nodad"]);
    for guest in &lab.guests {
        link_local(guest);
    }
    lab
}

/// The guest's link-local address, once no longer tentative.
fn link_local(guest: &Guest) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let shown = guest.ns.ok(&[
            "ip", "-6", "-o", "addr", "show", "dev", "eth0", "scope", "link",
        ]);
        let ready = !shown.contains("tentative");
        let addr = shown
            .split_whitespace()
            .skip_while(|w| *w != "inet6")
            .nth(1)
            .and_then(|cidr| cidr.split('/').next())
            .map(str::to_owned);
        match addr {
            Some(addr) if ready => return addr,
            _ => assert!(Instant::now() < deadline, "{}: no link-local", guest.port),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// clean-traffic-dualstack for `guest` with its IPv4 address, its IPv6
/// address and link-local, and `extra` parameters.
fn dualstack(guest: &Guest, extra: &[(&str, &str)]) -> Program {
    let ll = link_local(guest);
    let mut params = vec![
        ("IP", guest.ip.as_str()),
        ("IPV6", guest.ip6.as_str()),
        ("IPV6", ll.as_str()),
    ];
    params.extend_from_slice(extra);
    program(&[], guest, "clean-traffic-dualstack", &params)
}

/// Runs forge6.py in `guest`'s namespace.
fn forge(guest: &Guest, args: &[&str]) -> Output {
    let mut argv = vec![PYTHON, "-c", FORGE];
    argv.extend_from_slice(args);
    let out = guest.ns.run(&argv);
    assert!(
        out.status.success(),
        "forge6.py {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// forge6.py's printed count.
fn count_of(out: &Output) -> u32 {
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a count")
}

/// Starts counting the DHCPv6 server messages reaching `guest` for
/// `seconds` (from when its capture is running); [`counted`] waits for
/// the result.
fn start_counting(guest: &Guest, seconds: &str) -> Background {
    start_capture(guest, seconds, None)
}

/// As [`start_counting`], for the neighbour advertisements for `target`.
fn start_counting_na(guest: &Guest, seconds: &str, target: &str) -> Background {
    start_capture(guest, seconds, Some(target))
}

fn start_capture(guest: &Guest, seconds: &str, target: Option<&str>) -> Background {
    let ready = std::env::temp_dir().join(format!("forge6-ready-{}", guest.ns.name));
    let _ = std::fs::remove_file(&ready);
    let path = ready.to_str().expect("a UTF-8 temp dir").to_owned();
    let mut argv = vec![PYTHON, "-c", FORGE, "count", seconds, &path];
    argv.extend(target);
    let bg = guest.ns.spawn(&argv);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready.exists() {
        assert!(Instant::now() < deadline, "the capture never started");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = std::fs::remove_file(&ready);
    bg
}

fn counted(bg: Background) -> u32 {
    let out = bg.wait();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    count_of(&out)
}

/// Whether `guest` has an address in `prefix` (an autoconfigured one).
fn has_address_in(guest: &Guest, prefix: &str, wait: Duration) -> bool {
    let deadline = Instant::now() + wait;
    loop {
        let shown = guest
            .ns
            .ok(&["ip", "-6", "-o", "addr", "show", "dev", "eth0"]);
        if shown.contains(prefix) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `ping -6` from `guest`'s `source` address to `to`.
fn pings6_from(guest: &Guest, source: &str, to: &str) -> bool {
    guest
        .ns
        .run(&[
            "ping", "-6", "-c", "2", "-i", "0.2", "-W", "1", "-n", "-q", "-I", source, to,
        ])
        .status
        .success()
}

pub fn dualstack_lets_a_normal_guest_work<B: Backend>() {
    let lab = lab(2);
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let scratch = Scratch::new(&format!("dhcpv6-{}", lab.host.name));
    let _server = lab.dnsmasq_v6(&scratch.0, "2m");
    let fw = Firewall::<B>::new(&lab);
    fw.apply(&[&dualstack(a, &[])]);

    assert!(a.pings6(&b.ip6), "ping6 to a neighbour");
    assert!(a.pings6(HOST_IP6), "ping6 to the host");
    let b_ll = format!("{}%eth0", link_local(b));
    assert!(a.pings6(&b_ll), "ping6 to a neighbour's link-local address");
    let a_ll = link_local(a);
    assert!(
        count_of(&forge(a, &["solicit", &a_ll, "3"])) > 0,
        "a DHCPv6 Solicit reaches the server and its Advertise comes back"
    );
    assert!(a.pings(&b.ip), "IPv4 from A's own address");
    a.set_ip(SPOOFED_IP);
    assert!(
        !a.pings(&b.ip),
        "IPv4 is still filtered as by clean-traffic"
    );
    a.set_ip(&a.ip);
    assert!(a.pings(&b.ip));
}

pub fn dualstack_stops_spoofed_ipv6_sources_and_macs<B: Backend>() {
    let lab = lab(2);
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let spoofed = format!("{SPOOFED_IP6}/64");
    // Deprecated, so that nothing but `ping -I` picks it as a source.
    a.ns.ok(&[
        "ip",
        "addr",
        "add",
        &spoofed,
        "dev",
        "eth0",
        "nodad",
        "preferred_lft",
        "0",
    ]);
    assert!(
        pings6_from(a, SPOOFED_IP6, &b.ip6),
        "unfiltered, a spoofed source works"
    );
    a.set_mac(SPOOFED_MAC);
    b.ns.ok(&["ip", "-6", "neigh", "flush", "dev", "eth0"]);
    assert!(a.pings6(&b.ip6), "unfiltered, a spoofed MAC works");
    a.set_mac(&a.mac);
    b.ns.ok(&["ip", "-6", "neigh", "flush", "dev", "eth0"]);

    let fw = Firewall::<B>::new(&lab);
    fw.apply(&[&dualstack(a, &[])]);
    assert!(
        pings6_from(a, &a.ip6, &b.ip6),
        "A's own address works:\n{}",
        lab.ruleset()
    );
    let spoofed_passed = pings6_from(a, SPOOFED_IP6, &b.ip6);
    assert!(
        !spoofed_passed,
        "a spoofed IPv6 source is dropped:\n{}\n{}\n{}",
        lab.ruleset(),
        b.ns.ok(&["ip", "-6", "neigh"]),
        a.ns.ok(&["ip", "-6", "addr"]),
    );
    a.set_mac(SPOOFED_MAC);
    assert!(!a.pings6(&b.ip6), "IPv6 from a spoofed MAC is dropped");
    a.set_mac(&a.mac);
    b.ns.ok(&["ip", "-6", "neigh", "flush", "dev", "eth0"]);
    assert!(a.pings6(&b.ip6), "A is back");
}

pub fn dualstack_stops_rogue_router_advertisements<B: Backend>() {
    let lab = lab(2);
    let (a, c) = (&lab.guests[0], &lab.guests[1]);
    for (key, value) in [("accept_ra", "1"), ("autoconf", "1"), ("forwarding", "0")] {
        let setting = format!("net.ipv6.conf.eth0.{key}={value}");
        c.ns.ok(&["sysctl", "-q", "-w", &setting]);
    }
    let a_ll = link_local(a);
    let wait = Duration::from_secs(3);
    // Unfiltered: C autoconfigures from A's advertisements, plain or with
    // the ICMPv6 header behind a destination-options header.
    forge(a, &["ra", &a_ll, "2001:db8:1::"]);
    assert!(
        has_address_in(c, "2001:db8:1:", wait),
        "unfiltered, a rogue RA works"
    );
    forge(a, &["ra", &a_ll, "2001:db8:3::", "ext"]);
    assert!(
        has_address_in(c, "2001:db8:3:", wait),
        "and one behind an extension header"
    );

    let fw = Firewall::<B>::new(&lab);
    fw.apply(&[&dualstack(a, &[])]);
    forge(a, &["ra", &a_ll, "2001:db8:2::"]);
    forge(a, &["ra", &a_ll, "2001:db8:4::", "ext"]);
    assert!(
        !has_address_in(c, "2001:db8:2:", wait),
        "a rogue RA is dropped"
    );
    assert!(
        !has_address_in(c, "2001:db8:4:", Duration::ZERO),
        "also behind an extension header"
    );
    assert!(a.pings6(&c.ip6), "A's other IPv6 still works");
}

pub fn dualstack_stops_rogue_dhcpv6_servers<B: Backend>() {
    let lab = lab(3);
    let (a, b, c) = (&lab.guests[0], &lab.guests[1], &lab.guests[2]);
    let (a_ll, b_ll, c_ll) = (link_local(a), link_local(b), link_local(c));
    // Unfiltered: A's forged Reply reaches C, B's reaches A.
    let at_c = start_counting(c, "8");
    forge(a, &["reply", &a_ll, &c_ll, &c.mac]);
    assert!(counted(at_c) > 0, "unfiltered, A's rogue Reply reaches C");
    let at_a = start_counting(a, "8");
    forge(b, &["reply", &b_ll, &a_ll, &a.mac]);
    assert!(counted(at_a) > 0, "unfiltered, B's rogue Reply reaches A");

    // A trusts only the host's server.
    let scratch = Scratch::new(&format!("dhcpv6-{}", lab.host.name));
    let _server = lab.dnsmasq_v6(&scratch.0, "2m");
    let host_ll = lab
        .host
        .ok(&[
            "ip", "-6", "-o", "addr", "show", "dev", "br0", "scope", "link",
        ])
        .split_whitespace()
        .skip_while(|w| *w != "inet6")
        .nth(1)
        .and_then(|cidr| cidr.split('/').next())
        .expect("br0 has a link-local address")
        .to_owned();
    let fw = Firewall::<B>::new(&lab);
    fw.apply(&[&dualstack(a, &[("DHCPSERVERV6", host_ll.as_str())])]);

    let at_c = start_counting(c, "8");
    forge(a, &["reply", &a_ll, &c_ll, &c.mac]);
    assert_eq!(counted(at_c), 0, "A may not act as a DHCPv6 server");
    let at_a = start_counting(a, "8");
    forge(b, &["reply", &b_ll, &a_ll, &a.mac]);
    assert_eq!(
        counted(at_a),
        0,
        "an untrusted server's Reply never reaches A"
    );
    assert!(
        count_of(&forge(a, &["solicit", &a_ll, "3"])) > 0,
        "the trusted server still answers A"
    );
}

/// The MAC `guest` has for `ip`, once it has one (empty after `wait`).
fn neighbour6(guest: &Guest, ip: &str, wait: Duration) -> String {
    let deadline = Instant::now() + wait;
    loop {
        let mac = guest.neighbour_mac(ip);
        if !mac.is_empty() || Instant::now() >= deadline {
            return mac;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `victim` learns `owner`'s address afresh (a real exchange).
fn learns_neighbour(victim: &Guest, owner: &Guest) {
    victim.ns.ok(&["ip", "-6", "neigh", "flush", "dev", "eth0"]);
    assert!(
        victim.pings6(&owner.ip6),
        "{} reaches {}",
        victim.port,
        owner.port
    );
    assert_eq!(
        neighbour6(victim, &owner.ip6, Duration::from_secs(2)),
        owner.mac
    );
}

/// `attacker`'s override advertisements claiming `owner`'s address reach
/// `victim`; true if `victim`'s cache then points `owner` at `attacker`.
fn poisons(attacker: &Guest, victim: &Guest, owner: &Guest, ext: bool) -> bool {
    learns_neighbour(victim, owner);
    let mut args = vec!["na", &attacker.ip6, &victim.ip6, &victim.mac, &owner.ip6];
    if ext {
        args.push("ext");
    }
    forge(attacker, &args);
    std::thread::sleep(Duration::from_millis(300));
    victim.neighbour_mac(&owner.ip6) == attacker.mac
}

/// Whether `guest`'s `addr` failed duplicate address detection (waits
/// until it is no longer tentative).
fn dad_failed(guest: &Guest, addr: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let shown = guest
            .ns
            .ok(&["ip", "-6", "-o", "addr", "show", "dev", "eth0"]);
        let line = shown.lines().find(|l| l.contains(&format!(" {addr}/")));
        match line {
            Some(l) if l.contains("dadfailed") => return true,
            Some(l) if !l.contains("tentative") => return false,
            _ => assert!(Instant::now() < deadline, "{addr} stays tentative"),
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn dualstack_stops_neighbour_cache_poisoning<B: Backend>() {
    let lab = lab(3);
    let (a, b, c) = (&lab.guests[0], &lab.guests[1], &lab.guests[2]);
    assert!(
        poisons(a, c, b, false),
        "unfiltered, A's forged advertisement takes B's address over in C's cache"
    );
    assert!(
        poisons(a, c, b, true),
        "and one behind a destination-options header"
    );

    // A may use fd77::50 (and does duplicate address detection for it).
    let fw = Firewall::<B>::new(&lab);
    fw.apply(&[&dualstack(a, &[("IPV6", "fd77::50")])]);
    assert!(
        !poisons(a, c, b, false),
        "a forged advertisement for B's address is dropped:\n{}",
        lab.ruleset()
    );
    assert!(
        !poisons(a, c, b, true),
        "also behind a destination-options header"
    );

    // Ordinary neighbour discovery: A resolves C and answers C's
    // solicitations (its own target, its own MAC).
    for guest in [a, c] {
        guest.ns.ok(&["ip", "-6", "neigh", "flush", "dev", "eth0"]);
    }
    assert!(a.pings6(&c.ip6), "A resolves C and C resolves A");
    c.ns.ok(&["ip", "-6", "neigh", "flush", "dev", "eth0"]);
    assert!(c.pings6(&a.ip6), "C resolves A");
    assert_eq!(c.neighbour_mac(&a.ip6), a.mac);
    let b_ll = format!("{}%eth0", link_local(b));
    assert!(a.pings6(&b_ll), "ND for link-local addresses");

    // Duplicate address detection for one of A's addresses still works:
    // B holds fd77::50, A's probe reaches B and B's answer fails A's DAD.
    b.ns.ok(&["ip", "addr", "add", "fd77::50/64", "dev", "eth0", "nodad"]);
    a.ns.ok(&["ip", "addr", "add", "fd77::50/64", "dev", "eth0"]);
    assert!(
        dad_failed(a, "fd77::50"),
        "A's duplicate address detection for its own address reaches B"
    );
    // A probe for an address that is not A's never leaves the port.
    b.ns.ok(&["ip", "addr", "add", "fd77::51/64", "dev", "eth0", "nodad"]);
    a.ns.ok(&["ip", "addr", "add", "fd77::51/64", "dev", "eth0"]);
    assert!(
        !dad_failed(a, "fd77::51"),
        "a probe for an address the port may not use is dropped"
    );
}

/// How many of `attacker`'s forged override advertisements claiming
/// `owner`'s address, tagged for VLAN 10, reach `victim`'s interface
/// (this kernel has no VLAN devices: the capture sees the tagged frames
/// the bridge delivers).
fn tagged_forgeries_reaching(attacker: &Guest, victim: &Guest, owner: &Guest) -> u32 {
    let capture = start_counting_na(victim, "3", &owner.ip6);
    let na = [
        "na",
        &attacker.ip6,
        &victim.ip6,
        &victim.mac,
        &owner.ip6,
        "vlan10",
    ];
    forge(attacker, &na);
    counted(capture)
}

/// The neighbour-discovery checks see untagged frames only (as the IP
/// hooks do): a port's filter must not let a tagged forgery through
/// (clean-traffic-dualstack drops every frame of an EtherType it does not
/// list, 802.1Q among them).
pub fn dualstack_stops_forged_advertisements_in_vlan_tagged_frames<B: Backend>() {
    let lab = lab(3);
    let (a, b, c) = (&lab.guests[0], &lab.guests[1], &lab.guests[2]);
    assert!(
        tagged_forgeries_reaching(a, c, b) > 0,
        "unfiltered, A's tagged forged advertisement reaches C"
    );
    let fw = Firewall::<B>::new(&lab);
    fw.apply(&[&dualstack(a, &[])]);
    assert_eq!(
        tagged_forgeries_reaching(a, c, b),
        0,
        "a tagged forgery is dropped:\n{}",
        lab.ruleset()
    );
}

/// The kernel gives back what was applied for the ND rules (ip6tables'
/// `u32` text, nft's raw payloads): re-applying without a record (as after
/// a restart) changes nothing, and removing leaves what was there before.
pub fn dualstack_reapplied_without_a_record_is_unchanged<B: Backend>() {
    let lab = lab(1);
    let a = &lab.guests[0];
    let before = lab.snapshot();
    let fw = Firewall::<B>::new(&lab);
    let rules = dualstack(a, &[]);
    fw.apply(&[&rules]);
    let applied = lab.snapshot();
    let outcome = fw.apply_unrecorded(&rules);
    assert_eq!(outcome.unchanged, crate::backend::ports(&[a]));
    assert_eq!(lab.snapshot(), applied);
    fw.remove(&[a]);
    assert_eq!(lab.snapshot(), before);
}
