//! xtables operations plan against the tables the engine kept, not a
//! fresh `*-save` of every table (issue 22 item 2): after the first
//! operation, creates and deletes beside other ports read nothing, and the
//! kernel ends exactly as planning against fresh reads would leave it. A
//! kept state made stale by another tool is noticed (the restore is
//! refused), read again, and the operation still succeeds.

use netns_lab as support;

mod tool_calls;

use std::sync::Arc;

use host_io::{Command, ProcessRunner, RecordingRunner, Tool, Toolset};
use nwfilter_driver::{Backend, BindingStore, Engine, FilterStore};
use support::{without_counters, Lab};
use tool_calls::saves;

fn binding(port: &str, n: usize) -> String {
    format!(
        "<filterbinding><owner><name>vm{n}</name>\
         <uuid>d54df46f-1ab5-4a22-8618-4560ef5f{n:04}</uuid></owner>\
         <portdev name='{port}'/><mac address='52:54:00:00:02:{n:02x}'/>\
         <filterref filter='clean-traffic'><parameter name='IP' value='10.2.0.{n}'/>\
         </filterref></filterbinding>"
    )
}

#[test]
fn xtables_operations_beside_other_ports_read_no_table() {
    if !support::can_run("xtables_operations_beside_other_ports_read_no_table") {
        return;
    }
    let lab = Lab::new(0);
    let dirs = tempfile::tempdir().unwrap();
    let real = ProcessRunner::new(Toolset::default()).in_netns(&lab.host.name);
    let runner = Arc::new(RecordingRunner::wrapping(real));
    let engine = Engine::new(
        FilterStore::open(dirs.path().join("etc")),
        BindingStore::open(dirs.path().join("run")),
        Arc::clone(&runner),
    )
    .with_backend(Backend::Xtables);

    engine.binding_create(&binding("kt0", 0)).unwrap();
    let first = runner.calls().len();
    for n in 1..6 {
        engine
            .binding_create(&binding(&format!("kt{n}"), n))
            .unwrap();
    }
    engine.binding_delete("kt2").unwrap();
    engine.binding_delete("kt0").unwrap();
    let later = &runner.calls()[first..];
    assert_eq!(saves(later), 0, "no table read after the first operation");

    // The kernel is what fresh reads would plan: a reapply (which reads)
    // finds every port in place and changes nothing.
    let before = without_counters(&lab.ruleset());
    let report = engine.reapply_all().unwrap();
    assert!(report.applied.is_empty(), "{report:?}");
    assert_eq!(report.unchanged.len(), 4);
    assert_eq!(without_counters(&lab.ruleset()), before);

    // Another tool removes kt3's chains behind the engine's back (after
    // the reapply: the engine keeps the tables it read).
    engine.binding_create(&binding("kt9", 9)).unwrap();
    lab.host.ok(&["ebtables", "-t", "nat", "-F"]);
    lab.host.ok(&["ebtables", "-t", "nat", "-X"]);
    // Planned against the kept tables, the delete's restore is refused;
    // the engine reads and deletes anyway.
    let before_delete = runner.calls().len();
    engine.binding_delete("kt3").unwrap();
    assert!(
        saves(&runner.calls()[before_delete..]) > 0,
        "the refused restore made the engine read the tables"
    );
    assert!(engine.bindings().get("kt3").unwrap().is_none());
    let listing = lab.host.ok(&["ebtables-save", "-t", "nat"]);
    assert!(!listing.contains("kt3"), "{listing}");
}

/// The kernel's table reads among `calls` (`*-save`, `nft list ruleset`).
fn reads(calls: &[Command]) -> usize {
    saves(calls)
        + calls
            .iter()
            .filter(|c| c.tool == Tool::Nft && c.args.iter().any(|a| a == "list"))
            .count()
}

/// Every rule in the lab's kernel, as sorted lines of `nft list ruleset`
/// (chains are listed in the order they were made, which a re-apply
/// after a flush changes).
fn everything(lab: &Lab) -> Vec<String> {
    let listing = lab.host.ok(&["nft", "list", "ruleset"]);
    let mut lines: Vec<String> = listing
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect();
    lines.sort();
    lines
}

/// A reload (`reapply_all`) right after our own operations reads no table:
/// the ruleset generation proves nothing committed since (issue 22's
/// reload target). After anyone else's commit it reads, and puts back
/// what that commit took away.
#[test]
fn a_reload_reads_no_table_when_nothing_but_us_committed_since() {
    let name = "a_reload_reads_no_table_when_nothing_but_us_committed_since";
    if !support::can_run(name) {
        return;
    }
    for backend in Backend::ALL {
        let lab = Lab::new(0);
        let dirs = tempfile::tempdir().unwrap();
        lab.host.inside(|| {
            // As nwfilterd runs it: a netlink socket of its own beside the tools.
            let real = Arc::new(ProcessRunner::new(Toolset::default()).removing_by_handle());
            let runner = Arc::new(RecordingRunner::wrapping(Arc::clone(&real)));
            let engine = Engine::new(
                FilterStore::open(dirs.path().join("etc")),
                BindingStore::open(dirs.path().join("run")),
                Arc::clone(&runner),
            )
            .with_backend(backend);
            for n in 0..3 {
                engine
                    .binding_create(&binding(&format!("rl{n}"), n))
                    .unwrap();
            }
            let in_place = everything(&lab);

            let before = runner.calls().len();
            let report = engine.reapply_all().unwrap();
            assert_eq!(
                reads(&runner.calls()[before..]),
                0,
                "{backend}: a table was read"
            );
            assert!(report.applied.is_empty(), "{backend}: {report:?}");
            assert_eq!(report.unchanged.len(), 3, "{backend}: {report:?}");
            assert!(
                everything(&lab) == in_place,
                "{backend}: the kernel changed"
            );

            // Another tool commits (a table of its own): the reload reads.
            lab.host
                .ok(&["nft", "add", "table", "inet", "someone-else"]);
            let before = runner.calls().len();
            let report = engine.reapply_all().unwrap();
            assert!(reads(&runner.calls()[before..]) > 0, "{backend}");
            assert_eq!(report.unchanged.len(), 3, "{backend}: {report:?}");

            // Another tool flushes everything: the reload reads and puts
            // every port back; the reload after that reads nothing again.
            lab.host.ok(&["nft", "flush", "ruleset"]);
            let report = engine.reapply_all().unwrap();
            assert_eq!(report.applied.len(), 3, "{backend}: {report:?}");
            assert!(
                everything(&lab) == in_place,
                "{backend}: not every rule is back"
            );
            let before = runner.calls().len();
            let report = engine.reapply_all().unwrap();
            assert_eq!(reads(&runner.calls()[before..]), 0, "{backend}");
            assert_eq!(report.unchanged.len(), 3, "{backend}: {report:?}");

            // A flush, then one of our own operations: ours does not make
            // the flush look like ours; the reload reads and restores.
            lab.host.ok(&["nft", "flush", "ruleset"]);
            engine.binding_create(&binding("rl3", 3)).unwrap();
            let before = runner.calls().len();
            let report = engine.reapply_all().unwrap();
            assert!(reads(&runner.calls()[before..]) > 0, "{backend}");
            for n in 0..3 {
                let port = format!("rl{n}");
                assert!(
                    report.applied.iter().any(|p| p.as_str() == port),
                    "{backend}: {port} not put back: {report:?}"
                );
            }
        });
    }
}
