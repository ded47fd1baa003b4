//! The IPv6 capture filters in the kernel (issue 16): the kernel takes
//! the programs, passes the guest's claims (duplicate address detection,
//! first use) and DHCPv6 datagrams, and nothing else, read through a real
//! AF_PACKET socket on a lab port and classified as the learner does.

use std::net::Ipv6Addr;
use std::time::{Duration, Instant};

use netns_lab::{can_run, Lab};
use nwfilter_learn::{classify_v6, Capture, Claim, Filter, Observation6};

/// Everything the capture delivers within `wait`, as raw frames.
fn frames(capture: &Capture, wait: Duration) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + wait;
    let mut buf = vec![0u8; 2048];
    let mut out = Vec::new();
    while Instant::now() < deadline {
        match capture.recv(&mut buf).expect("receives") {
            Some((len, _)) => out.push(buf[..len].to_vec()),
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    out
}

#[test]
fn ipv6_claims_capture_dad_and_first_use_from_the_guest_only() {
    if !can_run("ipv6_claims_capture_dad_and_first_use_from_the_guest_only") {
        return;
    }
    let lab = Lab::ready(2);
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    lab.host
        .ok(&["ip", "addr", "add", "fd77::1/64", "dev", "br0", "nodad"]);
    let mac = a.mac().into_array();
    let capture = Capture::open(&a.port(), Filter::Ipv6Claims(mac), Some(&lab.host.path()))
        .expect("the kernel takes the IPv6 claims filter");
    a.ns.ok(&["ip", "addr", "add", "fd77::77/64", "dev", "eth0"]);
    assert!(a.pings6("fd77::1"), "A reaches the host");
    b.ns.ok(&["ip", "addr", "add", "fd77::78/64", "dev", "eth0"]);
    assert!(b.pings6("fd77::1"));

    let seen: Vec<Observation6> = frames(&capture, Duration::from_secs(2))
        .iter()
        .inspect(|f| assert_eq!(&f[6..12], &mac, "only A's frames"))
        .filter_map(|f| classify_v6(f, nwfilter_learn::Direction::FromGuest, mac))
        .collect();
    let claimed = |addr: &str, by: Claim| Observation6::Claimed {
        addr: addr.parse::<Ipv6Addr>().unwrap(),
        by,
    };
    assert!(seen.contains(&claimed("fd77::77", Claim::Dad)), "{seen:?}");
    assert!(seen.contains(&claimed(&a.ip6, Claim::FirstUse)), "{seen:?}");
    assert!(
        !seen.iter().any(
            |o| matches!(o, Observation6::Claimed { addr, .. } if addr.to_string() == "fd77::78")
        ),
        "B's claims are not A's"
    );
}

#[test]
fn dhcp6_capture_takes_dhcpv6_datagrams_and_no_other_udp() {
    if !can_run("dhcp6_capture_takes_dhcpv6_datagrams_and_no_other_udp") {
        return;
    }
    let lab = Lab::ready(1);
    let a = &lab.guests[0];
    lab.host
        .ok(&["ip", "addr", "add", "fd77::1/64", "dev", "br0", "nodad"]);
    let capture = Capture::open(&a.port(), Filter::Dhcp6, Some(&lab.host.path()))
        .expect("the kernel takes the DHCPv6 filter");
    let send = |sport: &str, dport: &str| {
        a.ns.run_stdin(
            &[
                "nc", "-6", "-u", "-w", "1", "-p", sport, "-s", &a.ip6, "fd77::1", dport,
            ],
            "x",
        );
    };
    send("546", "547");
    send("546", "548");
    send("545", "547");
    let got = frames(&capture, Duration::from_millis(500));
    assert_eq!(got.len(), 1, "only the 546->547 datagram: {got:x?}");
    assert_eq!(&got[0][54..58], &[0x02, 0x22, 0x02, 0x23]);
}
