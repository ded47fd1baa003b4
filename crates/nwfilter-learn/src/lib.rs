//! Learns a guest's IPv4 addresses while its port is held under
//! restrictive rules (`CTRL_IP_LEARNING`, lowering reference §7).
//!
//! Data flow: the port's frames (an AF_PACKET socket with a kernel BPF
//! filter, [`capture`]) → [`classify`] (etherparse, dhcproto) → an
//! address (`any`) or the lease table ([`lease`], persisted by [`store`])
//! → a [`LearnEvent`] for the caller, who binds `IP` and rebuilds the
//! port's rules. Until then the port has the rules of [`rules`].

pub mod classify;
pub mod lease;
pub mod rules;
pub mod store;

pub use classify::{classify, Direction, LeaseTime, Observation, ReplyKind};
pub use lease::{Lease, Leases};
pub use store::{LeaseKey, LeaseStore, StoreError};
pub mod capture;
