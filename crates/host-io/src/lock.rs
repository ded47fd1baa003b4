//! One applier at a time, whichever backend applies.
//!
//! A plan is made from a reading of the tables; a second process changing
//! them between that reading and the commit would make the plan wrong (for
//! example, declaring `libvirt-in` again flushes it, unhooking every other
//! port; an nftables transaction planned on a stale reading is refused).
//! The tools' own locks cover one commit, not our read-plan-commit
//! sequence, so every operation holds this `flock`.

use std::fs::{File, OpenOptions};
use std::path::Path;

use rustix::fs::{flock, FlockOperation};

/// Where the CLI and the daemon take the lock (named for the tables, not
/// for one backend: both backends' appliers take it). In /run/nwfilter,
/// not /run/lock: the systemd units (contrib/) run the daemon with
/// `ProtectSystem=strict`, where only the listed paths (/run/nwfilter
/// among them) are writable, so a lock file under /run/lock could not be
/// created. The binding store there lists only `*.xml` (and the engine
/// `*.backend`), so the lock file is never taken for an object.
pub const DEFAULT_LOCK_FILE: &str = "/run/nwfilter/tables.lock";

/// Held while it lives; dropping it (closing the file) releases the lock.
#[derive(Debug)]
pub struct TablesLock {
    _file: File,
}

impl TablesLock {
    /// Waits for the exclusive lock on `path` (created if missing).
    pub fn acquire(path: &Path) -> std::io::Result<TablesLock> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        loop {
            match flock(&file, FlockOperation::LockExclusive) {
                Ok(()) => return Ok(TablesLock { _file: file }),
                // A signal interrupted the wait: keep waiting.
                Err(rustix::io::Errno::INTR) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn a_second_holder_waits_for_the_first() {
        let path = std::env::temp_dir().join(format!("nwfilter-lock-test-{}", std::process::id()));
        let first = TablesLock::acquire(&path).unwrap();
        let (tx, rx) = mpsc::channel();
        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || {
                let _second = TablesLock::acquire(&path).unwrap();
                tx.send(()).unwrap();
            })
        };
        assert!(
            rx.recv_timeout(Duration::from_millis(200)).is_err(),
            "the second must wait while the first holds the lock"
        );
        drop(first);
        rx.recv_timeout(Duration::from_secs(5)).expect("released");
        waiter.join().unwrap();
        let _ = std::fs::remove_file(&path);
    }
}
