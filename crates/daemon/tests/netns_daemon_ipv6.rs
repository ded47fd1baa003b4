//! `nwfilterd` learning a guest's IPv6 addresses (issue 16, item 3), in
//! a network namespace: a dual-stack binding that gives its IPv4 address
//! and no `IPV6` is created, the guest's first use of its address teaches
//! it, binding-dumpxml shows it as `IPV6`, and a restarted daemon binds
//! it again at once (before the guest sends anything).

use netns_lab as support;

mod daemon_lab;
use daemon_lab::{call, start_daemon, Scratch};

use std::time::{Duration, Instant};

use nwfilter_service::{Op, Reply};
use support::Lab;

const HOST6: &str = "fd77::1";

fn dumpxml(scratch: &Scratch, port: &str) -> String {
    match call(
        scratch,
        Op::BindingDumpxml {
            portdev: port.to_owned(),
        },
    ) {
        Reply::Xml { xml } => xml,
        other => panic!("binding-dumpxml answered {other:?}"),
    }
}

#[test]
fn the_daemon_learns_ipv6_shows_it_and_keeps_it_across_a_restart() {
    if !support::can_run_with("the_daemon_learns_ipv6", &["ip6tables", "ebtables"]) {
        return;
    }
    let scratch = Scratch::new("v6");
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
    let daemon = start_daemon(&lab.host, &scratch, &["--learn-max-addresses", "4"]);
    call(
        &scratch,
        Op::BindingCreate {
            xml: a.binding_xml("clean-traffic-dualstack"),
        },
    );
    let learned = format!("<parameter name='IPV6' value='{}'/>", a.ip6);
    assert!(!dumpxml(&scratch, &a.port).contains(&learned));
    // The first packets from the address are dropped (nothing learned
    // yet) but seen; then it passes.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !a.pings6(HOST6) {
        assert!(Instant::now() < deadline, "A's IPv6 address never learned");
    }
    assert!(dumpxml(&scratch, &a.port).contains(&learned));

    drop(daemon);
    let _daemon = start_daemon(&lab.host, &scratch, &[]);
    assert!(
        dumpxml(&scratch, &a.port).contains(&learned),
        "bound again at start"
    );
    assert!(a.pings6(HOST6));
}
