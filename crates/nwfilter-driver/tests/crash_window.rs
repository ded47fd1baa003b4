//! Found by the kill -9 test (crates/daemon/tests/crash_kill9.rs): a daemon
//! killed during binding-create after the port's rules were applied but
//! before its binding was stored left, once restarted, rules for a port
//! that has no binding (the kernel no longer equal to the store). The
//! restart's reapply removes them, by the record written before applying.
//! In a network namespace, for both backends.

use netns_lab as support;

use host_io::{ProcessRunner, Toolset};
use nwfilter_driver::{Backend, BindingStore, Engine, FilterStore};
use support::{Lab, Scratch};

fn engine(lab: &Lab, dirs: &Scratch, backend: Backend) -> Engine<ProcessRunner> {
    let runner = ProcessRunner::new(Toolset::default()).in_netns(&lab.host.name);
    Engine::new(
        FilterStore::open(dirs.etc()),
        BindingStore::open(dirs.run()),
        runner,
    )
    .with_backend(backend)
}

/// Lines of the host's ruleset that name `port`.
fn rules_naming(lab: &Lab, port: &str) -> Vec<String> {
    support::lines_naming(&lab.ruleset(), port)
}

fn check(backend: Backend, test: &str) {
    if !support::can_run(test) {
        return;
    }
    let lab = Lab::new(1);
    let guest = &lab.guests[0];
    let dirs = Scratch::new(&format!("crash-window-{backend}"));
    engine(&lab, &dirs, backend)
        .binding_create(&guest.binding_xml("clean-traffic"))
        .unwrap();
    assert!(!rules_naming(&lab, &guest.port).is_empty());
    // The kill's window: rules and record in place, the binding not yet
    // stored.
    std::fs::remove_file(dirs.run().join(format!("{}.xml", guest.port))).unwrap();

    let restarted = engine(&lab, &dirs, backend);
    let report = restarted.reapply_all().unwrap();
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(
        rules_naming(&lab, &guest.port),
        Vec::<String>::new(),
        "rules of a port without a binding are left"
    );
    assert!(
        !dirs.run().join(format!("{}.backend", guest.port)).exists(),
        "its record is gone too"
    );
    // And the port can be bound again.
    restarted
        .binding_create(&guest.binding_xml("clean-traffic"))
        .unwrap();
}

#[test]
fn rules_of_a_binding_never_stored_are_removed_at_restart_xtables() {
    check(
        Backend::Xtables,
        "rules_of_a_binding_never_stored_are_removed_at_restart_xtables",
    );
}

#[test]
fn rules_of_a_binding_never_stored_are_removed_at_restart_nftables() {
    check(
        Backend::Nftables,
        "rules_of_a_binding_never_stored_are_removed_at_restart_nftables",
    );
}
