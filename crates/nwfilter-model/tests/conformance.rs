//! libvirt 9.0's own xml2xml and binding corpus: valid filters format byte
//! for byte to libvirt's output, invalid ones are refused naming the bad
//! attribute, bindings round-trip.
//!
//! The corpus is read from `$LIBVIRT_CORPUS` or `../shared/conformance/
//! libvirt-9.0.0` next to the repository. Without it the tests print that
//! they skipped, except under CI (`CI=true`), where that is a failure.

mod common;

use std::fs;
use std::path::Path;

use common::{corpus, xml_files};

use nwfilter_model::{format_binding, format_filter, parse_binding, parse_filter};

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

#[test]
fn valid_filters_format_like_libvirt() {
    let Some(corpus) = corpus() else { return };
    let dir = corpus.join("nwfilterxml2xml");
    let mut checked = 0;
    for input in xml_files(&dir.join("in")) {
        let name = file_name(&input);
        if name.ends_with("-invalid.xml") {
            continue;
        }
        let text = fs::read_to_string(&input).unwrap();
        let filter = parse_filter(&text).unwrap_or_else(|e| panic!("{}", e.in_doc(&name)));
        let want = fs::read_to_string(dir.join("out").join(&name)).unwrap();
        assert_eq!(format_filter(&filter), want, "{name}");
        checked += 1;
    }
    assert_eq!(checked, 20, "expected libvirt's 20 valid xml2xml inputs");
}

/// The attribute libvirt names for each invalid input (reference §10.5).
const INVALID: [(&str, &str); 21] = [
    ("mac-test-invalid", "protocolid"),
    ("vlan-test-invalid", "vlanid"),
    ("arp-test-invalid", "opcode"),
    ("rarp-test-invalid", "opcode"),
    ("chain_prefixtest1-invalid", "opcode"),
    ("ip-test-invalid", "dscp"),
    ("ipv6-test-invalid", "dstportend"),
    ("tcp-test-invalid", "dstportend"),
    ("udp-test-invalid", "dstportend"),
    ("sctp-test-invalid", "dstportend"),
    ("icmp-test-invalid", "code"),
    ("icmpv6-test-invalid", "code"),
    ("tcp-ipv6-test-invalid", "dstportend"),
    ("sctp-ipv6-test-invalid", "dstportend"),
    ("udp-ipv6-test-invalid", "srcipaddr"),
    ("udplite-ipv6-test-invalid", "srcipmask"),
    ("esp-ipv6-test-invalid", "srcipmask"),
    ("ah-ipv6-test-invalid", "srcipmask"),
    ("all-ipv6-test-invalid", "srcipmask"),
    ("hex-data-test-invalid", "dscp"),
    ("comment-test-invalid", "dscp"),
];

#[test]
fn invalid_filters_are_refused_naming_the_attribute() {
    let Some(corpus) = corpus() else { return };
    let dir = corpus.join("nwfilterxml2xml/in");
    let inputs: Vec<String> = xml_files(&dir)
        .iter()
        .map(|p| file_name(p))
        .filter(|n| n.ends_with("-invalid.xml"))
        .collect();
    assert_eq!(inputs.len(), INVALID.len(), "{inputs:?}");
    for (stem, attr) in INVALID {
        let name = format!("{stem}.xml");
        let text = fs::read_to_string(dir.join(&name)).unwrap();
        let err = parse_filter(&text)
            .map(|f| format_filter(&f))
            .expect_err(&name)
            .in_doc(&name);
        assert_eq!(err.attr(), Some(attr), "{err}");
        let message = err.to_string();
        assert!(message.contains(&format!(" {attr}=")), "{message}");
        assert!(message.starts_with(&format!("{name}:")), "{message}");
    }
}

#[test]
fn bindings_round_trip() {
    let Some(corpus) = corpus() else { return };
    let files = xml_files(&corpus.join("nwfilterbinding"));
    assert_eq!(files.len(), 2);
    for path in files {
        let text = fs::read_to_string(&path).unwrap();
        let binding =
            parse_binding(&text).unwrap_or_else(|e| panic!("{}", e.in_doc(file_name(&path))));
        assert_eq!(format_binding(&binding), text, "{}", path.display());
    }
}

#[test]
fn libvirt_default_filters_parse_and_format_to_a_fixed_point() {
    let Some(corpus) = corpus() else { return };
    let files = xml_files(&corpus.join("default-filters"));
    assert_eq!(files.len(), 24);
    for path in files {
        let text = fs::read_to_string(&path).unwrap();
        let name = file_name(&path);
        let filter = parse_filter(&text).unwrap_or_else(|e| panic!("{}", e.in_doc(&name)));
        let once = format_filter(&filter);
        let again = parse_filter(&once).unwrap_or_else(|e| panic!("{}", e.in_doc(&name)));
        assert_eq!(again, filter, "{name}");
        assert_eq!(format_filter(&again), once, "{name}");
    }
}
