//! `nwfilterd` with the nftables backend, in a network namespace: the
//! setting comes from `nwfilter.conf`, rules flushed with `nft flush
//! ruleset` come back, and a reload after the setting changes moves the
//! binding to xtables with nothing of ours left in nftables. With
//! `--backend nftables`, IP learning holds the port under nft rules and
//! applies the learned address there.

use netns_lab as support;

mod daemon_lab;
use daemon_lab::{call, start_daemon, Scratch};

use std::time::{Duration, Instant};

use nwfilter_driver::Backend;
use nwfilter_service::{Client, Op, Reply};
use support::{Guest, Lab};

fn nft_tables(lab: &Lab) -> usize {
    let table = nwfilter_driver::backend::nftables::TABLE;
    lab.host
        .ok(&["nft", "list", "tables"])
        .lines()
        .filter(|l| l.split_whitespace().last() == Some(table))
        .count()
}

fn xtables_chains(lab: &Lab) -> usize {
    ["ebtables-save", "iptables-save", "ip6tables-save"]
        .iter()
        .map(|tool| {
            let listing = lab.host.ok(&[tool]);
            listing.lines().filter(|l| l.contains("libvirt-")).count()
        })
        .sum()
}

/// Whether `a` can ping `b` from a spoofed source address.
fn spoof_passes(a: &Guest, b: &Guest) -> bool {
    a.set_ip("10.77.0.99");
    let passes = a.pings(&b.ip);
    a.set_ip(&a.ip);
    passes
}

fn wait_for(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "{what} within {limit:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn the_daemon_applies_with_nftables_restores_a_flush_and_switches_on_reload() {
    if !support::can_run("the_daemon_applies_with_nftables_restores_a_flush_and_switches_on_reload")
    {
        return;
    }
    let scratch = Scratch::new("nft");
    std::fs::write(scratch.etc().join("nwfilter.conf"), "backend = nftables\n").unwrap();
    let lab = Lab::ready(2);
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let _daemon = start_daemon(&lab.host, &scratch, &[]);
    assert_eq!(
        call(&scratch, Op::Status),
        Reply::Status {
            backend: Backend::Nftables
        }
    );
    call(
        &scratch,
        Op::BindingCreate {
            xml: a.binding_xml("clean-traffic"),
        },
    );
    assert!(nft_tables(&lab) > 0, "tables of ours");
    assert_eq!(xtables_chains(&lab), 0);
    assert!(a.pings(&b.ip));
    assert!(
        !spoof_passes(a, b),
        "clean-traffic stops the spoofed address"
    );

    // Someone flushes the whole nft ruleset: the keeper puts it back.
    lab.host.ok(&["nft", "flush", "ruleset"]);
    wait_for("our tables restored", Duration::from_secs(3), || {
        nft_tables(&lab) > 0
    });
    assert!(a.pings(&b.ip));
    assert!(!spoof_passes(a, b), "filtering again after the flush");

    // The setting changes; a reload moves the binding to xtables.
    std::fs::write(scratch.etc().join("nwfilter.conf"), "backend = xtables\n").unwrap();
    call(&scratch, Op::Reload);
    assert_eq!(
        call(&scratch, Op::Status),
        Reply::Status {
            backend: Backend::Xtables
        }
    );
    assert_eq!(nft_tables(&lab), 0, "nothing of ours left in nftables");
    assert!(xtables_chains(&lab) > 0);
    assert!(a.pings(&b.ip));
    assert!(!spoof_passes(a, b), "filtered by xtables now");

    // A malformed setting is refused by name; the backend stays.
    std::fs::write(scratch.etc().join("nwfilter.conf"), "backend = pf\n").unwrap();
    let mut client = Client::connect(&scratch.socket()).unwrap();
    let err = client.call(Op::Reload).unwrap_err().to_string();
    assert!(
        err.contains("nwfilter.conf:1") && err.contains("'pf'"),
        "{err}"
    );
    assert_eq!(
        call(&scratch, Op::Status),
        Reply::Status {
            backend: Backend::Xtables
        }
    );
}

#[test]
fn the_daemon_learns_an_address_under_nftables() {
    if !support::can_run("the_daemon_learns_an_address_under_nftables") {
        return;
    }
    let scratch = Scratch::new("learn");
    let lab = Lab::ready(2);
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let _daemon = start_daemon(&lab.host, &scratch, &["--backend", "nftables"]);
    // No IP parameter: CTRL_IP_LEARNING defaults to `any`.
    let xml = a
        .binding_xml("clean-traffic")
        .replace(&format!("<parameter name='IP' value='{}'/>", a.ip), "");
    call(&scratch, Op::BindingCreate { xml });
    assert!(nft_tables(&lab) > 0, "learning rules in nftables");
    assert_eq!(xtables_chains(&lab), 0);
    // Flushed while learning: the keeper puts the learning rules back.
    lab.host.ok(&["nft", "flush", "ruleset"]);
    wait_for(
        "the learning rules restored",
        Duration::from_secs(3),
        || nft_tables(&lab) > 0,
    );
    let learned = || {
        let Reply::Bindings { bindings } = call(&scratch, Op::BindingList) else {
            panic!("binding-list")
        };
        bindings[0].learned.clone()
    };
    wait_for("the address learned", Duration::from_secs(15), || {
        let _ = a.pings(&b.ip);
        learned() == [a.ip.clone()]
    });
    assert!(a.pings(&b.ip), "the learned address is allowed");
    assert!(!spoof_passes(a, b), "any other address is not");
    assert_eq!(xtables_chains(&lab), 0, "nothing in ebtables/iptables");
    call(
        &scratch,
        Op::BindingDelete {
            portdev: "vnet0".into(),
        },
    );
    assert_eq!(nft_tables(&lab), 0, "our nft tables are gone");
}
