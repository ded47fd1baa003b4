//! A daemon whose stderr reader went away keeps protecting: its log lines
//! are dropped, flushed rules still come back (more than once), and
//! SIGTERM still stops it. (Before the log went through a lossy writer,
//! the first line after the reader left panicked the thread writing it.)

use netns_lab as support;

mod daemon_lab;
use daemon_lab::{call, s, Scratch};

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nwfilter_service::{Client, Op};
use support::{without_counters, Lab, Netns};

/// The daemon, started by this test; killed by its PID if still running.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the daemon with stderr a pipe whose read end is closed at once.
fn start_with_dead_stderr(ns: &Netns, scratch: &Scratch) -> Daemon {
    let (etc, run) = (scratch.etc(), scratch.run());
    let mut child = Command::new("ip")
        .args(["netns", "exec", &ns.name, env!("CARGO_BIN_EXE_nwfilterd")])
        .args(["--config-dir", s(&etc), "--state-dir", s(&run)])
        .args(["--check-interval-ms", "250"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn nwfilterd");
    drop(child.stderr.take());
    let daemon = Daemon(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while Client::connect(&scratch.socket()).is_err() {
        assert!(
            Instant::now() < deadline,
            "the daemon never opened its socket"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    daemon
}

fn restored(lab: &Lab, want: &str, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if without_counters(&lab.ruleset()) == want {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

#[test]
fn a_broken_log_pipe_neither_stops_protection_nor_stop() {
    if !support::can_run("a_broken_log_pipe_neither_stops_protection_nor_stop") {
        return;
    }
    let scratch = Scratch::new("logpipe");
    let lab = Lab::new(1);
    let mut daemon = start_with_dead_stderr(&lab.host, &scratch);
    call(
        &scratch,
        Op::BindingCreate {
            xml: lab.guests[0].binding_xml("clean-traffic"),
        },
    );
    let protected = without_counters(&lab.ruleset());
    // Each repair logs a line: the first one used to kill the rule check.
    for round in 0..3 {
        lab.host.ok(&["iptables", "-F"]);
        lab.host.ok(&["ebtables", "-t", "nat", "-F"]);
        assert!(
            restored(&lab, &protected, Duration::from_secs(5)),
            "flush {round}: rules not restored with a broken log pipe"
        );
    }
    let pid = daemon.0.id().to_string();
    assert!(Command::new("kill")
        .args(["-s", "TERM", &pid])
        .status()
        .unwrap()
        .success());
    let deadline = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = daemon.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "SIGTERM did not stop the daemon");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status}");
    assert_eq!(without_counters(&lab.ruleset()), protected, "rules stay");
}
