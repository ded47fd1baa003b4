//! Keeps the kernel in step while the daemon runs: notices rules that
//! someone else removed or changed (a flushed table, a deleted chain, a
//! restarted firewall service) and puts them back.
//!
//! Polling, not events: iptables-nft, iptables-legacy and ebtables give no
//! common change notification, and a read of three tables per interval is
//! cheap. The interval bounds how long a port can stay unprotected.

use std::time::{Duration, Instant};

use backend_xtables::Runner;
use nwfilter_driver::engine::error_chain;
use nwfilter_driver::Engine;
use tracing::{error, warn};

use crate::shutdown::Shutdown;

/// The default check interval: restores within about a second of a flush.
pub const DEFAULT_INTERVAL: Duration = Duration::from_millis(1000);

/// A check reads every port's rules, so with many ports it takes long (an
/// nftables or xtables read of 1000 ports is about half a second): after
/// a check that took T, the next one waits at least T times this, keeping
/// the keeper under a tenth of a CPU whatever the number of ports.
const IDLE_PER_BUSY: u32 = 9;

/// Checks every `interval` until `shutdown` is requested, logging each
/// repair or failure.
pub fn watch<R: Runner>(engine: &Engine<R>, interval: Duration, shutdown: &Shutdown) {
    let mut next = Instant::now() + interval;
    loop {
        let now = Instant::now();
        if now < next {
            if shutdown.sleep(next - now) {
                return;
            }
            continue;
        }
        check_once(engine);
        next = now + period(interval, now.elapsed());
    }
}

/// From the start of one check to the start of the next, for a check that
/// took `took`.
fn period(interval: Duration, took: Duration) -> Duration {
    interval.max(took * (IDLE_PER_BUSY + 1))
}

/// One check: repairs what is missing and says what it found.
pub fn check_once<R: Runner>(engine: &Engine<R>) {
    match engine.repair() {
        Ok(ports) if ports.is_empty() => {}
        Ok(ports) => {
            let names: Vec<&str> = ports.iter().map(|p| p.as_str()).collect();
            warn!(
                "rules of {} were missing or changed in the kernel (flushed by another tool?); restored",
                names.join(", ")
            );
        }
        Err(e) => error!("checking the kernel's rules failed: {}", error_chain(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_checks_space_themselves_out() {
        let second = Duration::from_secs(1);
        assert_eq!(period(second, Duration::from_millis(20)), second);
        // Half a second of checking (1000 ports): then 4.5 s idle.
        assert_eq!(period(second, Duration::from_millis(500)), 5 * second);
    }
}
