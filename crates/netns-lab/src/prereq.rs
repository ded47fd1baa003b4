//! Whether kernel tests can run here, and saying why not.

use std::path::PathBuf;
use std::process::Command;

use crate::netns::Netns;

/// Whether kernel tests can run here: root and `ip netns` work. Without
/// them the test is skipped with the reason printed, except under CI
/// (`CI=true`), where that is a failure.
pub fn can_run(test: &str) -> bool {
    can_run_with(test, &[])
}

/// As [`can_run`], also requiring each of `programs` to be installed.
pub fn can_run_with(test: &str, programs: &[&str]) -> bool {
    let missing = programs.iter().find(|p| !on_path(p));
    let reason = if !is_root() {
        Some("not running as root".to_owned())
    } else if Netns::try_new("probe").is_none() {
        Some("`ip netns add` does not work here".to_owned())
    } else {
        missing.map(|program| format!("{program} is not installed"))
    };
    match reason {
        None => true,
        Some(why) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{test}: cannot run under CI: {why}"
            );
            note_skip(test, &why);
            false
        }
    }
}

/// Prints why a test did not run (on the test's stderr, which the test
/// harness shows).
#[allow(clippy::print_stderr)]
pub fn note_skip(test: &str, why: &str) {
    eprintln!("skipped {test}: {why}");
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Whether `program` is on `PATH` (or in /usr/sbin, /sbin, which a
/// non-login root shell may lack).
pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
            .any(|dir| dir.join(program).is_file())
    })
}
