//! Neighbour-discovery fields of an `icmpv6` rule (`ndtarget`,
//! `ndlladdr`, `ndoptions`): ours, not libvirt's (issue 16, the
//! `no-ipv6-nd-spoofing` filter; docs/ipv6.md). Each becomes one
//! [`Match::Nd`], after the ICMPv6 type. They do not depend on the side a
//! copy sees the message from: the fields are the message's, not a source
//! or a destination.

use std::net::IpAddr;

use nwfilter_model::Attr;

use super::attrs::Attrs;
use super::error::LowerError;
use crate::ir::{Match, NdField, NdMatch};

/// Pushes the rule's ND matches, in attribute order.
pub(crate) fn matches(a: &Attrs, out: &mut Vec<Match>) -> Result<(), LowerError> {
    if let Some((addr, negated)) = a.ip(Attr::NdTarget)? {
        let IpAddr::V6(target) = addr else {
            return Err(a.error(Attr::NdTarget, "expected an IPv6 address"));
        };
        out.push(nd(NdField::Target(target), negated));
    }
    if let Some((mac, negated)) = a.mac(Attr::NdLlAddr)? {
        // "Not (one option, a link-layer address X)" is a disjunction of
        // length, option type and address that no single match of either
        // backend expresses: refused rather than approximated.
        if negated {
            return Err(a.error(
                Attr::NdLlAddr,
                "cannot be negated (match='no'): write the allowed form and drop the rest",
            ));
        }
        out.push(nd(NdField::LinkLayer(mac), false));
    }
    if let Some((options, negated)) = a.flag(Attr::NdOptions)? {
        // Not "has options" is "has none".
        out.push(nd(NdField::Options(options != negated), false));
    }
    Ok(())
}

fn nd(field: NdField, negated: bool) -> Match {
    Match::Nd(NdMatch { field, negated })
}
