//! Ethernet-layer rules (no protocol, `mac`, `vlan`, `stp`, `arp`,
//! `rarp`, `ip`, `ipv6`) → bridge matches (lowering reference §2.3, §4).
//!
//! A reversed instance (the "from VM" copy of an `inout` rule) swaps every
//! source field with its destination field but keeps the attributes'
//! order, as libvirt does.

use nwfilter_model::{Action, Attr, Protocol};

use super::attrs::Attrs;
use super::error::LowerError;
use crate::bound::BoundRule;
use crate::ir::{IpVersion, Match, Negatable, StpField, Verdict};

const ETHERTYPE_VLAN: u16 = 0x8100;
const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_RARP: u16 = 0x8035;

/// The verdict of a bridge rule. ebtables cannot reject: `reject` drops.
pub(crate) fn verdict(action: Action) -> Verdict {
    match action {
        Action::Accept => Verdict::Accept,
        Action::Drop | Action::Reject => Verdict::Drop,
        Action::Return => Verdict::Return,
        Action::Continue => Verdict::Continue,
    }
}

/// The matches of one instance of an Ethernet-layer rule.
pub(crate) fn matches(rule: &BoundRule, reversed: bool) -> Result<Vec<Match>, LowerError> {
    let Some(pm) = &rule.rule.protocol else {
        return Ok(Vec::new());
    };
    let a = Attrs::new(rule);
    let mut out = Vec::new();
    ethernet_header(&a, reversed, &mut out)?;
    match pm.protocol {
        Protocol::Mac => {
            if let Some(t) = a.num::<u16>(Attr::ProtocolId)? {
                out.push(Match::EtherType(t));
            }
        }
        Protocol::Vlan => vlan(&a, &mut out)?,
        Protocol::Stp => stp(&a, reversed, &mut out)?,
        Protocol::Arp => arp(&a, ETHERTYPE_ARP, reversed, &mut out)?,
        Protocol::Rarp => arp(&a, ETHERTYPE_RARP, reversed, &mut out)?,
        Protocol::Ip => ip_header(&a, IpVersion::V4, reversed, &mut out)?,
        Protocol::Ipv6 => ip_header(&a, IpVersion::V6, reversed, &mut out)?,
        other => unreachable!("{} is not an Ethernet-layer protocol", other.name()),
    }
    Ok(out)
}

fn fixed(value: u16) -> Match {
    Match::EtherType(Negatable {
        value,
        negated: false,
    })
}

fn ethernet_header(a: &Attrs, reversed: bool, out: &mut Vec<Match>) -> Result<(), LowerError> {
    if let Some(m) = a.mac_match(Attr::SrcMacAddr, Attr::SrcMacMask)? {
        out.push(if reversed {
            Match::MacDst(m)
        } else {
            Match::MacSrc(m)
        });
    }
    if let Some(m) = a.mac_match(Attr::DstMacAddr, Attr::DstMacMask)? {
        out.push(if reversed {
            Match::MacSrc(m)
        } else {
            Match::MacDst(m)
        });
    }
    Ok(())
}

fn vlan(a: &Attrs, out: &mut Vec<Match>) -> Result<(), LowerError> {
    out.push(fixed(ETHERTYPE_VLAN));
    if let Some(id) = a.num::<u16>(Attr::VlanId)? {
        out.push(Match::VlanId(id));
    }
    if let Some(encap) = a.num::<u16>(Attr::EncapProtocol)? {
        out.push(Match::VlanEncap(encap));
    }
    Ok(())
}

fn stp(a: &Attrs, reversed: bool, out: &mut Vec<Match>) -> Result<(), LowerError> {
    if reversed && a.has(Attr::SrcMacAddr) {
        return Err(LowerError::StpInoutSrcMac {
            filter: a.rule.filter.clone(),
            rule: a.rule.rule_index + 1,
        });
    }
    out.push(Match::StpBpdu);
    if let Some(t) = a.num::<u8>(Attr::Type)? {
        out.push(Match::StpType(t));
    }
    if let Some(f) = a.num::<u8>(Attr::Flags)? {
        out.push(Match::StpFlags(f));
    }
    let ranged = |field, start, end, out: &mut Vec<Match>| -> Result<(), LowerError> {
        if let Some(r) = a.range::<u32>(start, end)? {
            out.push(Match::StpRange(field, r));
        }
        Ok(())
    };
    ranged(
        StpField::RootPriority,
        Attr::RootPriority,
        Attr::RootPriorityHi,
        out,
    )?;
    if let Some(m) = a.mac_match(Attr::RootAddress, Attr::RootAddressMask)? {
        out.push(Match::StpRootAddr(m));
    }
    ranged(StpField::RootCost, Attr::RootCost, Attr::RootCostHi, out)?;
    ranged(
        StpField::SenderPriority,
        Attr::SenderPriority,
        Attr::SenderPriorityHi,
        out,
    )?;
    if let Some(m) = a.mac_match(Attr::SenderAddress, Attr::SenderAddressMask)? {
        out.push(Match::StpSenderAddr(m));
    }
    ranged(StpField::Port, Attr::Port, Attr::PortHi, out)?;
    ranged(StpField::MessageAge, Attr::Age, Attr::AgeHi, out)?;
    ranged(StpField::MaxAge, Attr::MaxAge, Attr::MaxAgeHi, out)?;
    ranged(StpField::HelloTime, Attr::HelloTime, Attr::HelloTimeHi, out)?;
    ranged(
        StpField::ForwardDelay,
        Attr::ForwardDelay,
        Attr::ForwardDelayHi,
        out,
    )?;
    Ok(())
}

fn arp(a: &Attrs, ethertype: u16, reversed: bool, out: &mut Vec<Match>) -> Result<(), LowerError> {
    out.push(fixed(ethertype));
    if let Some(v) = a.num::<u16>(Attr::HwType)? {
        out.push(Match::ArpHwType(v));
    }
    if let Some(v) = a.num::<u16>(Attr::Opcode)? {
        out.push(Match::ArpOpcode(v));
    }
    if let Some(v) = a.num::<u16>(Attr::ProtocolType)? {
        out.push(Match::ArpProtoType(v));
    }
    // A missing mask means the single address (/32). libvirt 9.0 instead
    // reuses the source mask for the destination when only the source has
    // one; we do not (docs/compatibility.md, "Lowering").
    for (addr, mask, straight) in [
        (Attr::ArpSrcIpAddr, Attr::ArpSrcIpMask, true),
        (Attr::ArpDstIpAddr, Attr::ArpDstIpMask, false),
    ] {
        if let Some(mut m) = a.addr_match(addr, mask)? {
            m.prefix = Some(m.prefix.unwrap_or(32));
            out.push(if straight != reversed {
                Match::ArpIpSrc(m)
            } else {
                Match::ArpIpDst(m)
            });
        }
    }
    for (addr, straight) in [(Attr::ArpSrcMacAddr, true), (Attr::ArpDstMacAddr, false)] {
        if let Some((mac, negated)) = a.mac(addr)? {
            let m = crate::ir::MacMatch {
                addr: mac,
                mask: None,
                negated,
            };
            out.push(if straight != reversed {
                Match::ArpMacSrc(m)
            } else {
                Match::ArpMacDst(m)
            });
        }
    }
    // `gratuitous='false'` asks for nothing (libvirt emits no option).
    if let Some((true, negated)) = a.flag(Attr::Gratuitous)? {
        out.push(Match::ArpGratuitous { negated });
    }
    Ok(())
}

fn ip_header(
    a: &Attrs,
    version: IpVersion,
    reversed: bool,
    out: &mut Vec<Match>,
) -> Result<(), LowerError> {
    out.push(Match::EtherIp(version));
    for (addr, mask, straight) in [
        (Attr::SrcIpAddr, Attr::SrcIpMask, true),
        (Attr::DstIpAddr, Attr::DstIpMask, false),
    ] {
        if let Some(m) = a.addr_match(addr, mask)? {
            out.push(if straight != reversed {
                Match::IpSrc(m)
            } else {
                Match::IpDst(m)
            });
        }
    }
    if let Some(p) = a.num::<u8>(Attr::Protocol)? {
        out.push(Match::IpProtocol(p));
    }
    for (start, end, straight) in [
        (Attr::SrcPortStart, Attr::SrcPortEnd, true),
        (Attr::DstPortStart, Attr::DstPortEnd, false),
    ] {
        if let Some(r) = a.range::<u16>(start, end)? {
            out.push(if straight != reversed {
                Match::SrcPort(r)
            } else {
                Match::DstPort(r)
            });
        }
    }
    match version {
        // libvirt compares the DSCP value with the whole TOS byte; kept for
        // compatibility (docs/compatibility.md, "Lowering").
        IpVersion::V4 => {
            if let Some(d) = a.num::<u8>(Attr::Dscp)? {
                out.push(Match::IpTos(d));
            }
        }
        IpVersion::V6 => icmpv6_ranges(a, out)?,
    }
    Ok(())
}

/// `type`/`typeend`/`code`/`codeend` of an `ipv6` rule: a missing start is
/// 0, a missing end is the start if given, else 255.
fn icmpv6_ranges(a: &Attrs, out: &mut Vec<Match>) -> Result<(), LowerError> {
    let parts = [Attr::Type, Attr::TypeEnd, Attr::Code, Attr::CodeEnd]
        .map(|attr| a.num::<u8>(attr))
        .into_iter()
        .collect::<Result<Vec<_>, _>>()?;
    if parts.iter().all(Option::is_none) {
        return Ok(());
    }
    let span = |start: Option<Negatable<u8>>, end: Option<Negatable<u8>>| {
        let lo = start.map_or(0, |s| s.value);
        let hi = end.map_or_else(|| start.map_or(255, |s| s.value), |e| e.value);
        (lo, hi)
    };
    out.push(Match::Icmpv6Ranges {
        types: span(parts[0], parts[1]),
        codes: span(parts[2], parts[3]),
        negated: parts.iter().flatten().any(|p| p.negated),
    });
    Ok(())
}
