//! One port's IPv6 learning on a worker thread: reads its captures,
//! classifies ([`classify_v6`]), updates its [`PortAddresses6`] and
//! reports each change of the address set once.

use std::cell::Cell;
use std::net::Ipv6Addr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::warn;

use crate::capture::Capture;
use crate::classify6::classify_v6;
use crate::learn6::{PortAddresses6, Refusal};
use crate::learner::{epoch, Cancel};
use crate::learner6::{LearnEvent6, OnChange6, PortSpec6};
use crate::ratelimit::Bucket;
use crate::worker::{until_epoch, Shared, READ_BUDGET};

/// One port whose IPv6 addresses are being learned.
pub(crate) struct Port6 {
    pub(crate) cancel: Arc<Cancel>,
    pub(crate) spec: PortSpec6,
    /// The guest's frames, and in `dhcp` mode the DHCPv6 datagrams.
    pub(crate) captures: Vec<Capture>,
    /// Shared by the captures: the port's frames, whichever socket.
    pub(crate) bucket: Bucket,
    pub(crate) addrs: PortAddresses6,
    pub(crate) on_change: OnChange6,
    pub(crate) done: bool,
    /// The last address refused: warned about once, not at the guest's
    /// frame rate.
    pub(crate) refused: Cell<Option<Ipv6Addr>>,
}

impl Port6 {
    /// Delivers an event unless the watch was stopped.
    fn emit(&self, event: LearnEvent6) {
        let _delivering = self.cancel.lock();
        if !self.cancel.cancelled.load(Ordering::SeqCst) {
            (self.on_change)(event);
        }
    }

    /// Reads what the rate limit allows from capture `which`.
    pub(crate) fn drain(&mut self, shared: &Shared, which: usize, buf: &mut [u8]) {
        let guest = self.spec.mac.into_array();
        for _ in 0..READ_BUDGET {
            if self.done || !self.bucket.take(Instant::now()) {
                return;
            }
            match self.captures[which].recv(buf) {
                Ok(None) => return,
                Ok(Some((len, dir))) => {
                    self.cancel.frames.fetch_add(1, Ordering::Relaxed);
                    if let Some(seen) = classify_v6(&buf[..len], dir, guest) {
                        let port = &self.spec.port;
                        let taken = |a| shared.book.taken6_by_another(port, a);
                        let out = self.addrs.observe(&seen, epoch(), taken);
                        for refusal in out.refused {
                            self.warn_once(refusal);
                        }
                        if out.changed {
                            self.emit(LearnEvent6::Changed(self.addrs.held()));
                        }
                    }
                }
                Err(e) => {
                    self.done = true;
                    return self.emit(LearnEvent6::Failed(e.to_string()));
                }
            }
        }
    }

    /// How long until [`Port6::tick`] has an address to drop.
    pub(crate) fn next_deadline(&self) -> Option<Duration> {
        self.addrs.next_expiry().map(until_epoch)
    }

    /// Addresses whose DHCPv6 lifetime ended are dropped (one change).
    pub(crate) fn tick(&mut self) {
        if self.done || self.addrs.next_expiry().is_none() {
            return;
        }
        if !self.addrs.expire(epoch()).is_empty() {
            self.emit(LearnEvent6::Changed(self.addrs.held()));
        }
    }

    fn warn_once(&self, refusal: Refusal) {
        let (addr, text) = match refusal {
            Refusal::TakenByAnother(a) => (
                a,
                format!("IPv6 {a} not learned: in use by another port on the bridge"),
            ),
            Refusal::Full(a) => (
                a,
                format!("IPv6 {a} not learned: the port already holds the most addresses allowed"),
            ),
            Refusal::UntrustedServer(s) => (
                s,
                format!("DHCPv6 Reply from {s} ignored: not one of DHCPSERVERV6"),
            ),
        };
        if self.refused.replace(Some(addr)) == Some(addr) {
            return;
        }
        warn!(port = %self.spec.port, %addr, "{text}");
        self.emit(LearnEvent6::Warning(text));
    }
}
