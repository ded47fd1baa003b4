//! A runner for tests: records every command, answers canned output, and
//! fails the calls it is told to (so rollback paths get exercised).

use std::collections::HashMap;
use std::sync::Mutex;

use crate::command::{Command, Tool};
use crate::run::{judge, Output, RunError, Runner};

/// Records commands instead of running them (tests).
///
/// Every call succeeds with empty output, except: the call numbered by
/// [`RecordingRunner::fail_call`] fails (exit status 1, stderr
/// "injected failure"), and tools given a canned answer with
/// [`RecordingRunner::answer`] print it (for the `*-save` readers).
/// [`RecordingRunner::wrapping`] passes the other calls to a real runner
/// instead, to inject a failure into a real kernel operation (and its
/// removals by handle, which are not calls).
#[derive(Default)]
pub struct RecordingRunner {
    calls: Mutex<Vec<Command>>,
    fail_at: Mutex<Vec<usize>>,
    answers: Mutex<HashMap<Tool, String>>,
    inner: Option<Box<dyn Runner + Send + Sync>>,
}

impl std::fmt::Debug for RecordingRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordingRunner")
            .field("calls", &lock(&self.calls).len())
            .field("fail_at", &*lock(&self.fail_at))
            .field("wrapping", &self.inner.is_some())
            .finish()
    }
}

impl RecordingRunner {
    pub fn new() -> RecordingRunner {
        RecordingRunner::default()
    }

    /// Records and passes every call to `inner`, except the one chosen to fail.
    pub fn wrapping(inner: impl Runner + Send + Sync + 'static) -> RecordingRunner {
        RecordingRunner {
            inner: Some(Box::new(inner)),
            ..RecordingRunner::default()
        }
    }

    /// Makes the `n`th call (1-based, counting every call) fail.
    pub fn fail_call(&self, n: usize) {
        *lock(&self.fail_at) = vec![n];
    }

    /// Makes each of the `ns`th calls (1-based, counting every call) fail:
    /// a failure that persists across a retry.
    pub fn fail_calls(&self, ns: &[usize]) {
        *lock(&self.fail_at) = ns.to_vec();
    }

    /// What `tool` prints on stdout from now on.
    pub fn answer(&self, tool: Tool, stdout: impl Into<String>) {
        lock(&self.answers).insert(tool, stdout.into());
    }

    /// The commands run so far, in order.
    pub fn calls(&self) -> Vec<Command> {
        lock(&self.calls).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic in another test thread must not hide this test's result.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Runner for RecordingRunner {
    fn run(&self, cmd: &Command) -> Result<Output, RunError> {
        let n = {
            let mut calls = lock(&self.calls);
            calls.push(cmd.clone());
            calls.len()
        };
        let output = if lock(&self.fail_at).contains(&n) {
            Output {
                status: Some(1),
                stdout: String::new(),
                stderr: "injected failure".into(),
            }
        } else if let Some(inner) = &self.inner {
            return inner.run(cmd);
        } else {
            Output {
                status: Some(0),
                stdout: lock(&self.answers)
                    .get(&cmd.tool)
                    .cloned()
                    .unwrap_or_default(),
                stderr: String::new(),
            }
        };
        judge(cmd.tool.program().to_string(), cmd, output)
    }

    /// Passed to the wrapped runner (not recorded: it starts nothing);
    /// never done without one.
    fn remove_by_handle(&self, removal: &crate::Removal) -> bool {
        self.inner
            .as_ref()
            .is_some_and(|inner| inner.remove_by_handle(removal))
    }

    /// As [`RecordingRunner::remove_by_handle`].
    fn change_elements(&self, change: &crate::ElementChange) -> bool {
        self.inner
            .as_ref()
            .is_some_and(|inner| inner.change_elements(change))
    }

    /// The wrapped runner's (reading it starts nothing); `None` without one.
    fn ruleset_generation(&self) -> Option<u32> {
        self.inner.as_ref()?.ruleset_generation()
    }

    /// As [`RecordingRunner::ruleset_generation`].
    fn nft_table(&self, family: crate::TableFamily, name: &str) -> Option<crate::TableSeen> {
        self.inner.as_ref()?.nft_table(family, name)
    }
}
