//! firewalld integration: when firewalld reloads (or restarts) it rebuilds
//! the whole firewall and drops rules it does not know, ours included.
//! firewalld announces that with the `Reloaded` signal on the system bus,
//! and a restart shows as a new owner of its bus name; on either we
//! re-apply at once instead of waiting for the next rule check.
//!
//! zbus (pure Rust) rather than libdbus bindings: no C library to install,
//! and its blocking API fits the daemon's thread-per-task design. It runs
//! on tokio (the workspace's `zbus` entry says why): an idle daemon's
//! threads, this listener's included, sleep until something happens.

use zbus::blocking::{Connection, MessageIterator};
use zbus::MatchRule;

/// firewalld's bus name and interface.
pub const FIREWALLD: &str = "org.fedoraproject.FirewallD1";

/// What happened on the bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// firewalld sent `Reloaded`.
    Reloaded,
    /// firewalld's bus name changed owner (it started or restarted).
    Restarted,
}

/// Connects to the system bus (honouring `DBUS_SYSTEM_BUS_ADDRESS`) and
/// calls `on_event` for every firewalld reload or restart, until the
/// connection ends. Returns the error that ended it (or that prevented
/// connecting: no system bus is a normal situation on hosts without
/// firewalld).
pub fn listen(mut on_event: impl FnMut(Event)) -> zbus::Error {
    match run(&mut on_event) {
        Ok(()) => zbus::Error::Failure("the system bus connection closed".into()),
        Err(e) => e,
    }
}

fn run(on_event: &mut dyn FnMut(Event)) -> Result<(), zbus::Error> {
    let connection = Connection::system()?;
    let reloaded = MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .interface(FIREWALLD)?
        .member("Reloaded")?
        .build();
    let owner = MatchRule::builder()
        .msg_type(zbus::message::Type::Signal)
        .sender("org.freedesktop.DBus")?
        .interface("org.freedesktop.DBus")?
        .member("NameOwnerChanged")?
        .arg(0, FIREWALLD)?
        .build();
    let reloads = MessageIterator::for_match_rule(reloaded, &connection, Some(64))?;
    let owners = MessageIterator::for_match_rule(owner, &connection, Some(64))?;
    // Two blocking iterators: the owner changes are watched on a helper
    // thread that forwards them through a channel.
    let (tx, rx) = std::sync::mpsc::channel();
    let tx_owner = tx.clone();
    std::thread::spawn(move || {
        for message in owners {
            if message.is_err() || tx_owner.send(Event::Restarted).is_err() {
                break;
            }
        }
    });
    std::thread::spawn(move || {
        for message in reloads {
            if message.is_err() || tx.send(Event::Reloaded).is_err() {
                break;
            }
        }
    });
    for event in rx {
        on_event(event);
    }
    Ok(())
}
