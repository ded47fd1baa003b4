//! The backend setting: each binding records which backend applied it; a
//! changed setting moves bindings make-before-break (new rules in, then
//! old rules out, then the record); delete uses the recorded backend; a
//! learned address under nftables is one transaction. Recording runner
//! only: the kernel side is in `netns_backends.rs`.

use std::net::Ipv4Addr;
use std::path::Path;
use std::sync::Arc;

use host_io::{Command, RecordingRunner, Tool};
use nwfilter_driver::{Backend, BindingStore, Engine, EngineError, FilterStore};
use nwfilter_model::IfName;

/// What `nft -j list …` prints when none of our tables exist.
const NO_TABLES: &str = r#"{"nftables": [{"metainfo": {"json_schema_version": 1}}]}"#;

/// ebtables-save of a nat table holding vnet0's root chain (so that a
/// removal has something to remove).
const EBTABLES_WITH_VNET0: &str = "*nat
:PREROUTING ACCEPT
:OUTPUT ACCEPT
:POSTROUTING ACCEPT
:libvirt-I-vnet0 ACCEPT
-A PREROUTING -i vnet0 -j libvirt-I-vnet0
-A libvirt-I-vnet0 -j DROP
";

fn binding(port: &str, ip: Option<&str>) -> String {
    let param = match ip {
        Some(ip) => format!("<parameter name='IP' value='{ip}'/>"),
        None => "<parameter name='CTRL_IP_LEARNING' value='any'/>".into(),
    };
    format!(
        "<filterbinding>
  <owner><name>vm-{port}</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner>
  <portdev name='{port}'/>
  <mac address='52:54:00:7b:35:93'/>
  <filterref filter='clean-traffic'>{param}</filterref>
</filterbinding>"
    )
}

/// An engine on `dirs` with its own recording runner.
fn engine(dirs: &(Box<Path>, Box<Path>), backend: Backend) -> Engine<Arc<RecordingRunner>> {
    let runner = Arc::new(RecordingRunner::new());
    runner.answer(Tool::Nft, NO_TABLES);
    Engine::new(
        FilterStore::open(&*dirs.0),
        BindingStore::open(&*dirs.1),
        runner,
    )
    .with_backend(backend)
}

fn dirs() -> (tempfile::TempDir, tempfile::TempDir, (Box<Path>, Box<Path>)) {
    let config = tempfile::tempdir().unwrap();
    let state = tempfile::tempdir().unwrap();
    let paths = (config.path().into(), state.path().into());
    (config, state, paths)
}

fn is_nft_transaction(c: &Command) -> bool {
    c.tool == Tool::Nft && c.args == ["-f", "-"]
}

fn is_xtables(c: &Command) -> bool {
    c.tool != Tool::Nft
}

fn record(state: &Path, port: &str) -> Option<String> {
    std::fs::read_to_string(state.join(format!("{port}.backend"))).ok()
}

fn vnet0() -> IfName {
    IfName::new("vnet0").unwrap()
}

#[test]
fn switching_to_nftables_applies_new_rules_before_removing_the_old() {
    let (_c, _s, d) = dirs();
    let xt = engine(&d, Backend::Xtables);
    xt.binding_create(&binding("vnet0", Some("192.0.2.10")))
        .unwrap();
    assert_eq!(xt.applied_by(&vnet0()).unwrap(), Backend::Xtables);
    assert_eq!(
        record(&d.1, "vnet0").as_deref(),
        Some("backend = xtables\n")
    );

    let nft = engine(&d, Backend::Nftables);
    nft.runner().answer(Tool::EbtablesSave, EBTABLES_WITH_VNET0);
    let report = nft.reapply_all().unwrap();
    assert_eq!(report.applied, [vnet0()]);
    let calls = nft.runner().calls();
    let committed = calls.iter().position(is_nft_transaction).expect("nft ran");
    assert!(
        calls[..committed].iter().all(|c| c.tool == Tool::Nft),
        "nothing of the old backend runs before the new rules are in: {calls:#?}"
    );
    let removal = &calls[committed + 1..];
    assert!(
        removal.iter().any(|c| c.tool == Tool::EbtablesRestore
            && c.stdin.as_deref().unwrap_or("").contains("libvirt-I-vnet0")),
        "the old ebtables chain is removed after: {removal:#?}"
    );
    assert!(removal.iter().all(is_xtables), "{removal:#?}");
    assert_eq!(nft.applied_by(&vnet0()).unwrap(), Backend::Nftables);
    assert_eq!(
        record(&d.1, "vnet0").as_deref(),
        Some("backend = nftables\n")
    );

    // Moved: a second reload has nothing left to move.
    let again = engine(&d, Backend::Nftables);
    again.reapply_all().unwrap();
    assert!(again.runner().calls().iter().all(|c| c.tool == Tool::Nft));
}

#[test]
fn switching_back_to_xtables_applies_xtables_first_then_removes_nft_rules() {
    let (_c, _s, d) = dirs();
    let nft = engine(&d, Backend::Nftables);
    nft.binding_create(&binding("vnet0", Some("192.0.2.10")))
        .unwrap();
    assert!(nft.runner().calls().iter().all(|c| c.tool == Tool::Nft));
    assert_eq!(
        record(&d.1, "vnet0").as_deref(),
        Some("backend = nftables\n")
    );

    let xt = engine(&d, Backend::Xtables);
    xt.reapply_all().unwrap();
    let calls = xt.runner().calls();
    let first_nft = calls.iter().position(|c| c.tool == Tool::Nft).unwrap();
    assert!(
        calls[..first_nft]
            .iter()
            .any(|c| c.tool == Tool::EbtablesRestore),
        "xtables rules go in before nft is even read: {calls:#?}"
    );
    assert!(calls[first_nft..].iter().all(|c| c.tool == Tool::Nft));
    assert_eq!(xt.applied_by(&vnet0()).unwrap(), Backend::Xtables);
    assert_eq!(
        record(&d.1, "vnet0").as_deref(),
        Some("backend = xtables\n")
    );
}

#[test]
fn delete_uses_the_recorded_backend_not_the_setting() {
    let (_c, _s, d) = dirs();
    engine(&d, Backend::Nftables)
        .binding_create(&binding("vnet0", Some("192.0.2.10")))
        .unwrap();
    let xt = engine(&d, Backend::Xtables);
    xt.binding_delete("vnet0").unwrap();
    let calls = xt.runner().calls();
    assert!(!calls.is_empty());
    assert!(
        calls.iter().all(|c| c.tool == Tool::Nft),
        "only nft removes an nft binding: {calls:#?}"
    );
    assert_eq!(record(&d.1, "vnet0"), None, "the record goes with it");

    // A binding of an older version (no record) is xtables'.
    let xt = engine(&d, Backend::Xtables);
    xt.binding_create(&binding("vnet1", Some("192.0.2.11")))
        .unwrap();
    std::fs::remove_file(d.1.join("vnet1.backend")).unwrap();
    let nft = engine(&d, Backend::Nftables);
    nft.binding_delete("vnet1").unwrap();
    assert!(nft.runner().calls().iter().all(is_xtables));
}

#[test]
fn a_refused_switch_keeps_the_old_rules_and_record() {
    let (_c, _s, d) = dirs();
    engine(&d, Backend::Xtables)
        .binding_create(&binding("vnet0", Some("192.0.2.10")))
        .unwrap();
    let nft = engine(&d, Backend::Nftables);
    // Call 1 reads our nft tables; call 2 is the transaction.
    nft.runner().fail_call(2);
    let err = nft.reapply_all().unwrap_err();
    assert!(
        matches!(
            err,
            EngineError::Apply {
                backend: Backend::Nftables,
                ..
            }
        ),
        "{err}"
    );
    let calls = nft.runner().calls();
    assert!(
        calls.iter().all(|c| c.tool == Tool::Nft),
        "the old rules are not touched: {calls:#?}"
    );
    assert_eq!(
        record(&d.1, "vnet0").as_deref(),
        Some("backend = xtables\n")
    );
}

#[test]
fn a_failed_removal_of_the_old_rules_is_reported_and_retried() {
    let (_c, _s, d) = dirs();
    engine(&d, Backend::Xtables)
        .binding_create(&binding("vnet0", Some("192.0.2.10")))
        .unwrap();
    let nft = engine(&d, Backend::Nftables);
    nft.runner().answer(Tool::EbtablesSave, EBTABLES_WITH_VNET0);
    // nft read, nft transaction, then the xtables removal's first read.
    nft.runner().fail_call(3);
    let err = nft.reapply_all().unwrap_err();
    let text = nwfilter_driver::engine::error_chain(&err);
    assert!(matches!(err, EngineError::RemoveOld { .. }), "{text}");
    assert!(
        text.contains("vnet0 now filtered by nftables rules") && text.contains("old xtables rules"),
        "{text}"
    );
    assert_eq!(
        record(&d.1, "vnet0").as_deref(),
        Some("backend = nftables\nleftover = xtables\n"),
        "the record names both until the old rules are gone"
    );
    // The next reload finishes the move.
    let retry = engine(&d, Backend::Nftables);
    retry
        .runner()
        .answer(Tool::EbtablesSave, EBTABLES_WITH_VNET0);
    retry.reapply_all().unwrap();
    assert!(retry
        .runner()
        .calls()
        .iter()
        .any(|c| c.tool == Tool::EbtablesRestore));
    assert_eq!(
        record(&d.1, "vnet0").as_deref(),
        Some("backend = nftables\n")
    );
}

#[test]
fn a_learned_address_under_nftables_is_one_transaction() {
    let (_c, _s, d) = dirs();
    let nft = engine(&d, Backend::Nftables);
    let xml = binding("vnet0", None);
    let b = nwfilter_model::parse_binding(&xml).unwrap();
    assert!(matches!(
        nft.binding_create(&xml),
        Err(EngineError::NeedsIp { .. })
    ));
    nft.binding_record(&b).unwrap();
    let before = nft.runner().calls().len();
    nft.set_learned(&vnet0(), vec![Ipv4Addr::new(192, 0, 2, 10)])
        .unwrap();
    let calls = &nft.runner().calls()[before..];
    let transactions: Vec<&Command> = calls.iter().filter(|c| is_nft_transaction(c)).collect();
    assert_eq!(transactions.len(), 1, "{calls:#?}");
    assert!(transactions[0]
        .stdin
        .as_deref()
        .unwrap()
        .contains("192.0.2.10"));
    assert!(
        calls.iter().all(
            |c| c.tool == Tool::Nft && (is_nft_transaction(c) || c.args[..2] == ["-j", "list"])
        ),
        "only reads besides the transaction: {calls:#?}"
    );
    // A second address: again one transaction.
    let before = nft.runner().calls().len();
    nft.set_learned(
        &vnet0(),
        vec![Ipv4Addr::new(192, 0, 2, 10), Ipv4Addr::new(192, 0, 2, 20)],
    )
    .unwrap();
    let calls = &nft.runner().calls()[before..];
    assert_eq!(calls.iter().filter(|c| is_nft_transaction(c)).count(), 1);
}

#[test]
fn under_nftables_a_binding_beside_others_costs_its_transaction_alone() {
    let (_c, _s, d) = dirs();
    let nft = engine(&d, Backend::Nftables);
    nft.binding_create(&binding("vnet0", Some("192.0.2.10")))
        .unwrap();
    // The engine keeps what it applied: no read of every port's objects.
    let before = nft.runner().calls().len();
    nft.binding_create(&binding("vnet1", Some("192.0.2.11")))
        .unwrap();
    let calls = &nft.runner().calls()[before..];
    assert_eq!(calls.len(), 1, "{calls:#?}");
    assert!(is_nft_transaction(&calls[0]));
    let text = calls[0].stdin.as_deref().unwrap();
    // The shared template is there already: elements only, no chain at all.
    assert!(
        text.contains("192.0.2.11") && text.lines().all(|l| l.starts_with("create element")),
        "{text}"
    );
    // `repair` does read: it must see what someone else may have done.
    let before = nft.runner().calls().len();
    nft.repair().unwrap();
    let calls = &nft.runner().calls()[before..];
    assert!(
        calls.iter().any(|c| c.args[..2] == ["-j", "list"]),
        "{calls:#?}"
    );
}

/// The learner's drop-all rules for vnet0, as IR.
fn blocked_program() -> nwfilter_compile::ir::Program {
    use nwfilter_compile::ir::{BridgeDir, Chain, ChainRole, Family, Program, Rule, Verdict};
    Program {
        port: vnet0(),
        chains: vec![Chain {
            family: Family::Bridge,
            role: ChainRole::BridgeRoot(BridgeDir::FromVm),
            rules: vec![Rule {
                matches: Vec::new(),
                comment: None,
                verdict: Verdict::Drop,
                per_port: Vec::new(),
            }],
        }],
    }
}

#[test]
fn learner_rules_follow_the_configured_backend_and_record_it() {
    let (_c, _s, d) = dirs();
    engine(&d, Backend::Xtables)
        .binding_create(&binding("vnet0", Some("192.0.2.10")))
        .unwrap();
    let nft = engine(&d, Backend::Nftables);
    nft.apply_foreign(&blocked_program()).unwrap();
    let calls = nft.runner().calls();
    assert!(calls.iter().any(is_nft_transaction));
    assert_eq!(nft.applied_by(&vnet0()).unwrap(), Backend::Nftables);
}

#[test]
fn a_learning_ports_rules_move_with_the_setting_at_reapply() {
    let (_c, _s, d) = dirs();
    let eng = engine(&d, Backend::Xtables);
    let b = nwfilter_model::parse_binding(&binding("vnet0", None)).unwrap();
    eng.binding_record(&b).unwrap();
    eng.apply_foreign(&blocked_program()).unwrap();
    assert_eq!(eng.applied_by(&vnet0()).unwrap(), Backend::Xtables);
    eng.runner().answer(Tool::EbtablesSave, EBTABLES_WITH_VNET0);

    eng.set_backend(Backend::Nftables);
    let before = eng.runner().calls().len();
    let report = eng.reapply_all().unwrap();
    assert_eq!(report.learning, [vnet0()], "still learning");
    let calls = &eng.runner().calls()[before..];
    let committed = calls.iter().position(is_nft_transaction).expect("moved");
    assert!(
        calls[committed + 1..]
            .iter()
            .any(|c| c.tool == Tool::EbtablesRestore),
        "then the xtables copy is removed: {calls:#?}"
    );
    assert_eq!(eng.applied_by(&vnet0()).unwrap(), Backend::Nftables);
}

#[test]
fn a_refused_create_leaves_neither_binding_nor_record() {
    let (_c, _s, d) = dirs();
    let nft = engine(&d, Backend::Nftables);
    // Call 1 reads our nft tables; call 2 is the transaction.
    nft.runner().fail_call(2);
    let err = nft
        .binding_create(&binding("vnet0", Some("192.0.2.10")))
        .unwrap_err();
    let text = nwfilter_driver::engine::error_chain(&err);
    assert!(
        text.contains("nftables rules of port vnet0") && text.contains("injected failure"),
        "{text}"
    );
    assert!(!text.contains("putting things back"), "{text}");
    assert_eq!(
        nft.runner().calls().len(),
        2,
        "nothing runs after the refusal"
    );
    assert!(nft.bindings().get("vnet0").unwrap().is_none());
    assert_eq!(record(&d.1, "vnet0"), None);
}
