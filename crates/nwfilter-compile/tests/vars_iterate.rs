//! Rule expansion over list variables: the worked examples of reference
//! `nwfilter-xml.md` §6.3 (libvirt's iter1–iter3 firewall tests), with the
//! same bindings: A = [1.1.1.1, 2.2.2.2, 3.3.3.3, 3.3.3.3],
//! B = [80, 90, 80, 80], C = [1080, 1090, 1100, 1110].

mod resolve_support;

use nwfilter_compile::{bind, BindError, BindOutcome, BoundRules, MemorySource};
use resolve_support::*;

const PARAMS: &[(&str, &str)] = &[
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

fn bind_one(proto: &str, attrs: &[(&str, &str)]) -> Result<BoundRules, BindError> {
    let source: MemorySource = [filter("tck", vec![rule(proto, attrs)])]
        .into_iter()
        .collect();
    match bind(&source, &top("tck", PARAMS), mac())? {
        BindOutcome::Bound(rules) => Ok(rules),
        other => panic!("{other:?}"),
    }
}

/// The generated rules as rows of the given attributes' texts.
fn rows(proto: &str, attrs: &[(&str, &str)], show: &[&str]) -> Vec<Vec<String>> {
    bind_one(proto, attrs)
        .unwrap()
        .rules
        .iter()
        .map(|b| show.iter().map(|a| attr_text(&b.rule, a)).collect())
        .collect()
}

fn expect(rows: &[&[&str]]) -> Vec<Vec<String>> {
    rows.iter()
        .map(|r| r.iter().map(|s| s.to_string()).collect())
        .collect()
}

const SRC_SPORT: &[&str] = &["srcipaddr", "srcportstart"];

#[test]
fn same_iterator_zips_and_skips_repeated_tuples() {
    let got = rows(
        "tcp",
        &[("srcipaddr", "$A"), ("srcportstart", "$B")],
        SRC_SPORT,
    );
    assert_eq!(
        got,
        expect(&[&["1.1.1.1", "80"], &["2.2.2.2", "90"], &["3.3.3.3", "80"]])
    );
}

#[test]
fn different_iterators_multiply_first_appearance_fastest() {
    let got = rows(
        "udp",
        &[("srcipaddr", "$A[@1]"), ("srcportstart", "$B[@2]")],
        SRC_SPORT,
    );
    assert_eq!(
        got,
        expect(&[
            &["1.1.1.1", "80"],
            &["2.2.2.2", "80"],
            &["3.3.3.3", "80"],
            &["1.1.1.1", "90"],
            &["2.2.2.2", "90"],
            &["3.3.3.3", "90"],
        ])
    );
}

#[test]
fn zipped_pair_on_second_iterator_gives_twelve() {
    let got = rows(
        "sctp",
        &[
            ("srcipaddr", "$A[@1]"),
            ("srcportstart", "$B[@2]"),
            ("dstportstart", "$C[@2]"),
        ],
        &["srcipaddr", "srcportstart", "dstportstart"],
    );
    let mut want = Vec::new();
    for (b, c) in [
        ("80", "1080"),
        ("90", "1090"),
        ("80", "1100"),
        ("80", "1110"),
    ] {
        for a in ["1.1.1.1", "2.2.2.2", "3.3.3.3"] {
            want.push(vec![a.to_string(), b.to_string(), c.to_string()]);
        }
    }
    assert_eq!(got.len(), 12);
    assert_eq!(got, want);
}

#[test]
fn three_iterators_give_twenty_four() {
    let got = rows(
        "tcp",
        &[
            ("srcipaddr", "$A[@1]"),
            ("srcportstart", "$B[@2]"),
            ("dstportstart", "$C[@3]"),
        ],
        &["srcipaddr", "srcportstart", "dstportstart"],
    );
    let mut want = Vec::new();
    for c in ["1080", "1090", "1100", "1110"] {
        for b in ["80", "90"] {
            for a in ["1.1.1.1", "2.2.2.2", "3.3.3.3"] {
                want.push(vec![a.to_string(), b.to_string(), c.to_string()]);
            }
        }
    }
    assert_eq!(got.len(), 24);
    assert_eq!(got, want);
}

#[test]
fn same_variable_on_two_iterators_gives_nine() {
    let got = rows(
        "udp",
        &[("srcipaddr", "$A[@1]"), ("dstipaddr", "$A[@2]")],
        &["srcipaddr", "dstipaddr"],
    );
    let mut want = Vec::new();
    for dst in ["1.1.1.1", "2.2.2.2", "3.3.3.3"] {
        for src in ["1.1.1.1", "2.2.2.2", "3.3.3.3"] {
            want.push(vec![src.to_string(), dst.to_string()]);
        }
    }
    assert_eq!(got, want);
}

#[test]
fn one_reference_used_twice_gives_three() {
    let got = rows(
        "sctp",
        &[("srcipaddr", "$A"), ("dstipaddr", "$A")],
        &["srcipaddr", "dstipaddr"],
    );
    assert_eq!(
        got,
        expect(&[
            &["1.1.1.1", "1.1.1.1"],
            &["2.2.2.2", "2.2.2.2"],
            &["3.3.3.3", "3.3.3.3"],
        ])
    );
}

#[test]
fn fixed_element_with_default_iterator() {
    let got = rows(
        "tcp",
        &[("srcipaddr", "$A[0]"), ("srcportstart", "$B")],
        SRC_SPORT,
    );
    assert_eq!(got, expect(&[&["1.1.1.1", "80"], &["1.1.1.1", "90"]]));
}

#[test]
fn all_fixed_elements_give_one_rule() {
    let got = rows(
        "sctp",
        &[
            ("srcipaddr", "$A[1]"),
            ("srcportstart", "$B[2]"),
            ("dstportstart", "$C[2]"),
        ],
        &["srcipaddr", "srcportstart", "dstportstart"],
    );
    assert_eq!(got, expect(&[&["2.2.2.2", "80", "1100"]]));
}

#[test]
fn iterator_order_follows_canonical_attributes_not_iterator_numbers() {
    // `$B[@1]` in srcportstart, `$A[@2]` in srcipaddr: srcipaddr comes
    // first canonically, so A varies fastest despite its higher number.
    let got = rows(
        "tcp",
        &[("srcportstart", "$B[@1]"), ("srcipaddr", "$A[@2]")],
        SRC_SPORT,
    );
    assert_eq!(
        got,
        expect(&[
            &["1.1.1.1", "80"],
            &["2.2.2.2", "80"],
            &["3.3.3.3", "80"],
            &["1.1.1.1", "90"],
            &["2.2.2.2", "90"],
            &["3.3.3.3", "90"],
        ])
    );
}

#[test]
fn different_lengths_on_one_iterator_are_an_error() {
    let source: MemorySource = [filter(
        "tck",
        vec![
            rule("tcp", &[]),
            rule("udp", &[("srcipaddr", "$IP"), ("dstipaddr", "$DHCPSERVER")]),
        ],
    )]
    .into_iter()
    .collect();
    let binding = top(
        "tck",
        &[
            ("IP", "10.0.0.1"),
            ("DHCPSERVER", "10.0.0.253"),
            ("DHCPSERVER", "10.0.0.254"),
        ],
    );
    let err = bind(&source, &binding, mac()).unwrap_err();
    assert!(matches!(err, BindError::Cardinality { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "filter 'tck', rule 2: variables on iterator @0 are walked in parallel \
         and need the same number of values, but IP has 1, DHCPSERVER has 2"
    );
}

#[test]
fn element_beyond_the_end_is_unresolved() {
    let err = bind_one("tcp", &[("srcipaddr", "$A[1]"), ("srcportstart", "$B[4]")]).unwrap_err();
    let BindError::Unresolved { missing, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(missing.len(), 1);
    assert_eq!(missing[0].name(), "B[4]");
    assert_eq!(
        err.to_string(),
        "cannot instantiate filter 'tck': unresolvable variables or unavailable \
         list elements: B[4] (filter 'tck', rule 1)"
    );
}

#[test]
fn a_rule_without_variables_is_kept_once() {
    let rules = bind_one("tcp", &[("srcipaddr", "10.1.1.1")]).unwrap();
    assert_eq!(rules.rules.len(), 1);
    assert_eq!(attr_text(&rules.rules[0].rule, "srcipaddr"), "10.1.1.1");
}
