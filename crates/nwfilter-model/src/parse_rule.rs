//! `<rule>` and its protocol elements (reference §3, §5): merging of
//! same-named elements, negation companions, ipset defaults and the
//! `ip`/`ipv6` port check. Each deliberate difference from libvirt 9.0 is
//! marked "libvirt:" and recorded in docs/compatibility.md.

use roxmltree::Node;

use crate::attr::Attr;
use crate::error::{ErrorKind, ParseError};
use crate::filter::{Action, AttrValue, Direction, ProtocolMatch, Rule, DEFAULT_RULE_PRIORITY};
use crate::lenient::Reader;
use crate::parse_filter::parse_priority;
use crate::protocol::{Layer, Protocol};
use crate::value::{IpsetDir, Value};
use crate::values_parse::parse_value;
use crate::xml::elements;

pub(crate) fn parse_rule(ctx: Reader, node: Node) -> Result<Rule, ParseError> {
    ctx.only_attrs(node, &["action", "direction", "priority", "statematch"])?;
    let action = ctx.required(node, "action")?;
    let action = Action::from_name(action).ok_or_else(|| {
        let why = "expected drop, accept, reject, return or continue";
        ctx.attr_err(node, "action", ErrorKind::Invalid(why.into()))
    })?;
    let direction = ctx.required(node, "direction")?;
    let direction = Direction::from_name(direction).ok_or_else(|| {
        let why = "expected in, out or inout";
        ctx.attr_err(node, "direction", ErrorKind::Invalid(why.into()))
    })?;
    // libvirt: a bad rule priority silently becomes 500.
    let priority = match node.attribute("priority") {
        Some(p) => parse_priority(p).map_err(|why| ctx.attr_err(node, "priority", why))?,
        None => DEFAULT_RULE_PRIORITY,
    };
    let statematch = match node.attribute("statematch") {
        None => true,
        Some(s) => parse_statematch(s).ok_or_else(|| {
            ctx.attr_err(
                node,
                "statematch",
                ErrorKind::Invalid(
                    "expected true/1 or false/0 (libvirt reads any other value as true)".into(),
                ),
            )
        })?,
    };
    let protocol = parse_protocol(ctx, node)?;
    Ok(Rule {
        action,
        direction,
        priority,
        statematch,
        protocol,
    })
}

/// libvirt: only `0`/`false` (any case) switch state matching off and
/// anything else, even `no`, leaves it on. We refuse the ambiguous values
/// instead of guessing either way.
fn parse_statematch(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "0" | "false" => Some(false),
        "1" | "true" => Some(true),
        _ => None,
    }
}

/// An attribute value and the element it came from (for error locations).
struct Found<'a, 'input> {
    value: AttrValue,
    node: Node<'a, 'input>,
}

fn parse_protocol<'a, 'input>(
    ctx: Reader<'a, 'input>,
    rule: Node<'a, 'input>,
) -> Result<Option<ProtocolMatch>, ParseError> {
    let mut protocol: Option<Protocol> = None;
    let mut found: Vec<Found<'a, 'input>> = Vec::new();
    for child in elements(rule) {
        let name = child.tag_name().name();
        // libvirt: unknown (or wrongly cased) elements are skipped, which
        // can turn a rule into "match everything".
        let p = Protocol::from_name(name).ok_or_else(|| {
            ctx.err(
                child,
                ErrorKind::UnknownElement("a protocol element such as <tcp> or <mac>"),
            )
        })?;
        match protocol {
            None => protocol = Some(p),
            // libvirt: a second, different protocol element is ignored.
            Some(first) if first != p => {
                let why = format!(
                    "a rule matches one protocol, and <{}> came first",
                    first.name()
                );
                return Err(ctx.err(child, ErrorKind::Invalid(why)));
            }
            Some(_) => {}
        }
        read_element(ctx, p, child, &mut found)?;
    }
    let Some(protocol) = protocol else {
        return Ok(None);
    };
    let order = |attr: Attr| protocol.attrs().iter().position(|s| s.attr == attr);
    found.sort_by_key(|f| order(f.value.attr));
    complete_ipset(ctx, protocol, &mut found)?;
    check_ports(ctx, protocol, &found)?;
    let mut attrs: Vec<AttrValue> = found.into_iter().map(|f| f.value).collect();
    copy_negation(protocol, &mut attrs);
    Ok(Some(ProtocolMatch { protocol, attrs }))
}

/// Reads one protocol element's attributes in canonical order. As libvirt,
/// every attribute is checked and the last bad one is reported.
fn read_element<'a, 'input>(
    ctx: Reader<'a, 'input>,
    protocol: Protocol,
    node: Node<'a, 'input>,
    found: &mut Vec<Found<'a, 'input>>,
) -> Result<(), ParseError> {
    let mut allowed: Vec<&str> = protocol.attrs().iter().map(|s| s.attr.name()).collect();
    allowed.push("match");
    ctx.only_attrs(node, &allowed)?;
    // libvirt: any `match` other than `no` silently means "not negated".
    let negated = match node.attribute("match") {
        None | Some("yes") => false,
        Some("no") => true,
        Some(_) => {
            let why = "expected 'yes' or 'no'";
            return Err(ctx.attr_err(node, "match", ErrorKind::Invalid(why.into())));
        }
    };
    let mut last_error = None;
    for spec in protocol.attrs() {
        let Some(text) = node.attribute(spec.attr.name()) else {
            continue;
        };
        match parse_value(protocol, spec.attr, text) {
            Ok(value) => {
                // libvirt: a repeated attribute silently overwrites.
                if found.iter().any(|f| f.value.attr == spec.attr) {
                    let why = "given twice in this rule";
                    return Err(ctx.attr_err(
                        node,
                        spec.attr.name(),
                        ErrorKind::Invalid(why.into()),
                    ));
                }
                let value = AttrValue {
                    attr: spec.attr,
                    value,
                    negated,
                };
                found.push(Found { value, node });
            }
            Err(e) => last_error = Some(ctx.attr_err(node, spec.attr.name(), e)),
        }
    }
    last_error.map_or(Ok(()), Err)
}

/// On L4 elements an `ipset` without `ipsetflags` selects the source
/// (libvirt's default), and `ipsetflags` alone is an error. libvirt instead
/// drops both when given together on any L4 element but `all`/`all-ipv6`.
fn complete_ipset(
    ctx: Reader,
    protocol: Protocol,
    found: &mut Vec<Found>,
) -> Result<(), ParseError> {
    if protocol.layer() == Layer::Ethernet {
        return Ok(());
    }
    let set = found.iter().position(|f| f.value.attr == Attr::Ipset);
    let flags = found.iter().position(|f| f.value.attr == Attr::IpsetFlags);
    match (set, flags) {
        (Some(i), None) => {
            let value = AttrValue {
                attr: Attr::IpsetFlags,
                value: Value::IpsetFlags(vec![IpsetDir::Src]),
                negated: found[i].value.negated,
            };
            found.insert(
                i + 1,
                Found {
                    value,
                    node: found[i].node,
                },
            );
        }
        (None, Some(i)) => {
            let why = "ipsetflags needs an ipset attribute";
            return Err(ctx.attr_err(found[i].node, "ipsetflags", ErrorKind::Invalid(why.into())));
        }
        _ => {}
    }
    Ok(())
}

/// Port matches on `ip`/`ipv6` need `protocol` tcp, udp, dccp or sctp.
/// libvirt checks after each element (so element order matters); we check
/// the merged rule.
fn check_ports(ctx: Reader, protocol: Protocol, found: &[Found]) -> Result<(), ParseError> {
    if !matches!(protocol, Protocol::Ip | Protocol::Ipv6) {
        return Ok(());
    }
    let ports = [
        Attr::SrcPortStart,
        Attr::SrcPortEnd,
        Attr::DstPortStart,
        Attr::DstPortEnd,
    ];
    let Some(port) = found.iter().find(|f| ports.contains(&f.value.attr)) else {
        return Ok(());
    };
    let ok = found.iter().any(|f| {
        f.value.attr == Attr::Protocol
            && matches!(&f.value.value, Value::Number(n) if matches!(n.value, 6 | 17 | 33 | 132))
    });
    if ok {
        return Ok(());
    }
    let why = format!(
        "a port match on <{}> needs protocol tcp, udp, dccp (33) or sctp",
        protocol.name()
    );
    Err(ctx.attr_err(port.node, port.value.attr.name(), ErrorKind::Invalid(why)))
}

/// Pairs (companion, source): the companion takes the source's negation,
/// because the firewall tools express the pair as one negatable match
/// (address/mask, range start/end, ICMP type/code, ipset/flags).
///
/// libvirt also copies `srcportstart`'s negation onto `dstportstart` and
/// `dstportend`, and clears a companion's negation when the source is
/// absent; both lose or invent negation, so we do neither.
pub(crate) fn negation_pairs(protocol: Protocol) -> Vec<(Attr, Attr)> {
    use crate::protocol::Protocol as P;
    use Attr::*;
    let mut pairs = Vec::new();
    match protocol {
        P::Mac | P::Vlan => {
            pairs.extend([(SrcMacMask, SrcMacAddr), (DstMacMask, DstMacAddr)]);
        }
        P::Stp => pairs.extend([
            (SrcMacMask, SrcMacAddr),
            (RootPriorityHi, RootPriority),
            (RootAddressMask, RootAddress),
            (RootCostHi, RootCost),
            (SenderPriorityHi, SenderPriority),
            (SenderAddressMask, SenderAddress),
            (PortHi, Port),
            (AgeHi, Age),
            (MaxAgeHi, MaxAge),
            (HelloTimeHi, HelloTime),
            (ForwardDelayHi, ForwardDelay),
        ]),
        P::Arp | P::Rarp => {}
        P::Ip => pairs.extend([(SrcIpMask, SrcIpAddr), (DstIpMask, DstIpAddr)]),
        P::Ipv6 => pairs.extend([
            (SrcIpMask, SrcIpAddr),
            (DstIpMask, DstIpAddr),
            (TypeEnd, Type),
            (Code, Type),
            (CodeEnd, Type),
        ]),
        _ => {
            pairs.extend([
                (SrcIpMask, SrcIpAddr),
                (DstIpMask, DstIpAddr),
                (SrcIpTo, SrcIpFrom),
                (DstIpTo, DstIpFrom),
                (IpsetFlags, Ipset),
            ]);
            if protocol.kind_of(SrcPortStart).is_some() {
                pairs.extend([(SrcPortEnd, SrcPortStart), (DstPortEnd, DstPortStart)]);
            }
            if matches!(protocol, P::Icmp | P::Icmpv6) {
                pairs.push((Code, Type));
            }
        }
    }
    pairs
}

impl ProtocolMatch {
    /// Gives each companion attribute (a mask, a range end, an ICMP code)
    /// its source's negation, as the parser does (docs/compatibility.md 12.2). Call this on a match built
    /// by hand to bring it into the parser's canonical form.
    pub fn copy_negation(&mut self) {
        copy_negation(self.protocol, &mut self.attrs);
    }
}

fn copy_negation(protocol: Protocol, attrs: &mut [AttrValue]) {
    for (companion, source) in negation_pairs(protocol) {
        let Some(negated) = attrs.iter().find(|a| a.attr == source).map(|a| a.negated) else {
            continue;
        };
        if let Some(c) = attrs.iter_mut().find(|a| a.attr == companion) {
            c.negated = negated;
        }
    }
}
