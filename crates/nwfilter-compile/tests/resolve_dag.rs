//! Resolving a filter's reference DAG: missing filters and cycles are
//! errors naming the whole path; sources layer in order.

mod resolve_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use nwfilter_compile::{
    check_cycle, resolve, FilterSource, LayeredSource, MemorySource, ResolveError, SourceError,
};
use nwfilter_model::Filter;
use resolve_support::*;

/// The shape of clean-traffic's first branch, with its leaf left out.
fn clean_traffic_without_leaf() -> MemorySource {
    [
        filter(
            "clean-traffic",
            vec![fref("no-mac-spoofing", &[]), fref("no-arp-spoofing", &[])],
        ),
        filter("no-mac-spoofing", vec![rule("mac", &[])]),
        filter(
            "no-arp-spoofing",
            vec![
                fref("no-arp-mac-spoofing", &[]),
                fref("no-arp-ip-spoofing", &[]),
            ],
        ),
        filter("no-arp-mac-spoofing", vec![rule("arp", &[])]),
    ]
    .into_iter()
    .collect()
}

#[test]
fn missing_filter_names_the_path_from_the_top() {
    let err = resolve(&clean_traffic_without_leaf(), &name("clean-traffic")).unwrap_err();
    let ResolveError::Missing { path } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        path.to_string(),
        "clean-traffic -> no-arp-spoofing -> no-arp-ip-spoofing"
    );
    assert_eq!(
        err.to_string(),
        "filter 'no-arp-ip-spoofing' is missing (referenced as \
         clean-traffic -> no-arp-spoofing -> no-arp-ip-spoofing)"
    );
}

#[test]
fn missing_top_filter_is_a_path_of_one() {
    let err = resolve(&MemorySource::new(), &name("clean-traffic")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "filter 'clean-traffic' is missing (referenced as clean-traffic)"
    );
}

#[test]
fn cycle_names_the_loop() {
    let source: MemorySource = [
        filter("top", vec![fref("a", &[])]),
        filter("a", vec![rule("mac", &[]), fref("b", &[])]),
        filter("b", vec![fref("c", &[]), fref("a", &[])]),
        filter("c", vec![]),
    ]
    .into_iter()
    .collect();
    let err = resolve(&source, &name("top")).unwrap_err();
    let ResolveError::Cycle { path } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(path.to_string(), "a -> b -> a");
    assert_eq!(
        err.to_string(),
        "filter references form a loop: a -> b -> a"
    );
}

#[test]
fn self_reference_is_a_cycle() {
    let source: MemorySource = [filter("d", vec![fref("d", &[])])].into_iter().collect();
    let err = resolve(&source, &name("d")).unwrap_err();
    assert_eq!(err.to_string(), "filter references form a loop: d -> d");
}

#[test]
fn a_diamond_is_not_a_cycle_and_loads_each_filter_once() {
    let inner: MemorySource = [
        filter("top", vec![fref("left", &[]), fref("right", &[])]),
        filter("left", vec![fref("shared", &[])]),
        filter("right", vec![fref("shared", &[]), fref("shared", &[])]),
        filter("shared", vec![rule("mac", &[])]),
    ]
    .into_iter()
    .collect();
    let counting = Counting {
        inner,
        calls: AtomicUsize::new(0),
    };
    let dag = resolve(&counting, &name("top")).unwrap();
    assert_eq!(counting.calls.load(Ordering::SeqCst), 4);
    let mut names: Vec<&str> = dag.filters().map(|f| f.name.as_str()).collect();
    names.sort_unstable();
    assert_eq!(names, ["left", "right", "shared", "top"]);
    assert_eq!(dag.top().name.as_str(), "top");
    assert!(dag.contains("shared"));
}

/// A source that counts lookups.
struct Counting {
    inner: MemorySource,
    calls: AtomicUsize,
}

impl FilterSource for Counting {
    fn get(&self, name: &str) -> Result<Option<Arc<Filter>>, SourceError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.inner.get(name)
    }
}

/// A source whose every lookup fails like an unreadable file.
struct Broken;

impl FilterSource for Broken {
    fn get(&self, name: &str) -> Result<Option<Arc<Filter>>, SourceError> {
        Err(SourceError::Io {
            path: format!("/etc/nwfilter/{name}.xml").into(),
            source: std::io::Error::from(std::io::ErrorKind::PermissionDenied),
        })
    }
}

#[test]
fn a_failing_source_is_reported_with_the_path() {
    let layered = LayeredSource::new()
        .with(MemorySource::from_iter([filter(
            "top",
            vec![fref("gone", &[])],
        )]))
        .with(Broken);
    let err = resolve(&layered, &name("top")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot load filter 'gone' (referenced as top -> gone)"
    );
    let source = std::error::Error::source(&err).unwrap();
    assert_eq!(source.to_string(), "cannot read /etc/nwfilter/gone.xml");
}

#[test]
fn layered_source_prefers_the_first_layer_that_has_the_name() {
    let mine = filter("allow-arp", vec![rule("arp", &[]), rule("arp", &[])]);
    let builtin = filter("allow-arp", vec![rule("arp", &[])]);
    let only_builtin = filter("allow-dhcp", vec![]);
    let layered = LayeredSource::new()
        .with(MemorySource::from_iter([mine.clone()]))
        .with(MemorySource::from_iter([builtin, only_builtin.clone()]));
    assert_eq!(*layered.get("allow-arp").unwrap().unwrap(), mine);
    assert_eq!(*layered.get("allow-dhcp").unwrap().unwrap(), only_builtin);
    assert!(layered.get("nope").unwrap().is_none());
}

#[test]
fn define_time_check_refuses_a_definition_closing_a_loop() {
    // E -> X was defined while X was missing; defining X -> E closes it.
    let store: MemorySource = [filter("E", vec![fref("X", &[])])].into_iter().collect();
    let x = filter("X", vec![rule("mac", &[]), fref("E", &[])]);
    let err = check_cycle(&store, &x).unwrap_err();
    assert_eq!(
        err.to_string(),
        "filter references form a loop: X -> E -> X"
    );
    // Self-reference.
    let d = filter("D", vec![fref("D", &[])]);
    assert!(matches!(
        check_cycle(&store, &d),
        Err(ResolveError::Cycle { .. })
    ));
}

#[test]
fn define_time_check_skips_missing_filters_and_uses_the_new_definition() {
    // The stored `a` references b, and b references a: a redefinition of
    // `a` without that reference removes the loop.
    let store: MemorySource = [
        filter("a", vec![fref("b", &[])]),
        filter("b", vec![fref("a", &[]), fref("not-yet-defined", &[])]),
    ]
    .into_iter()
    .collect();
    let a = filter("a", vec![fref("not-yet-defined", &[]), rule("mac", &[])]);
    check_cycle(&store, &a).unwrap();
    let b = filter("b", vec![fref("not-yet-defined", &[])]);
    check_cycle(&store, &b).unwrap();
    let a_again = filter("a", vec![fref("b", &[])]);
    let err = check_cycle(&store, &a_again).unwrap_err();
    assert_eq!(
        err.to_string(),
        "filter references form a loop: a -> b -> a"
    );
}

#[test]
fn the_first_user_of_a_variable_is_found_in_the_resolved_tree() {
    let source: MemorySource = [
        filter("top", vec![fref("plain", &[]), fref("by-mac", &[])]),
        filter("plain", vec![rule("ip", &[("srcipaddr", "10.0.0.1")])]),
        filter("by-mac", vec![rule("mac", &[("srcmacaddr", "$MAC")])]),
    ]
    .into_iter()
    .collect();
    let dag = resolve(&source, &name("top")).unwrap();
    let user = dag.first_user_of("MAC").map(|f| f.name.to_string());
    assert_eq!(user.as_deref(), Some("by-mac"));
    assert!(dag.first_user_of("IP").is_none());
}
