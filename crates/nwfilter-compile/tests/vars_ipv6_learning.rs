//! A missing `IPV6` with learning on (issue 16, item 3): the port awaits
//! its IPv6 addresses instead of failing, and while it waits the rules
//! that need `$IPV6` are left out, so the guest may send only what needs
//! no address of its own. Unsafe uses (a drop on `$IPV6`, a negated
//! match) keep the missing `IPV6` an error.

mod resolve_support;

use nwfilter_compile::{bind, BindError, BindOutcome, Ipv6Learning, LearningMode, MemorySource};
use nwfilter_model::{builtin_filters, Action, Entry};
use resolve_support::*;

fn builtins() -> MemorySource {
    builtin_filters().into_iter().collect()
}

fn dualstack(params: &[(&str, &str)]) -> Result<BindOutcome, BindError> {
    bind(&builtins(), &top("clean-traffic-dualstack", params), mac())
}

fn ipv6_rules_of(outcome: BindOutcome, filter: &str) -> Vec<String> {
    let BindOutcome::Bound(rules) = outcome else {
        panic!("bound")
    };
    rules
        .rules
        .iter()
        .filter(|b| b.filter.as_str() == filter)
        .map(|b| format!("{:?}", b.rule))
        .collect()
}

#[test]
fn a_dualstack_port_without_ipv6_binds_without_the_rules_that_need_it() {
    let learning = dualstack(&[("IP", "10.0.0.5")]).unwrap();
    let given = dualstack(&[("IP", "10.0.0.5"), ("IPV6", "2001:db8::5")]).unwrap();
    let spoofing_waiting = ipv6_rules_of(learning.clone(), "no-ipv6-spoofing-dualstack");
    let spoofing_given = ipv6_rules_of(given.clone(), "no-ipv6-spoofing-dualstack");
    // The one rule returning for the port's own source is left out; the
    // `::` rules (DAD, RS, MLD) and the final drop stay.
    assert_eq!(spoofing_given.len(), spoofing_waiting.len() + 1);
    assert!(
        spoofing_given[0].contains("2001:db8::5"),
        "{spoofing_given:?}"
    );
    assert!(spoofing_waiting.iter().all(|r| !r.contains("2001:db8")));
    assert!(spoofing_waiting.last().unwrap().contains("Drop"));
    // ND: no advertisement and no DAD probe may pass while nothing is
    // learned (the ndtarget rules are left out; their drops stay).
    let nd_waiting = ipv6_rules_of(learning, "no-ipv6-nd-spoofing");
    let nd_given = ipv6_rules_of(given, "no-ipv6-nd-spoofing");
    assert_eq!(nd_given.len(), nd_waiting.len() + 3);
    assert!(
        nd_waiting.iter().all(|r| !r.contains("Var")),
        "{nd_waiting:?}"
    );
}

#[test]
fn a_port_awaiting_both_families_awaits_ip_from_the_ipv4_learner() {
    assert!(matches!(
        dualstack(&[]).unwrap(),
        BindOutcome::AwaitingIp {
            mode: LearningMode::Any,
            ..
        }
    ));
}

#[test]
fn learning_none_keeps_a_missing_ipv6_an_unresolved_variable() {
    let err = dualstack(&[("IP", "10.0.0.5"), ("CTRL_IP_LEARNING", "none")]).unwrap_err();
    assert!(err.to_string().contains("IPV6"), "{err}");
}

#[test]
fn ipv6_learning_says_how_and_only_when_ipv6_is_missing() {
    let dag = nwfilter_compile::resolve(&builtins(), &name("clean-traffic-dualstack")).unwrap();
    let need = |params: &[(&str, &str)]| dag.ipv6_learning(&params_of(params), mac()).unwrap();
    assert_eq!(
        need(&[("IP", "10.0.0.5")]),
        Some(Ipv6Learning {
            mode: LearningMode::Any,
            dhcp_servers: vec![]
        })
    );
    assert_eq!(
        need(&[("CTRL_IP_LEARNING", "dhcp"), ("DHCPSERVERV6", "fe80::1"),]),
        Some(Ipv6Learning {
            mode: LearningMode::Dhcp,
            dhcp_servers: vec!["fe80::1".parse().unwrap()]
        })
    );
    assert_eq!(need(&[("IPV6", "2001:db8::5")]), None, "given");
    assert_eq!(need(&[("CTRL_IP_LEARNING", "none")]), None);
    let v4_only = nwfilter_compile::resolve(&builtins(), &name("clean-traffic")).unwrap();
    assert_eq!(v4_only.ipv6_learning(&params_of(&[]), mac()).unwrap(), None);
}

/// A filter whose `$IPV6` rule is a drop (leaving it out would let
/// through what it stops), or a negated match.
fn unsafe_source(action: Action, negated: bool) -> MemorySource {
    let Entry::Rule(mut r) = rule("ipv6", &[("srcipaddr", "$IPV6")]) else {
        unreachable!()
    };
    r.action = action;
    r.protocol.as_mut().unwrap().attrs[0].negated = negated;
    [filter("f", vec![Entry::Rule(r)])].into_iter().collect()
}

#[test]
fn a_missing_ipv6_stays_an_error_where_leaving_its_rule_out_would_open_the_port() {
    for (action, negated) in [
        (Action::Drop, false),
        (Action::Reject, false),
        (Action::Accept, true),
    ] {
        let err = bind(&unsafe_source(action, negated), &top("f", &[]), mac()).unwrap_err();
        assert!(
            matches!(&err, BindError::Unresolved { missing, .. } if missing[0].name() == "IPV6"),
            "{action:?} negated={negated}: {err}"
        );
    }
    let ok = bind(&unsafe_source(Action::Accept, false), &top("f", &[]), mac()).unwrap();
    assert!(matches!(ok, BindOutcome::Bound(r) if r.rules.is_empty()));
}
