//! nwfilterd takes a batch's success from the kernel's notice of its
//! commit (`ProcessRunner::watching_commits`), not from the tool's exit:
//! after a removal the tool's exit waits for an RCU grace period, 10–20 ms
//! of every binding-delete. Here each batch tool's output is held open by
//! a helper process until the test lets it go, so the tool's end cannot be
//! seen: a daemon that waited for it would never answer. Both backends, in
//! a network namespace.

use netns_lab as support;

mod daemon_lab;
use daemon_lab::{children, start_daemon_after, Scratch};

use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use nwfilter_service::{Client, Op, Reply};
use support::Lab;

/// Where the real program is (before our wrappers go first on PATH).
fn real(program: &str) -> String {
    let path = std::env::var("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{program} not found"))
        .display()
        .to_string()
}

/// Wrappers for the batch tools: a helper that inherits the tool's
/// stdout and stderr waits on `fifo` (at most a minute, should a test
/// fail before letting it go), then the tool itself is exec'd
/// (same PID, which the kernel names in its commit notice). Reads (`nft
/// list`, `*-save`) are left alone.
fn wrappers(dir: &Path, fifo: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for (program, batch_test) in [
        ("nft", r#"[ "$1" = "-f" ]"#),
        ("ebtables-restore", "true"),
        ("iptables-restore", "true"),
        ("ip6tables-restore", "true"),
    ] {
        let script = format!(
            "#!/bin/sh\nif {batch_test}; then timeout 60 sh -c \"read _ < '{}'\" & fi\nexec '{}' \"$@\"\n",
            fifo.display(),
            real(program)
        );
        let path = bin.join(program);
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    bin
}

/// Lets every waiting helper go: each open for writing ends one wait
/// (the reader sees the end of the file once we close it).
fn release(fifo: &Path) {
    for _ in 0..1000 {
        match std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(fifo)
        {
            Ok(writer) => {
                drop(writer);
                std::thread::sleep(Duration::from_millis(5));
            }
            // ENXIO: nobody reads any more.
            Err(_) => return,
        }
    }
}

/// One call, or `None` if no answer came within a generous bound (the
/// daemon waiting for a tool that cannot end until the test lets it).
fn call_within(socket: PathBuf, op: Op, limit: Duration) -> Option<Reply> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let reply = Client::connect(&socket).and_then(|mut c| c.call(op));
        let _ = tx.send(reply);
    });
    rx.recv_timeout(limit)
        .ok()
        .map(|r| r.expect("the call failed"))
}

/// Lets the helpers go however the test ends (dropped after the daemon).
struct Holding<'a>(&'a Path);

impl Drop for Holding<'_> {
    fn drop(&mut self) {
        std::thread::sleep(Duration::from_millis(200));
        release(self.0);
    }
}

fn answered_at_commit(backend: &str) {
    let scratch = Scratch::new(&format!("commit-notice-{backend}"));
    let fifo = scratch.0.join("hold");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let bin = wrappers(&scratch.0, &fifo);
    let _holding = Holding(&fifo);
    let path = format!("PATH={}:{}", bin.display(), std::env::var("PATH").unwrap());
    let lab = Lab::ready(2);
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let daemon = start_daemon_after(
        &lab.host,
        &scratch,
        &["env", &path],
        "250",
        &["--backend", backend],
    );
    let limit = Duration::from_secs(20);
    let socket = scratch.socket();
    for guest in [a, b] {
        let create = Op::BindingCreate {
            xml: guest.binding_xml("clean-traffic"),
        };
        let reply = call_within(socket.clone(), create, limit);
        assert!(
            reply.is_some(),
            "{backend}: a create was answered only when its tool's output closed"
        );
    }
    let delete = Op::BindingDelete {
        portdev: a.port().to_string(),
    };
    let reply = call_within(socket.clone(), delete, limit);
    assert!(
        reply.is_some(),
        "{backend}: a delete was answered only when its tool's output closed"
    );
    let listing = lab.host.ok(&["nft", "list", "ruleset"]);
    assert!(
        !listing.contains(&a.port().to_string()),
        "{backend}: the delete was committed when it was answered:\n{listing}"
    );
    assert!(
        listing.contains(&b.port().to_string()),
        "{backend}: the other port keeps its rules:\n{listing}"
    );

    // Let the tools end: the daemon reaps every one of them.
    release(&fifo);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let zombies: Vec<_> = children(daemon.pid())
            .into_iter()
            .filter(|child| child.state.starts_with('Z'))
            .collect();
        if zombies.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{backend}: tools left unreaped: {zombies:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let list = call_within(socket, Op::BindingList, limit);
    assert!(list.is_some(), "{backend}: the daemon still answers");
    // The tool started ahead ends with the daemon, then `_holding` lets
    // its helper go.
    drop(daemon);
}

#[test]
fn nftables_changes_are_answered_once_committed() {
    if !support::can_run("nftables_changes_are_answered_once_committed") {
        return;
    }
    answered_at_commit("nftables");
}

#[test]
fn xtables_changes_are_answered_once_committed() {
    if !support::can_run("xtables_changes_are_answered_once_committed") {
        return;
    }
    answered_at_commit("xtables");
}
