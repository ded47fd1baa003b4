//! Waking a worker that sleeps in `poll(2)`: the read end of a socket
//! pair sits in its poll set beside the capture sockets. Handing it a
//! port, stopping a port and shutting the learner down write a byte;
//! otherwise a worker sleeps until a frame arrives or its next deadline
//! (a lease's end, a port's give-up time, a rate limit's next token), and
//! with nothing of the kind, until woken: an idle learner costs nothing.

use std::io::{self, Read, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::Arc;

/// Wakes one worker; cheap to clone, one per port and per handle.
#[derive(Debug, Clone)]
pub(crate) struct Waker(Arc<UnixStream>);

/// The worker's end: readable once woken.
#[derive(Debug)]
pub(crate) struct Alarm(UnixStream);

/// A connected waker and alarm. Both ends are non-blocking: a waker never
/// waits on a busy worker, and the worker never waits on its alarm.
pub(crate) fn pair() -> io::Result<(Waker, Alarm)> {
    let (tx, rx) = UnixStream::pair()?;
    tx.set_nonblocking(true)?;
    rx.set_nonblocking(true)?;
    Ok((Waker(Arc::new(tx)), Alarm(rx)))
}

impl Waker {
    /// Makes the worker's next (or current) poll return.
    pub(crate) fn wake(&self) {
        // A full buffer means wake-ups are already pending; a closed
        // alarm means the worker is gone. Neither needs another byte.
        let _ = (&*self.0).write(&[1]);
    }
}

impl Alarm {
    pub(crate) fn as_fd(&self) -> BorrowedFd<'_> {
        self.0.as_fd()
    }

    /// Reads every pending wake-up, so the next poll sleeps again.
    pub(crate) fn clear(&self) {
        let mut buf = [0u8; 64];
        while matches!((&self.0).read(&mut buf), Ok(n) if n > 0) {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

    fn readable(alarm: &Alarm) -> bool {
        let mut fds = [PollFd::new(alarm.as_fd(), PollFlags::POLLIN)];
        poll(&mut fds, PollTimeout::ZERO).unwrap() == 1
    }

    #[test]
    fn a_wake_makes_the_alarm_readable_until_cleared() {
        let (waker, alarm) = pair().unwrap();
        assert!(!readable(&alarm));
        waker.wake();
        waker.clone().wake();
        assert!(readable(&alarm));
        alarm.clear();
        assert!(!readable(&alarm));
    }

    #[test]
    fn waking_never_blocks_when_the_worker_is_behind() {
        let (waker, alarm) = pair().unwrap();
        // Far more than a socket buffer holds: each returns at once.
        for _ in 0..10_000 {
            waker.wake();
        }
        alarm.clear();
        assert!(!readable(&alarm));
    }
}
