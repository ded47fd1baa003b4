//! The backend setting end to end without a daemon, in a network
//! namespace: `backend = nftables` in the settings file applies a binding
//! with nftables; `reload --backend xtables` moves it; `binding-delete`
//! removes it with the backend its record names, whatever the setting.

use netns_lab as support;

use support::{add_admin_rules, without_counters, Lab, Scratch};

/// Lines of our own in the host's tables: (xtables chains, nft tables).
fn ours(lab: &Lab) -> (usize, usize) {
    let xtables = ["ebtables-save", "iptables-save", "ip6tables-save"]
        .iter()
        .map(|tool| {
            let listing = lab.host.ok(&[tool]);
            listing.lines().filter(|l| l.contains("libvirt-")).count()
        })
        .sum();
    let table = nwfilter_driver::backend::nftables::TABLE;
    let nft = lab
        .host
        .ok(&["nft", "list", "tables"])
        .lines()
        .filter(|l| l.split_whitespace().last() == Some(table))
        .count();
    (xtables, nft)
}

#[test]
fn the_settings_file_chooses_nftables_and_reload_moves_the_binding() {
    if !support::can_run("the_settings_file_chooses_nftables_and_reload_moves_the_binding") {
        return;
    }
    let scratch = Scratch::new("switch");
    let (etc, run) = (scratch.etc(), scratch.run());
    std::fs::write(etc.join("nwfilter.conf"), "backend = nftables\n").unwrap();
    let lab = Lab::ready(2);
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let file = scratch.0.join("binding.xml");
    std::fs::write(&file, a.binding_xml("clean-traffic")).unwrap();
    add_admin_rules(&lab.host);
    let before = without_counters(&lab.ruleset());
    let nwfilter = |args: &[&str]| {
        let mut argv = vec![
            env!("CARGO_BIN_EXE_nwfilter"),
            "--config-dir",
            etc.to_str().unwrap(),
            "--state-dir",
            run.to_str().unwrap(),
        ];
        argv.extend(args);
        let out = lab.host.run(&argv);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let spoof_passes = || {
        a.set_ip("10.77.0.99");
        let passes = a.pings(&b.ip);
        a.set_ip(&a.ip);
        passes
    };

    nwfilter(&["binding-create", file.to_str().unwrap()]);
    let (xtables, nft) = ours(&lab);
    assert_eq!(xtables, 0, "nothing in ebtables/iptables");
    assert!(nft > 0, "our nft tables");
    assert_eq!(
        std::fs::read_to_string(run.join("vnet0.backend")).unwrap(),
        "backend = nftables\n"
    );
    assert!(a.pings(&b.ip));
    assert!(!spoof_passes(), "nftables drops the spoofed address");

    let out = nwfilter(&["reload", "--backend", "xtables"]);
    assert!(out.contains("1 binding(s) applied"), "{out}");
    let (xtables, nft) = ours(&lab);
    assert!(xtables > 0);
    assert_eq!(nft, 0, "the nft rules are gone");
    assert!(a.pings(&b.ip));
    assert!(!spoof_passes(), "xtables drops the spoofed address");

    // The file still says nftables; the record says xtables and decides.
    nwfilter(&["binding-delete", "vnet0"]);
    assert_eq!(
        without_counters(&lab.ruleset()),
        before,
        "nothing of ours is left"
    );
    assert!(!run.join("vnet0.backend").exists());
}
