//! IPv4/IPv6 layer-4 rules → instances in the forward-from-VM,
//! forward-to-VM and host-from-VM chains (lowering reference §3.3–3.5).
//!
//! Each rule is seen by up to three chains, always considered in the order
//! forward-from-VM, forward-to-VM, host-from-VM. An instance is "swapped"
//! when it sees the rule's traffic from the other side: source fields are
//! matched as destination fields (and the source MAC cannot be matched).

use nwfilter_model::{Action, Attr, Direction, IpsetDir, Protocol, StateSet};

use super::attrs::Attrs;
use super::error::LowerError;
use crate::bound::BoundRule;
use crate::ir::{ChainRole, ConnDir, ConnStates, L4Proto, MacMatch, Match, Rule, Verdict};

/// The three chains, in emission order.
const CHAINS: [ChainRole; 3] = [
    ChainRole::ForwardFromVm,
    ChainRole::ForwardToVm,
    ChainRole::HostFromVm,
];

/// How a rule asks for connection tracking.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StateRegime {
    /// `statematch='false'`: no state match at all, every chain.
    Off,
    /// An explicit `state` (possibly `NONE`): those states, no direction.
    Explicit(StateSet),
    /// Implicit: accept rules admit new connections one way, replies back.
    Implicit,
}

/// The instances of one L4 rule, in emission order.
pub(crate) fn instances(rule: &BoundRule) -> Result<Vec<(ChainRole, Rule)>, LowerError> {
    let a = Attrs::new(rule);
    let pm = rule
        .rule
        .protocol
        .as_ref()
        .expect("L4 rules have a protocol");
    let direction = rule.rule.direction;
    let regime = if !rule.rule.statematch {
        StateRegime::Off
    } else if let Some(states) = a.states()? {
        StateRegime::Explicit(states)
    } else {
        StateRegime::Implicit
    };
    let mut out = Vec::new();
    for role in CHAINS {
        let to_vm = matches!(role, ChainRole::ForwardToVm);
        // `out` traffic is seen straight by the from-VM chains, `in` and
        // `inout` straight by the to-VM chain.
        let swapped = (direction == Direction::Out) == to_vm;
        if !selected(regime, direction, to_vm) || !icmp_type_fits(&a, direction, to_vm) {
            continue;
        }
        if let Some(r) = instance(&a, pm.protocol, regime, &role, swapped)? {
            out.push((role.clone(), r));
        }
    }
    Ok(out)
}

/// An explicit `state` keeps libvirt's narrower instance selection: the
/// given states describe packets in the rule's own direction only.
fn selected(regime: StateRegime, direction: Direction, to_vm: bool) -> bool {
    match (regime, direction) {
        (StateRegime::Explicit(_), Direction::Out) => !to_vm,
        (StateRegime::Explicit(_), Direction::In) => to_vm,
        _ => true,
    }
}

/// An ICMP type names one direction's messages (echo request out, reply
/// in), so the opposite chain gets no copy. `inout` keeps every copy: libvirt
/// 9.0 emits nothing at all there (docs/compatibility.md, "Lowering").
fn icmp_type_fits(a: &Attrs, direction: Direction, to_vm: bool) -> bool {
    if !a.has(Attr::Type) {
        return true;
    }
    match direction {
        Direction::Out => !to_vm,
        Direction::In => to_vm,
        Direction::InOut => true,
    }
}

fn instance(
    a: &Attrs,
    protocol: Protocol,
    regime: StateRegime,
    role: &ChainRole,
    swapped: bool,
) -> Result<Option<Rule>, LowerError> {
    let connlimit = a.num::<u16>(Attr::ConnlimitAbove)?;
    // connlimit counts connections from the VM's side: straight copies only.
    if connlimit.is_some() && swapped {
        return Ok(None);
    }
    let mut matches = vec![Match::L4(l4_proto(protocol))];
    let src_mac = a.mac(Attr::SrcMacAddr)?;
    if let (Some((addr, negated)), false) = (src_mac, swapped) {
        matches.push(Match::MacSrc(MacMatch {
            addr,
            mask: None,
            negated,
        }));
    }
    let before = matches.len();
    header(a, swapped, &mut matches)?;
    protocol_part(a, protocol, swapped, &mut matches)?;
    // A swapped copy of a rule whose only condition was the source MAC
    // would match everything: drop it (libvirt does the same).
    if swapped && src_mac.is_some() && matches.len() == before {
        return Ok(None);
    }
    let action = a.rule.rule.action;
    state(
        a,
        regime,
        action,
        swapped,
        connlimit.is_some(),
        &mut matches,
    )?;
    if let Some(name) = a.text(Attr::Ipset)? {
        let written = a.ipset_flags()?.unwrap_or(&[IpsetDir::Src]);
        let flags = written
            .iter()
            .map(|f| match (f, swapped) {
                (IpsetDir::Src, true) => IpsetDir::Dst,
                (IpsetDir::Dst, true) => IpsetDir::Src,
                (f, false) => *f,
            })
            .collect();
        matches.push(Match::IpSet {
            name: name.to_owned(),
            flags,
        });
    }
    if let Some(limit) = connlimit {
        matches.push(Match::ConnlimitAbove(limit));
    }
    Ok(Some(Rule {
        per_port: super::per_port::positions(&matches, a.rule),
        matches,
        comment: a.text(Attr::Comment)?.map(str::to_owned),
        verdict: verdict(action, role),
    }))
}

/// `accept` ends the rule's layer: a real ACCEPT towards the VM, a RETURN
/// in the chains entered by goto (the caller then accepts or goes on).
fn verdict(action: Action, role: &ChainRole) -> Verdict {
    match action {
        Action::Accept if *role == ChainRole::ForwardToVm => Verdict::Accept,
        Action::Accept => Verdict::AcceptByReturn,
        Action::Drop => Verdict::Drop,
        Action::Reject => Verdict::Reject,
        Action::Return => Verdict::Return,
        Action::Continue => Verdict::Continue,
    }
}

fn l4_proto(p: Protocol) -> L4Proto {
    match p {
        Protocol::Tcp | Protocol::TcpIpv6 => L4Proto::Tcp,
        Protocol::Udp | Protocol::UdpIpv6 => L4Proto::Udp,
        Protocol::Udplite | Protocol::UdpliteIpv6 => L4Proto::Udplite,
        Protocol::Sctp | Protocol::SctpIpv6 => L4Proto::Sctp,
        Protocol::Icmp => L4Proto::Icmp,
        Protocol::Icmpv6 => L4Proto::Icmpv6,
        Protocol::Igmp => L4Proto::Igmp,
        Protocol::Esp | Protocol::EspIpv6 => L4Proto::Esp,
        Protocol::Ah | Protocol::AhIpv6 => L4Proto::Ah,
        Protocol::All | Protocol::AllIpv6 => L4Proto::All,
        other => unreachable!("{} is not a layer-4 protocol", other.name()),
    }
}

/// Addresses (an address wins over a range for the same side) and DSCP.
fn header(a: &Attrs, swapped: bool, out: &mut Vec<Match>) -> Result<(), LowerError> {
    let sides = [
        (
            Attr::SrcIpAddr,
            Attr::SrcIpMask,
            Attr::SrcIpFrom,
            Attr::SrcIpTo,
            true,
        ),
        (
            Attr::DstIpAddr,
            Attr::DstIpMask,
            Attr::DstIpFrom,
            Attr::DstIpTo,
            false,
        ),
    ];
    for (addr, mask, from, to, is_src) in sides {
        let as_src = is_src != swapped;
        if let Some(m) = a.addr_match(addr, mask)? {
            out.push(if as_src {
                Match::IpSrc(m)
            } else {
                Match::IpDst(m)
            });
        } else if let Some(r) = a.addr_range(from, to)? {
            out.push(if as_src {
                Match::IpSrcRange(r)
            } else {
                Match::IpDstRange(r)
            });
        }
    }
    if let Some(d) = a.num::<u8>(Attr::Dscp)? {
        out.push(Match::Dscp(d));
    }
    Ok(())
}

fn protocol_part(
    a: &Attrs,
    protocol: Protocol,
    swapped: bool,
    out: &mut Vec<Match>,
) -> Result<(), LowerError> {
    if protocol == Protocol::Tcp {
        if let Some((f, negated)) = a.tcp_flags()? {
            out.push(Match::TcpFlags {
                mask: f.mask,
                set: f.set,
                negated,
            });
        }
    }
    if matches!(
        protocol,
        Protocol::Tcp
            | Protocol::Udp
            | Protocol::Sctp
            | Protocol::TcpIpv6
            | Protocol::UdpIpv6
            | Protocol::SctpIpv6
    ) {
        for (start, end, is_src) in [
            (Attr::SrcPortStart, Attr::SrcPortEnd, true),
            (Attr::DstPortStart, Attr::DstPortEnd, false),
        ] {
            if let Some(r) = a.range::<u16>(start, end)? {
                out.push(if is_src != swapped {
                    Match::SrcPort(r)
                } else {
                    Match::DstPort(r)
                });
            }
        }
    }
    if matches!(protocol, Protocol::Tcp | Protocol::TcpIpv6) {
        if let Some(o) = a.num::<u8>(Attr::Option)? {
            out.push(Match::TcpOption(o));
        }
    }
    if matches!(protocol, Protocol::Icmp | Protocol::Icmpv6) {
        // A code without a type cannot be expressed; libvirt ignores it too.
        if let Some(t) = a.num::<u8>(Attr::Type)? {
            out.push(Match::IcmpType {
                icmp_type: t.value,
                code: a.num::<u8>(Attr::Code)?.map(|c| c.value),
                negated: t.negated,
            });
        }
    }
    if protocol == Protocol::Icmpv6 {
        super::nd::matches(a, out)?;
    }
    Ok(())
}

fn state(
    a: &Attrs,
    regime: StateRegime,
    action: Action,
    swapped: bool,
    connlimit: bool,
    out: &mut Vec<Match>,
) -> Result<(), LowerError> {
    match regime {
        StateRegime::Off => {}
        StateRegime::Explicit(set) => {
            if !set.is_none() {
                out.push(Match::ConnState(conn_states(set)));
            }
        }
        StateRegime::Implicit => {
            let direction = a.rule.rule.direction;
            // Only accept rules track state; `inout` accepts both ways
            // anyway, and a connlimit rule counts instead.
            if action != Action::Accept || direction == Direction::InOut || connlimit {
                return Ok(());
            }
            // The straight copy sees a connection's first packet; the
            // swapped copy only its replies.
            let (states, dir) = if swapped {
                (StateSet(StateSet::ESTABLISHED), ConnDir::Reply)
            } else {
                (
                    StateSet(StateSet::NEW | StateSet::ESTABLISHED),
                    ConnDir::Original,
                )
            };
            out.push(Match::ConnState(conn_states(states)));
            // An ICMP type already fixes the direction of the message.
            // (`type` exists on no other layer-4 element.)
            if !a.has(Attr::Type) {
                out.push(Match::ConnDir(dir));
            }
        }
    }
    Ok(())
}

fn conn_states(set: StateSet) -> ConnStates {
    ConnStates {
        new: set.contains(StateSet::NEW),
        established: set.contains(StateSet::ESTABLISHED),
        related: set.contains(StateSet::RELATED),
        invalid: set.contains(StateSet::INVALID),
    }
}
