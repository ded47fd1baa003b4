//! The neighbour-discovery fields of `icmpv6` rules (ours, issue 16):
//! `ndtarget`, `ndlladdr` and `ndoptions` become `Match::Nd` after the
//! ICMPv6 type, in the from-VM chains only; a negation that no backend can
//! express is refused naming filter, rule and attribute.

mod resolve_support;

use nwfilter_compile::ir::{ChainRole, Family, Match, NdField, NdMatch, Program};
use nwfilter_compile::{compile, CompileError, Compiled, MemorySource};
use nwfilter_model::{parse_filter, IfName};
use resolve_support::*;

fn compiled(rule: &str, params: &[(&str, &str)]) -> Result<Program, CompileError> {
    let xml = format!("<filter name='nd' chain='root'>{rule}</filter>");
    let source: MemorySource = [parse_filter(&xml).unwrap()].into_iter().collect();
    let port = IfName::new("vnet0").unwrap();
    match compile(&source, &top("nd", params), mac(), &port)? {
        Compiled::Program(p) => Ok(p),
        other => panic!("expected rules, got {other:?}"),
    }
}

fn nd(field: NdField, negated: bool) -> Match {
    Match::Nd(NdMatch { field, negated })
}

#[test]
fn nd_fields_follow_the_icmpv6_type_in_the_from_vm_chains() {
    let p = compiled(
        "<rule action='return' direction='out' priority='1'>
           <icmpv6 type='136' ndtarget='$IPV6' ndlladdr='$MAC' ndoptions='true'/>
         </rule>",
        &[("IPV6", "fd77::10")],
    )
    .unwrap();
    let roles: Vec<&ChainRole> = p.chains.iter().map(|c| &c.role).collect();
    assert_eq!(roles, [&ChainRole::ForwardFromVm, &ChainRole::HostFromVm]);
    for chain in &p.chains {
        assert_eq!(chain.family, Family::Ipv6);
        let m = &chain.rules[0].matches;
        assert_eq!(
            m[2..],
            [
                nd(NdField::Target("fd77::10".parse().unwrap()), false),
                nd(NdField::LinkLayer(mac()), false),
                nd(NdField::Options(true), false),
            ]
        );
    }
}

#[test]
fn a_negated_target_stays_negated_and_negated_options_mean_the_opposite() {
    let p = compiled(
        "<rule action='drop' direction='out' priority='1'>
           <icmpv6 match='no' type='136' ndtarget='fd77::1' ndoptions='false'/>
         </rule>",
        &[],
    )
    .unwrap();
    let m = &p.chains[0].rules[0].matches;
    assert!(m.contains(&nd(NdField::Target("fd77::1".parse().unwrap()), true)));
    assert!(m.contains(&nd(NdField::Options(true), false)));
}

#[test]
fn a_negated_link_layer_option_is_refused_naming_filter_rule_and_attribute() {
    let err = compiled(
        "<rule action='drop' direction='out' priority='1'>
           <icmpv6 match='no' type='135' ndlladdr='$MAC'/>
         </rule>",
        &[],
    )
    .unwrap_err()
    .to_string();
    for part in ["'nd'", "rule 1", "ndlladdr", "cannot be negated"] {
        assert!(err.contains(part), "{part} in {err}");
    }
}
