//! An unbound `$IP` and `CTRL_IP_LEARNING` (reference `nwfilter-xml.md`
//! §6.6): learning is reported, not an error, unless it is switched off.

mod resolve_support;

use std::net::Ipv4Addr;

use nwfilter_compile::{bind, BindError, BindOutcome, LearningMode, MemorySource};
use resolve_support::*;

fn source() -> MemorySource {
    [
        filter(
            "clean",
            vec![
                fref("no-ip-spoofing", &[]),
                rule("ip", &[("srcipaddr", "$OTHER")]),
            ],
        ),
        filter(
            "no-ip-spoofing",
            vec![
                rule("ip", &[("srcipaddr", "$IP")]),
                rule("arp", &[("arpsrcipaddr", "$IP")]),
            ],
        ),
    ]
    .into_iter()
    .collect()
}

fn outcome(params: &[(&str, &str)]) -> Result<BindOutcome, BindError> {
    bind(&source(), &top("clean", params), mac())
}

#[test]
fn unset_ip_awaits_learning_of_any_address_by_default() {
    assert_eq!(
        outcome(&[("OTHER", "10.0.0.9")]).unwrap(),
        BindOutcome::AwaitingIp {
            mode: LearningMode::Any,
            dhcp_servers: vec![],
        }
    );
    assert_eq!(
        outcome(&[("OTHER", "10.0.0.9"), ("CTRL_IP_LEARNING", "any")]).unwrap(),
        BindOutcome::AwaitingIp {
            mode: LearningMode::Any,
            dhcp_servers: vec![],
        }
    );
}

#[test]
fn dhcp_learning_is_case_insensitive_and_reports_trusted_servers() {
    let got = outcome(&[
        ("OTHER", "10.0.0.9"),
        ("CTRL_IP_LEARNING", "DHCP"),
        ("DHCPSERVER", "10.0.0.1"),
        ("DHCPSERVER", "10.0.0.2"),
    ])
    .unwrap();
    assert_eq!(
        got,
        BindOutcome::AwaitingIp {
            mode: LearningMode::Dhcp,
            dhcp_servers: vec![Ipv4Addr::new(10, 0, 0, 1), Ipv4Addr::new(10, 0, 0, 2)],
        }
    );
}

#[test]
fn only_the_first_learning_value_counts() {
    let got = outcome(&[
        ("OTHER", "10.0.0.9"),
        ("CTRL_IP_LEARNING", "dhcp"),
        ("CTRL_IP_LEARNING", "bogus"),
    ])
    .unwrap();
    assert!(matches!(
        got,
        BindOutcome::AwaitingIp {
            mode: LearningMode::Dhcp,
            ..
        }
    ));
}

#[test]
fn learning_none_makes_unset_ip_an_error() {
    let err = outcome(&[("OTHER", "10.0.0.9"), ("CTRL_IP_LEARNING", "none")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "cannot instantiate filter 'clean': unresolvable variables or unavailable \
         list elements: IP (filter 'no-ip-spoofing', rule 1)"
    );
}

#[test]
fn an_invalid_learning_value_is_an_error_naming_it() {
    let err = outcome(&[("OTHER", "10.0.0.9"), ("CTRL_IP_LEARNING", "sometimes")]).unwrap_err();
    assert_eq!(
        err.to_string(),
        "filter 'clean': CTRL_IP_LEARNING value 'sometimes' is invalid \
         (expected any, dhcp or none)"
    );
}

#[test]
fn an_invalid_trusted_server_is_an_error_naming_it() {
    let err = outcome(&[
        ("OTHER", "10.0.0.9"),
        ("CTRL_IP_LEARNING", "dhcp"),
        ("DHCPSERVER", "fe80::1"),
    ])
    .unwrap_err();
    assert_eq!(
        err.to_string(),
        "filter 'clean': DHCPSERVER value 'fe80::1' is not an IPv4 address"
    );
}

#[test]
fn ip_missing_with_another_variable_is_an_error_listing_both() {
    let err = outcome(&[]).unwrap_err();
    let BindError::Unresolved { missing, .. } = &err else {
        panic!("{err:?}")
    };
    let names: Vec<String> = missing.iter().map(|m| m.name()).collect();
    assert_eq!(names, ["IP", "OTHER"]);
    assert!(err
        .to_string()
        .ends_with("IP (filter 'no-ip-spoofing', rule 1), OTHER (filter 'clean', rule 1)"));
}

#[test]
fn ip_on_another_iterator_is_not_learnable() {
    let source: MemorySource = [filter("top", vec![rule("ip", &[("srcipaddr", "$IP[@1]")])])]
        .into_iter()
        .collect();
    let err = bind(&source, &top("top", &[]), mac()).unwrap_err();
    assert!(
        err.to_string().contains("IP[@1] (filter 'top', rule 1)"),
        "{err}"
    );
}

#[test]
fn a_given_ip_binds_every_rule_that_uses_it() {
    let got = outcome(&[
        ("OTHER", "10.0.0.9"),
        ("IP", "10.0.0.5"),
        ("IP", "10.0.0.6"),
    ])
    .unwrap();
    let BindOutcome::Bound(rules) = got else {
        panic!("{got:?}")
    };
    let texts: Vec<String> = rules
        .rules
        .iter()
        .map(|b| {
            let a = if b.rule_index == 1 && b.filter.as_str() == "no-ip-spoofing" {
                "arpsrcipaddr"
            } else {
                "srcipaddr"
            };
            attr_text(&b.rule, a)
        })
        .collect();
    assert_eq!(
        texts,
        ["10.0.0.5", "10.0.0.6", "10.0.0.5", "10.0.0.6", "10.0.0.9"]
    );
}

#[test]
fn an_invalid_learning_value_is_refused_even_when_ip_is_given() {
    // libvirt reads CTRL_IP_LEARNING only when it starts learning; we check
    // it always, so a typo shows at once rather than on the first port
    // without an address.
    let err = outcome(&[
        ("OTHER", "10.0.0.9"),
        ("IP", "10.0.0.5"),
        ("CTRL_IP_LEARNING", "dhpc"),
    ])
    .unwrap_err();
    assert!(matches!(err, BindError::LearningMode { .. }), "{err:?}");
}
