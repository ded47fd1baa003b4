//! The learner the daemon drives: start learning on a port, get events,
//! stop.
//!
//! Ports are shared among a fixed number of worker threads (each polls
//! many capture sockets), commands reach them through bounded channels,
//! and each port's frames are rate-limited ([`RateLimit`]). Events are
//! delivered on the worker thread, one port's in order; a callback should
//! be quick (compile and apply one port) since the worker's other ports
//! wait meanwhile.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, SyncSender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nwfilter_compile::LearningMode;
use nwfilter_model::{IfName, MacAddr6};

use crate::capture::{Capture, CaptureError, Filter};
use crate::firewall::{FirewallError, PortFirewall};
use crate::lease::{Lease, Leases};
use crate::ratelimit::{Bucket, RateLimit};
use crate::rules;
use crate::store::{LeaseKey, LeaseStore};
use crate::wake::{self, Waker};
use crate::worker::{self, Job, Port, Shared};

/// How the learner behaves.
#[derive(Debug, Clone)]
pub struct Config {
    /// Worker threads shared by all ports (at least one).
    pub workers: usize,
    /// A port without an address for this long is given up: its rules
    /// drop everything and [`LearnEvent::TimedOut`] is reported. `None`
    /// waits forever (libvirt's behaviour).
    pub give_up_after: Option<Duration>,
    /// Frames per port we are willing to look at.
    pub rate: RateLimit,
    /// Capture inside this network namespace (a file such as
    /// `/run/netns/NAME`) instead of the process's own.
    pub netns: Option<PathBuf>,
    /// Most addresses one port may hold (`dhcp` mode leases, and IPv6
    /// addresses in either mode): an ACK or claim for a further address
    /// is ignored and logged. Bounds what forged ACKs or claims can
    /// unlock (at least 1).
    pub max_addresses: usize,
}

/// [`Config::max_addresses`] by default: more than any guest's NICs
/// really lease, few enough to keep a forger's gain small.
pub const DEFAULT_MAX_ADDRESSES: usize = 16;

impl Default for Config {
    fn default() -> Self {
        Config {
            workers: 2,
            give_up_after: Some(Duration::from_secs(300)),
            rate: RateLimit::default(),
            netns: None,
            max_addresses: DEFAULT_MAX_ADDRESSES,
        }
    }
}

/// Who else uses an address: asked before an address is learned for a
/// port, so that an address bound (fixed `IP`) or learned for one port is
/// never learned for another port on the same bridge (first come, first
/// served). The caller knows the bindings and which bridge each port is
/// on; the learner knows neither.
pub trait AddressBook: Send + Sync {
    /// Whether `addr` is bound or learned for a port other than `port` on
    /// the same bridge as `port`.
    fn taken_by_another(&self, port: &IfName, addr: Ipv4Addr) -> bool;

    /// As [`AddressBook::taken_by_another`], for an IPv6 address (a fixed
    /// `IPV6` value or a learned IPv6 address).
    fn taken6_by_another(&self, port: &IfName, addr: Ipv6Addr) -> bool;
}

/// An [`AddressBook`] in which nothing is taken (libvirt's behaviour).
#[derive(Debug, Clone, Copy, Default)]
pub struct NothingTaken;

impl AddressBook for NothingTaken {
    fn taken_by_another(&self, _port: &IfName, _addr: Ipv4Addr) -> bool {
        false
    }

    fn taken6_by_another(&self, _port: &IfName, _addr: Ipv6Addr) -> bool {
        false
    }
}

/// One port to learn on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortSpec {
    pub port: IfName,
    /// The guest's MAC (the binding's `MAC`).
    pub mac: MacAddr6,
    /// `CTRL_IP_LEARNING`; `none` cannot be started.
    pub mode: LearningMode,
    /// `DHCPSERVER`: replies from other servers are ignored (and, in
    /// `dhcp` mode, dropped by the learning rules). Empty: any server.
    pub dhcp_servers: Vec<Ipv4Addr>,
    /// Whose leases these are (persisted under this key).
    pub lease_key: LeaseKey,
}

/// What the caller hears about a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LearnEvent {
    /// The guest's addresses are now these (never empty): bind `IP` to
    /// this list and apply the full filter. In `any` mode this is the
    /// last event (learning is over); in `dhcp` mode it follows every new
    /// lease (and restored leases, right after start).
    Learned(Vec<Ipv4Addr>),
    /// A lease ended (expired, released or declined). With addresses
    /// `remaining`, rebuild with them; with none, the learner has already
    /// put the port back under the learning rules and keeps snooping.
    Expired { remaining: Vec<Ipv4Addr> },
    /// No address within [`Config::give_up_after`]: the port now drops
    /// everything, and learning has stopped.
    TimedOut,
    /// Capturing failed (e.g. the port disappeared); the port was set to
    /// drop everything (if it still exists) and learning has stopped.
    Failed(String),
    /// Something to log; learning goes on (e.g. the lease file could not
    /// be written).
    Warning(String),
}

/// The callback that receives a port's events.
pub type OnChange = Box<dyn Fn(LearnEvent) + Send>;

/// Why learning could not start on a port.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("port {port}: CTRL_IP_LEARNING is 'none': IP must be given")]
    NotLearning { port: IfName },
    #[error("port {port}: cannot apply the learning rules: {source}")]
    Rules {
        port: IfName,
        #[source]
        source: FirewallError,
    },
    #[error(transparent)]
    Capture(#[from] CaptureError),
    #[error("the learner has been shut down")]
    ShutDown,
}

pub(crate) struct WorkerHandle {
    commands: SyncSender<Job>,
    waker: Waker,
    pub(crate) ports: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
    id: ThreadId,
}

impl WorkerHandle {
    /// Hands the worker a port and wakes it; the port's watch wakes it
    /// again when stopped.
    pub(crate) fn hand(&self, job: Job, cancel: Arc<Cancel>) -> Result<Watch, StartError> {
        self.ports.fetch_add(1, Ordering::Relaxed);
        self.commands.send(job).map_err(|_| StartError::ShutDown)?;
        self.waker.wake();
        Ok(Watch {
            cancel,
            worker: self.id,
            waker: self.waker.clone(),
        })
    }
}

/// Learns addresses on any number of ports with a few shared threads.
pub struct Learner {
    pub(crate) shared: Arc<Shared>,
    workers: Vec<WorkerHandle>,
}

impl std::fmt::Debug for Learner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ports: Vec<usize> = self
            .workers
            .iter()
            .map(|w| w.ports.load(Ordering::Relaxed))
            .collect();
        f.debug_struct("Learner")
            .field("ports_per_worker", &ports)
            .finish()
    }
}

/// Ports a worker may have waiting to be picked up: `start` blocks beyond this.
const COMMAND_QUEUE: usize = 64;

impl Learner {
    /// Starts the worker threads. `firewall` applies learning and blocking
    /// rules; `store` keeps DHCP leases across restarts. No address is
    /// taken by other ports ([`NothingTaken`]); see [`Learner::with_book`].
    pub fn new(config: Config, firewall: Arc<dyn PortFirewall>, store: Arc<LeaseStore>) -> Learner {
        Learner::with_book(config, firewall, store, Arc::new(NothingTaken))
    }

    /// Like [`Learner::new`]; an address `book` says is taken by another
    /// port of the same bridge is never learned.
    pub fn with_book(
        config: Config,
        firewall: Arc<dyn PortFirewall>,
        store: Arc<LeaseStore>,
        book: Arc<dyn AddressBook>,
    ) -> Learner {
        let shared = Arc::new(Shared {
            firewall,
            store,
            book,
            config,
            shutdown: AtomicBool::new(false),
        });
        let workers = (0..shared.config.workers.max(1))
            .map(|n| {
                let (tx, rx) = sync_channel(COMMAND_QUEUE);
                let (waker, alarm) = wake::pair().expect("a socket pair to wake a learner thread");
                let ports = Arc::new(AtomicUsize::new(0));
                let (s, p) = (Arc::clone(&shared), Arc::clone(&ports));
                let thread = std::thread::Builder::new()
                    .name(format!("nwfilter-learn-{n}"))
                    .spawn(move || worker::run(&s, &rx, &alarm, &p))
                    .expect("spawn a learner thread");
                WorkerHandle {
                    commands: tx,
                    waker,
                    ports,
                    id: thread.thread().id(),
                    thread: Some(thread),
                }
            })
            .collect();
        Learner { shared, workers }
    }

    /// Puts `spec.port` under the learning rules, starts capturing on it
    /// and reports what is learned to `on_change`. With unexpired leases
    /// stored for the port's key (`dhcp` mode), the port is not put under
    /// learning rules: [`LearnEvent::Learned`] with those addresses comes
    /// first, so a restarted daemon re-applies the full filter directly.
    pub fn start(&self, spec: PortSpec, on_change: OnChange) -> Result<Watch, StartError> {
        let port = spec.port.clone();
        let learning = rules::learning(&port, spec.mac, spec.mode, &spec.dhcp_servers)
            .ok_or_else(|| StartError::NotLearning { port: port.clone() })?;
        let leases = match spec.mode {
            LearningMode::Dhcp => self.restore(&spec),
            LearningMode::Any | LearningMode::None => Leases::default(),
        };
        if leases.is_empty() {
            self.shared
                .firewall
                .apply(&learning)
                .map_err(|source| StartError::Rules {
                    port: port.clone(),
                    source,
                })?;
        }
        let filter = match spec.mode {
            LearningMode::Dhcp => Filter::Dhcp,
            LearningMode::Any | LearningMode::None => Filter::GuestFrames(spec.mac.into_array()),
        };
        let capture = match Capture::open(&port, filter, self.shared.config.netns.as_deref()) {
            Ok(capture) => capture,
            Err(e) => {
                // Best effort: the port may not exist at all.
                let _ = self.shared.firewall.apply(&rules::blocked(&port));
                return Err(e.into());
            }
        };
        let now = Instant::now();
        let mut pending = Vec::new();
        if !leases.is_empty() {
            pending.push(LearnEvent::Learned(leases.addresses()));
        }
        let deadline = if leases.is_empty() {
            self.shared.config.give_up_after.map(|d| now + d)
        } else {
            None
        };
        let cancel = Arc::new(Cancel::default());
        let port_state = Port {
            cancel: Arc::clone(&cancel),
            bucket: Bucket::new(self.shared.config.rate, now),
            spec,
            capture,
            leases,
            deadline,
            pending,
            on_change,
            done: false,
            refused: std::cell::Cell::new(None),
        };
        self.least_loaded()
            .hand(Job::V4(Box::new(port_state)), cancel)
    }

    /// The worker with the fewest ports.
    pub(crate) fn least_loaded(&self) -> &WorkerHandle {
        self.workers
            .iter()
            .min_by_key(|w| w.ports.load(Ordering::Relaxed))
            .expect("at least one worker")
    }

    /// The port's stored, unexpired leases that its binding still trusts:
    /// a lease acknowledged by a server no longer in `DHCPSERVER` is not
    /// restored (it would unlock the port without learning rules), nor
    /// one beyond the port's cap.
    fn restore(&self, spec: &PortSpec) -> Leases {
        let trusted = |lease: &Lease| {
            spec.dhcp_servers.is_empty() || spec.dhcp_servers.contains(&lease.server)
        };
        let stored = self.shared.store.leases(&spec.lease_key);
        let mut kept = Leases::restore(stored.into_iter().filter(trusted), epoch())
            .list()
            .to_vec();
        kept.truncate(self.shared.config.max_addresses.max(1));
        Leases::restore(kept, epoch())
    }

    /// The stored, unexpired leases of `key` (for showing a binding).
    pub fn leases(&self, key: &LeaseKey) -> Vec<Lease> {
        Leases::restore(self.shared.store.leases(key), epoch())
            .list()
            .to_vec()
    }
}

impl Drop for Learner {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::Relaxed);
        for worker in &self.workers {
            worker.waker.wake();
        }
        for worker in &mut self.workers {
            if let Some(thread) = worker.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

/// Learning on one port; stops it when stopped or dropped. Stopping does
/// not touch the port's rules (the caller tears down or rebuilds them),
/// and the port's leases stay stored.
#[derive(Debug)]
pub struct Watch {
    cancel: Arc<Cancel>,
    worker: ThreadId,
    /// Its worker lets go of the port (and its capture socket) at once.
    waker: Waker,
}

impl Watch {
    /// Stops learning and waits for an event being delivered to finish:
    /// when it returns, no further event of this port is delivered. Do
    /// not call it while holding a lock the callback takes (drop the
    /// watch instead). From inside the port's own callback it does not
    /// wait; it takes effect when the callback returns.
    pub fn stop(self) {
        self.cancel.cancelled.store(true, Ordering::SeqCst);
        self.waker.wake();
        if std::thread::current().id() != self.worker {
            drop(self.cancel.lock());
        }
    }

    /// Whether learning on this port is over (learned in `any` mode,
    /// timed out, failed, or stopped).
    pub fn finished(&self) -> bool {
        self.cancel.finished.load(Ordering::Relaxed)
    }

    /// How many frames were read from the port so far: bounded by the
    /// rate limit however many the guest sends.
    pub fn frames_read(&self) -> u64 {
        self.cancel.frames.load(Ordering::Relaxed)
    }
}

impl Drop for Watch {
    /// Stops learning without waiting: an event already being delivered
    /// may still complete (callbacks should check that their binding is
    /// still the one they were made for).
    fn drop(&mut self) {
        self.cancel.cancelled.store(true, Ordering::SeqCst);
        self.waker.wake();
    }
}

/// Shared between a [`Watch`] and its port on the worker.
#[derive(Debug, Default)]
pub(crate) struct Cancel {
    pub(crate) cancelled: AtomicBool,
    pub(crate) finished: AtomicBool,
    /// Frames read from the port's socket so far.
    pub(crate) frames: AtomicU64,
    /// Held while an event is delivered.
    delivering: Mutex<()>,
}

impl Cancel {
    pub(crate) fn lock(&self) -> MutexGuard<'_, ()> {
        self.delivering.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Seconds since the Unix epoch (lease times are wall-clock times).
pub(crate) fn epoch() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
