//! Finding libvirt's test corpus (shared by the integration tests).

use std::path::{Path, PathBuf};

/// `$LIBVIRT_CORPUS`, or `../shared/conformance/libvirt-9.0.0` next to the
/// repository. `None` (after printing that the test skipped) when absent;
/// under CI (`CI=true`) a missing corpus fails the test instead.
pub fn corpus() -> Option<PathBuf> {
    let path = std::env::var_os("LIBVIRT_CORPUS").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/libvirt-9.0.0"),
        PathBuf::from,
    );
    if path.is_dir() {
        return Some(path);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "libvirt corpus not found at {} (required under CI)",
        path.display()
    );
    #[allow(clippy::print_stdout)] // the skip notice is the point
    {
        println!("skipped: corpus not found at {}", path.display());
    }
    None
}

/// The `.xml` files of a directory, sorted.
pub fn xml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "xml"))
        .collect();
    files.sort();
    files
}
