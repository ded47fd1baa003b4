//! The rule check's back-off counts its own work, not time it waited for
//! the engine behind another operation (issue 23 item 7): a check that
//! waited half a second for a slow create reports only its own work.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use host_io::{Command, Output, RecordingRunner, RunError, Runner};
use nwfilter_driver::{BindingStore, Engine, FilterStore};

/// The first restore batch takes `delay` (a slow kernel commit); every
/// other call is instant.
struct SlowFirstBatch {
    inner: RecordingRunner,
    slept: AtomicBool,
    delay: Duration,
}

impl Runner for SlowFirstBatch {
    fn run(&self, cmd: &Command) -> Result<Output, RunError> {
        if cmd.stdin.is_some() && !self.slept.swap(true, Ordering::SeqCst) {
            std::thread::sleep(self.delay);
        }
        self.inner.run(cmd)
    }
}

const BINDING: &str = "<filterbinding>
  <owner><name>vm</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner>
  <portdev name='vnet0'/><mac address='52:54:00:7b:35:93'/>
  <filterref filter='clean-traffic'><parameter name='IP' value='192.0.2.10'/></filterref>
</filterbinding>";

#[test]
fn a_check_that_waited_for_the_engine_reports_only_its_own_work() {
    let dirs = tempfile::tempdir().unwrap();
    let delay = Duration::from_millis(800);
    let engine = Arc::new(Engine::new(
        FilterStore::open(dirs.path().join("etc")),
        BindingStore::open(dirs.path().join("run")),
        SlowFirstBatch {
            inner: RecordingRunner::new(),
            slept: AtomicBool::new(false),
            delay,
        },
    ));
    let creating = {
        let engine = Arc::clone(&engine);
        std::thread::spawn(move || engine.binding_create(BINDING).unwrap())
    };
    // Let the create take the engine's lock and reach its slow batch.
    while !engine.runner().slept.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    let started = Instant::now();
    let checked = engine.check_kernel().unwrap();
    let waited = started.elapsed();
    creating.join().unwrap();
    assert!(waited >= delay / 2, "the check did wait: {waited:?}");
    assert!(
        checked.work < waited / 2,
        "work {:?} must not include the {waited:?} spent waiting",
        checked.work
    );
}
