//! The DHCP leases of one guest (lowering reference §7.3, steps 4–5).
//!
//! Pure: time comes in as seconds since the Unix epoch, so expiry is
//! tested without waiting. The learner turns changes of
//! [`Leases::addresses`] into rule rebuilds.

use std::net::Ipv4Addr;

use serde::{Deserialize, Serialize};

use crate::classify::LeaseTime;

/// One lease, as persisted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub addr: Ipv4Addr,
    /// The server that acknowledged it.
    pub server: Ipv4Addr,
    /// Seconds since the Unix epoch at which it ends; `None`: never.
    pub expires: Option<u64>,
}

impl Lease {
    pub fn expired(&self, now: u64) -> bool {
        self.expires.is_some_and(|at| at <= now)
    }
}

/// A guest's leases, at most one per address, in the order acquired.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Leases {
    list: Vec<Lease>,
}

impl Leases {
    /// The unexpired leases of `list` (a restored set).
    pub fn restore(list: impl IntoIterator<Item = Lease>, now: u64) -> Leases {
        let mut leases = Leases::default();
        for lease in list {
            if !lease.expired(now) && !leases.list.iter().any(|l| l.addr == lease.addr) {
                leases.list.push(lease);
            }
        }
        leases
    }

    /// Records a DHCPACK of `addr` by `server` at `now`. Returns whether
    /// the guest's set of addresses changed (a new address). A known
    /// address only has its end moved later, never earlier (libvirt), so a
    /// stray short ACK cannot cut a lease. An ACK that ends at once (no
    /// lease time) adds nothing.
    pub fn acknowledge(
        &mut self,
        addr: Ipv4Addr,
        server: Ipv4Addr,
        lease: LeaseTime,
        now: u64,
    ) -> bool {
        let expires = match lease {
            LeaseTime::Infinite => None,
            LeaseTime::Secs(0) => return false,
            LeaseTime::Secs(secs) => Some(now.saturating_add(u64::from(secs))),
        };
        if let Some(known) = self.list.iter_mut().find(|l| l.addr == addr) {
            known.expires = later(known.expires, expires);
            known.server = server;
            return false;
        }
        self.list.push(Lease {
            addr,
            server,
            expires,
        });
        true
    }

    /// Forgets the lease of `addr` (DHCPRELEASE / DHCPDECLINE). Returns
    /// whether there was one.
    pub fn release(&mut self, addr: Ipv4Addr) -> bool {
        let before = self.list.len();
        self.list.retain(|l| l.addr != addr);
        self.list.len() != before
    }

    /// Drops the leases that ended by `now`; returns their addresses.
    pub fn expire(&mut self, now: u64) -> Vec<Ipv4Addr> {
        let (gone, kept): (Vec<Lease>, Vec<Lease>) = self.list.iter().partition(|l| l.expired(now));
        self.list = kept;
        gone.into_iter().map(|l| l.addr).collect()
    }

    /// The guest's current addresses, in the order acquired.
    pub fn addresses(&self) -> Vec<Ipv4Addr> {
        self.list.iter().map(|l| l.addr).collect()
    }

    /// When the next lease ends, if any does.
    pub fn next_expiry(&self) -> Option<u64> {
        self.list.iter().filter_map(|l| l.expires).min()
    }

    pub fn list(&self) -> &[Lease] {
        &self.list
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }
}

/// The later of two ends (`None` is "never", the latest).
fn later(a: Option<u64>, b: Option<u64>) -> Option<u64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 50);
    const B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 51);

    #[test]
    fn a_new_address_is_a_change_a_renewal_is_not() {
        let mut leases = Leases::default();
        assert!(leases.acknowledge(A, S, LeaseTime::Secs(60), 1000));
        assert!(!leases.acknowledge(A, S, LeaseTime::Secs(60), 1030));
        assert_eq!(leases.next_expiry(), Some(1090));
        assert!(leases.acknowledge(B, S, LeaseTime::Secs(60), 1030));
        assert_eq!(leases.addresses(), vec![A, B]);
    }

    #[test]
    fn a_renewal_never_shortens_a_lease() {
        let mut leases = Leases::default();
        leases.acknowledge(A, S, LeaseTime::Secs(600), 1000);
        leases.acknowledge(A, S, LeaseTime::Secs(10), 1001);
        assert_eq!(leases.next_expiry(), Some(1600));
        leases.acknowledge(A, S, LeaseTime::Infinite, 1002);
        assert_eq!(leases.next_expiry(), None);
        leases.acknowledge(A, S, LeaseTime::Secs(10), 1003);
        assert_eq!(leases.next_expiry(), None, "infinite stays infinite");
    }

    #[test]
    fn an_ack_without_lease_time_adds_nothing() {
        let mut leases = Leases::default();
        assert!(!leases.acknowledge(A, S, LeaseTime::Secs(0), 1000));
        assert!(leases.is_empty());
    }

    #[test]
    fn expiry_removes_exactly_the_ended_leases() {
        let mut leases = Leases::default();
        leases.acknowledge(A, S, LeaseTime::Secs(10), 1000);
        leases.acknowledge(B, S, LeaseTime::Secs(20), 1000);
        assert_eq!(leases.expire(1009), Vec::<Ipv4Addr>::new());
        assert_eq!(leases.expire(1010), vec![A]);
        assert_eq!(leases.addresses(), vec![B]);
        assert_eq!(leases.expire(5000), vec![B]);
        assert!(leases.is_empty());
        assert_eq!(leases.next_expiry(), None);
    }

    #[test]
    fn release_forgets_only_that_address() {
        let mut leases = Leases::default();
        leases.acknowledge(A, S, LeaseTime::Infinite, 1000);
        leases.acknowledge(B, S, LeaseTime::Infinite, 1000);
        assert!(leases.release(A));
        assert!(!leases.release(A));
        assert_eq!(leases.addresses(), vec![B]);
    }

    #[test]
    fn restore_keeps_unexpired_leases_once() {
        let list = [
            Lease {
                addr: A,
                server: S,
                expires: Some(900),
            },
            Lease {
                addr: B,
                server: S,
                expires: Some(2000),
            },
            Lease {
                addr: B,
                server: S,
                expires: None,
            },
        ];
        let leases = Leases::restore(list, 1000);
        assert_eq!(leases.addresses(), vec![B]);
        assert_eq!(leases.next_expiry(), Some(2000));
    }
}
