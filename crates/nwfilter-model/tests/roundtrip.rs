//! Property: for every valid model in the parser's canonical form,
//! `parse(format(m)) == m`.
//!
//! The generator builds models directly (not from XML), then applies the
//! same canonicalisation the parser applies: attributes in canonical order,
//! `ipsetflags` only with `ipset` (defaulting to `src`), `ip`/`ipv6` ports
//! only with a tcp/udp/dccp/sctp `protocol`, negation copied onto
//! companions, and names of well-known numbers stored without a hex flag.

use std::net::{Ipv4Addr, Ipv6Addr};

use nwfilter_model::{
    format_filter, parse_filter, Action, Attr, AttrSpec, AttrValue, ChainName, Direction, Entry,
    Filter, FilterName, FilterRef, IpsetDir, Layer, MacAddr6, Number, Params, Protocol,
    ProtocolMatch, Rule, StateSet, TcpFlags, Uuid, Value, ValueKind, VarAccess, VarRef,
};
use proptest::prelude::*;
use proptest::sample::{select, subsequence};

fn number(max: u32) -> impl Strategy<Value = Number> {
    (0..=max, any::<bool>()).prop_map(|(value, hex)| Number { value, hex })
}

/// Numbers that print as a name (EtherTypes, IP protocols) forget the base.
fn named_number(min: u32, max: u32, names: &'static [u32]) -> impl Strategy<Value = Value> {
    (min..=max, any::<bool>()).prop_map(move |(value, hex)| {
        Value::Number(Number {
            value,
            hex: hex && !names.contains(&value),
        })
    })
}

const ETHERTYPES: &[u32] = &[0x0806, 0x8035, 0x0800, 0x86dd, 0x8100];
const IP_PROTOCOLS: &[u32] = &[6, 17, 136, 50, 51, 1, 2, 132, 58];

fn mac_mask() -> impl Strategy<Value = Value> {
    (0u32..=48).prop_map(|ones| {
        let bits: u64 = if ones == 0 {
            0
        } else {
            (!0u64 << (48 - ones)) & 0xffff_ffff_ffff
        };
        let b = bits.to_be_bytes();
        Value::Mac(MacAddr6::new(b[2], b[3], b[4], b[5], b[6], b[7]))
    })
}

fn comment() -> impl Strategy<Value = Value> {
    // No control characters (refused) and no leading '$' (a variable).
    "[a-zA-Z0-9 <>&'\"é€_.,;=+-]{0,80}"
        .prop_filter("not a variable", |s| !s.starts_with('$'))
        .prop_map(Value::Text)
}

fn concrete(kind: ValueKind) -> BoxedStrategy<Value> {
    use ValueKind as K;
    match kind {
        K::U8 => number(0xff).prop_map(Value::Number).boxed(),
        K::U16 => number(0xffff).prop_map(Value::Number).boxed(),
        K::U32 => number(u32::MAX).prop_map(Value::Number).boxed(),
        K::U16Dec => (0u32..=0xffff)
            .prop_map(|v| Value::Number(Number::dec(v)))
            .boxed(),
        K::Dscp => number(63).prop_map(Value::Number).boxed(),
        K::VlanId => number(4095).prop_map(Value::Number).boxed(),
        K::EtherType => named_number(0x600, 0xffff, ETHERTYPES).boxed(),
        K::EncapEtherType => named_number(0x3c, 0xffff, ETHERTYPES).boxed(),
        K::ArpOpcode => (0u32..=0xffff)
            .prop_map(|v| Value::Number(Number::dec(v)))
            .boxed(),
        K::IpProtocol => named_number(0, 0xff, IP_PROTOCOLS).boxed(),
        K::Mac => any::<[u8; 6]>()
            .prop_map(|b| Value::Mac(MacAddr6::from(b)))
            .boxed(),
        K::MacMask => mac_mask().boxed(),
        K::Ipv4 => any::<u32>()
            .prop_map(|a| Value::Ipv4(Ipv4Addr::from(a)))
            .boxed(),
        K::Ipv4Mask => (0u8..=32).prop_map(Value::Prefix).boxed(),
        K::Ipv6 => any::<u128>()
            .prop_map(|a| Value::Ipv6(Ipv6Addr::from(a)))
            .boxed(),
        K::Ipv6Mask => (0u8..=128).prop_map(Value::Prefix).boxed(),
        K::Bool => any::<bool>().prop_map(Value::Bool).boxed(),
        K::Comment => comment().boxed(),
        K::StateSet => prop_oneof![Just(StateSet(StateSet::NONE)), (1u8..16).prop_map(StateSet),]
            .prop_map(Value::States)
            .boxed(),
        K::TcpFlags => (0u8..=0x3f, 0u8..=0x3f)
            .prop_map(|(mask, set)| Value::TcpFlags(TcpFlags { mask, set }))
            .boxed(),
        K::IpsetName => "[A-Za-z0-9_.:+ -]{1,31}".prop_map(Value::IpsetName).boxed(),
        K::IpsetFlags => {
            proptest::collection::vec(prop_oneof![Just(IpsetDir::Src), Just(IpsetDir::Dst)], 1..=6)
                .prop_map(Value::IpsetFlags)
                .boxed()
        }
    }
}

fn var_ref() -> impl Strategy<Value = VarRef> {
    let access = prop_oneof![
        (0u32..=1000).prop_map(VarAccess::Iterator),
        any::<u32>().prop_map(VarAccess::Index),
    ];
    ("[A-Za-z0-9_]{1,10}", access).prop_map(|(name, access)| VarRef { name, access })
}

fn attr_value(spec: AttrSpec) -> BoxedStrategy<AttrValue> {
    let value = prop_oneof![4 => concrete(spec.kind), 1 => var_ref().prop_map(Value::Var)];
    (value, any::<bool>())
        .prop_map(move |(value, negated)| AttrValue {
            attr: spec.attr,
            value,
            negated,
        })
        .boxed()
}

/// Brings a generated match into the form the parser produces.
fn canonical(protocol: Protocol, mut attrs: Vec<AttrValue>) -> ProtocolMatch {
    let has = |attrs: &[AttrValue], a: Attr| attrs.iter().any(|v| v.attr == a);
    if !has(&attrs, Attr::Ipset) {
        attrs.retain(|v| v.attr != Attr::IpsetFlags);
    } else if !has(&attrs, Attr::IpsetFlags) && protocol.layer() != Layer::Ethernet {
        let i = attrs.iter().position(|v| v.attr == Attr::Ipset).unwrap();
        let flags = AttrValue {
            attr: Attr::IpsetFlags,
            value: Value::IpsetFlags(vec![IpsetDir::Src]),
            negated: attrs[i].negated,
        };
        attrs.insert(i + 1, flags);
    }
    if matches!(protocol, Protocol::Ip | Protocol::Ipv6) {
        let port_protocol = attrs.iter().any(|v| {
            v.attr == Attr::Protocol
                && matches!(v.value, Value::Number(n) if matches!(n.value, 6 | 17 | 33 | 132))
        });
        if !port_protocol {
            let ports = [
                Attr::SrcPortStart,
                Attr::SrcPortEnd,
                Attr::DstPortStart,
                Attr::DstPortEnd,
            ];
            attrs.retain(|v| !ports.contains(&v.attr));
        }
    }
    let mut pm = ProtocolMatch { protocol, attrs };
    pm.copy_negation();
    pm
}

fn protocol_match() -> impl Strategy<Value = ProtocolMatch> {
    select(Protocol::ALL.to_vec()).prop_flat_map(|protocol| {
        let specs = protocol.attrs().to_vec();
        let n = specs.len();
        subsequence(specs, 0..=n.min(8)).prop_flat_map(move |chosen| {
            let values: Vec<_> = chosen.into_iter().map(attr_value).collect();
            values.prop_map(move |attrs| canonical(protocol, attrs))
        })
    })
}

fn priority() -> impl Strategy<Value = i32> {
    -1000i32..=1000
}

fn rule() -> impl Strategy<Value = Rule> {
    let action = select(vec![
        Action::Drop,
        Action::Accept,
        Action::Reject,
        Action::Return,
        Action::Continue,
    ]);
    let direction = select(vec![Direction::In, Direction::Out, Direction::InOut]);
    (
        action,
        direction,
        priority(),
        any::<bool>(),
        proptest::option::of(protocol_match()),
    )
        .prop_map(|(action, direction, priority, statematch, protocol)| Rule {
            action,
            direction,
            priority,
            statematch,
            protocol,
        })
}

fn filter_name() -> impl Strategy<Value = FilterName> {
    "[A-Za-z0-9_][A-Za-z0-9_.:-]{0,20}".prop_map(|n| FilterName::new(n).unwrap())
}

fn filter_ref() -> impl Strategy<Value = FilterRef> {
    let values = proptest::collection::vec("[A-Za-z0-9_.:]{1,12}", 1..4);
    let params = proptest::collection::btree_map("[A-Za-z0-9_]{1,8}", values, 0..4);
    (filter_name(), params).prop_map(|(filter, params)| FilterRef {
        filter,
        params: Params(params),
    })
}

fn chain() -> impl Strategy<Value = ChainName> {
    let prefix = select(vec!["mac", "vlan", "stp", "arp", "rarp", "ipv4", "ipv6"]);
    prop_oneof![
        Just(ChainName::root()),
        (prefix, "[A-Za-z0-9_.:-]{0,8}").prop_filter_map("too long", |(p, rest)| {
            ChainName::new(format!("{p}{rest}")).ok()
        }),
    ]
}

fn filter() -> impl Strategy<Value = Filter> {
    let entry = prop_oneof![
        rule().prop_map(Entry::Rule),
        filter_ref().prop_map(Entry::Ref)
    ];
    let priority = prop_oneof![Just(None), priority().prop_map(Some)];
    (
        filter_name(),
        any::<u128>(),
        chain(),
        priority,
        proptest::collection::vec(entry, 0..6),
    )
        .prop_map(|(name, uuid, chain, priority, entries)| Filter {
            name,
            uuid: Uuid::from_u128(uuid),
            priority: priority.unwrap_or_else(|| chain.kind().default_priority()),
            chain,
            entries,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn parse_of_format_is_identity(model in filter()) {
        let text = format_filter(&model);
        let parsed = parse_filter(&text).map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
        prop_assert_eq!(parsed, model, "{}", text);
    }
}
