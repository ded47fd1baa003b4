//! Crash safety: a child process writes filters and bindings as fast as it
//! can and is killed with SIGKILL at random moments; after every kill each
//! object in both directories must parse, and no object may be lost.
//!
//! The child is this test binary itself, re-run with `CRASH_CHILD_DIR` set.

use std::collections::BTreeSet;
use std::hash::{BuildHasher, RandomState};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nwfilter_driver::{BindingStore, Error, FilterStore};

const CHILD_ENV: &str = "CRASH_CHILD_DIR";
const FILTERS: usize = 4;
const PORTS: usize = 4;
/// Marker file the child creates after its first full round.
const READY: &str = "ready";

/// A filter whose size varies with `round`, so a torn write cannot
/// accidentally look complete.
fn filter_xml(index: usize, round: usize) -> String {
    let rules: String = (0..(round % 40) + 1)
        .map(|i| {
            format!(
                "<rule action='accept' direction='out' priority='{}'>\
                 <tcp dstportstart='{}'/></rule>",
                i % 1000,
                (round + i) % 65536
            )
        })
        .collect();
    format!("<filter name='crash-{index}' chain='root'>{rules}</filter>")
}

fn binding_xml(port: usize, round: usize) -> String {
    format!(
        "<filterbinding><owner><name>vm{round}</name>\
         <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid></owner>\
         <portdev name='crash{port}'/><mac address='52:54:00:00:00:{port:02x}'/>\
         <filterref filter='crash-{port}'><parameter name='ROUND' value='{round}'/>\
         </filterref></filterbinding>"
    )
}

/// The child: write until killed.
fn write_forever(dir: &Path) -> ! {
    let filters = FilterStore::open(dir.join("etc"));
    let bindings = BindingStore::open(dir.join("run"));
    let mut round = 0usize;
    loop {
        let index = round % FILTERS;
        filters.define(&filter_xml(index, round)).unwrap();
        let port = format!("crash{}", round % PORTS);
        match bindings.delete(&port) {
            Ok(_) | Err(Error::NoSuchBinding(_)) => {}
            Err(e) => panic!("{e}"),
        }
        bindings
            .create_xml(&binding_xml(round % PORTS, round))
            .unwrap();
        round += 1;
        if round == FILTERS {
            // Every object exists now: tell the parent the killing may start.
            std::fs::write(dir.join(READY), "").unwrap();
        }
    }
}

/// Waits (bounded, for slow machines) until the child has written a full
/// round, so each kill lands while it is writing.
fn wait_until_ready(dir: &Path, child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !dir.join(READY).exists() {
        assert!(child.try_wait().unwrap().is_none(), "the writer died");
        assert!(Instant::now() < deadline, "the writer never got going");
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Every stored object parses; only temp files (a write cut short before
/// its rename) may be skipped. Returns the test filters' names.
fn check(dir: &Path) -> BTreeSet<String> {
    let filters = FilterStore::open(dir.join("etc")).list().unwrap();
    let bindings = BindingStore::open(dir.join("run")).list().unwrap();
    for skipped in filters.skipped.iter().chain(&bindings.skipped) {
        let report = skipped.to_string();
        assert!(report.contains("temp file"), "object damaged: {report}");
    }
    let names = (filters.items.iter())
        .filter(|f| f.name.as_str().starts_with("crash-"))
        .map(|f| f.name.to_string());
    names.collect()
}

fn random_millis(range: std::ops::Range<u64>) -> u64 {
    let r = RandomState::new().hash_one(Instant::now());
    range.start + r % (range.end - range.start)
}

#[test]
fn sigkill_during_writes_leaves_every_object_old_or_new() {
    if let Some(dir) = std::env::var_os(CHILD_ENV) {
        write_forever(Path::new(&dir));
    }
    let tmp = tempfile::tempdir().unwrap();
    let exe = std::env::current_exe().unwrap();
    let mut seen = BTreeSet::new();
    for _ in 0..25 {
        let mut child = Command::new(&exe)
            .args([
                "--exact",
                "sigkill_during_writes_leaves_every_object_old_or_new",
            ])
            .args(["--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, tmp.path())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        wait_until_ready(tmp.path(), &mut child);
        std::thread::sleep(Duration::from_millis(random_millis(0..60)));
        let still_running = child.try_wait().unwrap().is_none();
        assert!(still_running, "the writer died on its own");
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();

        let names = check(tmp.path());
        assert!(
            names.is_superset(&seen),
            "an object was lost: {seen:?} -> {names:?}"
        );
        seen = names;
        // Leftovers are swept as the daemon does on start.
        FilterStore::open(tmp.path().join("etc")).sweep().unwrap();
        BindingStore::open(tmp.path().join("run")).sweep().unwrap();
        std::fs::remove_file(tmp.path().join(READY)).unwrap();
    }
    assert_eq!(seen.len(), FILTERS, "the writer never got through a round");
}
