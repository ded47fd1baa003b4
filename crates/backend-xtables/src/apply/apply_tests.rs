use super::*;
use crate::ruleset::{Hook, RenderedChain};
use host_io::RecordingRunner;

fn ruleset(ip_rule: &str) -> PortRuleset {
    let words = |r: &str| r.split(' ').map(String::from).collect::<Vec<_>>();
    PortRuleset {
        port: IfName::new("vnet0").unwrap(),
        chains: vec![
            RenderedChain {
                family: Family::Bridge,
                role: Hook::BridgeRootOut,
                name: "libvirt-I-vnet0".into(),
                rules: vec![words("-p IPv6 -j DROP")],
            },
            RenderedChain {
                family: Family::Ipv4,
                role: Hook::ForwardFromVm,
                name: "FI-vnet0".into(),
                rules: vec![words(ip_rule)],
            },
        ],
    }
}

/// The kernel as `ruleset("-p tcp -m tcp --dport 25 -j DROP")` leaves it.
fn live(runner: &RecordingRunner) {
    runner.answer(
        Tool::EbtablesSave,
        "*nat\n:PREROUTING ACCEPT\n:libvirt-I-vnet0 ACCEPT\n-A PREROUTING -i vnet0 -j libvirt-I-vnet0\n-A libvirt-I-vnet0 -p IPv6 -j DROP\n",
    );
    runner.answer(
        Tool::IptablesSave,
        "*filter\n:INPUT ACCEPT [0:0]\n:FORWARD ACCEPT [0:0]\n:FI-vnet0 - [0:0]\n:libvirt-in - [0:0]\n:libvirt-out - [0:0]\n:libvirt-in-post - [0:0]\n:libvirt-host-in - [0:0]\n\
         -A INPUT -j libvirt-host-in\n-A FORWARD -j libvirt-in\n-A FORWARD -j libvirt-out\n-A FORWARD -j libvirt-in-post\n\
         -A FI-vnet0 -p tcp -m tcp --dport 25 -j DROP\n-A libvirt-in -m physdev --physdev-in vnet0 -g FI-vnet0\n\
         -A libvirt-in-post -m physdev --physdev-in vnet0 -j ACCEPT\nCOMMIT\n",
    );
}

fn tools(runner: &RecordingRunner) -> Vec<Tool> {
    runner.calls().iter().map(|c| c.tool).collect()
}

fn stdin(runner: &RecordingRunner, call: usize) -> String {
    runner.calls()[call - 1].stdin.clone().unwrap_or_default()
}

const SAVES: [Tool; 3] = [Tool::EbtablesSave, Tool::IptablesSave, Tool::Ip6tablesSave];

#[test]
fn a_new_binding_costs_three_reads_and_a_batch_per_family() {
    let runner = RecordingRunner::new();
    let rules = ruleset("-p tcp --dport 25 -j DROP");
    let change = Change {
        ruleset: &rules,
        recorded: None,
    };
    let report = Applier::new(&runner).apply(&[change]).unwrap();
    assert_eq!(report.changed, std::slice::from_ref(&rules.port));
    let mut want = SAVES.to_vec();
    want.extend([Tool::EbtablesRestore, Tool::IptablesRestore]);
    assert_eq!(tools(&runner), want);
    assert_eq!(runner.calls()[0].args, ["-t", "nat"]);
    assert_eq!(runner.calls()[3].args, ["--noflush"]);
}

#[test]
fn an_unchanged_binding_only_reads() {
    let runner = RecordingRunner::new();
    live(&runner);
    let rules = ruleset("-p tcp --dport 25 -j DROP");
    let change = Change {
        ruleset: &rules,
        recorded: Some(&rules),
    };
    let report = Applier::new(&runner).apply(&[change]).unwrap();
    assert_eq!(report.unchanged, std::slice::from_ref(&rules.port));
    assert_eq!(tools(&runner), SAVES);
    // Without a record, or with a different one, it is rebuilt.
    let runner = RecordingRunner::new();
    live(&runner);
    let other = ruleset("-p tcp --dport 26 -j DROP");
    let change = Change {
        ruleset: &rules,
        recorded: Some(&other),
    };
    assert_eq!(
        Applier::new(&runner)
            .apply(&[change])
            .unwrap()
            .changed
            .len(),
        1
    );
}

#[test]
fn a_failed_build_discards_what_was_built_and_switches_nothing() {
    let runner = RecordingRunner::new();
    live(&runner);
    runner.fail_call(5); // 1-3 reads, 4 bridge build, 5 IPv4 build
    let rules = ruleset("-p tcp --dport 26 -j DROP");
    let err = Applier::new(&runner)
        .apply(&[Change {
            ruleset: &rules,
            recorded: None,
        }])
        .unwrap_err();
    assert!(
        matches!(err, ApplyError::Refused { ref restore_errors, .. } if restore_errors.is_empty())
    );
    assert!(
        err.to_string()
            .ends_with("the previous rules are still in place"),
        "{err}"
    );
    let mut want = SAVES.to_vec();
    want.extend([
        Tool::EbtablesRestore,
        Tool::IptablesRestore,
        Tool::EbtablesRestore,
    ]);
    assert_eq!(tools(&runner), want);
    assert_eq!(
        stdin(&runner, 4),
        "*nat\n:libvirt-J-vnet0 ACCEPT\n-A libvirt-J-vnet0 -p IPv6 -j DROP\nCOMMIT\n"
    );
    assert_eq!(
        stdin(&runner, 6),
        "*nat\n-F libvirt-J-vnet0\n-X libvirt-J-vnet0\nCOMMIT\n"
    );
}

#[test]
fn a_failed_switch_puts_back_the_families_already_switched() {
    let runner = RecordingRunner::new();
    live(&runner);
    runner.fail_call(7); // 4, 5 builds; 6 bridge switch; 7 IPv4 switch
    let rules = ruleset("-p tcp --dport 26 -j DROP");
    // A record that differs: an update is known to be needed, no probe.
    let old = ruleset("-p tcp -m tcp --dport 25 -j DROP");
    let err = Applier::new(&runner)
        .apply(&[Change {
            ruleset: &rules,
            recorded: Some(&old),
        }])
        .unwrap_err();
    assert!(
        matches!(err, ApplyError::Refused { ref restore_errors, .. } if restore_errors.is_empty()),
        "{err}"
    );
    assert!(stdin(&runner, 6).contains("-E libvirt-J-vnet0 libvirt-I-vnet0"));
    // 8: discard the IPv4 temporaries; 9: read the bridge table again;
    // 10, 11: rebuild and switch the bridge back to the old rules (the
    // canned answer still shows the old state, so they are "updated" to it).
    assert_eq!(
        stdin(&runner, 8),
        "*filter\n-F FJ-vnet0\n-X FJ-vnet0\nCOMMIT\n"
    );
    assert_eq!(runner.calls()[8].tool, Tool::EbtablesSave);
    assert_eq!(
        stdin(&runner, 10),
        "*nat\n:libvirt-J-vnet0 ACCEPT\n-A libvirt-J-vnet0 -p IPv6 -j DROP\nCOMMIT\n"
    );
    assert!(stdin(&runner, 11).contains("-E libvirt-J-vnet0 libvirt-I-vnet0"));
    assert_eq!(runner.calls().len(), 11);
}

#[test]
fn removing_everything_and_removing_nothing() {
    let runner = RecordingRunner::new();
    live(&runner);
    let port = IfName::new("vnet0").unwrap();
    Applier::new(&runner)
        .remove(std::slice::from_ref(&port))
        .unwrap();
    assert_eq!(
        stdin(&runner, 4),
        "*nat\n-D PREROUTING -i vnet0 -j libvirt-I-vnet0\n-F libvirt-I-vnet0\n-X libvirt-I-vnet0\nCOMMIT\n"
    );
    assert!(
        stdin(&runner, 5).contains("-X libvirt-host-in\n"),
        "last port: shared chains go"
    );
    let empty = RecordingRunner::new();
    let report = Applier::new(&empty).remove(&[port]).unwrap();
    assert_eq!(report.unchanged.len(), 1);
    assert_eq!(tools(&empty), SAVES);
}

#[test]
fn without_a_record_the_kernel_is_asked_whether_the_update_is_needed() {
    let runner = RecordingRunner::new();
    live(&runner);
    let rules = ruleset("-p tcp --dport 26 -j DROP");
    let change = Change {
        ruleset: &rules,
        recorded: None,
    };
    let report = Applier::new(&runner).apply(&[change]).unwrap();
    // 4, 5: builds; 6, 7: the two families read again (the canned tables
    // show no temporaries, so the rules differ); 8, 9: switches.
    let mut want = SAVES.to_vec();
    want.extend([
        Tool::EbtablesRestore,
        Tool::IptablesRestore,
        Tool::EbtablesSave,
        Tool::IptablesSave,
        Tool::EbtablesRestore,
        Tool::IptablesRestore,
    ]);
    assert_eq!(tools(&runner), want);
    assert!(stdin(&runner, 9).contains("-E FJ-vnet0 FI-vnet0"));
    assert_eq!(report.changed, std::slice::from_ref(&rules.port));
}

/// Every one of the three save tools must say `(nf_tables)`: with
/// ebtables on the legacy tools, bridge changes are not nf_tables
/// commits (no generation, no events), whatever iptables says.
#[test]
fn the_tools_work_through_nf_tables_only_when_all_three_say_so() {
    let runner = RecordingRunner::new();
    runner.answer(Tool::EbtablesSave, "ebtables-save v1.8.9 (nf_tables)\n");
    runner.answer(Tool::IptablesSave, "iptables-save v1.8.9 (nf_tables)\n");
    runner.answer(Tool::Ip6tablesSave, "ip6tables-save v1.8.9 (nf_tables)\n");
    assert!(tools_through_nf_tables(&runner));
    let asked: Vec<_> = runner
        .calls()
        .into_iter()
        .map(|c| (c.tool, c.args))
        .collect();
    assert!(asked.iter().all(|(_, args)| args == &["-V"]), "{asked:?}");

    runner.answer(Tool::EbtablesSave, "ebtables v2.0.11 (legacy)\n");
    assert!(!tools_through_nf_tables(&runner));
    runner.answer(Tool::EbtablesSave, "ebtables-save v1.8.9 (nf_tables)\n");
    runner.answer(Tool::Ip6tablesSave, "ip6tables-save v1.8.9 (legacy)\n");
    assert!(!tools_through_nf_tables(&runner));
}
