//! One worker thread: polls the capture sockets of its ports, classifies
//! what arrives, keeps leases and deadlines, and reports events.

use std::cell::Cell;
use std::net::Ipv4Addr;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, TryRecvError};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nwfilter_compile::LearningMode;
use tracing::warn;

use crate::capture::Capture;
use crate::classify::{classify, Observation, ReplyKind};
use crate::firewall::PortFirewall;
use crate::learner::{epoch, AddressBook, Cancel, Config, LearnEvent, OnChange, PortSpec};
use crate::lease::Leases;
use crate::ratelimit::Bucket;
use crate::rules;
use crate::store::LeaseStore;
use crate::wake::Alarm;
use crate::worker6::Port6;

/// What every worker shares.
pub(crate) struct Shared {
    pub(crate) firewall: Arc<dyn PortFirewall>,
    pub(crate) store: Arc<LeaseStore>,
    pub(crate) book: Arc<dyn AddressBook>,
    pub(crate) config: Config,
    pub(crate) shutdown: AtomicBool,
}

/// One port being learned.
pub(crate) struct Port {
    pub(crate) cancel: Arc<Cancel>,
    pub(crate) spec: PortSpec,
    pub(crate) capture: Capture,
    pub(crate) bucket: Bucket,
    pub(crate) leases: Leases,
    /// When to give up, while the port has no address.
    pub(crate) deadline: Option<Instant>,
    /// Events to deliver first (restored leases).
    pub(crate) pending: Vec<LearnEvent>,
    pub(crate) on_change: OnChange,
    pub(crate) done: bool,
    /// The last address refused as taken by another port: warned about
    /// once, not at the guest's frame rate.
    pub(crate) refused: Cell<Option<Ipv4Addr>>,
}

/// Longest sleep before a lease's end, which is wall-clock time: a clock
/// stepped forward is noticed within this much. Monotonic deadlines and
/// wake-ups (a new port, a stop, a shutdown) need no such bound.
const WALL_CLOCK_RECHECK: Duration = Duration::from_secs(60);
/// Frames read from one port per wake-up, so one busy port cannot starve
/// the others of the same worker.
pub(crate) const READ_BUDGET: usize = 16;
/// Large enough for any Ethernet frame the BPF filter passes (1600 bytes).
const FRAME_BUFFER: usize = 2048;

/// What a worker is handed: a port to learn IPv4 or IPv6 addresses on.
pub(crate) enum Job {
    V4(Box<Port>),
    V6(Box<Port6>),
}

/// A socket ready to read: which port (of which kind) and which capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ready {
    V4(usize),
    V6(usize, usize),
}

pub(crate) fn run(shared: &Shared, incoming: &Receiver<Job>, alarm: &Alarm, load: &AtomicUsize) {
    let mut ports: Vec<Box<Port>> = Vec::new();
    let mut ports6: Vec<Box<Port6>> = Vec::new();
    let mut buf = vec![0u8; FRAME_BUFFER];
    while !shared.shutdown.load(Ordering::Relaxed) {
        loop {
            match incoming.try_recv() {
                Ok(Job::V4(port)) => ports.push(port),
                Ok(Job::V6(port)) => ports6.push(port),
                Err(TryRecvError::Empty) => break,
                // The learner is gone; its Drop sets `shutdown` first.
                Err(TryRecvError::Disconnected) => return,
            }
        }
        let now = Instant::now();
        for port in ports.iter_mut() {
            for event in std::mem::take(&mut port.pending) {
                port.emit(event);
            }
            port.tick(shared, now);
        }
        for port in ports6.iter_mut() {
            port.tick();
        }
        // Before sleeping: a port finished by its tick, by the frames read
        // last round or by its watch is let go now, not after the sleep.
        ports.retain(|p| keep(p.done, &p.cancel));
        ports6.retain(|p| keep(p.done, &p.cancel));
        load.store(ports.len() + ports6.len(), Ordering::Relaxed);
        let ready = wait_for_frames(&mut ports, &mut ports6, alarm, now);
        for r in ready {
            match r {
                Ready::V4(i) => ports[i].drain(shared, &mut buf),
                Ready::V6(i, c) => ports6[i].drain(shared, c, &mut buf),
            }
        }
    }
}

/// Whether a port stays on the worker; marks it finished when not.
fn keep(done: bool, cancel: &Cancel) -> bool {
    let over = done || cancel.cancelled.load(Ordering::SeqCst);
    if over {
        cancel.finished.store(true, Ordering::Relaxed);
    }
    !over
}

/// Polls the sockets of the ports that may take a frame now, and the
/// alarm; returns the ports with frames queued. Sleeps until a frame, a
/// wake-up or the ports' next deadline, whichever comes first.
fn wait_for_frames(
    ports: &mut [Box<Port>],
    ports6: &mut [Box<Port6>],
    alarm: &Alarm,
    now: Instant,
) -> Vec<Ready> {
    let mut timeout: Option<Duration> = None;
    let mut sooner = |wait: Duration| timeout = Some(timeout.map_or(wait, |t| t.min(wait)));
    let mut polled: Vec<Ready> = Vec::new();
    // Every port here is still learning: finished ones were let go first.
    for (i, port) in ports.iter_mut().enumerate() {
        let wait = port.bucket.wait(now);
        if wait.is_zero() {
            polled.push(Ready::V4(i));
        } else {
            // Rate-limited: not polled until a token is due; meanwhile
            // the kernel queue absorbs (and then drops) its frames.
            sooner(wait);
        }
        if let Some(wait) = port.next_deadline(now) {
            sooner(wait);
        }
    }
    for (i, port) in ports6.iter_mut().enumerate() {
        let wait = port.bucket.wait(now);
        if wait.is_zero() {
            polled.extend((0..port.captures.len()).map(|c| Ready::V6(i, c)));
        } else {
            sooner(wait);
        }
        if let Some(wait) = port.next_deadline() {
            sooner(wait);
        }
    }
    let mut fds: Vec<PollFd<'_>> = polled
        .iter()
        .map(|r| {
            let fd = match *r {
                Ready::V4(i) => ports[i].capture.as_fd(),
                Ready::V6(i, c) => ports6[i].captures[c].as_fd(),
            };
            PollFd::new(fd, PollFlags::POLLIN)
        })
        .collect();
    fds.push(PollFd::new(alarm.as_fd(), PollFlags::POLLIN));
    if poll(&mut fds, poll_timeout(timeout)).is_err() {
        return Vec::new(); // EINTR: go round again
    }
    let (alarm_fd, fds) = fds.split_last().expect("the alarm is polled");
    if alarm_fd.revents().is_some_and(|r| !r.is_empty()) {
        alarm.clear();
    }
    fds.iter()
        .zip(&polled)
        .filter(|(fd, _)| fd.revents().is_some_and(|r| !r.is_empty()))
        .map(|(_, r)| *r)
        .collect()
}

/// `None` sleeps until woken; a wait is rounded up to whole milliseconds
/// so that a deadline is not polled for again just before it is due.
fn poll_timeout(wait: Option<Duration>) -> PollTimeout {
    match wait {
        None => PollTimeout::NONE,
        Some(wait) => {
            let millis = wait.as_micros().div_ceil(1000).max(1);
            PollTimeout::try_from(millis).unwrap_or(PollTimeout::MAX)
        }
    }
}

/// How long until wall-clock time `secs` (seconds since the Unix epoch),
/// at most [`WALL_CLOCK_RECHECK`].
pub(crate) fn until_epoch(secs: u64) -> Duration {
    let at = UNIX_EPOCH + Duration::from_secs(secs);
    at.duration_since(SystemTime::now())
        .unwrap_or(Duration::ZERO)
        .min(WALL_CLOCK_RECHECK)
}

impl Port {
    /// Delivers an event unless the watch was stopped.
    fn emit(&self, event: LearnEvent) {
        let _delivering = self.cancel.lock();
        if !self.cancel.cancelled.load(Ordering::SeqCst) {
            (self.on_change)(event);
        }
    }

    /// Reads what the rate limit allows and acts on it.
    fn drain(&mut self, shared: &Shared, buf: &mut [u8]) {
        let guest = self.spec.mac.into_array();
        for _ in 0..READ_BUDGET {
            if self.done || !self.bucket.take(Instant::now()) {
                return;
            }
            match self.capture.recv(buf) {
                Ok(None) => return,
                Ok(Some((len, dir))) => {
                    self.cancel.frames.fetch_add(1, Ordering::Relaxed);
                    if let Some(seen) = classify(&buf[..len], dir, guest) {
                        self.observe(shared, seen);
                    }
                }
                Err(e) => return self.fail(shared, e.to_string()),
            }
        }
    }

    fn trusted(&self, server: Ipv4Addr) -> bool {
        self.spec.dhcp_servers.is_empty() || self.spec.dhcp_servers.contains(&server)
    }

    /// Whether `addr` may become this port's: not bound or learned for
    /// another port on its bridge (first come, first served).
    fn free(&self, shared: &Shared, addr: Ipv4Addr) -> bool {
        if self.leases.addresses().contains(&addr) {
            return true;
        }
        let taken = shared.book.taken_by_another(&self.spec.port, addr);
        if taken && self.refused.replace(Some(addr)) != Some(addr) {
            warn!(
                port = %self.spec.port,
                %addr,
                "not learned: the address is in use by another port on the bridge"
            );
        }
        !taken
    }

    /// Whether the port may hold one more address (`dhcp` mode).
    fn room_for(&self, shared: &Shared, addr: Ipv4Addr) -> bool {
        let max = shared.config.max_addresses.max(1);
        let known = self.leases.addresses().contains(&addr);
        if !known && self.leases.list().len() >= max {
            warn!(
                port = %self.spec.port,
                %addr,
                max,
                "lease not learned: the port already holds the most addresses allowed"
            );
            return false;
        }
        true
    }

    fn observe(&mut self, shared: &Shared, seen: Observation) {
        match (self.spec.mode, seen) {
            (LearningMode::Any, Observation::GuestAddress(addr)) if self.free(shared, addr) => {
                self.learned_once(addr)
            }
            (LearningMode::Any, Observation::ServerReply { addr, server, .. })
                if self.trusted(server) && self.free(shared, addr) =>
            {
                self.learned_once(addr)
            }
            (
                LearningMode::Dhcp,
                Observation::ServerReply {
                    kind: ReplyKind::Ack,
                    addr,
                    server,
                    lease,
                },
            ) if self.trusted(server) && self.room_for(shared, addr) && self.free(shared, addr) => {
                let new = self.leases.acknowledge(addr, server, lease, epoch());
                self.persist(shared);
                if new {
                    self.deadline = None;
                    self.emit(LearnEvent::Learned(self.leases.addresses()));
                }
            }
            (LearningMode::Dhcp, Observation::Released(addr)) if self.leases.release(addr) => {
                self.persist(shared);
                self.lost(shared);
            }
            _ => {}
        }
    }

    /// `any` mode: one address, and learning is over.
    fn learned_once(&mut self, addr: Ipv4Addr) {
        self.done = true;
        self.emit(LearnEvent::Learned(vec![addr]));
    }

    /// Leases ended: report what remains; with nothing left, the port goes
    /// back under the learning rules and the give-up clock restarts.
    fn lost(&mut self, shared: &Shared) {
        let remaining = self.leases.addresses();
        if remaining.is_empty() {
            let spec = &self.spec;
            let learning = rules::learning(&spec.port, spec.mac, spec.mode, &spec.dhcp_servers)
                .expect("a learning port has learning rules");
            if let Err(e) = shared.firewall.apply(&learning) {
                return self.fail(shared, format!("cannot restore the learning rules: {e}"));
            }
            self.deadline = shared.config.give_up_after.map(|d| Instant::now() + d);
        }
        self.emit(LearnEvent::Expired { remaining });
    }

    /// How long until [`Port::tick`] has something to do: a lease ends
    /// (`dhcp` mode) or, while the port has no address, it is given up.
    fn next_deadline(&self, now: Instant) -> Option<Duration> {
        let lease_end = match self.spec.mode {
            LearningMode::Dhcp => self.leases.next_expiry().map(until_epoch),
            LearningMode::Any | LearningMode::None => None,
        };
        let give_up = self
            .deadline
            .filter(|_| self.leases.is_empty())
            .map(|at| at.saturating_duration_since(now));
        lease_end.into_iter().chain(give_up).min()
    }

    /// Lease expiry and the give-up deadline.
    fn tick(&mut self, shared: &Shared, now: Instant) {
        if self.done {
            return;
        }
        if self.spec.mode == LearningMode::Dhcp && !self.leases.expire(epoch()).is_empty() {
            self.persist(shared);
            self.lost(shared);
        }
        if self.deadline.is_some_and(|at| now >= at) && self.leases.is_empty() {
            self.done = true;
            if let Err(e) = shared.firewall.apply(&rules::blocked(&self.spec.port)) {
                self.emit(LearnEvent::Warning(format!(
                    "port {}: cannot apply the blocking rules: {e}",
                    self.spec.port
                )));
            }
            self.emit(LearnEvent::TimedOut);
        }
    }

    fn fail(&mut self, shared: &Shared, reason: String) {
        self.done = true;
        // Best effort: a vanished port has nothing left to block.
        let _ = shared.firewall.apply(&rules::blocked(&self.spec.port));
        self.emit(LearnEvent::Failed(reason));
    }

    fn persist(&self, shared: &Shared) {
        if let Err(e) = shared
            .store
            .record(&self.spec.lease_key, self.leases.list())
        {
            self.emit(LearnEvent::Warning(e.to_string()));
        }
    }
}
