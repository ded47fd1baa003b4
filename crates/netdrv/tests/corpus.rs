//! libvirt 9.0's `networkxml2firewall` corpus: for each `X.xml`, the
//! private-chain set-up (`base.args`) followed by our rules must equal
//! libvirt's `base.args` + `X-linux.args`, command for command.
//!
//! Normalisation, as in `tools/libvirt-conformance`: `-w` is dropped, and
//! so are the read-only `--list-rules` probes of `base.args` (on a fresh
//! host they find nothing, so everything is created).

use std::path::PathBuf;

use host_io::Command;
use netdrv::firewall::{add_commands, remove_commands, setup_commands, ExistingChains};
use netdrv::parse_network;

/// The corpus folder, or `None` (with the reason printed) when absent.
/// Under `CI=true` an absent corpus is a failure, not a skip.
#[allow(clippy::print_stderr)] // the skip reason is for the person running the tests
fn corpus() -> Option<PathBuf> {
    let dir = std::env::var_os("LIBVIRT_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/conformance/libvirt-9.0.0")
        })
        .join("networkxml2firewall");
    if dir.is_dir() {
        return Some(dir);
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true");
    assert!(
        !ci,
        "libvirt corpus not found at {} (CI=true)",
        dir.display()
    );
    eprintln!(
        "skipped: libvirt corpus not found at {} (set LIBVIRT_CORPUS)",
        dir.display()
    );
    None
}

/// Commands of an `.args` file: arguments one per line joined by ` \`.
fn read_args(path: &std::path::Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).expect("readable .args file");
    let joined = text.replace("\\\n", " ");
    joined
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            shlex::split(l).unwrap_or_else(|| panic!("bad quoting in {}: {l}", path.display()))
        })
        .collect()
}

fn normalise(cmds: Vec<Vec<String>>) -> Vec<Vec<String>> {
    cmds.into_iter()
        .filter(|c| !c.iter().any(|a| a == "--list-rules"))
        .map(|c| c.into_iter().filter(|a| a != "-w").collect())
        .collect()
}

fn argv(cmd: &Command) -> Vec<String> {
    std::iter::once(cmd.tool.program().to_owned())
        .chain(cmd.args.iter().cloned())
        .collect()
}

#[test]
fn every_corpus_network_renders_libvirts_commands() {
    let Some(dir) = corpus() else { return };
    let base = read_args(&dir.join("base.args"));
    let mut cases = 0;
    for entry in std::fs::read_dir(&dir).expect("corpus folder") {
        let path = entry.expect("dir entry").path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(case) = name.strip_suffix("-linux.args") else {
            continue;
        };
        let xml = std::fs::read_to_string(dir.join(format!("{case}.xml"))).expect("case xml");
        let net = parse_network(&xml).unwrap_or_else(|e| panic!("{case}.xml: {e}"));

        let mut want = base.clone();
        want.extend(read_args(&path));
        let mut got: Vec<Vec<String>> = setup_commands(&ExistingChains::none())
            .iter()
            .map(argv)
            .collect();
        got.extend(add_commands(&net).expect("rules").iter().map(argv));
        assert_eq!(normalise(got), normalise(want), "case {case}");
        cases += 1;
    }
    assert_eq!(cases, 7, "the corpus has seven network cases");
}

#[test]
fn removal_deletes_exactly_what_was_added() {
    let Some(dir) = corpus() else { return };
    for case in [
        "nat-default",
        "nat-ipv6-masquerade",
        "nat-many-ips",
        "route-default",
        "nat-tftp",
    ] {
        let xml = std::fs::read_to_string(dir.join(format!("{case}.xml"))).expect("case xml");
        let net = parse_network(&xml).expect("valid");
        let added = add_commands(&net).unwrap();
        let removed = remove_commands(&net).unwrap();
        assert_eq!(added.len(), removed.len(), "case {case}");
        let mut add_specs: Vec<Vec<String>> = added
            .iter()
            .map(|c| {
                argv(c)
                    .into_iter()
                    .map(|a| {
                        if a == "--insert" {
                            "--delete".into()
                        } else {
                            a
                        }
                    })
                    .collect()
            })
            .collect();
        let mut del_specs: Vec<Vec<String>> = removed.iter().map(argv).collect();
        add_specs.sort();
        del_specs.sort();
        assert_eq!(add_specs, del_specs, "case {case}");
        // Checksum first (libvirt's removal order), and no removal may fail the teardown.
        assert!(
            removed[0].args.contains(&"CHECKSUM".to_owned()),
            "case {case}"
        );
        assert!(removed
            .iter()
            .all(|c| c.on_error == host_io::OnError::Ignore));
    }
}
