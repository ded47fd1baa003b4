//! The systemd units in contrib/ that take over libvirt's network-filter
//! sockets: they listen where libvirt's do, with libvirt's modes, name
//! their sockets as nwfilterd expects, conflict with libvirt's units, and
//! `systemd-analyze verify` accepts them.

use std::path::{Path, PathBuf};
use std::process::Command;

use nwfilterd::libvirt::{DEFAULT_SOCKET, DEFAULT_SOCKET_RO};
use nwfilterd::socket_activation::{LIBVIRT, LIBVIRT_RO};

fn contrib() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib")
}

fn unit(name: &str) -> String {
    std::fs::read_to_string(contrib().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every value of `key` in `text` (`Key=value` lines).
fn values<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|line| line.strip_prefix(key)?.strip_prefix('='))
        .collect()
}

#[test]
fn the_socket_units_take_libvirts_paths_with_libvirts_modes() {
    for (name, path, mode, fdname, libvirt_unit) in [
        (
            "nwfilterd-libvirt.socket",
            DEFAULT_SOCKET,
            "0600",
            LIBVIRT,
            "virtnwfilterd.socket",
        ),
        (
            "nwfilterd-libvirt-ro.socket",
            DEFAULT_SOCKET_RO,
            "0666",
            LIBVIRT_RO,
            "virtnwfilterd-ro.socket",
        ),
    ] {
        let text = unit(name);
        assert_eq!(values(&text, "ListenStream"), [path], "{name}");
        assert_eq!(values(&text, "SocketMode"), [mode], "{name}");
        assert_eq!(values(&text, "FileDescriptorName"), [fdname], "{name}");
        assert_eq!(
            values(&text, "Service"),
            ["nwfilterd-libvirt.service"],
            "{name}"
        );
        let conflicts = values(&text, "Conflicts").join(" ");
        for other in [libvirt_unit, "virtnwfilterd.service"] {
            assert!(
                conflicts.split(' ').any(|u| u == other),
                "{name} conflicts with {other}"
            );
        }
    }
    let service = unit("nwfilterd-libvirt.service");
    let requires = values(&service, "Requires").join(" ");
    for socket in ["nwfilterd-libvirt.socket", "nwfilterd-libvirt-ro.socket"] {
        assert!(requires.contains(socket), "the service requires {socket}");
    }
    assert!(values(&service, "Conflicts")
        .join(" ")
        .split(' ')
        .any(|u| u == "virtnwfilterd.service"));
}

#[test]
fn systemd_analyze_accepts_the_units() {
    let found = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "systemd-analyze is missing under CI (Debian package systemd)"
        );
        // The test binary may print: it reports why it did not run.
        #[allow(clippy::print_stderr)]
        {
            eprintln!("skipped systemd_analyze_accepts_the_units: no systemd-analyze");
        }
        return;
    }
    // The units name /usr/sbin/nwfilterd; verify checks that it exists.
    let dir = tempfile::tempdir().unwrap();
    let mut paths = Vec::new();
    for name in [
        "nwfilterd-libvirt.service",
        "nwfilterd-libvirt.socket",
        "nwfilterd-libvirt-ro.socket",
        "nwfilterd.service",
    ] {
        let text = unit(name).replace("/usr/sbin/nwfilterd", env!("CARGO_BIN_EXE_nwfilterd"));
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        paths.push(path);
    }
    let out = Command::new("systemd-analyze")
        .args(["verify", "--man=no"])
        .args(&paths)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    let complaints: Vec<&str> = said.lines().filter(|l| l.contains("nwfilterd")).collect();
    assert!(
        out.status.success() && complaints.is_empty(),
        "systemd-analyze verify: {said}"
    );
}
