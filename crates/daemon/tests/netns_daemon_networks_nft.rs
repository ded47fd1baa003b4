//! `nwfilterd` and virtual networks on nftables (issue 21): a running
//! network follows the backend setting at SIGHUP, moved make-before-break
//! from libvirt's iptables rules to our table `inet nwfilter-net`.

use netns_lab as support;

mod daemon_lab;
use daemon_lab::{start_daemon, Scratch};

use std::time::{Duration, Instant};

use support::Lab;

/// Polls `check` for up to 10 s.
fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn sighup_moves_a_running_network_to_the_nftables_backend() {
    if !support::can_run("sighup_moves_a_running_network_to_the_nftables_backend") {
        return;
    }
    let scratch = Scratch::new("netnft");
    let lab = Lab::new(0);
    let store = netdrv::Store::new(
        scratch.etc().join("networks"),
        scratch.run().join("networks"),
    );
    // Isolated, no DHCP, no DNS: no dnsmasq that could outlive the test.
    store
        .define(
            "<network><name>lab</name><bridge name='virbr7' stp='off'/>\
             <dns enable='no'/><ip address='10.88.0.1' prefix='24'/></network>",
            &|_| false,
        )
        .unwrap();
    store.set_autostart("lab", true).unwrap();
    let daemon = start_daemon(&lab.host, &scratch, &[]);
    eventually("the network runs on iptables", || {
        lab.host.ok(&["iptables-save"]).contains("virbr7")
    });

    std::fs::write(scratch.etc().join("nwfilter.conf"), "backend = nftables\n").unwrap();
    let pid = daemon.pid().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-s", "HUP", &pid])
        .status()
        .unwrap()
        .success());
    // libvirt's chains go; the iptables-nft filter table they lived in
    // stays (iptables-nft never removes a table), so the network's
    // accepts go there.
    eventually("the network runs on nftables", || {
        let nft = lab.host.ok(&["nft", "list", "ruleset"]);
        nft.contains("chain fwd-virbr7") && !nft.contains("LIBVIRT_")
    });
    let filter = lab.host.ok(&["iptables-save", "-t", "filter"]);
    assert!(
        filter.contains("-A FORWARD -i virbr7 -o virbr7 -j ACCEPT"),
        "{filter}"
    );
    let state = store.run_state("lab").unwrap().unwrap();
    assert_eq!(state.firewall, netdrv::firewall::Backend::Nftables);
    drop(daemon);
}
