//! Events for the embedder, delivered on one thread of their own.
//!
//! Everything that happens in the background (the learner, the rule
//! check) or as a side effect of a call (a reload that leaves a port
//! without rules) becomes a [`Notice`] on one channel; the `events`
//! thread turns notices into [`Event`]s and calls the embedder's
//! callback. So the callback never runs under a lock of the engine or the
//! learner, and may call back into the [`Host`](crate::Host) (deleting a
//! binding from inside a learner's callback would wait for itself).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;

use nwfilter_model::IfName;

use crate::service::Service;

/// Something that happened to the filtered ports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The addresses learned for `port` changed; its full filter now
    /// holds the guest to `addresses`: the learned IPv4 addresses (`IP`),
    /// then the learned IPv6 addresses (`IPV6`, issue 16). Empty: the
    /// last lease ended and the port is back under its learning rules.
    AddressesLearned {
        /// The port.
        port: String,
        /// Every address the port now holds.
        addresses: Vec<IpAddr>,
    },
    /// Learning gave up or failed on `port`: its rules drop every frame
    /// until the binding is deleted and created again.
    Blocked {
        /// The port.
        port: String,
        /// What the learner said.
        reason: String,
    },
    /// The rule check found rules of these ports missing or changed in
    /// the kernel (another tool flushed them) and put them back.
    RulesRepaired {
        /// The ports whose rules were restored.
        ports: Vec<String>,
    },
    /// `port` is not filtered as its binding says: its filter tree does
    /// not compile any more, its binding file cannot be read (the port is
    /// closed: every frame dropped), or learning could not start on it.
    Unprotected {
        /// The port.
        port: String,
        /// Why.
        reason: String,
    },
    /// The rule check itself failed (reading the kernel's tables); it
    /// tries again at its next turn.
    RuleCheckFailed {
        /// Why.
        reason: String,
    },
}

/// The embedder's callback.
pub(crate) type Callback = Arc<dyn Fn(Event) + Send + Sync>;

/// What the host's parts report to the `events` thread.
#[derive(Debug)]
pub(crate) enum Notice {
    /// A learner reported something: one line of its log.
    Learner(String),
    /// An event that needs no further look.
    Ready(Event),
}

/// The `events` thread: ends when every sender is gone.
pub(crate) fn spawn(
    notices: Receiver<Notice>,
    service: Weak<Service>,
    callback: Callback,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("nwfilter-events".into())
        .spawn(move || {
            let mut seen: HashMap<IfName, Vec<IpAddr>> = HashMap::new();
            for notice in notices {
                let events = match notice {
                    Notice::Ready(event) => vec![event],
                    Notice::Learner(line) => match service.upgrade() {
                        Some(service) => learner_events(&service, &line, &mut seen),
                        // The host is gone: nothing to report to.
                        None => return,
                    },
                };
                for event in events {
                    callback(event);
                }
            }
        })
}

/// A learner's log line becomes an event when the port's learned
/// addresses changed (read from the engine, which applied them before the
/// line was written) or when it says the port is blocked.
fn learner_events(
    service: &Service,
    line: &str,
    seen: &mut HashMap<IfName, Vec<IpAddr>>,
) -> Vec<Event> {
    let Some(port) = port_named_in(service, line) else {
        return Vec::new();
    };
    let mut events = Vec::new();
    let engine = service.engine();
    let now: Vec<IpAddr> = (engine.learned_addrs(&port).unwrap_or_default().into_iter())
        .map(IpAddr::from)
        .chain(
            (engine.learned6(&port).unwrap_or_default().into_iter()).map(|(a, _)| IpAddr::from(a)),
        )
        .collect();
    let before = seen.get(&port).cloned().unwrap_or_default();
    if now != before {
        seen.insert(port.clone(), now.clone());
        events.push(Event::AddressesLearned {
            port: port.to_string(),
            addresses: now,
        });
    }
    // The learner's own words (`nwfilter_service::learning`) for a port it
    // gave up on; its state is set only after the line is written.
    if line.ends_with("the port is blocked") {
        events.push(Event::Blocked {
            port: port.to_string(),
            reason: line.to_owned(),
        });
    }
    events
}

/// The bound port a learner's line is about: every line starts with
/// `port NAME: `. Matched against the bindings rather than split at the
/// first `:`, which a port name may contain.
pub(crate) fn port_named_in(service: &Service, line: &str) -> Option<IfName> {
    let rest = line.strip_prefix("port ")?;
    let bindings = service.engine().bindings().list().ok()?.items;
    bindings.into_iter().map(|b| b.portdev).find(|port| {
        rest.strip_prefix(port.as_str())
            .is_some_and(|r| r.starts_with(": "))
    })
}

/// Where a host's parts send their notices.
#[derive(Debug, Clone)]
pub(crate) struct Notices(pub(crate) Sender<Notice>);

impl Notices {
    pub(crate) fn send(&self, event: Event) {
        // The events thread ends only with the host: nobody to tell then.
        let _ = self.0.send(Notice::Ready(event));
    }
}
