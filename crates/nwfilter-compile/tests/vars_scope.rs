//! How variable values flow down the `<filterref>` tree (reference
//! `nwfilter-xml.md` §6.4–6.5) and into typed attribute values.

mod resolve_support;

use nwfilter_compile::{bind, BindError, BindOutcome, BoundRules, MemorySource};
use nwfilter_model::{FilterRef, MacAddr6};
use resolve_support::*;

fn bound(source: &MemorySource, binding: &FilterRef, mac: MacAddr6) -> BoundRules {
    match bind(source, binding, mac).unwrap() {
        BindOutcome::Bound(rules) => rules,
        other => panic!("{other:?}"),
    }
}

/// (filter, rule index, srcipaddr) of every bound rule.
fn sources(rules: &BoundRules) -> Vec<(String, usize, String)> {
    rules
        .rules
        .iter()
        .map(|b| {
            (
                b.filter.to_string(),
                b.rule_index,
                attr_text(&b.rule, "srcipaddr"),
            )
        })
        .collect()
}

fn row(f: &str, i: usize, ip: &str) -> (String, usize, String) {
    (f.to_string(), i, ip.to_string())
}

#[test]
fn outer_values_override_filterref_parameters() {
    // The binding sets A; the inner <filterref> tries to set A and B.
    let source: MemorySource = [
        filter(
            "top",
            vec![fref("inner", &[("A", "10.0.0.2"), ("B", "10.0.0.3")])],
        ),
        filter(
            "inner",
            vec![
                rule("ip", &[("srcipaddr", "$A")]),
                rule("ip", &[("srcipaddr", "$B")]),
            ],
        ),
    ]
    .into_iter()
    .collect();
    let rules = bound(&source, &top("top", &[("A", "10.0.0.1")]), mac());
    assert_eq!(
        sources(&rules),
        [row("inner", 0, "10.0.0.1"), row("inner", 1, "10.0.0.3")]
    );
}

#[test]
fn every_variable_reaches_all_descendants_and_siblings_are_independent() {
    // top -> mid (X) -> leaf uses X and Y; top references mid twice with
    // different X, and a second leaf reference sets Y only for itself.
    let source: MemorySource = [
        filter(
            "top",
            vec![
                fref("mid", &[("X", "10.0.0.1")]),
                rule("ip", &[("srcipaddr", "10.9.9.9")]),
                fref("mid", &[("X", "10.0.0.2")]),
            ],
        ),
        filter(
            "mid",
            vec![
                fref("leaf", &[("Y", "10.1.1.1")]),
                fref("leaf", &[("Y", "10.2.2.2")]),
            ],
        ),
        filter(
            "leaf",
            vec![
                rule("ip", &[("srcipaddr", "$X")]),
                rule("ip", &[("srcipaddr", "$Y")]),
            ],
        ),
    ]
    .into_iter()
    .collect();
    let rules = bound(&source, &top("top", &[]), mac());
    assert_eq!(
        sources(&rules),
        [
            row("leaf", 0, "10.0.0.1"),
            row("leaf", 1, "10.1.1.1"),
            row("leaf", 0, "10.0.0.1"),
            row("leaf", 1, "10.2.2.2"),
            row("top", 0, "10.9.9.9"),
            row("leaf", 0, "10.0.0.2"),
            row("leaf", 1, "10.1.1.1"),
            row("leaf", 0, "10.0.0.2"),
            row("leaf", 1, "10.2.2.2"),
        ]
    );
}

#[test]
fn bound_rules_carry_their_filters_chain_and_priority() {
    let mut arp = filter("arp-part", vec![rule("arp", &[])]);
    arp.chain = nwfilter_model::ChainName::new("arp-ip").unwrap();
    arp.priority = -510;
    let source: MemorySource = [
        filter(
            "top",
            vec![rule("mac", &[]), fref("arp-part", &[]), rule("mac", &[])],
        ),
        arp,
    ]
    .into_iter()
    .collect();
    let rules = bound(&source, &top("top", &[]), mac());
    let seen: Vec<(&str, usize, &str, i32)> = rules
        .rules
        .iter()
        .map(|b| {
            (
                b.filter.as_str(),
                b.rule_index,
                b.chain.as_str(),
                b.chain_priority,
            )
        })
        .collect();
    // Rule indices count rules only: the <filterref> between them is not one.
    assert_eq!(
        seen,
        [
            ("top", 0, "root", 0),
            ("arp-part", 0, "arp-ip", -510),
            ("top", 1, "root", 0),
        ]
    );
}

#[test]
fn mac_is_the_ports_address_in_lowercase_unless_supplied() {
    let source: MemorySource = [
        filter("top", vec![fref("leaf", &[("MAC", "00:00:00:00:00:01")])]),
        filter("leaf", vec![rule("mac", &[("srcmacaddr", "$MAC")])]),
    ]
    .into_iter()
    .collect();
    let port = MacAddr6::new(0x52, 0x54, 0x00, 0xAB, 0xCD, 0xEF);
    // Not supplied: the port's MAC, which also beats the inner parameter.
    let rules = bound(&source, &top("top", &[]), port);
    assert_eq!(
        attr_text(&rules.rules[0].rule, "srcmacaddr"),
        "52:54:00:ab:cd:ef"
    );
    // Supplied by the binding: that value wins.
    let rules = bound(&source, &top("top", &[("MAC", "02:00:00:00:00:09")]), port);
    assert_eq!(
        attr_text(&rules.rules[0].rule, "srcmacaddr"),
        "02:00:00:00:00:09"
    );
}

#[test]
fn names_are_case_sensitive() {
    let source: MemorySource = [filter("top", vec![rule("ip", &[("srcipaddr", "$IP")])])]
        .into_iter()
        .collect();
    let binding = top("top", &[("ip", "10.0.0.1"), ("CTRL_IP_LEARNING", "none")]);
    let err = bind(&source, &binding, mac()).unwrap_err();
    assert!(matches!(err, BindError::Unresolved { .. }), "{err:?}");
}

#[test]
fn a_wrongly_typed_value_names_variable_value_filter_rule_and_attribute() {
    let source: MemorySource = [
        filter("top", vec![fref("no-ip-spoofing", &[])]),
        filter(
            "no-ip-spoofing",
            vec![rule("mac", &[]), rule("ip", &[("srcipaddr", "$IP")])],
        ),
    ]
    .into_iter()
    .collect();
    let err = bind(&source, &top("top", &[("IP", "hello")]), mac()).unwrap_err();
    let BindError::BadValue(bad) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(bad.value, "hello");
    assert_eq!(bad.var.name, "IP");
    assert_eq!(bad.attr.name(), "srcipaddr");
    assert_eq!(
        err.to_string(),
        "filter 'no-ip-spoofing', rule 2: variable $IP has value 'hello', \
         which is not valid for attribute 'srcipaddr'"
    );
    assert!(std::error::Error::source(&err).is_some());
}

#[test]
fn a_value_is_checked_against_the_attribute_it_lands_in() {
    // A port number is fine as a port and wrong as an address; an IPv4
    // address is wrong on an IPv6 element.
    let source: MemorySource = [filter(
        "top",
        vec![
            rule("tcp", &[("dstportstart", "$P")]),
            rule("tcp-ipv6", &[("srcipaddr", "$V4")]),
        ],
    )]
    .into_iter()
    .collect();
    let err = bind(
        &source,
        &top("top", &[("P", "70000"), ("V4", "10.0.0.1")]),
        mac(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("$P has value '70000'"), "{err}");
    let err = bind(
        &source,
        &top("top", &[("P", "25"), ("V4", "10.0.0.1")]),
        mac(),
    )
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "filter 'top', rule 2: variable $V4 has value '10.0.0.1', which is not \
         valid for attribute 'srcipaddr'"
    );
}
