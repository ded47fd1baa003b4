//! How often each thread of a process has slept and been woken: what
//! tests of "nothing polls while idle" compare before and after a pause.

use std::collections::BTreeMap;

/// Each thread of process `pid`, as "TID name", with its count of
/// voluntary context switches so far (each one a sleep that ended).
/// A thread that ends while it is being read is left out.
pub fn wakeups(pid: u32) -> BTreeMap<String, u64> {
    let mut threads = BTreeMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("the process's threads") {
        let task = task.expect("a thread's entry").path();
        let (Ok(comm), Ok(status)) = (
            std::fs::read_to_string(task.join("comm")),
            std::fs::read_to_string(task.join("status")),
        ) else {
            continue;
        };
        let count = status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .and_then(|n| n.trim().parse().ok())
            .expect("voluntary_ctxt_switches in the thread's status");
        let tid = task
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        threads.insert(format!("{tid} {}", comm.trim()), count);
    }
    threads
}
