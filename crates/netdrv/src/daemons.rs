//! Starting and stopping a network's dnsmasq, by the pid it writes.
//!
//! Stopping checks first that the pid still belongs to a dnsmasq reading
//! our configuration file (`/proc/PID/cmdline`), so a recycled pid never
//! gets our signal.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::process::{kill_process, Pid, Signal};

use crate::dnsmasq::{dnsmasq_args, DnsmasqPaths};
use crate::error::LifecycleError;

/// The helper processes of a network.
pub trait Daemons {
    /// Starts dnsmasq on the written configuration; returns its pid.
    fn start_dnsmasq(&self, paths: &DnsmasqPaths) -> Result<u32, LifecycleError>;
    /// Stops the dnsmasq with `pid` if it is still ours; waits for it.
    fn stop_dnsmasq(&self, pid: u32, paths: &DnsmasqPaths) -> Result<(), LifecycleError>;
}

/// The real programs.
#[derive(Debug, Clone)]
pub struct SystemDaemons {
    /// The dnsmasq program (found on `PATH` by default).
    pub dnsmasq: PathBuf,
    /// How long to wait for a pid file or an exit.
    pub timeout: Duration,
}

impl Default for SystemDaemons {
    fn default() -> SystemDaemons {
        SystemDaemons {
            dnsmasq: PathBuf::from("dnsmasq"),
            timeout: Duration::from_secs(5),
        }
    }
}

impl Daemons for SystemDaemons {
    fn start_dnsmasq(&self, paths: &DnsmasqPaths) -> Result<u32, LifecycleError> {
        let _ = std::fs::remove_file(&paths.pid);
        // dnsmasq checks its configuration, binds, then forks into the
        // background; the foreground process's exit status says whether
        // that worked.
        let out = std::process::Command::new(&self.dnsmasq)
            .args(dnsmasq_args(paths))
            .stdin(std::process::Stdio::null())
            .output()
            .map_err(|e| {
                LifecycleError::Dnsmasq(format!("cannot run {}: {e}", self.dnsmasq.display()))
            })?;
        if !out.status.success() {
            return Err(LifecycleError::Dnsmasq(format!(
                "{} failed ({}): {}",
                self.dnsmasq.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let deadline = Instant::now() + self.timeout;
        loop {
            if let Some(pid) = read_pid(&paths.pid) {
                return Ok(pid);
            }
            if Instant::now() > deadline {
                return Err(LifecycleError::Dnsmasq(format!(
                    "started, but wrote no pid to {}",
                    paths.pid.display()
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop_dnsmasq(&self, pid: u32, paths: &DnsmasqPaths) -> Result<(), LifecycleError> {
        if !is_our_dnsmasq(pid, &paths.conf) {
            return Ok(());
        }
        let target = i32::try_from(pid)
            .ok()
            .and_then(Pid::from_raw)
            .ok_or_else(|| LifecycleError::Dnsmasq(format!("invalid pid {pid}")))?;
        kill_process(target, Signal::TERM)
            .map_err(|e| LifecycleError::Dnsmasq(format!("cannot signal pid {pid}: {e}")))?;
        let deadline = Instant::now() + self.timeout;
        while is_our_dnsmasq(pid, &paths.conf) {
            if Instant::now() > deadline {
                return Err(LifecycleError::Dnsmasq(format!(
                    "pid {pid} did not exit after SIGTERM"
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_file(&paths.pid);
        Ok(())
    }
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Whether `pid` is a live dnsmasq started on `conf` (a zombie has an
/// empty command line, so it does not count).
pub fn is_our_dnsmasq(pid: u32, conf: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    let conf_arg = format!("--conf-file={}", conf.display());
    let is_dnsmasq = args.first().is_some_and(|a| a.ends_with(b"dnsmasq"));
    is_dnsmasq && args.contains(&conf_arg.as_bytes())
}
