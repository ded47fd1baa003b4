//! Builders for small filters in tests of the compiler's front half, so
//! DAG and variable tests need neither XML nor a file system.
#![allow(dead_code)]

use nwfilter_model::{
    parse_value, Action, AttrValue, ChainName, Direction, Entry, Filter, FilterName, FilterRef,
    MacAddr6, Params, Protocol, ProtocolMatch, Rule, Uuid, Value,
};

pub fn name(n: &str) -> FilterName {
    FilterName::new(n).unwrap()
}

/// A root-chain filter with the given entries.
pub fn filter(n: &str, entries: Vec<Entry>) -> Filter {
    Filter {
        name: name(n),
        uuid: Uuid::nil(),
        chain: ChainName::root(),
        priority: 0,
        entries,
    }
}

/// `<filterref filter=n>` with `<parameter>`s (a repeated name is a list).
pub fn fref(n: &str, params: &[(&str, &str)]) -> Entry {
    Entry::Ref(top(n, params))
}

pub fn top(n: &str, params: &[(&str, &str)]) -> FilterRef {
    FilterRef {
        filter: name(n),
        params: params_of(params),
    }
}

pub fn params_of(params: &[(&str, &str)]) -> Params {
    let mut p = Params::default();
    for (k, v) in params {
        p.push(*k, *v);
    }
    p
}

/// An `accept`/`out` rule on element `proto` with attributes written as in
/// XML (`$A[@1]` is a variable); stored in canonical attribute order.
pub fn rule(proto: &str, attrs: &[(&str, &str)]) -> Entry {
    Entry::Rule(plain_rule(proto, attrs))
}

pub fn plain_rule(proto: &str, attrs: &[(&str, &str)]) -> Rule {
    let protocol = Protocol::from_name(proto).unwrap();
    let mut values: Vec<(usize, AttrValue)> = attrs
        .iter()
        .map(|(a, text)| {
            let pos = protocol
                .attrs()
                .iter()
                .position(|s| s.attr.name() == *a)
                .unwrap_or_else(|| panic!("<{proto}> has no {a}"));
            let attr = protocol.attrs()[pos].attr;
            let value = parse_value(protocol, attr, text).unwrap();
            (
                pos,
                AttrValue {
                    attr,
                    value,
                    negated: false,
                },
            )
        })
        .collect();
    values.sort_by_key(|(pos, _)| *pos);
    Rule {
        action: Action::Accept,
        direction: Direction::Out,
        priority: 500,
        statematch: true,
        protocol: Some(ProtocolMatch {
            protocol,
            attrs: values.into_iter().map(|(_, v)| v).collect(),
        }),
    }
}

pub fn mac() -> MacAddr6 {
    MacAddr6::new(0x52, 0x54, 0x00, 0xAB, 0xCD, 0xEF)
}

/// The concrete text of attribute `a` in a bound rule, for assertions.
pub fn attr_text(rule: &Rule, a: &str) -> String {
    let pm = rule.protocol.as_ref().unwrap();
    let av = pm
        .attrs
        .iter()
        .find(|v| v.attr.name() == a)
        .unwrap_or_else(|| panic!("no {a}"));
    assert!(!matches!(av.value, Value::Var(_)), "{a} still a variable");
    nwfilter_model::format_value(pm.protocol, av.attr, &av.value)
}
