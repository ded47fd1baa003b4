//! The IPv6 parameters (issue 16): `IPV6` and `DHCPSERVERV6` are checked
//! when a binding is made, naming parameter and value; the dual-stack
//! filters match trusted DHCPv6 servers through the derived
//! `TRUSTED_DHCPV6` / `TRUSTED_DHCPV6_PREFIX`.

mod resolve_support;

use nwfilter_compile::{bind, BindError, BindOutcome, MemorySource};
use resolve_support::*;

fn source() -> MemorySource {
    [
        filter(
            "dual",
            vec![
                rule("ipv6", &[("srcipaddr", "$IPV6")]),
                fref("servers", &[]),
            ],
        ),
        filter(
            "servers",
            vec![rule(
                "ipv6",
                &[
                    ("srcipaddr", "$TRUSTED_DHCPV6"),
                    ("srcipmask", "$TRUSTED_DHCPV6_PREFIX"),
                ],
            )],
        ),
    ]
    .into_iter()
    .collect()
}

fn outcome(params: &[(&str, &str)]) -> Result<BindOutcome, BindError> {
    bind(&source(), &top("dual", params), mac())
}

/// `(srcipaddr, srcipmask)` of each bound rule of filter `servers`, and
/// `srcipaddr` of each rule of `dual`.
fn bound(params: &[(&str, &str)]) -> (Vec<String>, Vec<(String, String)>) {
    let BindOutcome::Bound(rules) = outcome(params).unwrap() else {
        panic!("every variable is bound")
    };
    let mut own = Vec::new();
    let mut servers = Vec::new();
    for b in &rules.rules {
        if b.filter.as_str() == "servers" {
            servers.push((
                attr_text(&b.rule, "srcipaddr"),
                attr_text(&b.rule, "srcipmask"),
            ));
        } else {
            own.push(attr_text(&b.rule, "srcipaddr"));
        }
    }
    (own, servers)
}

#[test]
fn ipv6_takes_one_address_or_a_list() {
    assert_eq!(bound(&[("IPV6", "2001:db8::5")]).0, ["2001:db8::5"]);
    assert_eq!(
        bound(&[("IPV6", "2001:db8::5"), ("IPV6", "fe80::5054:ff:feab:cdef")]).0,
        ["2001:db8::5", "fe80::5054:ff:feab:cdef"]
    );
}

#[test]
fn without_dhcpserverv6_every_server_is_trusted_and_with_it_only_those_listed() {
    let (_, any) = bound(&[("IPV6", "2001:db8::5")]);
    assert_eq!(any, [("::".to_owned(), "0".to_owned())]);
    let (_, listed) = bound(&[
        ("IPV6", "2001:db8::5"),
        ("DHCPSERVERV6", "fe80::1"),
        ("DHCPSERVERV6", "2001:db8::1"),
    ]);
    assert_eq!(
        listed,
        [
            ("fe80::1".to_owned(), "128".to_owned()),
            ("2001:db8::1".to_owned(), "128".to_owned())
        ]
    );
}

#[test]
fn a_server_list_given_by_a_filterref_counts_like_one_given_by_the_binding() {
    let source: MemorySource = [
        filter("top", vec![fref("servers", &[("DHCPSERVERV6", "fe80::9")])]),
        filter(
            "servers",
            vec![rule(
                "ipv6",
                &[
                    ("srcipaddr", "$TRUSTED_DHCPV6"),
                    ("srcipmask", "$TRUSTED_DHCPV6_PREFIX"),
                ],
            )],
        ),
    ]
    .into_iter()
    .collect();
    let BindOutcome::Bound(rules) = bind(&source, &top("top", &[]), mac()).unwrap() else {
        panic!()
    };
    let rule = &rules.rules[0].rule;
    assert_eq!(attr_text(rule, "srcipaddr"), "fe80::9");
    assert_eq!(attr_text(rule, "srcipmask"), "128");
}

#[test]
fn bad_ipv6_values_are_refused_naming_parameter_and_value() {
    let cases = [
        ("IPV6", "10.0.0.5", "an IPv6 address, not IPv4"),
        (
            "IPV6",
            "2001:db8::5/64",
            "an IPv6 address (no prefix length",
        ),
        ("IPV6", "fe80::1%eth0", "an IPv6 address (no prefix length"),
        (
            "DHCPSERVERV6",
            "server",
            "an IPv6 address (no prefix length",
        ),
        ("DHCPSERVERV6", "10.0.0.1", "an IPv6 address, not IPv4"),
    ];
    for (name, value, expected) in cases {
        let err = outcome(&[("IPV6", "2001:db8::5"), (name, value)]).unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(&format!(
                "filter 'dual': parameter {name} has value '{value}', expected {expected}"
            )),
            "{text}"
        );
    }
}

#[test]
fn bad_values_are_refused_even_when_no_filter_uses_them() {
    let source: MemorySource = [filter("v4", vec![rule("ip", &[("srcipaddr", "$IP")])])]
        .into_iter()
        .collect();
    let err = bind(
        &source,
        &top("v4", &[("IP", "10.0.0.5"), ("IPV6", "nonsense")]),
        mac(),
    )
    .unwrap_err();
    assert!(
        matches!(err, BindError::Reserved { name: "IPV6", .. }),
        "{err}"
    );
}

#[test]
fn the_derived_server_variables_cannot_be_given() {
    for name in ["TRUSTED_DHCPV6", "TRUSTED_DHCPV6_PREFIX"] {
        let err = outcome(&[("IPV6", "2001:db8::5"), (name, "0")]).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("parameter {name} has value '0', expected nothing")),
            "{err}"
        );
    }
}

#[test]
fn the_any_server_default_is_the_same_for_every_port_and_listed_servers_are_per_port() {
    let vars_of_servers = |params: &[(&str, &str)]| {
        let BindOutcome::Bound(rules) = outcome(params).unwrap() else {
            panic!()
        };
        let b = rules
            .rules
            .iter()
            .find(|b| b.filter.as_str() == "servers")
            .unwrap();
        b.vars.iter().map(|a| a.name()).collect::<Vec<_>>()
    };
    // `::`/0 is written into a shared rule; listed servers are looked up
    // per port like `$IP` (nftables: per-port sets).
    assert!(vars_of_servers(&[("IPV6", "2001:db8::5")]).is_empty());
    assert_eq!(
        vars_of_servers(&[("IPV6", "2001:db8::5"), ("DHCPSERVERV6", "fe80::1")]),
        ["srcipaddr", "srcipmask"]
    );
}
