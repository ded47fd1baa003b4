//! firewalld integration: when firewalld reloads (or restarts) it rebuilds
//! the whole firewall and drops rules it does not know, ours included.
//! firewalld announces that with the `Reloaded` signal on the system bus,
//! and a restart shows as a new owner of its bus name; on either we
//! re-apply at once instead of waiting for the next rule check.
//!
//! zbus (pure Rust) rather than libdbus bindings: no C library to install,
//! driven by a runtime on the listener's own thread, as the daemon's other
//! tasks have a thread each. On tokio (the workspace's `zbus` entry says
//! why): an idle daemon's threads, this one included, sleep until
//! something happens.

use std::future::ready;
use std::sync::Arc;

use futures::stream::{self, BoxStream, StreamExt};
use zbus::{Connection, MatchRule, MessageStream};

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
    // The calling thread alone drives the bus connection: a runtime on
    // this thread rather than zbus's blocking API, whose runtime starts a
    // worker thread per core. `on_event` runs between the runtime's turns,
    // not inside one: what it calls may run a runtime of its own.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| zbus::Error::InputOutput(Arc::new(e)))?;
    let (_connection, mut events) = runtime.block_on(subscribe())?;
    while let Some(event) = runtime.block_on(events.next()) {
        on_event(event);
    }
    Ok(())
}

/// The system bus, and firewalld's reloads and restarts on it as they
/// come, each kind until its first error.
async fn subscribe() -> Result<(Connection, BoxStream<'static, Event>), zbus::Error> {
    let connection = Connection::system().await?;
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
    let reloads = MessageStream::for_match_rule(reloaded, &connection, Some(64)).await?;
    let owners = MessageStream::for_match_rule(owner, &connection, Some(64)).await?;
    let events = stream::select(
        reloads
            .take_while(|m| ready(m.is_ok()))
            .map(|_| Event::Reloaded),
        owners
            .take_while(|m| ready(m.is_ok()))
            .map(|_| Event::Restarted),
    );
    Ok((connection, events.boxed()))
}
