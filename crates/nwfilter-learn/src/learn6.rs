//! One port's learned IPv6 addresses (issue 16, item 3): what each
//! [`Observation6`] does to them, by `CTRL_IP_LEARNING` mode. Pure (time
//! is passed in), so the rules are tested without a kernel; the learner's
//! capture loop feeds it and applies the port's rules once per observation
//! that changed the set.
//!
//! * `any` (FCFS SAVI, RFC 6620): an address the guest claims (DAD or
//!   first use) is learned unless another port holds it (first come,
//!   first served, asked through `taken`) or the port holds
//!   [`Limits::max_addresses`] already. Learned addresses do not expire
//!   here (they go with the binding).
//! * `dhcp` (SAVI for DHCP, RFC 7513): only a Reply from a trusted server
//!   (any when none is listed) adds or renews addresses, with their valid
//!   lifetime (a renewal never shortens one; lifetime 0 withdraws it);
//!   the guest's Release or Decline removes them. Link-local addresses,
//!   which DHCPv6 never assigns and without which the guest cannot even
//!   send its Solicit (from its link-local address), are learned by claim
//!   as in `any` mode (first come, first served); a claim of any other
//!   address teaches nothing.
//! * `none`: nothing is learned.

use std::collections::BTreeMap;
use std::net::Ipv6Addr;

use nwfilter_compile::LearningMode;

use crate::classify6::Observation6;

/// What one port may learn.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub mode: LearningMode,
    /// `DHCPSERVERV6`: empty trusts every server.
    pub trusted_servers: Vec<Ipv6Addr>,
    /// At least 1; [`crate::DEFAULT_MAX_ADDRESSES`] by default.
    pub max_addresses: usize,
}

/// Why an address was not learned (each is logged by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Another port of the bridge holds it.
    TakenByAnother(Ipv6Addr),
    /// The port holds the most addresses allowed.
    Full(Ipv6Addr),
    /// A Reply from a server not in `DHCPSERVERV6`.
    UntrustedServer(Ipv6Addr),
}

/// What an observation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The address set changed: rebuild the port's rules (once).
    pub changed: bool,
    pub refused: Vec<Refusal>,
}

/// One port's IPv6 addresses, each with when it expires (seconds since
/// the epoch; `None`: never).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortAddresses6 {
    limits: Limits,
    held: BTreeMap<Ipv6Addr, Option<u64>>,
}

impl PortAddresses6 {
    pub fn new(limits: Limits) -> PortAddresses6 {
        PortAddresses6 {
            limits,
            held: BTreeMap::new(),
        }
    }

    /// The addresses held, sorted: what `IPV6` is bound to.
    pub fn addresses(&self) -> Vec<Ipv6Addr> {
        self.held.keys().copied().collect()
    }

    /// The addresses held with when each expires, sorted: what is
    /// persisted and restored ([`PortAddresses6::restore`]).
    pub fn held(&self) -> Vec<(Ipv6Addr, Option<u64>)> {
        self.held.iter().map(|(a, t)| (*a, *t)).collect()
    }

    /// Takes back addresses held before (a restart): those not expired by
    /// `now`, up to the limit. Nobody is asked whether they are taken:
    /// they were this port's first.
    pub fn restore(&mut self, held: &[(Ipv6Addr, Option<u64>)], now: u64) {
        for &(addr, until) in held {
            if self.held.len() >= self.limits.max_addresses {
                break;
            }
            if until.is_none_or(|t| t > now) {
                self.held.insert(addr, until);
            }
        }
    }

    /// When the next address expires, if any does.
    pub fn next_expiry(&self) -> Option<u64> {
        self.held.values().filter_map(|t| *t).min()
    }

    /// Applies one observation at time `now`; `taken` says whether another
    /// port of the bridge holds an address.
    pub fn observe(
        &mut self,
        obs: &Observation6,
        now: u64,
        taken: impl Fn(Ipv6Addr) -> bool,
    ) -> Outcome {
        let mut out = Outcome::default();
        match (self.limits.mode, obs) {
            (LearningMode::Any, Observation6::Claimed { addr, .. }) => {
                self.add(*addr, None, &taken, &mut out);
            }
            (LearningMode::Dhcp, Observation6::Claimed { addr, .. })
                if addr.is_unicast_link_local() =>
            {
                self.add(*addr, None, &taken, &mut out);
            }
            (LearningMode::Dhcp, Observation6::Assigned { server, addrs }) => {
                let trusted = &self.limits.trusted_servers;
                if !trusted.is_empty() && !trusted.contains(server) {
                    out.refused.push(Refusal::UntrustedServer(*server));
                    return out;
                }
                for &(addr, valid) in addrs {
                    if valid == 0 {
                        out.changed |= self.held.remove(&addr).is_some();
                    } else {
                        let until = (valid != u32::MAX).then(|| now.saturating_add(valid.into()));
                        self.add(addr, until, &taken, &mut out);
                    }
                }
            }
            (LearningMode::Dhcp, Observation6::Released(addrs)) => {
                for addr in addrs {
                    out.changed |= self.held.remove(addr).is_some();
                }
            }
            _ => {}
        }
        out
    }

    /// Drops the addresses whose lifetime ended by `now`; returns them.
    pub fn expire(&mut self, now: u64) -> Vec<Ipv6Addr> {
        let ended: Vec<Ipv6Addr> = self
            .held
            .iter()
            .filter(|(_, until)| until.is_some_and(|t| t <= now))
            .map(|(a, _)| *a)
            .collect();
        for addr in &ended {
            self.held.remove(addr);
        }
        ended
    }

    fn add(
        &mut self,
        addr: Ipv6Addr,
        until: Option<u64>,
        taken: &impl Fn(Ipv6Addr) -> bool,
        out: &mut Outcome,
    ) {
        if let Some(held) = self.held.get_mut(&addr) {
            // A renewal: never shortens (a stray short Reply must not cut
            // a lease), and is not a change of the address set.
            *held = match (*held, until) {
                (None, _) | (_, None) => None,
                (Some(a), Some(b)) => Some(a.max(b)),
            };
            return;
        }
        if taken(addr) {
            out.refused.push(Refusal::TakenByAnother(addr));
        } else if self.held.len() >= self.limits.max_addresses {
            out.refused.push(Refusal::Full(addr));
        } else {
            self.held.insert(addr, until);
            out.changed = true;
        }
    }
}

#[cfg(test)]
#[path = "learn6_tests.rs"]
mod tests;
