//! Small per-port state files next to the bindings, written so that a
//! crash of the daemon leaves the old file or the new one, never a torn
//! one.
//!
//! Not synced to disk: what they say (which backend holds a port's
//! rules, the addresses learned for it) is about the kernel's rules,
//! which an OS crash — the only thing an fsync protects against — takes
//! away too; a daemon crash loses nothing the page cache holds. On a
//! state directory on disk the two fsyncs cost about 9 ms per binding
//! created under load (issue 22, `bench/e2e --state-on=disk
//! --timings`); should an OS crash leave a file empty or torn, readers
//! treat it as damaged (a record then names every backend, a learned
//! address is learned again).

use std::io::Write;
use std::path::{Path, PathBuf};

/// `DIR/PORT.SUFFIX`: one port's state file of one kind (`.backend`,
/// `.applied`, `.learned`, `.learned6`; `suffix` with its dot).
pub(crate) fn of_port(dir: &Path, port: &str, suffix: &str) -> PathBuf {
    dir.join(format!("{port}{suffix}"))
}

/// Temp file in the same directory (named `.PREFIX…​.tmp`, which the
/// binding store's sweep removes if a crash leaves it), then a rename.
pub(crate) fn write_atomically(
    dir: &Path,
    path: &Path,
    prefix: &str,
    text: &str,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::Builder::new()
        .prefix(&format!(".{prefix}-"))
        .suffix(".tmp")
        .tempfile_in(dir)?;
    tmp.write_all(text.as_bytes())?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Removes `path`; a file that is already gone is fine.
pub(crate) fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
