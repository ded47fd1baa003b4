//! Network namespaces the benchmark makes and removes.
//!
//! Every firewall command runs inside one of these (through
//! `ProcessRunner::in_netns` or `ip netns exec`), never in this machine's own
//! namespace; `Drop` deletes them, also when a measurement fails. Processes
//! started here are ended by their own `Child` handle (their PID), never by
//! name.

use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

pub type Error = Box<dyn std::error::Error>;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A network namespace we created; deleted on drop.
#[derive(Debug)]
pub struct Netns {
    pub name: String,
}

impl Netns {
    pub fn new(tag: &str) -> Result<Netns, Error> {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("nwfb-{}-{n}-{tag}", std::process::id());
        let out = Command::new("ip")
            .args(["netns", "add", &name])
            .stdin(Stdio::null())
            .output()?;
        if !out.status.success() {
            return Err(format!(
                "ip netns add {name}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )
            .into());
        }
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// `ip -n NS ARGS...`.
    pub fn ip(&self, args: &[&str]) -> Result<String, Error> {
        let mut argv = vec!["-n", self.name.as_str()];
        argv.extend_from_slice(args);
        checked("ip", &argv)
    }

    /// `ip netns exec NS ARGV...`, failing with its stderr.
    pub fn exec(&self, argv: &[&str]) -> Result<String, Error> {
        let mut full = vec!["netns", "exec", self.name.as_str()];
        full.extend_from_slice(argv);
        checked("ip", &full)
    }

    /// `ip netns exec NS ARGV...` with `input` on its stdin (`nft -f -`).
    pub fn exec_input(&self, argv: &[&str], input: &str) -> Result<String, Error> {
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(argv)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        // Written and closed before reading: `nft -f -` reads all its
        // input before it writes anything (and ours fits a pipe anyway).
        let mut stdin = child.stdin.take().ok_or("no stdin")?;
        std::io::Write::write_all(&mut stdin, input.as_bytes())?;
        drop(stdin);
        let out = child.wait_with_output()?;
        if !out.status.success() {
            return Err(format!(
                "in {}: {}: {}",
                self.name,
                argv.join(" "),
                String::from_utf8_lossy(&out.stderr).trim()
            )
            .into());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// Starts `argv` in the namespace with its stdout piped.
    pub fn spawn(&self, argv: &[&str]) -> Result<Child, Error> {
        Ok(Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}

fn checked(program: &str, argv: &[&str]) -> Result<String, Error> {
    let out: Output = Command::new(program)
        .args(argv)
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "{program} {}: {}",
            argv.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        )
        .into());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Why the kernel part cannot run here, if it cannot.
pub fn cannot_run() -> Option<String> {
    let uid = Command::new("id").arg("-u").output();
    match uid {
        Ok(o) if String::from_utf8_lossy(&o.stdout).trim() == "0" => {}
        _ => return Some("not running as root".into()),
    }
    match Netns::new("probe") {
        Ok(_) => None,
        Err(e) => Some(format!("cannot create a network namespace: {e}")),
    }
}

/// Whether `program` can be started (inside a probe namespace, so even a
/// version query never touches this machine's own firewall state).
pub fn has_program(ns: &Netns, program: &str) -> bool {
    ns.exec(&[program, "--version"]).is_ok()
}

/// A child that is killed (by its PID) and reaped if still running on drop.
#[derive(Debug)]
pub struct Reaped(pub Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}
