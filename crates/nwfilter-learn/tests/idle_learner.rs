//! An idle learner sleeps (issue 22: no polling on the idle path): its
//! worker threads wait in poll(2) for a frame, a port handed to them or a
//! shutdown, and wake for nothing else. A test binary of its own: it
//! counts the context switches of the learner's threads by their name,
//! which another test's learner in the same process would add to.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nwfilter_compile::ir::Program;
use nwfilter_learn::{Config, FirewallError, Learner, LeaseStore, PortFirewall};

struct NoRules;

impl PortFirewall for NoRules {
    fn apply(&self, _: &Program) -> Result<(), FirewallError> {
        Ok(())
    }
}

/// The learner threads of this process and how often each has gone to
/// sleep and been woken so far.
fn learner_threads() -> Vec<u64> {
    netns_lab::wakeups(std::process::id())
        .into_iter()
        .filter(|(thread, _)| {
            thread
                .split_once(' ')
                .is_some_and(|(_, name)| name.starts_with("nwfilter-learn"))
        })
        .map(|(_, count)| count)
        .collect()
}

#[test]
fn an_idle_learner_does_not_wake_and_stops_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let store = Arc::new(LeaseStore::open(dir.path(), now).unwrap());
    let learner = Learner::new(Config::default(), Arc::new(NoRules), store);
    // Time for the threads to start and reach their first poll.
    std::thread::sleep(Duration::from_millis(200));
    let before = learner_threads();
    assert_eq!(before.len(), Config::default().workers, "{before:?}");
    std::thread::sleep(Duration::from_secs(1));
    let after = learner_threads();
    assert_eq!(after, before, "an idle learner's threads woke up");
    // Dropping it wakes the threads to end; a learner that only noticed
    // the shutdown on a timer it no longer has would hang here.
    drop(learner);
    assert!(learner_threads().is_empty());
}
