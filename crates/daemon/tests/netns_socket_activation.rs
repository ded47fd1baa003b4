//! Socket activation as systemd does it (contrib/nwfilterd-libvirt*.socket),
//! with systemd's own `systemd-socket-activate`: it binds libvirt's two
//! sockets, waits for the first client and only then starts `nwfilterd`,
//! handing the listening sockets over (LISTEN_FDS, LISTEN_FDNAMES). The
//! daemon is given no libvirt socket path, so every answer virsh gets
//! came through a socket it did not bind.

use netns_lab as support;

mod daemon_lab;
use daemon_lab::{s, Scratch};

use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use support::{Background, Lab};

const ACTIVATE: &str = "systemd-socket-activate";

fn have_activate(test: &str) -> bool {
    let found = Command::new(ACTIVATE)
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "{test}: {ACTIVATE} is missing under CI (Debian package systemd)"
        );
        support::note_skip(test, "systemd-socket-activate is not installed");
    }
    found
}

/// `systemd-socket-activate` in the lab's host namespace listening on
/// `sockets` (path and descriptor name each), set to start the daemon.
fn activate(lab: &Lab, scratch: &Scratch, sockets: &[(&Path, &str)]) -> Background {
    let (etc, run) = (scratch.etc(), scratch.run());
    let names: Vec<&str> = sockets.iter().map(|(_, name)| *name).collect();
    let fdname = format!("--fdname={}", names.join(":"));
    let mut argv = vec![ACTIVATE];
    for (path, _) in sockets {
        argv.extend(["-l", s(path)]);
    }
    argv.extend([
        fdname.as_str(),
        "--",
        env!("CARGO_BIN_EXE_nwfilterd"),
        "--config-dir",
        s(&etc),
        "--state-dir",
        s(&run),
        "--check-interval-ms",
        "250",
    ]);
    let activator = lab.host.spawn(&argv);
    let deadline = Instant::now() + Duration::from_secs(20);
    while !sockets.iter().all(|(path, _)| path.exists()) {
        assert!(
            Instant::now() < deadline,
            "{ACTIVATE} never created its sockets"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    activator
}

fn virsh(socket: &Path, args: &[&str]) -> Output {
    Command::new("virsh")
        .arg("-c")
        .arg(format!("nwfilter:///system?socket={}", socket.display()))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("virsh is installed (Debian: libvirt-clients)")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const FILTER: &str = "<filter name='activated' chain='ipv4'>
  <uuid>4d8e3f0a-2b1c-4e5d-8f6a-7b9c0d1e2f3a</uuid>
  <rule action='drop' direction='in' priority='500'><ip srcipaddr='10.9.9.8'/></rule>
</filter>
";

#[test]
fn virsh_is_served_on_sockets_systemd_passed() {
    let test = "virsh_is_served_on_sockets_systemd_passed";
    if !support::can_run(test) || !have_activate(test) {
        return;
    }
    let scratch = Scratch::new("activate");
    let lab = Lab::new(0);
    let rw: PathBuf = scratch.0.join("virtnwfilterd-sock");
    let ro: PathBuf = scratch.0.join("virtnwfilterd-sock-ro");
    let daemon = activate(&lab, &scratch, &[(&rw, "libvirt"), (&ro, "libvirt-ro")]);
    assert!(
        !scratch.socket().exists(),
        "the daemon runs only once a client connects"
    );

    // The first client starts the daemon and waits in the socket's queue.
    let out = virsh(&rw, &["nwfilter-list"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("clean-traffic"), "{}", text(&out));

    let file = scratch.0.join("f.xml");
    std::fs::write(&file, FILTER).unwrap();
    let out = virsh(&rw, &["nwfilter-define", s(&file)]);
    assert!(
        text(&out).contains("Network filter activated defined"),
        "{}",
        text(&out)
    );
    let out = virsh(&rw, &["nwfilter-dumpxml", "activated"]);
    assert!(text(&out).contains("10.9.9.8"), "{}", text(&out));

    // The socket named libvirt-ro is served read-only.
    let out = virsh(&ro, &["nwfilter-undefine", "activated"]);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("operation forbidden: read only access prevents virNWFilterUndefine"),
        "{}",
        text(&out)
    );
    let out = virsh(&ro, &["nwfilter-list"]);
    assert!(text(&out).contains("activated"), "{}", text(&out));

    // The daemon bound only its own JSON socket, and says where the
    // libvirt ones came from.
    assert!(scratch.socket().exists());
    let stopped = Command::new("kill")
        .args(["-s", "TERM", &daemon.pid().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let out = daemon.wait();
    assert!(out.status.success(), "{}", text(&out));
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("using the sockets passed by systemd"), "{log}");
    assert!(
        log.contains(&format!(
            "serving libvirt clients on {} (read-only)",
            ro.display()
        )),
        "{log}"
    );
}

#[test]
fn a_passed_socket_with_an_unknown_name_stops_the_daemon_naming_it() {
    let test = "a_passed_socket_with_an_unknown_name_stops_the_daemon_naming_it";
    if !support::can_run(test) || !have_activate(test) {
        return;
    }
    let scratch = Scratch::new("activate-bad");
    let lab = Lab::new(0);
    let admin = scratch.0.join("virtnwfilterd-admin-sock");
    let daemon = activate(&lab, &scratch, &[(&admin, "admin")]);
    // Connecting starts the daemon, which refuses the socket and exits.
    let _client = UnixStream::connect(&admin).unwrap();
    let out = daemon.wait();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("socket 0 is named 'admin'") && err.contains("FileDescriptorName="),
        "{err}"
    );
    assert!(!scratch.socket().exists(), "nothing served");
}
