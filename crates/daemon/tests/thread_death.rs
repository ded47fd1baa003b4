//! A thread that dies takes the daemon down loudly: the panic is logged
//! and the process exits non-zero, whether the main loop notices (and
//! ends in order) or is itself stuck (the grace timer ends it).
//!
//! Each case runs in a child process (this test binary again, selecting
//! one test by name) since it must end its process.

use std::process::Command;
use std::thread;
use std::time::Duration;

use nwfilterd::logging;
use nwfilterd::shutdown::{Shutdown, Woken};
use nwfilterd::supervise::{self, EXIT_THREAD_DIED};

const CHILD: &str = "NWFILTERD_THREAD_DEATH_CHILD";

/// Runs test `name` of this binary as a child; returns (code, stderr).
fn run_child(name: &str) -> (Option<i32>, String) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", name, "--nocapture", "--test-threads=1"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// In the child: the daemon's set-up, then a worker thread panics.
fn panic_in_a_worker(shutdown: &Shutdown) -> logging::LossyWriter {
    let log = logging::init(false).unwrap();
    supervise::exit_on_panic(shutdown.clone());
    thread::Builder::new()
        .name("rule-check".into())
        .spawn(|| panic!("simulated fault"))
        .unwrap();
    log
}

#[test]
fn child_main_loop_ends_in_order() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let shutdown = Shutdown::new().unwrap();
    let log = panic_in_a_worker(&shutdown);
    // As the daemon's server loop: woken by the failure, exits with it.
    let woken = shutdown.wait(&[], Some(Duration::from_secs(30))).unwrap();
    let code = supervise::exit_status(&shutdown);
    log.flush(Duration::from_secs(1));
    std::process::exit(if woken == Woken::Stop { code } else { 0 });
}

#[test]
fn child_main_loop_stuck() {
    if std::env::var_os(CHILD).is_none() {
        return;
    }
    let shutdown = Shutdown::new().unwrap();
    panic_in_a_worker(&shutdown);
    // A main loop that never looks: the grace timer must end the process.
    thread::sleep(Duration::from_secs(30));
    std::process::exit(0);
}

#[test]
fn a_panicking_thread_ends_the_process_with_a_failure_and_says_so() {
    if std::env::var_os(CHILD).is_some() {
        return;
    }
    for child in ["child_main_loop_ends_in_order", "child_main_loop_stuck"] {
        let (code, stderr) = run_child(child);
        assert_eq!(code, Some(EXIT_THREAD_DIED), "{child}: {stderr}");
        assert!(
            stderr.contains("ERROR")
                && stderr.contains("thread 'rule-check' panicked")
                && stderr.contains("simulated fault"),
            "{child}: the panic is logged with its thread:\n{stderr}"
        );
    }
}
