//! The rule check on a timer: puts back rules another tool removed
//! (a flushed table, a restarted firewall service).
//!
//! `nwfilterd` has its own, driven by the kernel's nf_tables change
//! events as well; an embedder gets this plain timer, which needs no
//! netlink socket. A check that worked T waits at least 3 T before the
//! next, so that many ports never cost more than a quarter of a CPU.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use nwfilter_driver::engine::error_chain;

use crate::event::{Event, Notices};
use crate::service::Service;

/// How much longer than its own work a check waits before the next.
const IDLE_PER_BUSY: u32 = 3;

/// The running check; [`RuleCheck::stop`] ends it.
#[derive(Debug)]
pub(crate) struct RuleCheck {
    stop: Sender<()>,
    thread: JoinHandle<()>,
}

impl RuleCheck {
    pub(crate) fn spawn(
        service: Arc<Service>,
        every: Duration,
        notices: Notices,
    ) -> std::io::Result<RuleCheck> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("nwfilter-rule-check".into())
            .spawn(move || {
                let mut wait = every;
                loop {
                    match stopped.recv_timeout(wait) {
                        Err(RecvTimeoutError::Timeout) => {}
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => return,
                    }
                    let work = check(&service, &notices);
                    wait = every.max(work * IDLE_PER_BUSY);
                }
            })?;
        Ok(RuleCheck { stop, thread })
    }

    /// Ends the check, waiting for one in progress.
    pub(crate) fn stop(self) {
        let _ = self.stop.send(());
        // A panic in the thread was already reported by the panic hook.
        let _ = self.thread.join();
    }
}

/// One check: repairs what is missing, reports it, returns its work.
pub(crate) fn check(service: &Service, notices: &Notices) -> Duration {
    match service.engine().check_kernel() {
        Ok(checked) => {
            if !checked.repaired.is_empty() {
                let ports: Vec<String> = checked.repaired.iter().map(ToString::to_string).collect();
                tracing::warn!(
                    "rules of {} were missing or changed in the kernel; restored",
                    ports.join(", ")
                );
                notices.send(Event::RulesRepaired { ports });
            }
            checked.work
        }
        Err(e) => {
            let reason = error_chain(&e);
            tracing::error!("checking the kernel's rules failed: {reason}");
            notices.send(Event::RuleCheckFailed { reason });
            Duration::ZERO
        }
    }
}
