//! Scratch directories for the CLI and the daemon under test.

/// A scratch directory with a config (`etc/`) and a state (`run/`)
/// directory, removed on drop: for the CLI and the daemon under test.
#[derive(Debug)]
pub struct Scratch(pub std::path::PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let name = format!("nwfilter-test-{}-{tag}", std::process::id());
        let dir = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::create_dir_all(dir.join("run")).unwrap();
        Scratch(dir)
    }
    pub fn etc(&self) -> std::path::PathBuf {
        self.0.join("etc")
    }
    pub fn run(&self) -> std::path::PathBuf {
        self.0.join("run")
    }
    /// Where `nwfilterd` listens by default.
    pub fn socket(&self) -> std::path::PathBuf {
        self.run().join("nwfilterd.sock")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
