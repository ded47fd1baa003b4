//! What the daemon's namespace tests share: scratch directories, starting
//! `nwfilterd` in a namespace, calling it, a binding document.

// Each test binary uses a different part.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nwfilterd::{Client, Op, Reply};

use crate::support::{Background, Guest, Netns};

/// A scratch directory (config `etc/`, state `run/`) removed on drop.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("nwfilterd-test-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::create_dir_all(dir.join("run")).unwrap();
        Scratch(dir)
    }
    pub fn etc(&self) -> PathBuf {
        self.0.join("etc")
    }
    pub fn run(&self) -> PathBuf {
        self.0.join("run")
    }
    pub fn socket(&self) -> PathBuf {
        self.run().join("nwfilterd.sock")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Starts the daemon in `ns` (with `extra` arguments) and waits until its
/// socket answers.
pub fn start_daemon(ns: &Netns, scratch: &Scratch, extra: &[&str]) -> Background {
    let _ = std::fs::remove_file(scratch.socket());
    let (etc, run) = (scratch.etc(), scratch.run());
    let mut argv = vec![
        env!("CARGO_BIN_EXE_nwfilterd"),
        "--config-dir",
        s(&etc),
        "--state-dir",
        s(&run),
        "--check-interval-ms",
        "250",
    ];
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

/// A clean-traffic binding for `guest`.
pub fn binding_xml(guest: &Guest) -> String {
    format!(
        "<filterbinding>
  <owner><name>vm</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner>
  <portdev name='{}'/>
  <mac address='{}'/>
  <filterref filter='clean-traffic'><parameter name='IP' value='{}'/></filterref>
</filterbinding>",
        guest.port, guest.mac, guest.ip
    )
}
