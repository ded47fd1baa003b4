//! Which matches of a lowered rule hold the binding's values.
//!
//! A backend that shares one chain among all ports using a filter needs to
//! know which addresses are the port's (`$MAC`, `$IP`: looked up per port)
//! and which are the filter's own constants (written into the shared
//! rule). Marking is by value: a match is the port's when its address is
//! the value of an attribute the filter wrote as a variable. Marking a
//! constant that happens to equal such a value costs sharing, never
//! correctness: a backend keys its shared chains by everything that is not
//! marked, so a port whose rules differ elsewhere gets chains of its own.

use std::net::IpAddr;

use nwfilter_model::Value;

use crate::bound::BoundRule;
use crate::ir::{Match, NdField};

/// Positions in `matches` of the addresses taken from `rule`'s variables.
pub(crate) fn positions(matches: &[Match], rule: &BoundRule) -> Vec<usize> {
    if rule.vars.is_empty() {
        return Vec::new();
    }
    let values: Vec<&Value> = rule
        .vars
        .iter()
        .filter_map(|attr| rule.rule.protocol.as_ref()?.get(*attr))
        .map(|av| &av.value)
        .collect();
    let from_var = |m: &Match| match address(m) {
        Some(Address::Mac(mac)) => values.contains(&&Value::Mac(mac)),
        Some(Address::Ip(IpAddr::V4(ip))) => values.contains(&&Value::Ipv4(ip)),
        Some(Address::Ip(IpAddr::V6(ip))) => values.contains(&&Value::Ipv6(ip)),
        None => false,
    };
    matches
        .iter()
        .enumerate()
        .filter(|(_, m)| from_var(m))
        .map(|(i, _)| i)
        .collect()
}

enum Address {
    Mac(nwfilter_model::MacAddr6),
    Ip(IpAddr),
}

/// The single address a match tests, if it tests one.
fn address(m: &Match) -> Option<Address> {
    match m {
        Match::MacSrc(x)
        | Match::MacDst(x)
        | Match::ArpMacSrc(x)
        | Match::ArpMacDst(x)
        | Match::StpRootAddr(x)
        | Match::StpSenderAddr(x) => Some(Address::Mac(x.addr)),
        Match::IpSrc(x) | Match::IpDst(x) | Match::ArpIpSrc(x) | Match::ArpIpDst(x) => {
            Some(Address::Ip(x.addr))
        }
        Match::Nd(nd) => match nd.field {
            NdField::Target(ip) => Some(Address::Ip(IpAddr::V6(ip))),
            NdField::LinkLayer(mac) => Some(Address::Mac(mac)),
            NdField::Options(_) => None,
        },
        _ => None,
    }
}
