//! IPv6 learning on a port (issue 16, item 3): the public side.
//!
//! Unlike IPv4's learn-once, IPv6 learning goes on for as long as the
//! binding lives: a guest gains addresses at any time (SLAAC, temporary
//! addresses, DHCPv6). The port keeps its full filter throughout, with
//! the rules that need `$IPV6` bound to what is learned so far (none at
//! first: the compiler leaves them out), so the learner applies nothing
//! itself; it reports each change of the address set and the caller
//! applies the port's rules once. New claims are still seen while the
//! filter drops them: the AF_PACKET capture on the port receives the
//! guest's frames before the bridge (and its netfilter hooks) does.

use std::net::Ipv6Addr;
use std::sync::Arc;
use std::time::Instant;

use nwfilter_compile::LearningMode;
use nwfilter_model::{IfName, MacAddr6};

use crate::capture::{Capture, Filter};
use crate::learn6::{Limits, PortAddresses6};
use crate::learner::{epoch, Cancel, Learner, StartError, Watch};
use crate::ratelimit::Bucket;
use crate::worker::Job;
use crate::worker6::Port6;

/// One port to learn IPv6 addresses on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec6 {
    pub port: IfName,
    /// The guest's MAC (the binding's `MAC`).
    pub mac: MacAddr6,
    /// `CTRL_IP_LEARNING`; `none` cannot be started.
    pub mode: LearningMode,
    /// `DHCPSERVERV6`: in `dhcp` mode only their Replies teach (empty:
    /// any server's).
    pub dhcp_servers: Vec<Ipv6Addr>,
    /// What the port held before (a restart): each address with when it
    /// expires (seconds since the epoch; `None`: never).
    pub held: Vec<(Ipv6Addr, Option<u64>)>,
}

/// What the caller hears about a port's IPv6 addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LearnEvent6 {
    /// The port's addresses are now these (possibly none: the last one
    /// expired or was released), each with when it expires: bind `IPV6`
    /// to them and apply the port's rules once.
    Changed(Vec<(Ipv6Addr, Option<u64>)>),
    /// Capturing failed (e.g. the port disappeared): learning has
    /// stopped; the port keeps the rules it has.
    Failed(String),
    /// Something to log (an address refused); learning goes on.
    Warning(String),
}

/// The callback that receives a port's IPv6 events.
pub type OnChange6 = Box<dyn Fn(LearnEvent6) + Send>;

impl Learner {
    /// Starts learning `spec.port`'s IPv6 addresses and reports every
    /// change to `on_change`. Applies no rules: the caller has applied
    /// the port's filter (with `spec.held` as `IPV6`).
    pub fn start6(&self, spec: PortSpec6, on_change: OnChange6) -> Result<Watch, StartError> {
        if spec.mode == LearningMode::None {
            return Err(StartError::NotLearning { port: spec.port });
        }
        let config = &self.shared.config;
        let mut addrs = PortAddresses6::new(Limits {
            mode: spec.mode,
            trusted_servers: spec.dhcp_servers.clone(),
            max_addresses: config.max_addresses.max(1),
        });
        addrs.restore(&spec.held, epoch());
        // The guest's own frames carry its claims (and, in `dhcp` mode,
        // its link-local claims, Releases and Declines); Replies to it
        // need a second capture.
        let mut filters = vec![Filter::Ipv6Claims(spec.mac.into_array())];
        if spec.mode == LearningMode::Dhcp {
            filters.push(Filter::Dhcp6);
        }
        let captures = filters
            .into_iter()
            .map(|f| Capture::open(&spec.port, f, config.netns.as_deref()))
            .collect::<Result<Vec<_>, _>>()?;
        let cancel = Arc::new(Cancel::default());
        let port = Port6 {
            cancel: Arc::clone(&cancel),
            bucket: Bucket::new(config.rate, Instant::now()),
            spec,
            captures,
            addrs,
            on_change,
            done: false,
            refused: std::cell::Cell::new(None),
        };
        self.least_loaded().hand(Job::V6(Box::new(port)), cancel)
    }
}
