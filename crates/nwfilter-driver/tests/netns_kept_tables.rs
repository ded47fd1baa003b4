//! xtables operations plan against the tables the engine kept, not a
//! fresh `*-save` of every table (issue 22 item 2): after the first
//! operation, creates and deletes beside other ports read nothing, and the
//! kernel ends exactly as planning against fresh reads would leave it. A
//! kept state made stale by another tool is noticed (the restore is
//! refused), read again, and the operation still succeeds.

use netns_lab as support;

use std::sync::Arc;

use host_io::{Command, ProcessRunner, RecordingRunner, Tool, Toolset};
use nwfilter_driver::{Backend, BindingStore, Engine, FilterStore};
use support::{without_counters, Lab};

fn binding(port: &str, n: usize) -> String {
    format!(
        "<filterbinding><owner><name>vm{n}</name>\
         <uuid>d54df46f-1ab5-4a22-8618-4560ef5f{n:04}</uuid></owner>\
         <portdev name='{port}'/><mac address='52:54:00:00:02:{n:02x}'/>\
         <filterref filter='clean-traffic'><parameter name='IP' value='10.2.0.{n}'/>\
         </filterref></filterbinding>"
    )
}

fn saves(calls: &[Command]) -> usize {
    calls
        .iter()
        .filter(|c| {
            matches!(
                c.tool,
                Tool::EbtablesSave | Tool::IptablesSave | Tool::Ip6tablesSave
            )
        })
        .count()
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
