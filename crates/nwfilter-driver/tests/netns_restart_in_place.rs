//! A start with every xtables rule still in place (the daemon restarted,
//! the kernel untouched) builds nothing: the ports an earlier process
//! applied are checked as a reload checks them, against that process's
//! record of what it applied (issue 22: restart of 1000 bindings). Ports
//! whose rules changed meanwhile, in the kernel or in their binding, are
//! still put right.
//!
//! A process that stops cleanly also hands its kept tables to the next
//! start, which then reads no table when nothing at all committed in
//! between (`Engine::hand_over`); any commit in between, a damaged file,
//! or a file from another namespace, and the start reads as before.

use netns_lab as support;

mod tool_calls;

use std::path::Path;
use std::sync::Arc;

use host_io::{ProcessRunner, RecordingRunner, Toolset};
use nwfilter_driver::{Backend, BindingStore, Engine, FilterStore};
use support::{without_counters, Lab};
use tool_calls::{restores, saves};

fn binding(port: &str, n: usize, ip: &str) -> String {
    format!(
        "<filterbinding><owner><name>vm{n}</name>\
         <uuid>d54df46f-1ab5-4a22-8618-4560ef5f{n:04}</uuid></owner>\
         <portdev name='{port}'/><mac address='52:54:00:00:03:{n:02x}'/>\
         <filterref filter='clean-traffic'><parameter name='IP' value='{ip}'/>\
         </filterref></filterbinding>"
    )
}

/// An engine as a fresh daemon process has it: nothing kept in memory.
fn started(lab: &Lab, dirs: &Path) -> (Engine<Arc<RecordingRunner>>, Arc<RecordingRunner>) {
    running(
        dirs,
        ProcessRunner::new(Toolset::default()).in_netns(&lab.host.name),
    )
}

/// As [`started`], run inside the lab's namespace with a netlink socket
/// of its own, as nwfilterd runs: the engine can then hand over.
fn started_inside(dirs: &Path) -> (Engine<Arc<RecordingRunner>>, Arc<RecordingRunner>) {
    running(
        dirs,
        ProcessRunner::new(Toolset::default()).removing_by_handle(),
    )
}

/// An xtables engine over `dirs` whose commands `real` runs (recorded).
fn running(
    dirs: &Path,
    real: ProcessRunner,
) -> (Engine<Arc<RecordingRunner>>, Arc<RecordingRunner>) {
    let runner = Arc::new(RecordingRunner::wrapping(real));
    let engine = Engine::new(
        FilterStore::open(dirs.join("etc")),
        BindingStore::open(dirs.join("run")),
        Arc::clone(&runner),
    )
    .with_backend(Backend::Xtables);
    (engine, runner)
}

/// Ports `PREFIX0`.. (addresses 10.3.SUBNET.n) created by an engine that
/// is gone when this returns, as a stopped daemon is.
fn applied_by_an_earlier_process(lab: &Lab, dirs: &Path, prefix: &str, subnet: u8, ports: usize) {
    let (engine, _) = started(lab, dirs);
    for n in 0..ports {
        let ip = format!("10.3.{subnet}.{n}");
        engine
            .binding_create(&binding(&format!("{prefix}{n}"), n, &ip))
            .unwrap();
    }
}

fn names(ports: &[nwfilter_model::IfName]) -> Vec<&str> {
    let mut names: Vec<&str> = ports.iter().map(|p| p.as_str()).collect();
    names.sort();
    names
}

#[test]
fn a_start_with_the_rules_in_place_builds_nothing() {
    if !support::can_run("a_start_with_the_rules_in_place_builds_nothing") {
        return;
    }
    let lab = Lab::new(0);
    let dirs = tempfile::tempdir().unwrap();
    applied_by_an_earlier_process(&lab, dirs.path(), "ri", 0, 3);
    let in_place = without_counters(&lab.ruleset());

    // Restarted, nothing changed: every port is found in place without
    // building anything (without the record: the probe's restores).
    let (engine, runner) = started(&lab, dirs.path());
    let report = engine.reapply_all().unwrap();
    assert_eq!(
        names(&report.unchanged),
        ["ri0", "ri1", "ri2"],
        "{report:?}"
    );
    assert!(report.applied.is_empty(), "{report:?}");
    assert_eq!(restores(&runner.calls()), 0, "{:#?}", runner.calls());
    assert_eq!(without_counters(&lab.ruleset()), in_place);
    drop(engine);

    // While no daemon runs, another tool empties one of ri1's chains and a
    // hand edit gives ri2 another address (the same chains, other rules).
    lab.host
        .ok(&["ebtables", "-t", "nat", "-F", "I-ri1-ipv4-ip"]);
    let edited = binding("ri2", 2, "10.3.9.9");
    std::fs::write(dirs.path().join("run/ri2.xml"), edited).unwrap();
    let (engine, _) = started(&lab, dirs.path());
    let report = engine.reapply_all().unwrap();
    assert_eq!(names(&report.applied), ["ri1", "ri2"], "{report:?}");
    assert_eq!(names(&report.unchanged), ["ri0"], "{report:?}");
    let listing = lab.host.ok(&["ebtables-save", "-t", "nat"]);
    assert!(listing.contains("10.3.9.9"), "{listing}");
    assert!(!listing.contains("10.3.0.2"), "{listing}");
    drop(engine);

    // The next start trusts what that one applied.
    let now = without_counters(&lab.ruleset());
    let (engine, runner) = started(&lab, dirs.path());
    let report = engine.reapply_all().unwrap();
    assert_eq!(report.unchanged.len(), 3, "{report:?}");
    assert_eq!(restores(&runner.calls()), 0, "{:#?}", runner.calls());
    assert_eq!(without_counters(&lab.ruleset()), now);

    // A deleted binding leaves no record behind to trust later.
    engine.binding_delete("ri0").unwrap();
    assert!(!dirs.path().join("run/ri0.applied").exists());
}

/// Without a record (an older version's state, or a damaged file) the
/// start probes as before: rules in place are still left alone.
#[test]
fn a_start_without_a_record_probes_and_changes_nothing() {
    if !support::can_run("a_start_without_a_record_probes_and_changes_nothing") {
        return;
    }
    let lab = Lab::new(0);
    let dirs = tempfile::tempdir().unwrap();
    applied_by_an_earlier_process(&lab, dirs.path(), "rp", 1, 2);
    let in_place = without_counters(&lab.ruleset());
    std::fs::remove_file(dirs.path().join("run/rp0.applied")).unwrap();
    std::fs::write(dirs.path().join("run/rp1.applied"), "torn").unwrap();

    let (engine, runner) = started(&lab, dirs.path());
    let report = engine.reapply_all().unwrap();
    assert_eq!(names(&report.unchanged), ["rp0", "rp1"], "{report:?}");
    assert!(restores(&runner.calls()) > 0, "probed by building");
    assert_eq!(without_counters(&lab.ruleset()), in_place);
    drop(engine);

    // The probe's finding is recorded: the start after builds nothing.
    let (engine, runner) = started(&lab, dirs.path());
    let report = engine.reapply_all().unwrap();
    assert_eq!(report.unchanged.len(), 2, "{report:?}");
    assert_eq!(restores(&runner.calls()), 0, "{:#?}", runner.calls());
}

/// The file a stopping engine writes (`engine::hand_over::FILE`).
const HANDED_OVER: &str = "run/xtables-tables.handover";

/// Ports `PREFIX0`.. created by a process that then stops cleanly.
fn stopped_after_creating(dirs: &Path, prefix: &str, ports: usize) {
    let (engine, _) = started_inside(dirs);
    for n in 0..ports {
        engine
            .binding_create(&binding(&format!("{prefix}{n}"), n, &format!("10.4.0.{n}")))
            .unwrap();
    }
    engine.hand_over();
    assert!(dirs.join(HANDED_OVER).exists(), "nothing handed over");
}

#[test]
fn a_start_after_a_clean_stop_reads_no_table() {
    if !support::can_run("a_start_after_a_clean_stop_reads_no_table") {
        return;
    }
    let lab = Lab::new(0);
    let dirs = tempfile::tempdir().unwrap();
    lab.host.inside(|| {
        stopped_after_creating(dirs.path(), "ho", 3);
        let in_place = without_counters(&lab.ruleset());

        let (engine, runner) = started_inside(dirs.path());
        let report = engine.reapply_all().unwrap();
        assert_eq!(report.unchanged.len(), 3, "{report:?}");
        assert!(report.applied.is_empty(), "{report:?}");
        let calls = runner.calls();
        assert_eq!(saves(&calls), 0, "a table was read: {calls:#?}");
        assert_eq!(restores(&calls), 0, "{calls:#?}");
        assert_eq!(without_counters(&lab.ruleset()), in_place);
        assert!(
            !dirs.path().join(HANDED_OVER).exists(),
            "the file is for one start"
        );

        // What it plans on is the kernel's: a create and a delete beside
        // the handed-over ports land as planned, and a start that reads
        // (no file now) finds every port exactly in place.
        engine
            .binding_create(&binding("ho7", 7, "10.4.0.7"))
            .unwrap();
        engine.binding_delete("ho1").unwrap();
        assert_eq!(saves(&runner.calls()), 0, "{:#?}", runner.calls());
        drop(engine);
        let now = without_counters(&lab.ruleset());
        let (engine, runner) = started_inside(dirs.path());
        let report = engine.reapply_all().unwrap();
        assert!(saves(&runner.calls()) > 0, "no file, so it reads");
        assert_eq!(report.unchanged.len(), 3, "{report:?}");
        assert!(report.applied.is_empty(), "{report:?}");
        assert_eq!(without_counters(&lab.ruleset()), now);
    });
}

#[test]
fn a_commit_after_the_stop_or_a_damaged_file_makes_the_start_read() {
    if !support::can_run("a_commit_after_the_stop_or_a_damaged_file_makes_the_start_read") {
        return;
    }
    let lab = Lab::new(0);
    let dirs = tempfile::tempdir().unwrap();
    lab.host.inside(|| {
        // Another tool empties one of our chains after the stop.
        stopped_after_creating(dirs.path(), "hc", 2);
        let in_place = without_counters(&lab.ruleset());
        lab.host
            .ok(&["ebtables", "-t", "nat", "-F", "I-hc1-ipv4-ip"]);
        let (engine, runner) = started_inside(dirs.path());
        let report = engine.reapply_all().unwrap();
        assert!(saves(&runner.calls()) > 0, "read after a foreign commit");
        let applied: Vec<&str> = report.applied.iter().map(|p| p.as_str()).collect();
        assert_eq!(applied, ["hc1"], "{report:?}");
        assert_eq!(without_counters(&lab.ruleset()), in_place);
        engine.hand_over();
        drop(engine);

        // A commit that touches nothing of ours counts as much.
        lab.host
            .ok(&["nft", "add", "table", "inet", "someone-else"]);
        let (engine, runner) = started_inside(dirs.path());
        let report = engine.reapply_all().unwrap();
        assert!(saves(&runner.calls()) > 0, "read after a foreign commit");
        assert_eq!(report.unchanged.len(), 2, "{report:?}");
        engine.hand_over();
        drop(engine);

        // A torn file is no hand-over.
        let path = dirs.path().join(HANDED_OVER);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, &text[..text.len() / 2]).unwrap();
        let (engine, runner) = started_inside(dirs.path());
        let report = engine.reapply_all().unwrap();
        assert!(saves(&runner.calls()) > 0, "read after a torn file");
        assert_eq!(report.unchanged.len(), 2, "{report:?}");
        assert!(!path.exists(), "a torn file is removed too");
    });
}

/// Tables handed over in one namespace are never taken in another, even
/// when its ruleset generation happens to be the same number: there the
/// ports have no rules yet, and trusting the file would leave them open.
#[test]
fn tables_handed_over_elsewhere_are_not_taken_at_the_same_generation() {
    let name = "tables_handed_over_elsewhere_are_not_taken_at_the_same_generation";
    if !support::can_run(name) {
        return;
    }
    let dirs = tempfile::tempdir().unwrap();
    let first = Lab::new(0);
    first
        .host
        .inside(|| stopped_after_creating(dirs.path(), "he", 2));
    drop(first);

    let second = Lab::new(0);
    second.host.inside(|| {
        // The file says the generation the second namespace has now.
        use host_io::Runner;
        let generation = ProcessRunner::new(Toolset::default())
            .removing_by_handle()
            .ruleset_generation()
            .expect("a generation");
        let path = dirs.path().join(HANDED_OVER);
        let mut handed: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        handed["moment"]["generation"] = generation.into();
        std::fs::write(&path, handed.to_string()).unwrap();

        let (engine, runner) = started_inside(dirs.path());
        let report = engine.reapply_all().unwrap();
        assert!(saves(&runner.calls()) > 0, "{:#?}", runner.calls());
        assert_eq!(report.applied.len(), 2, "{report:?}");
        let listing = second.host.ok(&["ebtables-save", "-t", "nat"]);
        assert!(listing.contains("10.4.0.1"), "{listing}");
    });
}
