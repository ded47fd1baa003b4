//! The engine keeps stored objects and applied rules in step: rebuild on
//! change, all-or-nothing with rollback, refusals that change nothing.
//! Runs against a recording runner (no kernel); the kernel-level behaviour
//! is covered by backend-xtables' and the daemon's namespace tests.

use std::sync::Arc;

use host_io::{Command, RecordingRunner, Tool};
use nwfilter_driver::{BindingStore, Engine, EngineError, FilterStore};

const INNER_V1: &str = "<filter name='no-smtp' chain='root'>
  <uuid>7c3f5d2e-9a41-4c8b-b1f0-3d2e6a7b8c91</uuid>
  <rule action='drop' direction='out' priority='400'><tcp dstportstart='25'/></rule>
</filter>";

const INNER_V2: &str = "<filter name='no-smtp' chain='root'>
  <uuid>7c3f5d2e-9a41-4c8b-b1f0-3d2e6a7b8c91</uuid>
  <rule action='drop' direction='out' priority='400'><tcp dstportstart='587'/></rule>
</filter>";

/// A redefinition that cannot be instantiated: `$NOPE` is bound nowhere.
const INNER_BROKEN: &str = "<filter name='no-smtp' chain='root'>
  <uuid>7c3f5d2e-9a41-4c8b-b1f0-3d2e6a7b8c91</uuid>
  <rule action='drop' direction='out' priority='400'><tcp dstportstart='$NOPE'/></rule>
</filter>";

const TOP: &str = "<filter name='guest' chain='root'>
  <uuid>0b9d0a52-5f0c-4a53-8e0e-5d1a0c7e2f11</uuid>
  <filterref filter='no-smtp'/>
  <filterref filter='clean-traffic'/>
</filter>";

fn binding(port: &str, filter: &str) -> String {
    format!(
        "<filterbinding>
  <owner><name>vm-{port}</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner>
  <portdev name='{port}'/>
  <mac address='52:54:00:7b:35:93'/>
  <filterref filter='{filter}'><parameter name='IP' value='192.0.2.10'/></filterref>
</filterbinding>"
    )
}

struct Setup {
    _dirs: (tempfile::TempDir, tempfile::TempDir),
    runner: Arc<RecordingRunner>,
    engine: Engine<Arc<RecordingRunner>>,
}

fn setup() -> Setup {
    let config = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let runner = Arc::new(RecordingRunner::new());
    let engine = Engine::new(
        FilterStore::open(config.path()),
        BindingStore::open(state.path()),
        Arc::clone(&runner),
    );
    Setup {
        _dirs: (config, state),
        runner,
        engine,
    }
}

/// Every restore batch the engine sent, as one text.
fn restore_input(calls: &[Command]) -> String {
    calls
        .iter()
        .filter_map(|c| c.stdin.clone())
        .collect::<Vec<_>>()
        .join("\n")
}

fn dumpxml(engine: &Engine<Arc<RecordingRunner>>, name: &str) -> String {
    nwfilter_model::format_filter(&engine.filters().lookup(name).unwrap())
}

#[test]
fn a_binding_is_recorded_only_with_its_rules_applied() {
    let s = setup();
    s.engine.define(INNER_V1).unwrap();
    s.engine.define(TOP).unwrap();
    s.engine.binding_create(&binding("vnet0", "guest")).unwrap();
    let batches = restore_input(&s.runner.calls());
    assert!(batches.contains("--dport 25"), "{batches}");
    assert!(batches.contains("libvirt-J-vnet0") || batches.contains("libvirt-I-vnet0"));
    assert!(s.engine.bindings().get("vnet0").unwrap().is_some());
}

#[test]
fn a_second_binding_for_a_port_is_refused_and_changes_nothing() {
    let s = setup();
    s.engine
        .binding_create(&binding("vnet0", "clean-traffic"))
        .unwrap();
    let calls_before = s.runner.calls().len();
    let err = s
        .engine
        .binding_create(&binding("vnet0", "clean-traffic"))
        .unwrap_err();
    assert!(err.to_string().contains("vnet0"), "{err}");
    assert_eq!(s.runner.calls().len(), calls_before, "nothing may run");
}

#[test]
fn redefining_a_filter_rebuilds_every_binding_that_reaches_it() {
    let s = setup();
    s.engine.define(INNER_V1).unwrap();
    s.engine.define(TOP).unwrap();
    s.engine.binding_create(&binding("vnet0", "guest")).unwrap();
    s.engine.binding_create(&binding("vnet1", "guest")).unwrap();
    s.engine
        .binding_create(&binding("vnet2", "clean-traffic"))
        .unwrap();
    let before = s.runner.calls().len();
    s.engine.define(INNER_V2).unwrap();
    let rebuild = restore_input(&s.runner.calls()[before..]);
    assert!(rebuild.contains("--dport 587"), "{rebuild}");
    assert!(rebuild.contains("vnet0") && rebuild.contains("vnet1"));
    assert!(
        !rebuild.contains("vnet2"),
        "a binding that does not use the filter is not touched"
    );
}

#[test]
fn an_identical_redefinition_runs_nothing() {
    let s = setup();
    s.engine.define(INNER_V1).unwrap();
    s.engine.define(TOP).unwrap();
    s.engine.binding_create(&binding("vnet0", "guest")).unwrap();
    let before = s.runner.calls().len();
    s.engine.define(INNER_V1).unwrap();
    assert_eq!(s.runner.calls().len(), before);
}

#[test]
fn a_redefinition_that_does_not_compile_is_rolled_back_naming_the_port() {
    let s = setup();
    s.engine.define(INNER_V1).unwrap();
    s.engine.define(TOP).unwrap();
    s.engine.binding_create(&binding("vnet0", "guest")).unwrap();
    let stored = dumpxml(&s.engine, "no-smtp");
    let before = s.runner.calls().len();
    let err = s.engine.define(INNER_BROKEN).unwrap_err();
    let text = nwfilter_driver::engine::error_chain(&err);
    assert!(matches!(err, EngineError::Rebuild { .. }), "{text}");
    assert!(text.contains("vnet0") && text.contains("NOPE"), "{text}");
    assert_eq!(
        dumpxml(&s.engine, "no-smtp"),
        stored,
        "definition rolled back"
    );
    assert_eq!(s.runner.calls().len(), before, "no rule was touched");
}

#[test]
fn a_rebuild_the_kernel_refuses_is_rolled_back() {
    let s = setup();
    s.engine.define(INNER_V1).unwrap();
    s.engine.define(TOP).unwrap();
    s.engine.binding_create(&binding("vnet0", "guest")).unwrap();
    let stored = dumpxml(&s.engine, "no-smtp");
    // The rebuild plans on the tables the engine kept and sends its first
    // batch, which the kernel refuses; the engine then reads the three
    // tables (they may have changed behind its back) and sends the first
    // batch again, refused again: the rebuild fails.
    let n = s.runner.calls().len();
    s.runner.fail_calls(&[n + 1, n + 5]);
    let err = s.engine.define(INNER_V2).unwrap_err();
    let text = nwfilter_driver::engine::error_chain(&err);
    assert!(text.contains("vnet0"), "{text}");
    assert!(text.contains("injected failure"), "{text}");
    assert_eq!(dumpxml(&s.engine, "no-smtp"), stored);
    let calls = s.runner.calls();
    assert_eq!(calls.len(), n + 5, "nothing runs after the refused batch");
    assert_eq!(calls[n].tool, Tool::EbtablesRestore);
    assert_eq!(calls[n + 1].tool, Tool::EbtablesSave);
    assert_eq!(calls[n + 4].tool, Tool::EbtablesRestore);
}

#[test]
fn undefine_is_refused_while_a_binding_reaches_the_filter() {
    let s = setup();
    s.engine.define(INNER_V1).unwrap();
    s.engine.define(TOP).unwrap();
    s.engine.binding_create(&binding("vnet0", "guest")).unwrap();
    let err = s.engine.undefine("no-smtp").unwrap_err().to_string();
    assert!(err.contains("in use") && err.contains("vnet0"), "{err}");
    s.engine.binding_delete("vnet0").unwrap();
    s.engine.undefine("no-smtp").unwrap();
}

#[test]
fn binding_delete_removes_rules_and_state() {
    let s = setup();
    s.engine
        .binding_create(&binding("vnet0", "clean-traffic"))
        .unwrap();
    s.engine.binding_delete("vnet0").unwrap();
    assert!(s.engine.bindings().get("vnet0").unwrap().is_none());
    let err = s.engine.binding_delete("vnet0").unwrap_err().to_string();
    assert!(err.contains("no filter binding"), "{err}");
    let bad = s.engine.binding_delete("bad/name").unwrap_err().to_string();
    assert!(bad.contains("bad/name"), "{bad}");
}

#[test]
fn a_binding_needing_ip_without_one_is_refused_and_not_recorded() {
    let s = setup();
    let xml = binding("vnet0", "clean-traffic").replace(
        "<parameter name='IP' value='192.0.2.10'/>",
        "<parameter name='CTRL_IP_LEARNING' value='any'/>",
    );
    let err = s.engine.binding_create(&xml).unwrap_err();
    assert!(matches!(err, EngineError::NeedsIp { .. }), "{err}");
    assert!(s.engine.bindings().get("vnet0").unwrap().is_none());
}

#[test]
fn reapply_reports_bindings_that_no_longer_compile() {
    let s = setup();
    s.engine.define(INNER_V1).unwrap();
    s.engine.define(TOP).unwrap();
    s.engine.binding_create(&binding("vnet0", "guest")).unwrap();
    s.engine
        .binding_create(&binding("vnet1", "clean-traffic"))
        .unwrap();
    // Break vnet0's tree behind the engine's back, as an admin editing the
    // config directory by hand would.
    std::fs::write(s.engine.filters().dir().join("no-smtp.xml"), INNER_BROKEN).unwrap();
    let report = s.engine.reapply_all().unwrap();
    assert_eq!(report.failed.len(), 1, "{report:?}");
    assert_eq!(report.failed[0].0.as_str(), "vnet0");
    assert!(report.failed[0].1.contains("NOPE"), "{report:?}");
}

#[test]
fn a_reapply_of_many_bindings_reports_and_applies_each_as_one_by_one() {
    // Enough bindings that a reapply compiles them on several threads
    // (where the machine has several cores): the outcome per port is
    // the same as for a few.
    let s = setup();
    s.engine.define(INNER_V1).unwrap();
    s.engine.define(TOP).unwrap();
    let ports: Vec<String> = (0..200).map(|i| format!("vnet{i}")).collect();
    let broken: Vec<&String> = ports.iter().step_by(7).collect();
    for port in &ports {
        let filter = if broken.contains(&port) {
            "guest"
        } else {
            "clean-traffic"
        };
        s.engine.binding_create(&binding(port, filter)).unwrap();
    }
    std::fs::write(s.engine.filters().dir().join("no-smtp.xml"), INNER_BROKEN).unwrap();
    // One binding file damaged among them (files are read on several
    // threads too): its port is closed (its drop-all rules applied), the
    // others unaffected.
    let damaged = "vnet100";
    let state_dir = s.engine.bindings().dir().to_path_buf();
    std::fs::write(state_dir.join(format!("{damaged}.xml")), b"\xff garbage").unwrap();
    let report = s.engine.reapply_all().unwrap();
    let blocked: Vec<&str> = report.blocked.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(blocked, [damaged]);
    let mut failed: Vec<&str> = report.failed.iter().map(|(p, _)| p.as_str()).collect();
    failed.sort();
    let mut expected_failed: Vec<&str> = broken.iter().map(|p| p.as_str()).collect();
    expected_failed.sort();
    assert_eq!(failed, expected_failed);
    assert!(
        report.failed.iter().all(|(_, why)| why.contains("NOPE")),
        "{report:?}"
    );
    let mut fine: Vec<&str> = report
        .applied
        .iter()
        .chain(&report.unchanged)
        .map(|p| p.as_str())
        .collect();
    fine.sort();
    let mut expected_fine: Vec<&str> = ports
        .iter()
        .filter(|p| !broken.contains(p))
        .map(|p| p.as_str())
        .collect();
    expected_fine.sort();
    assert_eq!(fine, expected_fine);
}

/// `no-smtp` redefined to reference a filter nobody defined.
const INNER_MISSING_REF: &str = "<filter name='no-smtp' chain='root'>
  <uuid>7c3f5d2e-9a41-4c8b-b1f0-3d2e6a7b8c91</uuid>
  <filterref filter='not-defined-anywhere'/>
</filter>";

/// Every file of a directory with its bytes.
fn files(dir: &std::path::Path) -> Vec<(std::ffi::OsString, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_owned(),
                std::fs::read(&p).unwrap(),
            )
        })
        .collect();
    files.sort();
    files
}

#[test]
fn a_redefinition_that_breaks_a_binding_is_refused_and_stores_nothing() {
    let s = setup();
    s.engine.define(INNER_V1).unwrap();
    s.engine.define(TOP).unwrap();
    s.engine.binding_create(&binding("vnet1", "guest")).unwrap();
    let stored = files(s.engine.filters().dir());
    let before = s.runner.calls().len();
    let err = s.engine.define(INNER_MISSING_REF).unwrap_err();
    let text = nwfilter_driver::engine::error_chain(&err);
    assert!(matches!(err, EngineError::Rebuild { .. }), "{text}");
    assert!(
        text.contains("vnet1") && text.contains("not-defined-anywhere"),
        "{text}"
    );
    assert_eq!(files(s.engine.filters().dir()), stored, "store unchanged");
    assert_eq!(s.runner.calls().len(), before, "kernel unchanged");
    // A filter nobody uses may still reference a missing one (libvirt).
    s.engine
        .define(&INNER_MISSING_REF.replace("no-smtp", "unused").replace(
            "7c3f5d2e-9a41-4c8b-b1f0-3d2e6a7b8c91",
            "7c3f5d2e-9a41-4c8b-b1f0-3d2e6a7b8c92",
        ))
        .unwrap();
}

#[test]
fn a_corrupt_binding_file_closes_its_port_and_every_other_port_is_applied() {
    let s = setup();
    for port in ["vnet0", "vnet1", "vnet2"] {
        s.engine
            .binding_create(&binding(port, "clean-traffic"))
            .unwrap();
    }
    let state_dir = s.engine.bindings().dir().to_path_buf();
    std::fs::write(state_dir.join("vnet1.xml"), b"\xff\xfe garbage \x00").unwrap();
    // A daemon starting on these files.
    let runner = Arc::new(RecordingRunner::new());
    let engine = Engine::new(
        s.engine.filters().clone(),
        s.engine.bindings().clone(),
        Arc::clone(&runner),
    );
    let report = engine.reapply_all().unwrap();
    assert!(!report.complete(), "{report:?}");
    let applied: Vec<&str> = report.applied.iter().map(|p| p.as_str()).collect();
    assert!(
        applied.contains(&"vnet0") && applied.contains(&"vnet2"),
        "{report:?}"
    );
    assert_eq!(report.blocked.len(), 1, "{report:?}");
    let (port, why) = &report.blocked[0];
    assert_eq!(port.as_str(), "vnet1");
    assert!(why.contains("vnet1.xml") && why.contains("UTF-8"), "{why}");
    // Closed, not open: its chains drop everything.
    let batches = restore_input(&runner.calls());
    let vnet1_rules: Vec<&str> = batches
        .lines()
        .filter(|l| l.contains("vnet1") && l.starts_with("-A"))
        .collect();
    assert!(
        !vnet1_rules.is_empty() && vnet1_rules.iter().any(|l| l.ends_with("-j DROP")),
        "{batches}"
    );
    assert!(
        !vnet1_rules.iter().any(|l| l.ends_with("-j ACCEPT")),
        "{vnet1_rules:#?}"
    );
    // Nothing stuck: the broken binding can be deleted, rules and file.
    let deleted = engine.binding_delete_any("vnet1").unwrap();
    assert_eq!(deleted.port().as_str(), "vnet1");
    assert!(!state_dir.join("vnet1.xml").exists());
    assert!(engine.reapply_all().unwrap().complete());
}

#[test]
fn a_define_is_not_held_up_by_garbage_in_the_config_directory() {
    let s = setup();
    s.engine.define(INNER_V1).unwrap();
    let dir = s.engine.filters().dir().to_path_buf();
    std::fs::write(dir.join("junk.xml"), b"\x89PNG\r\n\x1a\n\x00\x00").unwrap();
    s.engine.define(TOP).unwrap();
    s.engine.binding_create(&binding("vnet0", "guest")).unwrap();
    s.engine.define(INNER_V2).unwrap();
    assert!(dumpxml(&s.engine, "no-smtp").contains("587"));
}

/// `binding`, parsed, with `filter` in place of its filter.
fn rebound(port: &str, filter: &str) -> nwfilter_model::Binding {
    nwfilter_model::parse_binding(&binding(port, filter)).unwrap()
}

#[test]
fn rebind_gives_every_port_its_new_filter_in_one_batch() {
    let s = setup();
    s.engine.define(INNER_V1).unwrap();
    for port in ["vnet0", "vnet1"] {
        s.engine
            .binding_create(&binding(port, "clean-traffic"))
            .unwrap();
    }
    let n = s.runner.calls().len();
    let new = [rebound("vnet0", "no-smtp"), rebound("vnet1", "no-smtp")];
    s.engine.rebind(&new).unwrap();
    for port in ["vnet0", "vnet1"] {
        let stored = s.engine.bindings().get(port).unwrap().unwrap();
        assert_eq!(stored.filterref.filter.as_str(), "no-smtp");
    }
    let calls = s.runner.calls();
    let restores = calls[n..]
        .iter()
        .filter(|c| c.tool == Tool::IptablesRestore)
        .count();
    assert_eq!(restores, 1, "both ports in one iptables batch: {calls:?}");
    assert!(restore_input(&calls[n..]).contains("--dport 25"));
}

#[test]
fn a_rebind_the_kernel_refuses_or_that_does_not_compile_changes_nothing() {
    let s = setup();
    s.engine.define(INNER_V1).unwrap();
    s.engine
        .define(
            INNER_BROKEN
                .replace("no-smtp", "broken")
                .replace("7c3f", "8c3f")
                .as_str(),
        )
        .unwrap();
    for port in ["vnet0", "vnet1"] {
        s.engine
            .binding_create(&binding(port, "clean-traffic"))
            .unwrap();
    }
    // One port's new filter does not compile: nothing is sent or stored.
    let n = s.runner.calls().len();
    let new = [rebound("vnet0", "no-smtp"), rebound("vnet1", "broken")];
    let err = s.engine.rebind(&new).unwrap_err();
    assert!(
        nwfilter_driver::engine::error_chain(&err).contains("NOPE"),
        "{err}"
    );
    assert_eq!(s.runner.calls().len(), n, "no rule was touched");
    // The kernel refuses the batch (and its retry): nothing is stored.
    s.runner.fail_calls(&[n + 1, n + 5]);
    let new = [rebound("vnet0", "no-smtp"), rebound("vnet1", "no-smtp")];
    let err = s.engine.rebind(&new).unwrap_err();
    assert!(nwfilter_driver::engine::error_chain(&err).contains("injected failure"));
    for port in ["vnet0", "vnet1"] {
        let stored = s.engine.bindings().get(port).unwrap().unwrap();
        assert_eq!(stored.filterref.filter.as_str(), "clean-traffic");
    }
    // A port without a binding is refused.
    let err = s.engine.rebind(&[rebound("vnet9", "no-smtp")]).unwrap_err();
    assert!(err.to_string().contains("vnet9"), "{err}");
}
