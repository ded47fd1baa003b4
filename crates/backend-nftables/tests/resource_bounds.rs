//! The nftables backend's bound on bindings (docs/RELIABILITY.md, issue 18
//! item 6): a port with IPv4/IPv6 rules needs one of 65 535 port tags (the
//! packet mark's 16 bits); the next is refused with an error saying so,
//! before anything is sent to the kernel. Ports that have a tag keep it.

use backend_nftables::apply::{plan_apply, ApplyError, Change};
use backend_nftables::{KernelState, PortRuleset};
use nwfilter_compile::{compile, Compiled, MemorySource};
use nwfilter_model::{
    builtin_filters, parse_filter, FilterName, FilterRef, IfName, MacAddr6, Params,
};

/// A filter with an IPv4 rule (the port needs a tag) and clean-traffic.
const GUEST: &str = "<filter name='guest' chain='root'>
  <filterref filter='clean-traffic'/>
  <rule action='drop' direction='out' priority='400'><tcp dstportstart='25'/></rule>
</filter>";

fn guest(port: &str) -> PortRuleset {
    let mut source = MemorySource::from_iter(builtin_filters());
    source.insert(parse_filter(GUEST).unwrap());
    let mut params = Params::default();
    params.push("IP", "10.0.0.1");
    let top = FilterRef {
        filter: FilterName::new("guest").unwrap(),
        params,
    };
    let port = IfName::new(port).unwrap();
    let mac = MacAddr6::new(0x52, 0x54, 0, 0, 0, 1);
    let Compiled::Program(program) = compile(&source, &top, mac, &port).unwrap() else {
        panic!("IP is bound");
    };
    backend_nftables::ruleset(&program).unwrap()
}

fn plan(state: &mut KernelState, rules: &PortRuleset) -> Result<(), ApplyError> {
    let change = [Change {
        ruleset: rules,
        recorded: None,
    }];
    plan_apply(state, &change).map(|_| ())
}

#[test]
fn the_65536th_tagged_port_is_refused_with_a_clear_error() {
    let rules = guest("vnet0");
    assert!(rules.needs_tag(), "the filter has an IPv4 rule");
    let mut full = KernelState::default();
    full.seen_tags.extend(1..=u16::MAX);
    let err = plan(&mut full.clone(), &rules).unwrap_err();
    assert!(matches!(err, ApplyError::TagsExhausted), "{err:?}");
    assert_eq!(
        err.to_string(),
        "more than 65535 ports with IPv4/IPv6 rules: no port tag is free"
    );
    // One tag free: the port gets it.
    let mut one_left = full.clone();
    one_left.seen_tags.remove(&40_000);
    plan(&mut one_left, &rules).unwrap();
    assert_eq!(one_left.ports["vnet0"].tag, Some(40_000));
    // Now full again: a port that has its tag is still re-planned.
    plan(&mut one_left, &guest("vnet0")).unwrap();
    assert!(plan(&mut one_left, &guest("vnet1")).is_err());
}
