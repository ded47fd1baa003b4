//! Keeps the kernel in step while the daemon runs: notices rules that
//! someone else removed or changed (a flushed table, a deleted chain, a
//! restarted firewall service) and puts them back.
//!
//! Event-driven: the check runs when the kernel says another process
//! committed an nf_tables transaction (nft, iptables-nft, ebtables-nft;
//! see `kernel_events`), shortly after, so that a burst of commits costs
//! one check. A timer also runs it, for what sends no event (legacy
//! xtables): slow when events see every change, fast when they cannot.
//! An idle daemon does nothing between events.

use std::time::{Duration, Instant};

use host_io::Runner;
use nwfilter_driver::engine::{error_chain, Checked};
use nwfilter_driver::Engine;
use tracing::{error, info, warn};

use crate::kernel_events::NftEvents;
use crate::logging::Took;
use crate::shutdown::{Shutdown, Woken};

/// The timer when events cannot see every change (legacy xtables, no
/// netlink): restores within about a second of a flush.
pub const POLL_INTERVAL: Duration = Duration::from_millis(1000);

/// The safety timer when events see every change of our rules.
pub const SAFETY_INTERVAL: Duration = Duration::from_secs(60);

/// How long after a change event the check runs: the rest of a burst
/// (a firewall reload is many transactions) joins the same check.
const DEBOUNCE: Duration = Duration::from_millis(20);

/// A check reads every port's rules, so with many ports it takes long (an
/// nftables or xtables read of 1000 ports is about half a second): after
/// a check that worked T, the next one waits at least T times this, so
/// that even a storm of foreign commits keeps the check under a quarter
/// of a CPU. Only the check's own work counts, not time it waited for the
/// engine behind other operations.
const IDLE_PER_BUSY: u32 = 3;

/// When events see every change, the safety timer's checks are spaced by
/// at least 200 times their work (at most half a percent of a CPU for an
/// idle daemon, whatever the number of ports).
const SAFETY_PER_BUSY: u32 = 200;

/// When the next check is due.
#[derive(Debug)]
struct Schedule {
    timer: Duration,
    /// The timer's checks are spaced by at least this times their work.
    timer_per_busy: u32,
    next_timer: Instant,
    /// A change was seen: check at this time.
    pending: Option<Instant>,
    /// No check before this (back-off after the last one).
    earliest: Instant,
}

impl Schedule {
    fn new(timer: Duration, timer_per_busy: u32, now: Instant) -> Schedule {
        Schedule {
            timer,
            timer_per_busy,
            next_timer: now + timer,
            pending: None,
            earliest: now,
        }
    }

    fn changed(&mut self, now: Instant) {
        if self.pending.is_none() {
            self.pending = Some((now + DEBOUNCE).max(self.earliest));
        }
    }

    fn due(&self) -> Instant {
        let next = self
            .pending
            .map_or(self.next_timer, |p| p.min(self.next_timer));
        next.max(self.earliest)
    }

    fn checked(&mut self, end: Instant, work: Duration) {
        self.pending = None;
        self.earliest = end + work * IDLE_PER_BUSY;
        self.next_timer = end + self.timer.max(work * self.timer_per_busy);
    }
}

/// Checks on kernel change events (`events`; commits of processes that
/// `ours` claims are ignored) and every `timer`, until `shutdown`.
pub fn watch<R: Runner>(
    engine: &Engine<R>,
    timer: Duration,
    mut events: Option<NftEvents>,
    ours: &dyn Fn(u32) -> bool,
    shutdown: &Shutdown,
) {
    let per_busy = if events.is_some() {
        SAFETY_PER_BUSY
    } else {
        IDLE_PER_BUSY
    };
    let mut schedule = Schedule::new(timer, per_busy, Instant::now());
    loop {
        let now = Instant::now();
        let due = schedule.due();
        if now >= due {
            let checked = check_once(engine);
            schedule.checked(Instant::now(), checked.work);
            continue;
        }
        let fds: Vec<_> = events.iter().map(NftEvents::fd).collect();
        match shutdown.wait(&fds, Some(due - now)) {
            Ok(Woken::Stop) => return,
            Ok(Woken::Timeout) => {}
            Ok(Woken::Ready(_)) => {
                let drained = events.as_mut().map(|e| e.drain(ours));
                match drained {
                    Some(Ok(true)) => schedule.changed(Instant::now()),
                    Some(Ok(false)) | None => {}
                    Some(Err(e)) => {
                        warn!("kernel change events stopped ({e}); checking every {timer:?}");
                        events = None;
                        schedule.timer_per_busy = IDLE_PER_BUSY;
                        schedule.changed(Instant::now());
                    }
                }
            }
            Err(e) => {
                error!("waiting for kernel changes failed ({e}); checking every second");
                events = None;
                schedule.timer = POLL_INTERVAL;
                schedule.timer_per_busy = IDLE_PER_BUSY;
                if shutdown.sleep(POLL_INTERVAL) {
                    return;
                }
            }
        }
    }
}

/// One check: repairs what is missing and says what it found.
pub fn check_once<R: Runner>(engine: &Engine<R>) -> Checked {
    match engine.check_kernel() {
        Ok(checked) if checked.repaired.is_empty() => checked,
        Ok(checked) => {
            let names: Vec<&str> = checked.repaired.iter().map(|p| p.as_str()).collect();
            warn!(
                took = %Took(checked.work),
                "rules of {} were missing or changed in the kernel (flushed by another tool?); restored",
                names.join(", ")
            );
            checked
        }
        Err(e) => {
            error!("checking the kernel's rules failed: {}", error_chain(&e));
            Checked::default()
        }
    }
}

/// Subscribes to kernel change events and picks the timer: `requested`
/// if given, else slow when the events see every change of our rules
/// (`events_see_all`: nftables, or xtables through nf_tables) and fast
/// otherwise.
pub fn setup(
    requested: Option<Duration>,
    events_see_all: bool,
    use_events: bool,
) -> (Option<NftEvents>, Duration) {
    let events = match use_events.then(NftEvents::open) {
        None => None,
        Some(Ok(events)) => Some(events),
        Some(Err(e)) => {
            warn!("cannot subscribe to nf_tables change events ({e}); checking on a timer only");
            None
        }
    };
    let timer = requested.unwrap_or(if events.is_some() && events_see_all {
        SAFETY_INTERVAL
    } else {
        POLL_INTERVAL
    });
    info!(
        "rule check: {} and every {timer:?}",
        if events.is_some() {
            "on nf_tables change events"
        } else {
            "no events"
        }
    );
    (events, timer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_is_checked_after_the_debounce_and_a_slow_check_backs_off() {
        let t0 = Instant::now();
        let mut s = Schedule::new(Duration::from_secs(60), SAFETY_PER_BUSY, t0);
        assert_eq!(s.due(), t0 + Duration::from_secs(60));
        s.changed(t0);
        s.changed(t0 + Duration::from_millis(5));
        assert_eq!(s.due(), t0 + DEBOUNCE, "one check for a burst");
        // The check worked half a second (1000 ports).
        let end = t0 + Duration::from_millis(520);
        s.checked(end, Duration::from_millis(500));
        assert_eq!(s.due(), end + Duration::from_secs(100), "timer: 200x");
        s.changed(end + Duration::from_millis(100));
        assert_eq!(s.due(), end + Duration::from_millis(1500), "backs off 3x");
    }

    #[test]
    fn slow_checks_space_the_timer_out() {
        let t0 = Instant::now();
        let mut s = Schedule::new(Duration::from_secs(1), IDLE_PER_BUSY, t0);
        s.checked(t0, Duration::from_millis(500));
        assert_eq!(s.due(), t0 + Duration::from_millis(1500));
        s.checked(t0, Duration::from_millis(20));
        assert_eq!(s.due(), t0 + Duration::from_secs(1));
    }
}
