//! nwfilterd's threads are one per task of its own, not one per core:
//! started on one core and on two, an idle daemon runs the same threads.
//! (zbus's blocking API once brought a multi-threaded tokio runtime with
//! a worker per core: 64 idle threads on a 64-core host.)

use netns_lab as support;

mod daemon_lab;
use daemon_lab::{start_daemon_after, Scratch};

use support::{wakeups, Netns};

/// The names of the daemon's threads, sorted (a name once per thread).
fn thread_names(cores: &str) -> Vec<String> {
    let ns = Netns::new("threads");
    let scratch = Scratch::new("threads");
    // No system bus: the firewalld listener tries, fails and ends; what
    // it set up on the way stays.
    let daemon = start_daemon_after(
        &ns,
        &scratch,
        &[
            "env",
            "DBUS_SYSTEM_BUS_ADDRESS=unix:path=/nonexistent/bus",
            "taskset",
            "-c",
            cores,
        ],
        "3600000",
        &["--no-kernel-events"],
    );
    // Time for every thread to start (the bus listener among them).
    std::thread::sleep(std::time::Duration::from_millis(500));
    let mut names: Vec<String> = wakeups(daemon.pid())
        .into_keys()
        .map(|thread| {
            thread
                .split_once(' ')
                .map_or(thread.clone(), |(_, n)| n.to_owned())
        })
        .collect();
    names.sort();
    names
}

#[test]
fn the_daemons_threads_do_not_grow_with_its_cores() {
    let name = "the_daemons_threads_do_not_grow_with_its_cores";
    if !support::can_run_with(name, &["taskset"]) {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    if cores < 2 {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{name}: needs two cores under CI"
        );
        support::note_skip(name, "needs two cores");
        return;
    }
    let on_one = thread_names("0");
    let on_two = thread_names("0,1");
    assert_eq!(on_one, on_two, "threads on one core, then on two");
}
