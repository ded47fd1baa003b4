//! Golden files per stage, over the same cases as backend-xtables'
//! (fixtures/golden/cases): for each binding, the port's part of the
//! nftables transaction that instantiates it (`nft -f` text), its own
//! snapshot `nftables@CASE.snap` beside the xtables ones in
//! fixtures/golden/snapshots. The fixed part every port shares (the
//! skeleton) has its own snapshot in tests/snapshots. Referenced filters
//! come from fixtures/golden/filters, then the built-in set.

use backend_nftables::layout::Part;
use backend_nftables::{instantiate, ruleset, Batch};
use netns_lab::{golden_case, golden_dir};

/// The script without the skeleton every port's script starts with (a
/// line says whether the port brings the IP path).
fn port_part(script: &str) -> String {
    let part = |part| {
        let mut batch = Batch::default();
        batch.part(part);
        batch.text()
    };
    let rest = script
        .strip_prefix(part(Part::Dispatch).as_str())
        .expect("every instantiation starts with the skeleton");
    match rest.strip_prefix(part(Part::IpPath).as_str()) {
        Some(port) => format!("# with the IP path\n{port}"),
        None => format!("# without the IP path\n{rest}"),
    }
}

#[test]
fn golden_nftables_scripts() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(golden_dir().join("snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| {
        insta::glob!("../../../fixtures/golden/cases", "*.xml", |path| {
            let program = golden_case(path);
            let rules = ruleset(&program).unwrap();
            insta::assert_snapshot!("nftables", port_part(&instantiate(&rules).text()));
        });
    });
}
