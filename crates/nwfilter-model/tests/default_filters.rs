//! The built-in filter set (`fixtures/filters/`): each filter parses, its
//! normalised form is a fixed point, and it means exactly what libvirt's
//! own default filter of the same name means.

// A test that cannot find libvirt's corpus says so on stdout (and skips).
#![allow(clippy::print_stdout)]

use std::path::{Path, PathBuf};

use nwfilter_model::{builtin_filter_sources, builtin_filters, format_filter, parse_filter};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/filters")
}

/// libvirt's default filters, or `None` (with the reason printed) when the
/// corpus is not there. Under CI its absence is a failure.
fn libvirt_defaults() -> Option<PathBuf> {
    let corpus = std::env::var_os("LIBVIRT_CORPUS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/libvirt-9.0.0"),
        PathBuf::from,
    );
    let dir = corpus.join("default-filters");
    if dir.is_dir() {
        return Some(dir);
    }
    let why = format!("libvirt corpus not found at {}", dir.display());
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{why} (required under CI)"
    );
    println!("skipped: {why}; set LIBVIRT_CORPUS to the libvirt-9.0.0 directory");
    None
}

#[test]
fn each_builtin_filter_normalises_to_a_fixed_point() {
    insta::glob!("../../../fixtures/filters", "*.xml", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let filter = parse_filter(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let formatted = format_filter(&filter);
        let reparsed = parse_filter(&formatted).unwrap();
        assert_eq!(reparsed, filter, "{}", path.display());
        assert_eq!(format_filter(&reparsed), formatted, "{}", path.display());
        insta::assert_snapshot!(formatted);
    });
}

#[test]
fn each_builtin_filter_means_what_libvirts_default_means() {
    let Some(libvirt) = libvirt_defaults() else {
        return;
    };
    for (name, ours) in builtin_filter_sources() {
        let ours = parse_filter(ours).unwrap();
        let theirs_path = libvirt.join(format!("{name}.xml"));
        let theirs = std::fs::read_to_string(&theirs_path)
            .unwrap_or_else(|e| panic!("{}: {e}", theirs_path.display()));
        let mut theirs = parse_filter(&theirs).unwrap();
        // libvirt's files carry no <uuid>; ours carry fixed ones.
        theirs.uuid = ours.uuid;
        assert_eq!(format_filter(&ours), format_filter(&theirs), "{name}");
    }
}

#[test]
fn the_builtin_set_has_libvirts_24_names() {
    let embedded: Vec<&str> = builtin_filter_sources().iter().map(|(n, _)| *n).collect();
    assert_eq!(embedded.len(), 24);
    let mut on_disk: Vec<String> = std::fs::read_dir(fixtures())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".xml").map(str::to_owned))
        .collect();
    on_disk.sort();
    assert_eq!(
        on_disk, embedded,
        "fixtures/filters and the embedded set differ"
    );

    // builtin_filters() is libvirt's set first, then our dual-stack set
    // (tests/dualstack_filters.rs).
    let parsed = builtin_filters();
    let names: Vec<&str> = parsed.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names[..24], embedded[..]);
    let mut uuids: Vec<_> = parsed.iter().map(|f| f.uuid).collect();
    uuids.sort();
    uuids.dedup();
    assert_eq!(
        uuids.len(),
        parsed.len(),
        "every built-in filter has its own UUID"
    );

    if let Some(libvirt) = libvirt_defaults() {
        let mut theirs: Vec<String> = std::fs::read_dir(libvirt)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter_map(|n| n.strip_suffix(".xml").map(str::to_owned))
            .collect();
        theirs.sort();
        assert_eq!(theirs, embedded);
    }
}
