//! Our dual-stack filters (`fixtures/filters-dualstack/`, issue 16): each
//! parses and normalises to a fixed point, the embedded set is the
//! directory, and no name is one of libvirt's default filters.

use std::path::Path;

use nwfilter_model::{
    builtin_filter_sources, builtin_filters, dualstack_filter_sources, format_filter, parse_filter,
};

#[test]
fn each_dualstack_filter_normalises_to_a_fixed_point() {
    for (name, text) in dualstack_filter_sources() {
        let filter = parse_filter(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(filter.name.as_str(), *name);
        let formatted = format_filter(&filter);
        let reparsed = parse_filter(&formatted).unwrap();
        assert_eq!(reparsed, filter, "{name}");
        assert_eq!(format_filter(&reparsed), formatted, "{name}");
    }
}

#[test]
fn the_embedded_dualstack_set_is_the_directory_and_clashes_with_no_libvirt_name() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/filters-dualstack");
    let mut on_disk: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|n| n.strip_suffix(".xml").map(str::to_owned))
        .collect();
    on_disk.sort();
    let embedded: Vec<&str> = dualstack_filter_sources().iter().map(|(n, _)| *n).collect();
    assert_eq!(on_disk, embedded);
    assert_eq!(
        embedded,
        [
            "allow-dhcpv6-dualstack",
            "clean-traffic-dualstack",
            "no-dhcpv6-server",
            "no-ipv6-nd-spoofing",
            "no-ipv6-ra",
            "no-ipv6-spoofing-dualstack",
        ]
    );
    let libvirts: Vec<&str> = builtin_filter_sources().iter().map(|(n, _)| *n).collect();
    for name in &embedded {
        assert!(!libvirts.contains(name), "{name} clashes with libvirt's");
    }
    let all: Vec<String> = builtin_filters()
        .iter()
        .map(|f| f.name.as_str().to_owned())
        .collect();
    assert_eq!(all.len(), libvirts.len() + embedded.len());
}
