//! What the daemon's namespace tests share: starting
//! `nwfilterd` in a namespace, calling it.

// Each test binary uses a different part.
#![allow(dead_code)]

use std::path::Path;
use std::time::{Duration, Instant};

use nwfilter_service::{Client, Op, Reply};

pub use crate::support::Scratch;
use crate::support::{Background, Netns};

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Starts the daemon in `ns` (with `extra` arguments) and waits until its
/// socket answers.
pub fn start_daemon(ns: &Netns, scratch: &Scratch, extra: &[&str]) -> Background {
    start_daemon_checking_every(ns, scratch, "250", extra)
}

/// As [`start_daemon`], with the rule check's timer at `ms`.
pub fn start_daemon_checking_every(
    ns: &Netns,
    scratch: &Scratch,
    ms: &str,
    extra: &[&str],
) -> Background {
    start_daemon_after(ns, scratch, &[], ms, extra)
}

/// As [`start_daemon_checking_every`], the daemon started through
/// `before` (e.g. `env PATH=...`, which execs it: the PID stays the
/// daemon's).
pub fn start_daemon_after(
    ns: &Netns,
    scratch: &Scratch,
    before: &[&str],
    ms: &str,
    extra: &[&str],
) -> Background {
    let _ = std::fs::remove_file(scratch.socket());
    let (etc, run) = (scratch.etc(), scratch.run());
    let mut argv = before.to_vec();
    argv.extend([
        env!("CARGO_BIN_EXE_nwfilterd"),
        "--config-dir",
        s(&etc),
        "--state-dir",
        s(&run),
        "--check-interval-ms",
        ms,
    ]);
    argv.extend(extra);
    let daemon = ns.spawn(&argv);
    let deadline = Instant::now() + Duration::from_secs(20);
    while Client::connect(&scratch.socket()).is_err() {
        assert!(
            Instant::now() < deadline,
            "the daemon never opened its socket"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    daemon
}

/// One operation through the daemon's socket.
pub fn call(scratch: &Scratch, op: Op) -> Reply {
    let mut client = Client::connect(&scratch.socket()).unwrap();
    client
        .call(op.clone())
        .unwrap_or_else(|e| panic!("{op:?}: {e}"))
}

/// A child process of the daemon, as `ps` shows it.
#[derive(Debug)]
pub struct ChildProcess {
    pub pid: u32,
    /// `ps`'s STAT (`Z` first for a zombie nobody has reaped).
    pub state: String,
    pub args: String,
}

/// The daemon's child processes.
pub fn children(daemon: u32) -> Vec<ChildProcess> {
    let out = std::process::Command::new("ps")
        .args(["--ppid", &daemon.to_string(), "-o", "pid=,stat=,args="])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let pid = words.next()?.parse().ok()?;
            let state = words.next()?.to_owned();
            let args = words.collect::<Vec<_>>().join(" ");
            Some(ChildProcess { pid, state, args })
        })
        .collect()
}
