//! libvirt's own iteration cases (`nwfilterxml2firewall/iter{1,2,3}`): the
//! bound rules, in order, carry exactly the addresses and ports of the
//! `FJ-vnet0` commands libvirt 9.0 generated for them (each of these rules
//! is `out`, so it yields one FJ command per value combination).

mod resolve_support;

use std::path::{Path, PathBuf};

use nwfilter_compile::{bind, BindOutcome, MemorySource};
use nwfilter_model::{format_value, parse_filter, Value};
use resolve_support::{mac, top};

/// The parameters libvirt's test harness binds (see the conformance tool).
const PARAMS: &[(&str, &str)] = &[
    ("IPSETNAME", "tck_test"),
    ("A", "1.1.1.1"),
    ("A", "2.2.2.2"),
    ("A", "3.3.3.3"),
    ("A", "3.3.3.3"),
    ("B", "80"),
    ("B", "90"),
    ("B", "80"),
    ("B", "80"),
    ("C", "1080"),
    ("C", "1090"),
    ("C", "1100"),
    ("C", "1110"),
];

/// The attributes the iter cases vary, and the iptables option of each in
/// an FJ (traffic from the VM) command.
const COLUMNS: [(&str, &str); 4] = [
    ("srcipaddr", "--source"),
    ("dstipaddr", "--destination"),
    ("srcportstart", "--sport"),
    ("dstportstart", "--dport"),
];

fn corpus() -> Option<PathBuf> {
    let path = std::env::var_os("LIBVIRT_CORPUS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/libvirt-9.0.0"),
        PathBuf::from,
    );
    if path.is_dir() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "libvirt corpus not found at {} (required under CI)",
        path.display()
    );
    #[allow(clippy::print_stdout)] // the skip notice is the point
    {
        println!("skipped: corpus not found at {}", path.display());
    }
    None
}

/// Each `FJ-vnet0` command of an `.args` file as its four column values.
fn fj_rows(args: &str) -> Vec<[String; 4]> {
    let joined = args.replace("\\\n", " ");
    joined
        .lines()
        .filter(|l| l.contains("-A FJ-vnet0"))
        .map(|l| {
            let words: Vec<&str> = l.split_whitespace().collect();
            COLUMNS.map(|(_, opt)| {
                words
                    .iter()
                    .position(|w| *w == opt)
                    .map_or(String::new(), |i| words[i + 1].to_owned())
            })
        })
        .collect()
}

/// The same columns from our bound rules.
fn bound_rows(case: &Path) -> Vec<[String; 4]> {
    let text = std::fs::read_to_string(case).unwrap();
    let filter = parse_filter(&text).unwrap();
    let name = filter.name.to_string();
    let source = MemorySource::from_iter([filter]);
    let BindOutcome::Bound(rules) = bind(&source, &top(&name, PARAMS), mac()).unwrap() else {
        panic!("{}: expected bound rules", case.display())
    };
    rules
        .rules
        .iter()
        .map(|b| {
            let pm = b.rule.protocol.as_ref().unwrap();
            COLUMNS.map(|(attr, _)| {
                pm.attrs
                    .iter()
                    .find(|a| a.attr.name() == attr)
                    .map_or(String::new(), |a| {
                        assert!(!matches!(a.value, Value::Var(_)));
                        format_value(pm.protocol, a.attr, &a.value)
                    })
            })
        })
        .collect()
}

#[test]
fn iter_cases_expand_like_libvirt() {
    let Some(corpus) = corpus() else { return };
    let dir = corpus.join("nwfilterxml2firewall");
    for (case, count) in [("iter1", 3), ("iter2", 57), ("iter3", 5)] {
        let want =
            fj_rows(&std::fs::read_to_string(dir.join(format!("{case}-linux.args"))).unwrap());
        let got = bound_rows(&dir.join(format!("{case}.xml")));
        assert_eq!(want.len(), count, "{case}: corpus changed?");
        assert_eq!(got, want, "{case}");
    }
}
