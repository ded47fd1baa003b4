//! Tools started ahead of need.
//!
//! Starting `nft` costs about 2 ms before it reads a byte (exec, loading
//! a dozen shared libraries, setting up its context): two thirds of what
//! one binding-create's `nft -f -` takes. A long-lived caller (the daemon)
//! keeps one process of each batch tool it used last started and waiting
//! on its standard input; the next batch is written to it, and another
//! is started while it works.
//!
//! This decides the same as a process started on demand: `nft` and the
//! `*-restore` tools touch no kernel state before their input ends (they
//! read the ruleset they plan against after parsing it; a waiting process
//! holds no lock, checked for nft 1.0.6 and iptables 1.8.9 in both
//! flavours), so a batch is applied against the kernel as it is when the
//! batch is written, not when the process started. A waiting process
//! whose input closes with nothing written does nothing and exits: when
//! its owner drops it, or dies (even by `kill -9`: the kernel closes the
//! pipe), nothing is applied and no process is left behind.

use std::collections::HashMap;
use std::process::Child;
use std::sync::Mutex;

use crate::command::{Command, Tool};

/// Which commands are worth starting ahead: the batch tools, fed on
/// standard input, that every change runs.
pub(crate) fn worth_a_standby(cmd: &Command) -> bool {
    cmd.stdin.is_some()
        && matches!(
            cmd.tool,
            Tool::Nft | Tool::EbtablesRestore | Tool::IptablesRestore | Tool::Ip6tablesRestore
        )
}

/// A process waits for the same program and arguments only.
type Key = (String, Vec<String>);

/// The processes waiting for their input, one per program and arguments.
#[derive(Debug, Default)]
pub(crate) struct Standbys {
    waiting: Mutex<HashMap<Key, Child>>,
}

impl Standbys {
    /// The process waiting for `program` with `cmd`'s arguments, if one
    /// is and it is still alive (someone may have ended it meanwhile).
    pub(crate) fn take(&self, program: &str, cmd: &Command) -> Option<Child> {
        let mut child = self.lock().remove(&key(program, cmd))?;
        match child.try_wait() {
            Ok(None) => Some(child),
            // Ended already (killed): reaped here, and started anew.
            _ => None,
        }
    }

    /// Keeps `child` waiting for the next command like `cmd`; one it
    /// replaces is ended.
    pub(crate) fn keep(&self, program: &str, cmd: &Command, child: Child) {
        let replaced = self.lock().insert(key(program, cmd), child);
        if let Some(old) = replaced {
            end(old);
        }
    }

    #[cfg(test)]
    pub(crate) fn pids(&self) -> Vec<u32> {
        self.lock().values().map(Child::id).collect()
    }

    #[cfg(test)]
    pub(crate) fn kill_all(&self) {
        for child in self.lock().values_mut() {
            child.kill().expect("a process this test started");
            child.wait().expect("reaped");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Child>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Standbys {
    fn drop(&mut self) {
        for (_, child) in self.lock().drain() {
            end(child);
        }
    }
}

fn key(program: &str, cmd: &Command) -> Key {
    (program.to_owned(), cmd.args.clone())
}

/// Closes a waiting process's input (it then exits having done nothing)
/// and reaps it.
fn end(mut child: Child) {
    drop(child.stdin.take());
    if let Err(e) = child.wait() {
        tracing::debug!(pid = child.id(), "a standby tool was not reaped: {e}");
    }
}
