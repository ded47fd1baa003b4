//! The built-in filter set: our own versions of the 24 default filters
//! libvirt ships, compiled into the library so that every binary has them
//! without a file on disk (the texts live in `fixtures/filters/`).

use crate::filter::Filter;
use crate::parse_filter::parse_filter;

/// Embeds `fixtures/filters/NAME.xml` as `(NAME, text)`.
macro_rules! builtin {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../../fixtures/filters/", $name, ".xml")))),*]
    };
}

/// Sorted by name (byte order), so lookups can binary-search.
static SOURCES: &[(&str, &str)] = builtin![
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

/// The built-in filters as `(name, XML text)`, sorted by name.
pub fn builtin_filter_sources() -> &'static [(&'static str, &'static str)] {
    SOURCES
}

/// The built-in filters, parsed, sorted by name.
pub fn builtin_filters() -> Vec<Filter> {
    SOURCES
        .iter()
        .map(|(name, text)| {
            // The texts are fixed at compile time and each is parsed by
            // tests/default_filters.rs, so a failure here is a build defect.
            parse_filter(text).unwrap_or_else(|e| panic!("built-in filter '{name}': {e}"))
        })
        .collect()
}

/// The XML text of the built-in filter `name`, if there is one.
pub fn builtin_filter_source(name: &str) -> Option<&'static str> {
    SOURCES
        .binary_search_by(|(n, _)| (*n).cmp(name))
        .ok()
        .map(|i| SOURCES[i].1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_sorted_and_unique_so_lookup_finds_each() {
        assert!(SOURCES.windows(2).all(|w| w[0].0 < w[1].0));
        for (name, text) in SOURCES {
            assert_eq!(builtin_filter_source(name), Some(*text));
            assert!(text.contains(&format!("name='{name}'")), "{name}");
        }
        assert_eq!(builtin_filters().len(), SOURCES.len());
        assert_eq!(builtin_filter_source("no-such-filter"), None);
    }
}
