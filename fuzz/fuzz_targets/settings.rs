//! The settings file (`nwfilter.conf`): never panics; a refusal names the
//! file and a line that exists.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use nwfilter_driver::{Settings, SettingsError};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Path::new("/etc/nwfilter/nwfilter.conf");
    match Settings::parse(text, path) {
        Ok(_) => {}
        Err(SettingsError::Line { path: p, line, .. }) => {
            assert_eq!(p, path);
            assert!(line >= 1 && line <= text.lines().count(), "line {line}");
        }
        Err(e) => panic!("parsing text gave {e}"),
    }
});
