//! A batch tool's result as soon as the kernel has committed its batch,
//! not when the tool has exited.
//!
//! Why: when a transaction removes something (a set element, a rule, a
//! chain), the kernel frees it after an RCU grace period, and a process
//! closing its nf_tables socket waits for that (the netlink release
//! notifier flushes the pending destruction, holding the transaction
//! mutex). So `nft` and `ebtables-restore` exit 10–20 ms after a delete
//! committed (measured on kernel 6.18: `close()` of the socket 14 ms, the
//! commit itself 0.03 ms) — most of a binding-delete's time, spent after
//! the change was in place. The kernel announces every commit on the
//! nf_tables multicast group with the committing process's PID; seeing
//! our tool's PID there is the batch's success, as its exit status would
//! have been (its batch is one transaction: all of it or none).
//!
//! A batch that fails commits nothing and announces nothing: its exit
//! status and error text are waited for as before. So are tools that
//! announce nothing (legacy xtables), announcements lost to a full socket
//! buffer, and tools whose PID the kernel sees otherwise (another PID
//! namespace). The tool is then left to exit on a thread of its own, which
//! reaps it and logs anything it says after its commit.

use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd};
use std::process::{Child, ChildStderr, ChildStdout};
use std::sync::Mutex;

use netlink_sys::Socket;
use rustix::event::{poll, PollFd, PollFlags};

use crate::nfnl;
use crate::nft_events;
use crate::nft_removal::{Change, Transaction};
use crate::run::Output;

/// Enough for a few transactions' notices.
const RECEIVE_BUFFER: usize = 256 << 10;

/// The nf_tables announcements while it is [`CommitWatch::join`]ed.
#[derive(Debug)]
pub(crate) struct CommitWatch {
    socket: Socket,
    buf: Vec<u8>,
    /// Announcements were lost: nothing more can be concluded.
    lost: bool,
    /// The changes announced since the last commit notice.
    pending: Vec<Change>,
    /// The watched tool's transaction, once announced.
    committed: Option<Transaction>,
}

impl CommitWatch {
    /// A socket for the notices, not yet receiving them; `None` where this
    /// process may not (no `CAP_NET_ADMIN`): the tool's exit is then
    /// waited for.
    pub(crate) fn open() -> Option<CommitWatch> {
        match nft_events::unsubscribed(RECEIVE_BUFFER) {
            Ok(socket) => Some(CommitWatch {
                socket,
                buf: vec![0; 64 << 10],
                lost: false,
                pending: Vec::new(),
                committed: None,
            }),
            Err(e) => {
                tracing::debug!("not watching commits: {e}");
                None
            }
        }
    }

    /// Starts receiving: what is read next was announced after this call.
    /// False if the kernel refused (then nothing is watched).
    fn join(&mut self) -> bool {
        if let Err(e) = nft_events::join(&self.socket) {
            tracing::debug!("not watching commits: {e}");
            return false;
        }
        // Anything from an earlier membership is not about this batch.
        loop {
            match self.socket.recv(&mut &mut self.buf[..], 0) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.lost = false;
                    self.pending.clear();
                    self.committed = None;
                    return true;
                }
                // An overflow reported (once): read on.
                Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOBUFS.raw_os_error()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return false,
            }
        }
    }

    /// Stops receiving, so that the kernel builds no notices for the
    /// commits that follow (the daemon's own rule check may still).
    fn leave(&mut self) {
        if let Err(e) = nft_events::leave(&self.socket) {
            tracing::debug!("leaving the nf_tables group: {e}");
        }
    }

    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }

    /// Reads what is waiting; true once the kernel said `pid` committed.
    fn saw_commit_by(&mut self, pid: u32) -> bool {
        while !self.lost && self.committed.is_none() {
            match self.socket.recv(&mut &mut self.buf[..], 0) {
                Ok(n) => {
                    let data = &self.buf[..n.min(self.buf.len())];
                    for message in nfnl::messages(data) {
                        if let Some(generation) = nft_events::generation_of(&message) {
                            let by = nft_events::committer_of(&message);
                            let changes = std::mem::take(&mut self.pending);
                            if by == Some(pid) {
                                self.committed = Some(Transaction {
                                    generation,
                                    changes,
                                });
                            }
                        } else if let Some(change) = Change::of(&message) {
                            self.pending.push(change);
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // ENOBUFS (overflow) or anything else: stop watching.
                Err(_) => self.lost = true,
            }
        }
        self.committed.is_some()
    }

    /// The watched tool's transaction as the kernel announced it (its
    /// generation and what it did to rules and chains), once.
    pub(crate) fn take_committed(&mut self) -> Option<Transaction> {
        self.committed.take()
    }
}

/// The watches kept between batches, one per batch run at once: never
/// closed while the runner lives (closing a netfilter socket waits for
/// the grace period just as a tool's exit does).
#[derive(Debug, Default)]
pub(crate) struct WatchPool(Mutex<Vec<CommitWatch>>);

impl WatchPool {
    /// A watch in the nf_tables group from now on, out of it and back in
    /// the pool when dropped; `None` where none can be opened or joined
    /// (the tool's exit is then waited for).
    pub(crate) fn join(&self) -> Option<Joined<'_>> {
        let kept = self.0.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut watch = kept.or_else(CommitWatch::open)?;
        let joined = watch.join();
        let watch = Joined {
            pool: self,
            watch: Some(watch),
        };
        joined.then_some(watch)
    }
}

#[cfg(test)]
impl WatchPool {
    /// The watches kept (none of them joined).
    pub(crate) fn kept(&self) -> std::sync::MutexGuard<'_, Vec<CommitWatch>> {
        self.0.lock().unwrap()
    }
}

/// A watch of the pool, in the nf_tables group while it lives.
pub(crate) struct Joined<'p> {
    pool: &'p WatchPool,
    /// Always there until dropped.
    watch: Option<CommitWatch>,
}

impl Joined<'_> {
    pub(crate) fn watch(&mut self) -> Option<&mut CommitWatch> {
        self.watch.as_mut()
    }
}

impl Drop for Joined<'_> {
    fn drop(&mut self) {
        if let Some(mut watch) = self.watch.take() {
            watch.leave();
            self.pool
                .0
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(watch);
        }
    }
}

/// Feeds `child` its input, then waits for its exit — or, with a watch,
/// for the kernel to announce that `child` committed, whichever is first.
pub(crate) fn collect(
    mut child: Child,
    stdin: Option<&str>,
    watch: Option<&mut CommitWatch>,
) -> io::Result<Output> {
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        use std::io::Write;
        // A tool that exits early closes its end; its stderr says why,
        // so a broken pipe here is not the error to report.
        let _ = pipe.write_all(input.as_bytes());
    }
    let mut pipes = Pipes {
        stdout: child.stdout.take(),
        stderr: child.stderr.take(),
        out: Vec::new(),
        err: Vec::new(),
    };
    if pipes.drain(watch, child.id())? {
        let output = pipes.output(Some(0));
        leave_to_exit(child, pipes);
        return Ok(output);
    }
    let status = child.wait()?;
    Ok(pipes.output(status.code()))
}

/// A tool's output streams and what they have said so far.
struct Pipes {
    stdout: Option<ChildStdout>,
    stderr: Option<ChildStderr>,
    out: Vec<u8>,
    err: Vec<u8>,
}

impl Pipes {
    /// Reads both streams until they close (the tool is exiting): false;
    /// or until the watch sees `pid` commit: true.
    fn drain(&mut self, mut watch: Option<&mut CommitWatch>, pid: u32) -> io::Result<bool> {
        while self.stdout.is_some() || self.stderr.is_some() {
            let [notice, out, err] = self.wait(watch.as_deref().filter(|w| !w.lost))?;
            if notice && watch.as_mut().is_some_and(|w| w.saw_commit_by(pid)) {
                return Ok(true);
            }
            if out {
                read_some(&mut self.stdout, &mut self.out)?;
            }
            if err {
                read_some(&mut self.stderr, &mut self.err)?;
            }
        }
        Ok(false)
    }

    /// Waits until the watch or a stream has something: which of (watch,
    /// stdout, stderr) are ready to read (none after a signal).
    fn wait(&self, watch: Option<&CommitWatch>) -> io::Result<[bool; 3]> {
        let watched = [
            watch.map(CommitWatch::fd),
            self.stdout.as_ref().map(AsFd::as_fd),
            self.stderr.as_ref().map(AsFd::as_fd),
        ];
        let mut fds: Vec<PollFd<'_>> = (watched.iter().flatten())
            .map(|&fd| PollFd::from_borrowed_fd(fd, PollFlags::IN))
            .collect();
        match poll(&mut fds, None) {
            Ok(_) => {}
            Err(rustix::io::Errno::INTR) => return Ok([false; 3]),
            Err(e) => return Err(e.into()),
        }
        let mut revents = fds.iter().map(|fd| !fd.revents().is_empty());
        Ok(watched.map(|fd| fd.is_some() && revents.next().unwrap_or(false)))
    }

    fn output(&self, status: Option<i32>) -> Output {
        Output {
            status,
            stdout: String::from_utf8_lossy(&self.out).into_owned(),
            stderr: String::from_utf8_lossy(&self.err).into_owned(),
        }
    }
}

/// One read from a stream poll found ready; its end closes it.
fn read_some<R: Read>(pipe: &mut Option<R>, into: &mut Vec<u8>) -> io::Result<()> {
    let Some(reader) = pipe.as_mut() else {
        return Ok(());
    };
    let mut chunk = [0u8; 8192];
    match reader.read(&mut chunk) {
        Ok(0) => *pipe = None,
        Ok(n) => into.extend_from_slice(&chunk[..n]),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
        Err(e) => return Err(e),
    }
    Ok(())
}

/// Lets a tool whose commit was seen finish exiting on a thread of its
/// own, which reaps it; what it says after its commit is logged.
fn leave_to_exit(child: Child, pipes: Pipes) {
    // Shared so that, should no thread start, the tool is reaped here.
    let tool = std::sync::Arc::new(std::sync::Mutex::new(Some((child, pipes))));
    let for_thread = std::sync::Arc::clone(&tool);
    let spawned = std::thread::Builder::new()
        .name("tool-exit".into())
        .spawn(move || reap(&for_thread));
    if spawned.is_err() {
        reap(&tool);
    }
}

fn reap(tool: &std::sync::Mutex<Option<(Child, Pipes)>>) {
    let taken = tool.lock().unwrap_or_else(|e| e.into_inner()).take();
    let Some((mut child, mut pipes)) = taken else {
        return;
    };
    let pid = child.id();
    let status = pipes
        .drain(None, pid)
        .and_then(|_| child.wait())
        .map(|s| s.code());
    match status {
        Ok(Some(0)) => {}
        Ok(status) => tracing::warn!(
            pid,
            ?status,
            stderr = %String::from_utf8_lossy(&pipes.err),
            "a firewall tool exited with an error after its batch was committed"
        ),
        Err(e) => tracing::warn!(pid, "waiting for a firewall tool after its commit: {e}"),
    }
}
