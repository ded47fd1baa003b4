//! The daemon's systemd units run it with `ProtectSystem=strict`: only
//! the paths in `ReadWritePaths=` are writable. The tables lock must be
//! under one of them, or no operation could take it.

use std::path::Path;

use host_io::DEFAULT_LOCK_FILE;

#[test]
fn every_unit_lets_the_daemon_create_the_tables_lock() {
    let contrib = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../contrib"));
    let mut units = 0;
    for entry in std::fs::read_dir(contrib).unwrap() {
        let path = entry.unwrap().path();
        if path.extension() != Some(std::ffi::OsStr::new("service")) {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        if !text.contains("ProtectSystem=strict") {
            continue;
        }
        units += 1;
        let writable: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("ReadWritePaths="))
            .flat_map(str::split_whitespace)
            .collect();
        assert!(
            writable
                .iter()
                .any(|dir| Path::new(DEFAULT_LOCK_FILE).starts_with(dir)),
            "{}: {DEFAULT_LOCK_FILE} is not under any of {writable:?}",
            path.display()
        );
    }
    assert!(units > 0, "no unit with ProtectSystem=strict in contrib/");
}
