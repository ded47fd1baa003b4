//! Switching a binding's backend in a real kernel (network namespaces the
//! test creates): a binding applied by xtables moves to nftables at a
//! reapply and keeps filtering, with none of our ebtables/iptables chains
//! left; deleting it then removes our nft tables. And back again.

use netns_lab as support;

use host_io::{ProcessRunner, Toolset};
use nwfilter_driver::{Backend, BindingStore, Engine, FilterStore};
use nwfilter_model::IfName;
use support::{Guest, Lab};

/// An engine on the scratch directories applying in the lab's host
/// namespace with `backend`.
fn engine(lab: &Lab, dirs: &tempfile::TempDir, backend: Backend) -> Engine<ProcessRunner> {
    let runner = ProcessRunner::new(Toolset::default()).in_netns(&lab.host.name);
    Engine::new(
        FilterStore::open(dirs.path().join("etc")),
        BindingStore::open(dirs.path().join("run")),
        runner,
    )
    .with_backend(backend)
}

/// Our xtables chains (`libvirt-…`) in the host namespace's tables.
fn xtables_chains(lab: &Lab) -> Vec<String> {
    let mut ours = Vec::new();
    for tool in ["ebtables-save", "iptables-save", "ip6tables-save"] {
        let listing = lab.host.ok(&[tool]);
        ours.extend(
            listing
                .lines()
                .filter(|l| l.contains("libvirt-"))
                .map(String::from),
        );
    }
    ours
}

/// Our nftables tables in the host namespace.
fn nft_tables(lab: &Lab) -> Vec<String> {
    let table = backend_nftables::names::TABLE;
    lab.host
        .ok(&["nft", "list", "tables"])
        .lines()
        .filter(|l| l.split_whitespace().last() == Some(table))
        .map(String::from)
        .collect()
}

/// `a` reaches `b` with its own address and not with a spoofed one.
fn assert_filtered(a: &Guest, b: &Guest, when: &str) {
    assert!(a.pings(&b.ip), "{when}: legitimate traffic passes");
    a.set_ip("10.77.0.99");
    let spoofed = a.pings(&b.ip);
    a.set_ip(&a.ip);
    assert!(!spoofed, "{when}: a spoofed source address is dropped");
    assert!(a.pings(&b.ip), "{when}: and passes again once restored");
}

#[test]
fn a_binding_moves_from_xtables_to_nftables_and_back_without_leftovers() {
    if !support::can_run("a_binding_moves_from_xtables_to_nftables_and_back_without_leftovers") {
        return;
    }
    let lab = Lab::ready(2);
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let port = IfName::new(a.port.clone()).unwrap();
    let dirs = tempfile::tempdir().unwrap();

    let xt = engine(&lab, &dirs, Backend::Xtables);
    xt.binding_create(&a.binding_xml("clean-traffic")).unwrap();
    assert!(!xtables_chains(&lab).is_empty());
    assert!(nft_tables(&lab).is_empty());
    assert_filtered(a, b, "under xtables");

    // The setting changes; the next reapply moves the binding.
    let nft = engine(&lab, &dirs, Backend::Nftables);
    let report = nft.reapply_all().unwrap();
    assert_eq!(report.applied, std::slice::from_ref(&port));
    assert_eq!(nft.applied_by(&port).unwrap(), Backend::Nftables);
    assert_eq!(
        xtables_chains(&lab),
        Vec::<String>::new(),
        "no xtables chain of ours is left"
    );
    assert!(!nft_tables(&lab).is_empty());
    assert_filtered(a, b, "after moving to nftables");

    // And back: xtables in, nft tables gone.
    let back = engine(&lab, &dirs, Backend::Xtables);
    back.reapply_all().unwrap();
    assert_eq!(back.applied_by(&port).unwrap(), Backend::Xtables);
    assert_eq!(nft_tables(&lab), Vec::<String>::new());
    assert_filtered(a, b, "after moving back to xtables");

    // Forward again, then delete with an engine configured for xtables:
    // the record, not the setting, says who removes the rules.
    engine(&lab, &dirs, Backend::Nftables)
        .reapply_all()
        .unwrap();
    engine(&lab, &dirs, Backend::Xtables)
        .binding_delete(&a.port)
        .unwrap();
    assert_eq!(
        nft_tables(&lab),
        Vec::<String>::new(),
        "our nft tables are gone"
    );
    assert_eq!(xtables_chains(&lab), Vec::<String>::new());
    assert!(a.pings(&b.ip), "no filter is left on the port");
    a.set_ip("10.77.0.99");
    assert!(a.pings(&b.ip), "not even for spoofed addresses");
    a.set_ip(&a.ip);
}
