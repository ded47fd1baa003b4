use std::net::Ipv6Addr;

use super::*;
use crate::classify6::Claim;
use crate::DEFAULT_MAX_ADDRESSES;

fn ip(text: &str) -> Ipv6Addr {
    text.parse().unwrap()
}

fn port(mode: LearningMode, trusted: &[&str]) -> PortAddresses6 {
    PortAddresses6::new(Limits {
        mode,
        trusted_servers: trusted.iter().map(|t| ip(t)).collect(),
        max_addresses: DEFAULT_MAX_ADDRESSES,
    })
}

fn claim(addr: &str, by: Claim) -> Observation6 {
    Observation6::Claimed { addr: ip(addr), by }
}

fn reply(server: &str, addrs: &[(&str, u32)]) -> Observation6 {
    Observation6::Assigned {
        server: ip(server),
        addrs: addrs.iter().map(|(a, v)| (ip(a), *v)).collect(),
    }
}

const FREE: fn(Ipv6Addr) -> bool = |_| false;

#[test]
fn any_learns_by_dad_and_first_use_and_a_second_address() {
    let mut p = port(LearningMode::Any, &[]);
    assert!(p.observe(&claim("fe80::1234", Claim::Dad), 0, FREE).changed);
    assert!(
        p.observe(&claim("2001:db8::10", Claim::FirstUse), 0, FREE)
            .changed
    );
    // Using it again changes nothing: one apply per change.
    assert_eq!(
        p.observe(&claim("2001:db8::10", Claim::FirstUse), 0, FREE),
        Outcome::default()
    );
    assert_eq!(p.addresses(), [ip("2001:db8::10"), ip("fe80::1234")]);
    assert!(p.expire(u64::MAX).is_empty(), "claims do not expire");
}

#[test]
fn any_refuses_an_address_another_port_holds() {
    let mut p = port(LearningMode::Any, &[]);
    let taken = |a: Ipv6Addr| a == ip("2001:db8::11");
    let out = p.observe(&claim("2001:db8::11", Claim::Dad), 0, taken);
    assert_eq!(
        out,
        Outcome {
            changed: false,
            refused: vec![Refusal::TakenByAnother(ip("2001:db8::11"))]
        }
    );
    assert!(p.addresses().is_empty());
}

#[test]
fn a_port_holds_at_most_its_limit() {
    let mut p = PortAddresses6::new(Limits {
        mode: LearningMode::Any,
        trusted_servers: vec![],
        max_addresses: 2,
    });
    for a in ["2001:db8::1", "2001:db8::2"] {
        assert!(p.observe(&claim(a, Claim::FirstUse), 0, FREE).changed);
    }
    let out = p.observe(&claim("2001:db8::3", Claim::FirstUse), 0, FREE);
    assert_eq!(out.refused, [Refusal::Full(ip("2001:db8::3"))]);
    assert_eq!(p.addresses().len(), 2);
    assert_eq!(DEFAULT_MAX_ADDRESSES, 16);
}

#[test]
fn dhcp_learns_only_from_trusted_replies_and_forgets_on_release_decline_or_expiry() {
    let mut p = port(LearningMode::Dhcp, &["fe80::1"]);
    // Claims of other than link-local addresses teach nothing in dhcp mode.
    assert!(
        !p.observe(&claim("2001:db8::10", Claim::Dad), 0, FREE)
            .changed
    );
    assert!(
        !p.observe(&claim("2001:db8::10", Claim::FirstUse), 0, FREE)
            .changed
    );
    let rogue = p.observe(&reply("fe80::66", &[("2001:db8::66", 3600)]), 0, FREE);
    assert_eq!(rogue.refused, [Refusal::UntrustedServer(ip("fe80::66"))]);
    assert!(p.addresses().is_empty());

    let out = p.observe(
        &reply("fe80::1", &[("2001:db8::100", 3600), ("2001:db8::101", 60)]),
        1000,
        FREE,
    );
    assert!(out.changed);
    assert_eq!(p.addresses(), [ip("2001:db8::100"), ip("2001:db8::101")]);
    // A renewal with a shorter lifetime neither changes nor shortens.
    assert!(
        !p.observe(&reply("fe80::1", &[("2001:db8::100", 10)]), 1000, FREE)
            .changed
    );
    assert_eq!(p.expire(1060), [ip("2001:db8::101")]);
    assert_eq!(p.expire(1100), Vec::<Ipv6Addr>::new(), "kept its 3600 s");
    let released = Observation6::Released(vec![ip("2001:db8::100")]);
    assert!(p.observe(&released, 1100, FREE).changed);
    assert!(p.addresses().is_empty());
}

#[test]
fn dhcp_learns_link_local_addresses_by_claim_first_come_first_served() {
    let mut p = port(LearningMode::Dhcp, &["fe80::1"]);
    assert!(p.observe(&claim("fe80::aa", Claim::Dad), 0, FREE).changed);
    let taken = |a: Ipv6Addr| a == ip("fe80::bb");
    let out = p.observe(&claim("fe80::bb", Claim::FirstUse), 0, taken);
    assert_eq!(out.refused, [Refusal::TakenByAnother(ip("fe80::bb"))]);
    assert_eq!(p.addresses(), [ip("fe80::aa")]);
}

#[test]
fn restored_addresses_keep_their_lifetimes_and_the_limit() {
    let mut p = PortAddresses6::new(Limits {
        mode: LearningMode::Dhcp,
        trusted_servers: vec![],
        max_addresses: 2,
    });
    p.restore(
        &[
            (ip("2001:db8::1"), Some(500)),
            (ip("2001:db8::2"), Some(2000)),
            (ip("fe80::1"), None),
            (ip("2001:db8::3"), None),
        ],
        1000,
    );
    assert_eq!(
        p.held(),
        [(ip("2001:db8::2"), Some(2000)), (ip("fe80::1"), None)],
        "the expired one is dropped, the fourth is beyond the limit"
    );
    assert_eq!(p.next_expiry(), Some(2000));
}

#[test]
fn dhcp_without_listed_servers_trusts_any_and_lifetime_zero_withdraws() {
    let mut p = port(LearningMode::Dhcp, &[]);
    assert!(
        p.observe(&reply("fe80::9", &[("2001:db8::5", u32::MAX)]), 0, FREE)
            .changed
    );
    assert!(p.expire(u64::MAX).is_empty(), "infinite");
    assert!(
        p.observe(&reply("fe80::9", &[("2001:db8::5", 0)]), 0, FREE)
            .changed
    );
    assert!(p.addresses().is_empty());
}

#[test]
fn none_learns_nothing() {
    let mut p = port(LearningMode::None, &[]);
    assert!(
        !p.observe(&claim("2001:db8::10", Claim::Dad), 0, FREE)
            .changed
    );
    assert!(
        !p.observe(&reply("fe80::1", &[("2001:db8::5", 60)]), 0, FREE)
            .changed
    );
    assert!(p.addresses().is_empty());
}
