//! `DirSource` (the only part of the front half that reads files) and
//! layering a directory over the built-in default filters.

mod resolve_support;

use std::fs;

use nwfilter_compile::{
    bind, BindOutcome, DirSource, FilterSource, LayeredSource, MemorySource, SourceError,
};
use resolve_support::{mac, top};

const SPAM: &str = "<filter name='no-spamming' chain='root'>\n\
  <rule action='drop' direction='out'><tcp dstportstart='25'/></rule>\n\
</filter>\n";

#[test]
fn filters_are_found_by_the_name_inside_the_file() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("whatever.xml"), SPAM).unwrap();
    fs::write(dir.path().join("notes.txt"), "not a filter").unwrap();
    let source = DirSource::open(dir.path()).unwrap();
    assert_eq!(source.names(), ["no-spamming"]);
    let f = source.get("no-spamming").unwrap().unwrap();
    assert_eq!(f.entries.len(), 1);
    assert!(source.get("whatever").unwrap().is_none());
}

#[test]
fn an_invalid_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a-good.xml"), SPAM).unwrap();
    let bad = dir.path().join("b-bad.xml");
    fs::write(
        &bad,
        "<filter name='x' chain='root'>\n  <rule action='sing' direction='out'/>\n</filter>\n",
    )
    .unwrap();
    let err = DirSource::open(dir.path()).unwrap_err();
    assert!(
        matches!(&err, SourceError::Parse { path, .. } if *path == bad),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(msg.starts_with(&format!("{}:2:", bad.display())), "{msg}");
    assert!(msg.contains("sing"), "{msg}");
}

#[test]
fn a_name_defined_twice_is_an_error_only_when_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("one.xml"), SPAM).unwrap();
    fs::write(dir.path().join("two.xml"), SPAM).unwrap();
    let source = DirSource::open(dir.path()).unwrap();
    assert!(source.get("other").unwrap().is_none());
    let err = source.get("no-spamming").unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "filter 'no-spamming' is defined by more than one file: {}, {}",
            dir.path().join("one.xml").display(),
            dir.path().join("two.xml").display()
        )
    );
}

#[test]
fn a_missing_directory_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let gone = dir.path().join("gone");
    let err = DirSource::open(&gone).unwrap_err();
    assert_eq!(err.to_string(), format!("cannot read {}", gone.display()));
}

#[test]
fn a_directory_filter_overrides_a_builtin_and_binds_with_the_rest() {
    // Our own no-ip-spoofing (one fixed address) shadows the built-in one
    // inside the built-in clean-traffic.
    let dir = tempfile::tempdir().unwrap();
    fs::write(
        dir.path().join("no-ip-spoofing.xml"),
        "<filter name='no-ip-spoofing' chain='ipv4-ip' priority='-710'>\n\
         <rule action='return' direction='out'><ip srcipaddr='192.0.2.1'/></rule>\n\
         </filter>\n",
    )
    .unwrap();
    let source = LayeredSource::new()
        .with(DirSource::open(dir.path()).unwrap())
        .with(MemorySource::from_iter(nwfilter_model::builtin_filters()));
    let binding = top("clean-traffic", &[("IP", "10.0.0.5")]);
    let BindOutcome::Bound(rules) = bind(&source, &binding, mac()).unwrap() else {
        panic!("expected bound rules")
    };
    let spoof: Vec<usize> = rules
        .rules
        .iter()
        .filter(|r| r.filter.as_str() == "no-ip-spoofing")
        .map(|r| r.rule_index)
        .collect();
    assert_eq!(spoof, [0]);
    assert!(rules
        .rules
        .iter()
        .any(|r| r.filter.as_str() == "no-mac-spoofing"));
}
