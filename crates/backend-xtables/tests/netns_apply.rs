//! What only the xtables backend has, in network namespaces with real
//! packets: legacy iptables beside nft ebtables, an update failing half
//! way between its batches, what teardown leaves in a pristine namespace,
//! how IPv6 chains are hooked. The packet scenarios both backends share
//! are in `nwfilter-driver/tests/packets.rs`, run against each.

use netns_lab as support;

use backend_xtables::{Applier, ApplyError, Change};
use host_io::{Flavour, ProcessRunner, RecordingRunner, Toolset};
use support::{assert_old_rules_filter, program, without_counters, Guest, Lab};

fn runner(lab: &Lab, toolset: Toolset) -> ProcessRunner {
    ProcessRunner::new(toolset).in_netns(lab.host.name.clone())
}

#[test]
fn legacy_iptables_works_beside_nft_ebtables() {
    if !support::can_run("legacy_iptables_works_beside_nft_ebtables") {
        return;
    }
    let lab = Lab::new(2);
    if !lab
        .host
        .run(&["iptables-legacy", "-w", "-L", "-n"])
        .status
        .success()
    {
        // Legacy xtables is optional (Linux 6.17 disables it by default):
        // skipped even under CI.
        support::note_skip(
            "legacy_iptables_works_beside_nft_ebtables",
            "the kernel has no legacy iptables",
        );
        return;
    }
    lab.wait_ready();
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let legacy = Toolset {
        ip: Flavour::Legacy,
        bridge: Flavour::System,
    };
    let runner = runner(&lab, legacy);
    let applier = Applier::new(&runner);
    let before = lab.host.ok(&["iptables-legacy-save", "-t", "filter"]);
    let rules = guard(a, &["-p tcp --dport 25 -j DROP"]);
    applier
        .apply(&[Change {
            ruleset: &rules,
            recorded: None,
        }])
        .unwrap();
    let saved = lab.host.ok(&["iptables-legacy-save", "-t", "filter"]);
    assert!(
        saved.contains("-A libvirt-in -m physdev --physdev-in vnet0 -g FI-vnet0"),
        "{saved}"
    );
    let _l25 = b.listen(25);
    let _l80 = b.listen(80);
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(!a.connects(&b.ip, 25));
    assert!(a.connects(&b.ip, 80));
    let update = guard(a, &["-p tcp --dport 80 -j DROP"]);
    applier
        .apply(&[Change {
            ruleset: &update,
            recorded: Some(&rules),
        }])
        .unwrap();
    assert!(a.connects(&b.ip, 25));
    assert!(!a.connects(&b.ip, 80));
    applier.remove(std::slice::from_ref(&rules.port)).unwrap();
    let strip = |t: &str| {
        without_counters(
            &t.lines()
                .filter(|l| !l.starts_with('#'))
                .collect::<Vec<_>>()
                .join("\n"),
        )
    };
    assert_eq!(
        strip(&lab.host.ok(&["iptables-legacy-save", "-t", "filter"])),
        strip(&before)
    );
}

#[test]
fn an_update_failing_half_way_leaves_the_old_rules_filtering() {
    if !support::can_run("an_update_failing_half_way_leaves_the_old_rules_filtering") {
        return;
    }
    let lab = Lab::ready(2);
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let real = runner(&lab, Toolset::default());
    let old = guard(a, &["-p tcp --dport 25 -j DROP"]);
    Applier::new(&real)
        .apply(&[Change {
            ruleset: &old,
            recorded: None,
        }])
        .unwrap();
    let before = lab.snapshot();
    let mut new = guard(a, &["-p tcp --dport 80 -j DROP"]);
    new.chains[2].rules.insert(
        0,
        vec!["-p".into(), "0x88b5".into(), "-j".into(), "DROP".into()],
    );

    // Calls: 1-3 read, 4 bridge build, 5 IPv4 build, 6 bridge switch,
    // 7 IPv4 switch. Failing 5 stops before any switch; failing 7 comes
    // after the bridge switched, which must then be switched back.
    for fail_at in [5, 7] {
        let failing = RecordingRunner::wrapping(runner(&lab, Toolset::default()));
        failing.fail_call(fail_at);
        let change = Change {
            ruleset: &new,
            recorded: Some(&old),
        };
        let result = Applier::new(&failing).apply(&[change]);
        let calls: Vec<_> = failing.calls().iter().map(|c| c.tool).collect();
        let err = result.expect_err(&format!("call {fail_at} fails: {calls:?}"));
        assert!(
            matches!(err, ApplyError::Refused { ref restore_errors, .. } if restore_errors.is_empty()),
            "call {fail_at}: {err}"
        );
        assert_eq!(
            lab.snapshot(),
            before,
            "call {fail_at}: old rules, nothing else"
        );
    }
    assert_old_rules_filter(a, b, 80);
}

#[test]
fn teardown_in_a_pristine_namespace_leaves_only_empty_builtin_chains() {
    if !support::can_run("teardown_in_a_pristine_namespace_leaves_only_empty_builtin_chains") {
        return;
    }
    let lab = Lab::new(1);
    assert_eq!(
        lab.host.ok(&["nft", "list", "ruleset"]),
        "",
        "nothing before"
    );
    let runner = runner(&lab, Toolset::default());
    let applier = Applier::new(&runner);
    let rules = guard(&lab.guests[0], &["-p tcp --dport 25 -j DROP"]);
    applier
        .apply(&[Change {
            ruleset: &rules,
            recorded: None,
        }])
        .unwrap();
    applier.remove(std::slice::from_ref(&rules.port)).unwrap();
    // The tools cannot delete a table, so the tables they created stay,
    // holding only their built-in chains: no rule, policy ACCEPT.
    let tables = applier.read_tables().unwrap();
    let builtin = ["PREROUTING", "OUTPUT", "POSTROUTING", "INPUT", "FORWARD"];
    for table in [&tables.bridge, &tables.ipv4, &tables.ipv6] {
        assert!(
            table.chains.iter().all(|c| builtin.contains(&&**c)),
            "{table:?}"
        );
        assert!(table.rules.values().all(Vec::is_empty), "{table:?}");
    }
    let listing = lab.host.ok(&["nft", "list", "ruleset"]);
    for line in listing.lines().map(str::trim) {
        let structural = line.starts_with("table ") || line.starts_with("chain ") || line == "}";
        assert!(
            structural
                || line.is_empty()
                || line.starts_with("type filter hook") && line.ends_with("policy accept;"),
            "unexpected: {line}"
        );
    }
}

#[test]
fn filling_a_bare_table_with_many_ports_at_once_gives_what_port_by_port_gives() {
    let name = "filling_a_bare_table_with_many_ports_at_once_gives_what_port_by_port_gives";
    if !support::can_run(name) {
        return;
    }
    let lab = Lab::new(1);
    // 40 ports: 120 new ebtables chains and 120 iptables chains, enough
    // for each batch to lead with `-Z` (the restore tool then skips its
    // per-command sorted walk).
    let ports = guard_ports("vnet", 40);
    let changes = creates(&ports);
    let saved = || {
        let mut lines: Vec<String> = [
            ["ebtables-save", "-t", "nat"],
            ["iptables-save", "-t", "filter"],
        ]
        .iter()
        .flat_map(|save| {
            without_counters(&lab.host.ok(save))
                .lines()
                .filter(|l| !l.starts_with('#'))
                .map(String::from)
                .collect::<Vec<_>>()
        })
        .collect();
        lines.sort();
        lines
    };

    let recording = RecordingRunner::wrapping(runner(&lab, Toolset::default()));
    Applier::new(&recording).apply(&changes).unwrap();
    let restores: Vec<(host_io::Tool, String)> = recording
        .calls()
        .into_iter()
        .filter_map(|c| Some((c.tool, c.stdin?)))
        .collect();
    let leading = |tool, head: &str| {
        restores
            .iter()
            .filter(|(t, text)| *t == tool && text.starts_with(head))
            .count()
            == 1
    };
    assert!(
        leading(host_io::Tool::EbtablesRestore, "*nat\n-Z\n:")
            && leading(host_io::Tool::IptablesRestore, "*filter\n-Z\n:"),
        "{restores:?}"
    );
    let at_once = saved();
    assert!(at_once.len() > 40 * 15, "{at_once:?}");

    let real = runner(&lab, Toolset::default());
    let applier = Applier::new(&real);
    let names: Vec<_> = ports.iter().map(|p| p.port.clone()).collect();
    applier.remove(&names).unwrap();
    for change in &changes {
        applier.apply(std::slice::from_ref(change)).unwrap();
    }
    assert_eq!(at_once, saved());
}

#[test]
fn numbered_ethertypes_give_the_kernel_the_rules_libvirts_names_give() {
    let name = "numbered_ethertypes_give_the_kernel_the_rules_libvirts_names_give";
    if !support::can_run(name) {
        return;
    }
    let lab = Lab::new(1);
    let guest = &lab.guests[0];
    let ip = guest.ip.as_str();
    let program = program(&[], guest, "clean-traffic", &[("IP", ip)]);
    let rules = backend_xtables::ruleset(&program).unwrap();
    let kernel = || {
        let save = without_counters(&lab.host.ok(&["ebtables-save", "-t", "nat"]));
        let save: Vec<&str> = save.lines().filter(|l| !l.starts_with('#')).collect();
        // Without counters (-s): the guest's own packets (IPv6 duplicate
        // address detection) may cross the bridge meanwhile.
        let nft = lab.host.ok(&["nft", "-s", "list", "ruleset"]);
        (save.join("\n"), nft)
    };

    let recording = RecordingRunner::wrapping(runner(&lab, Toolset::default()));
    let applier = Applier::new(&recording);
    let change = Change {
        ruleset: &rules,
        recorded: None,
    };
    let port = std::slice::from_ref(&rules.port);
    // Both ways start from the table with its built-in chains (which a
    // first restore creates before the user chains, as nft lists them).
    applier.apply(std::slice::from_ref(&change)).unwrap();
    applier.remove(port).unwrap();

    // As rendered, in libvirt's words (`-p ipv4`).
    let rendered = backend_xtables::render::restore_text(&rules).unwrap();
    let block = rendered
        .strip_prefix("ebtables-restore --noflush\n")
        .unwrap();
    assert!(block.contains(" -p ipv4 "), "{block}");
    lab.host.ok_stdin(&["ebtables-restore", "--noflush"], block);
    let named = kernel();
    assert!(named.0.contains(" -p IPv4 "), "{}", named.0);
    applier.remove(port).unwrap();

    // Through the applier: the restore tool is given numbers.
    applier.apply(std::slice::from_ref(&change)).unwrap();
    let given: String = (recording.calls().into_iter())
        .filter(|c| c.tool == host_io::Tool::EbtablesRestore)
        .filter_map(|c| c.stdin)
        .collect();
    assert!(
        given.contains(" -p 0x0800 ") && !given.contains(" ipv4 "),
        "{given}"
    );
    assert_eq!(kernel(), named);
}

#[test]
fn ipv6_chains_are_hooked_by_physdev_in_ip6tables() {
    if !support::can_run("ipv6_chains_are_hooked_by_physdev_in_ip6tables") {
        return;
    }
    let lab = Lab::new(1);
    let filter = "<filter name='no-spamming-v6' chain='root'>
      <rule action='drop' direction='out' priority='500'><tcp-ipv6 dstportstart='25'/></rule>
    </filter>";
    let ir = program(&[filter], &lab.guests[0], "no-spamming-v6", &[]);
    let rules = backend_xtables::ruleset(&ir).unwrap();
    let runner = runner(&lab, Toolset::default());
    let change = Change {
        ruleset: &rules,
        recorded: None,
    };
    Applier::new(&runner).apply(&[change]).unwrap();
    let saved = lab.host.ok(&["ip6tables-save", "-t", "filter"]);
    assert!(
        saved.contains("-A libvirt-in -m physdev --physdev-in vnet0 -g FI-vnet0"),
        "{saved}"
    );
    assert!(
        saved.contains("-A FI-vnet0 -p tcp -m tcp --dport 25 -j DROP"),
        "{saved}"
    );
}

/// A hand-built ruleset in libvirt's shape for `guest`'s port: from the
/// VM only its MAC, IPv4 from its IP and ARP for its IP/MAC; to the VM
/// only IPv4 and ARP; `forward_rules` in `FI-` (forwarded from the VM).
fn guard(guest: &Guest, forward_rules: &[&str]) -> backend_xtables::PortRuleset {
    guard_port(&guest.port, &guest.ip, &guest.mac, forward_rules)
}

/// [`guard`] for a port that need not exist (the tools take any name).
fn guard_port(
    p: &str,
    ip: &str,
    mac: &str,
    forward_rules: &[&str],
) -> backend_xtables::PortRuleset {
    use backend_xtables::{Family as F, Hook as R, PortRuleset, RenderedChain};
    let chain = |family, role, name: String, rules: Vec<String>| RenderedChain {
        family,
        role,
        name,
        rules: rules
            .iter()
            .map(|r| r.split(' ').map(String::from).collect())
            .collect(),
    };
    let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
    PortRuleset {
        port: nwfilter_model::IfName::new(p).unwrap(),
        chains: vec![
            chain(
                F::Bridge,
                R::BridgeSub,
                format!("I-{p}-ipv4"),
                vec![format!("-p IPv4 --ip-src {ip} -j RETURN"), "-j DROP".into()],
            ),
            chain(
                F::Bridge,
                R::BridgeSub,
                format!("I-{p}-arp"),
                vec![
                    format!("-p ARP --arp-ip-src {ip} --arp-mac-src {mac} -j RETURN"),
                    "-j DROP".into(),
                ],
            ),
            chain(
                F::Bridge,
                R::BridgeRootOut,
                format!("libvirt-I-{p}"),
                vec![
                    format!("-s ! {mac} -j DROP"),
                    format!("-p IPv4 -j I-{p}-ipv4"),
                    format!("-p ARP -j I-{p}-arp"),
                    "-p IPv4 -j ACCEPT".into(),
                    "-p ARP -j ACCEPT".into(),
                    "-j DROP".into(),
                ],
            ),
            chain(
                F::Bridge,
                R::BridgeRootIn,
                format!("libvirt-O-{p}"),
                s(&["-p IPv4 -j ACCEPT", "-p ARP -j ACCEPT", "-j DROP"]),
            ),
            chain(
                F::Ipv4,
                R::ForwardFromVm,
                format!("FI-{p}"),
                s(forward_rules),
            ),
            chain(F::Ipv4, R::ForwardToVm, format!("FO-{p}"), Vec::new()),
            chain(F::Ipv4, R::HostFromVm, format!("HI-{p}"), Vec::new()),
        ],
    }
}

/// `n` ports named `PREFIX0`, `PREFIX1`, ... guarded as [`guard_port`]
/// guards one, each with a MAC and an IPv4 address of its own.
fn guard_ports(prefix: &str, n: usize) -> Vec<backend_xtables::PortRuleset> {
    (0..n)
        .map(|i| {
            let mac = format!("52:54:00:01:{:02x}:{:02x}", i / 256, i % 256);
            let ip = format!("10.9.{}.{}", i / 250, i % 250 + 1);
            guard_port(&format!("{prefix}{i}"), &ip, &mac, &[])
        })
        .collect()
}

/// Each of `ports` created (nothing recorded for it).
fn creates(ports: &[backend_xtables::PortRuleset]) -> Vec<Change<'_>> {
    (ports.iter())
        .map(|ruleset| Change {
            ruleset,
            recorded: None,
        })
        .collect()
}

/// The ebtables `nat` table's rules that name `port`.
fn bridge_rules_of(lab: &Lab, port: &str) -> Vec<String> {
    support::lines_naming(&lab.host.ok(&["ebtables-save", "-t", "nat"]), port)
}

#[test]
fn a_removal_deletes_its_hook_rules_by_handle_without_a_tool() {
    let name = "a_removal_deletes_its_hook_rules_by_handle_without_a_tool";
    if !support::can_run(name) {
        return;
    }
    let lab = Lab::new(1);
    let ports = guard_ports("vnet", 5);
    let changes = creates(&ports);
    let (first_four, fifth) = changes.split_at(4);
    let port = |i: usize| std::slice::from_ref(&ports[i].port);
    let ebtables_restores = |recording: &RecordingRunner| {
        (recording.calls().iter())
            .filter(|c| c.tool == host_io::Tool::EbtablesRestore)
            .count()
    };
    lab.host.inside(|| {
        let real = std::sync::Arc::new(
            ProcessRunner::new(Toolset::default())
                .watching_commits()
                .removing_by_handle(),
        );
        let recording = RecordingRunner::wrapping(std::sync::Arc::clone(&real));
        let applier = Applier::new(&recording);
        let mut kept = None;
        applier.apply_kept(&mut kept, first_four).unwrap();
        let before = ebtables_restores(&recording);
        assert!(before > 0);
        let rules: Vec<Vec<String>> = (0..4)
            .map(|i| bridge_rules_of(&lab, &format!("vnet{i}")))
            .collect();
        assert!(rules.iter().all(|r| r.len() > 10), "{rules:?}");

        // The handles are read, the hook rules deleted by them; the
        // kernel's notice of the commit names a thread of ours (the
        // daemon's rule check must not take it for another tool's).
        let notices = host_io::nft_events::subscribe(1 << 20).unwrap();
        applier.remove_kept(&mut kept, port(1)).unwrap();
        assert_eq!(
            ebtables_restores(&recording),
            before,
            "no tool for ebtables"
        );
        // The kernel announced the commit before answering it.
        let committers = host_io::nft_events::committers(&notices);
        // ebtables by handle, iptables (a rule that jumps nowhere) by its tool.
        assert_eq!(committers.len(), 2, "{committers:?}");
        assert!(
            (committers.iter()).all(|pid| pid.is_some_and(host_io::spawned_recently)),
            "{committers:?}"
        );
        assert_eq!(bridge_rules_of(&lab, "vnet1"), Vec::<String>::new());
        for other in [0, 2, 3] {
            let now = bridge_rules_of(&lab, &format!("vnet{other}"));
            assert_eq!(now, rules[other], "vnet{other} intact");
        }

        // A port created after the handles were read: its hook rules'
        // handles come with the kernel's notice of our tool's commit, and
        // its removal reads no chain.
        let reads = real.hook_chain_reads();
        assert!(reads > 0);
        applier.apply_kept(&mut kept, fifth).unwrap();
        let with_fifth = ebtables_restores(&recording);
        applier.remove_kept(&mut kept, port(4)).unwrap();
        assert_eq!(ebtables_restores(&recording), with_fifth, "no tool");
        assert_eq!(real.hook_chain_reads(), reads, "handles followed, not read");
        assert_eq!(bridge_rules_of(&lab, "vnet4"), Vec::<String>::new());
        assert_eq!(bridge_rules_of(&lab, "vnet0"), rules[0]);

        // Another tool moves vnet2's hook (a new handle) after the
        // handles were read: they are read again, not trusted.
        for verb in ["-D", "-A"] {
            lab.host.ok(&[
                "ebtables",
                "-t",
                "nat",
                verb,
                "PREROUTING",
                "-i",
                "vnet2",
                "-j",
                "libvirt-I-vnet2",
            ]);
        }
        applier.remove_kept(&mut kept, port(2)).unwrap();
        assert_eq!(ebtables_restores(&recording), with_fifth);
        assert!(real.hook_chain_reads() > reads, "read again");
        assert_eq!(bridge_rules_of(&lab, "vnet2"), Vec::<String>::new());
        assert_eq!(bridge_rules_of(&lab, "vnet0"), rules[0]);
        assert_eq!(bridge_rules_of(&lab, "vnet3"), rules[3]);

        // A chain of the port that something else still jumps to cannot
        // go: the kernel refuses the whole removal (the hook rules stay),
        // and so does the tool after it, which reports why.
        lab.host.ok(&[
            "ebtables",
            "-t",
            "nat",
            "-A",
            "OUTPUT",
            "-j",
            "libvirt-O-vnet3",
        ]);
        let hooked = bridge_rules_of(&lab, "vnet3");
        let err = applier.remove_kept(&mut kept, port(3)).unwrap_err();
        assert!(matches!(err, ApplyError::Refused { .. }), "{err}");
        assert!(
            ebtables_restores(&recording) > with_fifth,
            "the tool decided"
        );
        let mut now = bridge_rules_of(&lab, "vnet3");
        now.retain(|l| !l.starts_with("-A OUTPUT"));
        let mut was = hooked;
        was.retain(|l| !l.starts_with("-A OUTPUT"));
        assert_eq!(now, was, "nothing of vnet3 removed");
    });
}

/// Removing many ports at once (a restart's probe dropping its
/// temporaries, a move of every port to the other backend) is one
/// netlink datagram of about a megabyte, more than the default socket
/// send buffer: it is still committed by handle, not by the tool, which
/// took seconds for it (`ebtables-restore` deleting 9000 chains).
#[test]
fn a_removal_larger_than_the_send_buffer_still_goes_by_handle() {
    let name = "a_removal_larger_than_the_send_buffer_still_goes_by_handle";
    if !support::can_run(name) {
        return;
    }
    let lab = Lab::new(1);
    let ports = guard_ports("big", 600);
    let changes = creates(&ports);
    let names: Vec<_> = ports.iter().map(|rs| rs.port.clone()).collect();
    lab.host.inside(|| {
        let real = std::sync::Arc::new(ProcessRunner::new(Toolset::default()).removing_by_handle());
        let recording = RecordingRunner::wrapping(std::sync::Arc::clone(&real));
        let applier = Applier::new(&recording);
        let mut kept = None;
        applier.apply_kept(&mut kept, &changes).unwrap();
        let ebtables_restores = || {
            (recording.calls().iter())
                .filter(|c| c.tool == host_io::Tool::EbtablesRestore)
                .count()
        };
        let before = ebtables_restores();
        assert!(bridge_rules_of(&lab, "big599").len() > 5);
        applier.remove_kept(&mut kept, &names).unwrap();
        assert_eq!(ebtables_restores(), before, "no tool for ebtables");
        let left = lab.host.ok(&["ebtables-save", "-t", "nat"]);
        assert!(!left.contains("big"), "{left}");
    });
}
