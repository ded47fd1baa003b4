//! A per-port token bucket: how many captured frames a port may cost us.
//!
//! When a port's bucket is empty the learner stops polling its socket
//! until the next token is due; the kernel queue (bounded by the socket's
//! receive buffer) then fills and the kernel drops the excess. A flooding
//! guest costs a bounded amount of memory and almost no CPU, and other
//! ports on the same worker keep being served.

use std::time::{Duration, Instant};

/// Sustained rate and burst size of one port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Frames per second, sustained (libvirt's snooper: 10).
    pub per_sec: u32,
    /// Frames that may be taken at once after a quiet period (libvirt
    /// allows bursts of 50 per second).
    pub burst: u32,
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit {
            per_sec: 10,
            burst: 50,
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Bucket {
    limit: RateLimit,
    tokens: f64,
    refilled: Instant,
}

impl Bucket {
    pub(crate) fn new(limit: RateLimit, now: Instant) -> Bucket {
        Bucket {
            limit,
            tokens: f64::from(limit.burst),
            refilled: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.refilled).as_secs_f64();
        let rate = f64::from(self.limit.per_sec);
        self.tokens = (self.tokens + elapsed * rate).min(f64::from(self.limit.burst));
        self.refilled = now;
    }

    /// Takes one token if there is one.
    pub(crate) fn take(&mut self, now: Instant) -> bool {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// How long until a token is available (zero when one is).
    pub(crate) fn wait(&mut self, now: Instant) -> Duration {
        self.refill(now);
        if self.tokens >= 1.0 || self.limit.per_sec == 0 {
            // A zero rate never refills: report "a long time" rather than
            // dividing by zero.
            return if self.tokens >= 1.0 {
                Duration::ZERO
            } else {
                Duration::from_secs(3600)
            };
        }
        Duration::from_secs_f64((1.0 - self.tokens) / f64::from(self.limit.per_sec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_the_sustained_rate() {
        let start = Instant::now();
        let mut bucket = Bucket::new(
            RateLimit {
                per_sec: 10,
                burst: 5,
            },
            start,
        );
        let taken = (0..20).filter(|_| bucket.take(start)).count();
        assert_eq!(taken, 5, "the burst, then nothing");
        assert_eq!(bucket.wait(start), Duration::from_millis(100));
        let later = start + Duration::from_millis(1000);
        let taken = (0..20).filter(|_| bucket.take(later)).count();
        assert_eq!(taken, 5, "one second refills at most the burst");
        let much_later = later + Duration::from_millis(250);
        let taken = (0..20).filter(|_| bucket.take(much_later)).count();
        assert_eq!(taken, 2, "10/s for 250 ms");
    }
}
