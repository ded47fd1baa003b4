//! Learns a guest's IPv4 addresses while its port is held under
//! restrictive rules (`CTRL_IP_LEARNING`, lowering reference §7).
//!
//! Data flow: [`Learner::start`] applies the learning [`rules`] through a
//! [`PortFirewall`] → the port's frames (an AF_PACKET socket with a kernel
//! BPF filter, [`capture`]) → [`classify`] (etherparse and a strict DHCP parser of our own) → an
//! address (`any`) or the lease table ([`lease`], persisted by [`store`])
//! → a [`LearnEvent`] for the caller, who binds `IP` and rebuilds the
//! port's rules. Shared worker threads poll many ports, each rate-limited.
//!
//! IPv6 addresses (`IPV6`, issue 16) are learned beside, for as long as
//! the binding lives ([`Learner::start6`]): [`classify_v6`] →
//! [`learn6::PortAddresses6`] → a [`LearnEvent6`] per change.

pub mod capture;
pub mod classify;
pub mod classify6;
mod dhcp;
mod dhcp6;
pub mod firewall;
pub mod learn6;
mod learner;
mod learner6;
pub mod lease;
pub mod ratelimit;
pub mod rules;
pub mod store;
mod wake;
mod worker;
mod worker6;

pub use capture::{Capture, CaptureError, Filter};
pub use classify::{classify, Direction, LeaseTime, Observation, ReplyKind};
pub use classify6::{classify_v6, Claim, Observation6};
pub use firewall::{FirewallError, PortFirewall};
pub use learner::{
    AddressBook, Config, LearnEvent, Learner, NothingTaken, OnChange, PortSpec, StartError, Watch,
    DEFAULT_MAX_ADDRESSES,
};
pub use learner6::{LearnEvent6, OnChange6, PortSpec6};
pub use lease::{Lease, Leases};
pub use nwfilter_compile::LearningMode;
pub use ratelimit::RateLimit;
pub use store::{LeaseKey, LeaseStore, StoreError};
