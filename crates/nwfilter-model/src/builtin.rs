//! The built-in filter set, compiled into the library so that every
//! binary has it without a file on disk: our own versions of the 24
//! default filters libvirt ships (`fixtures/filters/`, kept meaning what
//! libvirt's mean), and our dual-stack filters (`fixtures/filters-dualstack/`,
//! issue 16), which libvirt does not have; their names never clash with
//! libvirt's (docs/compatibility.md, "Our own filters").

use crate::filter::Filter;
use crate::parse_filter::parse_filter;

/// Embeds `fixtures/DIR/NAME.xml` as `(NAME, text)`, through the links
/// `crates/nwfilter-model/DIR` to it, so the packaged crate carries them.
macro_rules! builtin {
    ($dir:literal: $($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../", $dir, "/", $name, ".xml")))),*]
    };
}

/// Sorted by name (byte order), so lookups can binary-search.
static SOURCES: &[(&str, &str)] = builtin!["filters":
    "allow-arp",
    "allow-dhcp",
    "allow-dhcp-server",
    "allow-dhcpv6",
    "allow-dhcpv6-server",
    "allow-incoming-ipv4",
    "allow-incoming-ipv6",
    "allow-ipv4",
    "allow-ipv6",
    "clean-traffic",
    "clean-traffic-gateway",
    "no-arp-ip-spoofing",
    "no-arp-mac-spoofing",
    "no-arp-spoofing",
    "no-ip-multicast",
    "no-ip-spoofing",
    "no-ipv6-multicast",
    "no-ipv6-spoofing",
    "no-mac-broadcast",
    "no-mac-spoofing",
    "no-other-l2-traffic",
    "no-other-rarp-traffic",
    "qemu-announce-self",
    "qemu-announce-self-rarp",
];

/// Ours (issue 16), sorted by name (byte order).
static DUALSTACK: &[(&str, &str)] = builtin!["filters-dualstack":
    "allow-dhcpv6-dualstack",
    "clean-traffic-dualstack",
    "no-dhcpv6-server",
    "no-ipv6-nd-spoofing",
    "no-ipv6-ra",
    "no-ipv6-spoofing-dualstack",
];

/// Our versions of libvirt's 24 default filters as `(name, XML text)`,
/// sorted by name.
pub fn builtin_filter_sources() -> &'static [(&'static str, &'static str)] {
    SOURCES
}

/// Our own dual-stack filters (not libvirt's) as `(name, XML text)`,
/// sorted by name.
pub fn dualstack_filter_sources() -> &'static [(&'static str, &'static str)] {
    DUALSTACK
}

/// Every built-in filter, parsed: libvirt's defaults, then ours.
pub fn builtin_filters() -> Vec<Filter> {
    SOURCES
        .iter()
        .chain(DUALSTACK)
        .map(|(name, text)| {
            // The texts are fixed at compile time and each is parsed by
            // tests/default_filters.rs, so a failure here is a build defect.
            parse_filter(text).unwrap_or_else(|e| panic!("built-in filter '{name}': {e}"))
        })
        .collect()
}

/// The XML text of the built-in filter `name` (of either set), if any.
pub fn builtin_filter_source(name: &str) -> Option<&'static str> {
    [SOURCES, DUALSTACK].into_iter().find_map(|set| {
        set.binary_search_by(|(n, _)| (*n).cmp(name))
            .ok()
            .map(|i| set[i].1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_sorted_and_unique_so_lookup_finds_each() {
        for set in [SOURCES, DUALSTACK] {
            assert!(set.windows(2).all(|w| w[0].0 < w[1].0));
            for (name, text) in set {
                assert_eq!(builtin_filter_source(name), Some(*text));
                assert!(text.contains(&format!("name='{name}'")), "{name}");
            }
        }
        assert_eq!(builtin_filters().len(), SOURCES.len() + DUALSTACK.len());
        assert_eq!(builtin_filter_source("no-such-filter"), None);
    }

    #[test]
    fn our_filters_never_take_a_name_of_libvirts() {
        for (name, _) in DUALSTACK {
            assert!(
                SOURCES.binary_search_by(|(n, _)| n.cmp(name)).is_err(),
                "{name} is one of libvirt's default filters"
            );
        }
    }
}
