//! A daemon that stops cleanly hands its kept xtables tables to the next
//! start, which then reads no table when nothing at all committed in
//! between (issue 22: the restart of 1000 ports spent most of its time in
//! `ebtables-save`). Any commit in between, or a damaged file, and the
//! start reads and puts right what changed, as before.

use netns_lab as support;

use std::path::Path;
use std::sync::Arc;

use host_io::{Command, ProcessRunner, RecordingRunner, Tool, Toolset};
use nwfilter_driver::{Backend, BindingStore, Engine, FilterStore};
use support::{without_counters, Lab};

fn binding(port: &str, n: usize) -> String {
    format!(
        "<filterbinding><owner><name>vm{n}</name>\
         <uuid>d54df46f-1ab5-4a22-8618-4560ef5f{n:04}</uuid></owner>\
         <portdev name='{port}'/><mac address='52:54:00:00:04:{n:02x}'/>\
         <filterref filter='clean-traffic'><parameter name='IP' value='10.4.0.{n}'/>\
         </filterref></filterbinding>"
    )
}

/// The file a stopping engine writes (`engine::hand_over::FILE`).
const HANDED_OVER: &str = "run/xtables-tables.handover";

/// An engine as a fresh daemon process has it (nothing in memory, its
/// own netlink socket), run inside the lab's namespace.
fn started(dirs: &Path) -> (Engine<Arc<RecordingRunner>>, Arc<RecordingRunner>) {
    let real = ProcessRunner::new(Toolset::default()).removing_by_handle();
    let runner = Arc::new(RecordingRunner::wrapping(real));
    let engine = Engine::new(
        FilterStore::open(dirs.join("etc")),
        BindingStore::open(dirs.join("run")),
        Arc::clone(&runner),
    )
    .with_backend(Backend::Xtables);
    (engine, runner)
}

/// Ports `PREFIX0`.. created by a process that then stops cleanly.
fn stopped_after_creating(dirs: &Path, prefix: &str, ports: usize) {
    let (engine, _) = started(dirs);
    for n in 0..ports {
        engine
            .binding_create(&binding(&format!("{prefix}{n}"), n))
            .unwrap();
    }
    engine.hand_over();
    assert!(dirs.join(HANDED_OVER).exists(), "nothing handed over");
}

fn count(calls: &[Command], tools: &[Tool]) -> usize {
    calls.iter().filter(|c| tools.contains(&c.tool)).count()
}

/// The table reads among `calls`.
fn saves(calls: &[Command]) -> usize {
    count(
        calls,
        &[Tool::EbtablesSave, Tool::IptablesSave, Tool::Ip6tablesSave],
    ) - versions(calls)
}

/// The tools asked for their version (`-V`), which is not a read.
fn versions(calls: &[Command]) -> usize {
    calls.iter().filter(|c| c.args == ["-V"]).count()
}

fn restores(calls: &[Command]) -> usize {
    count(
        calls,
        &[
            Tool::EbtablesRestore,
            Tool::IptablesRestore,
            Tool::Ip6tablesRestore,
        ],
    )
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

        let (engine, runner) = started(dirs.path());
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
        engine.binding_create(&binding("ho7", 7)).unwrap();
        engine.binding_delete("ho1").unwrap();
        assert_eq!(saves(&runner.calls()), 0, "{:#?}", runner.calls());
        drop(engine);
        let now = without_counters(&lab.ruleset());
        let (engine, runner) = started(dirs.path());
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
        let (engine, runner) = started(dirs.path());
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
        let (engine, runner) = started(dirs.path());
        let report = engine.reapply_all().unwrap();
        assert!(saves(&runner.calls()) > 0, "read after a foreign commit");
        assert_eq!(report.unchanged.len(), 2, "{report:?}");
        engine.hand_over();
        drop(engine);

        // A torn file is no hand-over.
        let path = dirs.path().join(HANDED_OVER);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, &text[..text.len() / 2]).unwrap();
        let (engine, runner) = started(dirs.path());
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

        let (engine, runner) = started(dirs.path());
        let report = engine.reapply_all().unwrap();
        assert!(saves(&runner.calls()) > 0, "{:#?}", runner.calls());
        assert_eq!(report.applied.len(), 2, "{report:?}");
        let listing = second.host.ok(&["ebtables-save", "-t", "nat"]);
        assert!(listing.contains("10.4.0.1"), "{listing}");
    });
}
