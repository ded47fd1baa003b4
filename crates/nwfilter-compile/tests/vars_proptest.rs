//! Binding arbitrary parameter lists into rules with arbitrary references
//! never panics, never leaves a variable in a bound rule, and never makes
//! more rules than the product of the referenced lists' lengths.

mod resolve_support;

use nwfilter_compile::{bind, BindError, BindOutcome, MemorySource};
use nwfilter_model::Value;
use proptest::prelude::*;
use resolve_support::*;

/// Values of every shape: addresses, ports, junk, a repeated value.
fn value() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "10.0.0.1", "10.0.0.2", "10.0.0.1", "80", "65535", "70000", "hello", "0x50", "::1",
    ])
}

/// A reference to A, B or C on an iterator or at an index, or a constant.
fn reference(constant: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![
        Just(constant.to_string()),
        (prop::sample::select(vec!["A", "B", "C"]), 0u32..3)
            .prop_map(|(v, n)| format!("${v}[@{n}]")),
        (prop::sample::select(vec!["A", "B", "C"]), 0u32..4)
            .prop_map(|(v, k)| format!("${v}[{k}]")),
        prop::sample::select(vec!["A", "B", "C"]).prop_map(|v| format!("${v}")),
    ]
}

proptest! {
    #[test]
    fn binding_is_total_and_bounded(
        a in prop::collection::vec(value(), 0..4),
        b in prop::collection::vec(value(), 0..4),
        c in prop::collection::vec(value(), 0..4),
        src in reference("10.9.9.9"),
        sport in reference("22"),
        dport in reference("25"),
    ) {
        let mut params: Vec<(&str, &str)> = Vec::new();
        params.extend(a.iter().map(|v| ("A", *v)));
        params.extend(b.iter().map(|v| ("B", *v)));
        params.extend(c.iter().map(|v| ("C", *v)));
        let attrs = [
            ("srcipaddr", src.as_str()),
            ("srcportstart", sport.as_str()),
            ("dstportstart", dport.as_str()),
        ];
        let source = MemorySource::from_iter([filter("top", vec![rule("tcp", &attrs)])]);
        // Every list counts at least once in the bound, even if unused.
        let bound = [a.len(), b.len(), c.len()].iter().map(|n| (*n).max(1)).product::<usize>().pow(3);
        match bind(&source, &top("top", &params), mac()) {
            Ok(BindOutcome::Bound(rules)) => {
                prop_assert!(!rules.rules.is_empty());
                prop_assert!(rules.rules.len() <= bound);
                for r in &rules.rules {
                    let pm = r.rule.protocol.as_ref().unwrap();
                    prop_assert!(pm.attrs.iter().all(|v| !matches!(v.value, Value::Var(_))));
                }
            }
            Ok(other) => prop_assert!(false, "no $IP here, got {:?}", other),
            Err(BindError::Unresolved { missing, .. }) => prop_assert!(!missing.is_empty()),
            Err(BindError::BadValue(bad)) => {
                prop_assert!(nwfilter_model::parse_value(
                    nwfilter_model::Protocol::Tcp, bad.attr, &bad.value).is_err());
            }
            Err(BindError::Cardinality { vars, .. }) => prop_assert!(vars.len() >= 2),
            Err(e) => prop_assert!(false, "unexpected error {}", e),
        }
    }
}
