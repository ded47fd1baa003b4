//! A daemon with a dead thread is worse than no daemon: it answers
//! requests while, say, its rule check no longer restores flushed rules.
//! So any panic, in any thread, is logged and ends the process with a
//! failure status (a service manager then restarts it; rules stay in the
//! kernel meanwhile).

use std::any::Any;
use std::panic::Location;
use std::thread;
use std::time::Duration;

use crate::shutdown::{Reason, Shutdown};

/// Exit status when a thread died and the main loop could not end the
/// process itself in time (EX_SOFTWARE).
pub const EXIT_THREAD_DIED: i32 = 70;

/// How long the main loop gets to end the process in order (flushing the
/// log) before the process is ended from the hook's timer.
const GRACE: Duration = Duration::from_secs(2);

/// The exit status for a daemon whose main loop ended: a failure if a
/// thread died, else 0.
pub fn exit_status(shutdown: &Shutdown) -> i32 {
    match shutdown.reason() {
        Some(Reason::Failed) => EXIT_THREAD_DIED,
        Some(Reason::Requested) | None => 0,
    }
}

/// Installs the hook: log the panic, ask `shutdown` to fail (the main
/// loop then returns a failure), and end the process after a grace period
/// whatever the main loop does.
pub fn exit_on_panic(shutdown: Shutdown) {
    std::panic::set_hook(Box::new(move |info| {
        tracing::error!(
            "{}; stopping the daemon",
            describe(info.payload(), info.location())
        );
        shutdown.fail();
        let timer = thread::Builder::new().name("panic-exit".into());
        let spawned = timer.spawn(|| {
            thread::sleep(GRACE);
            std::process::exit(EXIT_THREAD_DIED);
        });
        if spawned.is_err() {
            std::process::exit(EXIT_THREAD_DIED);
        }
    }));
}

fn describe(payload: &(dyn Any + Send), location: Option<&Location<'_>>) -> String {
    let current = thread::current();
    let thread = current.name().unwrap_or("unnamed");
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(no message)".into());
    match location {
        Some(at) => format!("thread '{thread}' panicked at {at}: {what}"),
        None => format!("thread '{thread}' panicked: {what}"),
    }
}
