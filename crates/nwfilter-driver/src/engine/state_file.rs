//! Small per-port state files next to the bindings, written so that a
//! crash leaves the old file or the new one, never a torn one.

use std::io::Write;
use std::path::Path;

/// Temp file in the same directory (named `.PREFIX…​.tmp`, which the
/// binding store's sweep removes if a crash leaves it), fsync, rename,
/// fsync the directory.
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
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    std::fs::File::open(dir)?.sync_all()
}

/// Removes `path`; a file that is already gone is fine.
pub(crate) fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}
