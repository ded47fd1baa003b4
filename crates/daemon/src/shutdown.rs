//! One stop request for every loop of the daemon, seen at once: the
//! socket server and the rule keeper block in `poll(2)` on their own
//! descriptors plus this one's wake-up descriptor, so nothing polls on a
//! timer to notice a stop.
//!
//! The wake-up is a socket pair: a stop writes one byte and nobody reads
//! it, so the read end stays readable for every waiter, now and later.

use std::io::{self, Write};
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use nix::poll::{PollFd, PollFlags, PollTimeout};

/// Why the daemon stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// A signal or a caller asked for it: exit 0.
    Requested,
    /// A thread died (a panic): exit non-zero.
    Failed,
}

/// A cloneable stop request with a wake-up descriptor.
#[derive(Debug, Clone)]
pub struct Shutdown {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    requested: AtomicBool,
    failed: AtomicBool,
    wake_read: UnixStream,
    wake_write: UnixStream,
}

/// What a wait ended with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woken {
    /// Stop was requested.
    Stop,
    /// The descriptor at this index (of those given) is readable.
    Ready(usize),
    /// The timeout passed.
    Timeout,
}

impl Shutdown {
    pub fn new() -> io::Result<Shutdown> {
        let (wake_read, wake_write) = UnixStream::pair()?;
        // A stop never blocks: one byte is enough, more are not needed.
        wake_write.set_nonblocking(true)?;
        Ok(Shutdown {
            inner: Arc::new(Inner {
                requested: AtomicBool::new(false),
                failed: AtomicBool::new(false),
                wake_read,
                wake_write,
            }),
        })
    }

    /// Asks every waiter to stop.
    pub fn request(&self) {
        self.inner.requested.store(true, Ordering::SeqCst);
        // WouldBlock: a byte is already there, which is all that matters.
        let _ = (&self.inner.wake_write).write(&[1]);
    }

    /// A thread died: stop, and exit non-zero.
    pub fn fail(&self) {
        self.inner.failed.store(true, Ordering::SeqCst);
        self.request();
    }

    pub fn is_requested(&self) -> bool {
        self.inner.requested.load(Ordering::SeqCst)
    }

    /// Why the daemon stops (`None`: it does not).
    pub fn reason(&self) -> Option<Reason> {
        if self.inner.failed.load(Ordering::SeqCst) {
            Some(Reason::Failed)
        } else if self.is_requested() {
            Some(Reason::Requested)
        } else {
            None
        }
    }

    /// Blocks until a stop request, one of `fds` is readable, or `timeout`
    /// (`None`: no timeout) passes. A stop wins over ready descriptors.
    pub fn wait(&self, fds: &[BorrowedFd<'_>], timeout: Option<Duration>) -> io::Result<Woken> {
        if self.is_requested() {
            return Ok(Woken::Stop);
        }
        let mut polled: Vec<PollFd<'_>> = fds
            .iter()
            .map(|fd| PollFd::new(*fd, PollFlags::POLLIN))
            .collect();
        polled.push(PollFd::new(self.inner.wake_read.as_fd(), PollFlags::POLLIN));
        let timeout = match timeout {
            None => PollTimeout::NONE,
            // Rounded up, so a timed wait never returns early and spins.
            Some(d) => {
                let ms = d.as_micros().div_ceil(1000);
                PollTimeout::try_from(ms.min(i32::MAX as u128) as i32).unwrap_or(PollTimeout::MAX)
            }
        };
        match nix::poll::poll(&mut polled, timeout) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => return Ok(Woken::Timeout),
            Err(e) => return Err(e.into()),
        }
        if self.is_requested() {
            return Ok(Woken::Stop);
        }
        let ready = polled[..fds.len()].iter().position(|p| {
            p.revents().is_some_and(|r| {
                r.intersects(PollFlags::POLLIN | PollFlags::POLLERR | PollFlags::POLLHUP)
            })
        });
        Ok(ready.map_or(Woken::Timeout, Woken::Ready))
    }

    /// Sleeps for `d` unless a stop comes first; true if it came.
    pub fn sleep(&self, d: Duration) -> bool {
        matches!(self.wait(&[], Some(d)), Ok(Woken::Stop) | Err(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn a_stop_wakes_a_waiter_at_once_and_every_later_one() {
        let shutdown = Shutdown::new().unwrap();
        let other = shutdown.clone();
        let waiter = std::thread::spawn(move || {
            let start = Instant::now();
            let woken = other.wait(&[], None).unwrap();
            (woken, start.elapsed())
        });
        std::thread::sleep(Duration::from_millis(50));
        shutdown.request();
        let (woken, _) = waiter.join().unwrap();
        assert_eq!(woken, Woken::Stop);
        assert!(shutdown.sleep(Duration::from_secs(60)));
        assert_eq!(shutdown.reason(), Some(Reason::Requested));
    }

    #[test]
    fn a_ready_descriptor_and_a_timeout_are_told_apart() {
        let shutdown = Shutdown::new().unwrap();
        let (a, mut b) = UnixStream::pair().unwrap();
        assert_eq!(
            shutdown
                .wait(&[a.as_fd()], Some(Duration::from_millis(10)))
                .unwrap(),
            Woken::Timeout
        );
        b.write_all(b"x").unwrap();
        assert_eq!(
            shutdown
                .wait(&[a.as_fd()], Some(Duration::from_secs(5)))
                .unwrap(),
            Woken::Ready(0)
        );
        shutdown.fail();
        assert_eq!(shutdown.reason(), Some(Reason::Failed));
    }
}
