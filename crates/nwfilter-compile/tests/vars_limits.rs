//! A few lines of XML must not make a binding exhaust memory: references
//! repeated at every level and list variables on separate iterators both
//! multiply, so both are capped at MAX_BOUND_RULES with a clear error.

mod resolve_support;

use nwfilter_compile::{bind, BindError, MemorySource, MAX_BOUND_RULES};
use nwfilter_model::Filter;
use resolve_support::*;

#[test]
fn a_doubling_reference_tree_is_refused() {
    // level0 -> level1 twice -> ... -> level20: 2^20 leaf instances.
    let mut filters: Vec<Filter> = (0..20)
        .map(|i| {
            let next = format!("level{}", i + 1);
            filter(
                &format!("level{i}"),
                vec![fref(&next, &[]), fref(&next, &[])],
            )
        })
        .collect();
    filters.push(filter("level20", vec![rule("mac", &[])]));
    let source = MemorySource::from_iter(filters);
    let err = bind(&source, &top("level0", &[]), mac()).unwrap_err();
    assert!(matches!(err, BindError::TreeTooLarge { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        format!(
            "filter 'level0': its <filterref> tree instantiates more than \
             {MAX_BOUND_RULES} rules and references"
        )
    );
}

#[test]
fn list_values_multiplying_past_the_limit_are_refused() {
    // Three iterators of 100 distinct values each: 10^6 combinations.
    let mut params: Vec<(String, String)> = Vec::new();
    for i in 0..100 {
        params.push(("A".into(), format!("10.0.0.{i}")));
        params.push(("B".into(), format!("{}", 1000 + i)));
        params.push(("C".into(), format!("{}", 2000 + i)));
    }
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (&k[..], &v[..])).collect();
    let source = MemorySource::from_iter([filter(
        "top",
        vec![
            rule("tcp", &[]),
            rule(
                "tcp",
                &[
                    ("srcipaddr", "$A[@1]"),
                    ("srcportstart", "$B[@2]"),
                    ("dstportstart", "$C[@3]"),
                ],
            ),
        ],
    )]);
    let err = bind(&source, &top("top", &params), mac()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "filter 'top', rule 2: the binding would get more than {MAX_BOUND_RULES} \
             rules (list values multiply the rules that use them)"
        )
    );
    // Two of the three stay well within the limit: 10^4 rules.
    let source = MemorySource::from_iter([filter(
        "top",
        vec![rule(
            "tcp",
            &[("srcipaddr", "$A[@1]"), ("srcportstart", "$B[@2]")],
        )],
    )]);
    let bound = bind(&source, &top("top", &params), mac()).unwrap();
    let nwfilter_compile::BindOutcome::Bound(rules) = bound else {
        panic!("{bound:?}")
    };
    assert_eq!(rules.rules.len(), 10_000);
}
