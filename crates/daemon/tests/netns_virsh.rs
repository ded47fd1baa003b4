//! The real `virsh` (Debian's libvirt-clients) against `nwfilterd`'s
//! libvirt socket: every network-filter verb, libvirt's errors as virsh
//! prints them, the read-only socket and `virsh -r`, an idle interactive
//! session kept alive by keepalive, a non-root peer refused by its kernel
//! credentials, and a binding created through virsh filtering real
//! packets in a namespace lab.

use netns_lab as support;

mod daemon_lab;
use daemon_lab::{s, start_daemon, Scratch};

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::{Background, Lab};

/// The two libvirt sockets of a daemon started for a test.
struct Sockets {
    rw: PathBuf,
    ro: PathBuf,
}

fn start(lab: &Lab, scratch: &Scratch) -> (Background, Sockets) {
    let sockets = Sockets {
        rw: scratch.run().join("virtnwfilterd-sock"),
        ro: scratch.run().join("virtnwfilterd-sock-ro"),
    };
    let daemon = start_daemon(
        &lab.host,
        scratch,
        &[
            "--libvirt-socket",
            s(&sockets.rw),
            "--libvirt-socket-ro",
            s(&sockets.ro),
        ],
    );
    (daemon, sockets)
}

fn uri(socket: &Path) -> String {
    format!("nwfilter:///system?socket={}", socket.display())
}

/// Runs virsh on `socket` with `args` (a Unix socket needs no namespace).
fn virsh(socket: &Path, args: &[&str]) -> Output {
    Command::new("virsh")
        .args(["-c", &uri(socket)])
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("virsh is installed (Debian: libvirt-clients)")
}

/// virsh that must succeed; its standard output.
fn virsh_ok(socket: &Path, args: &[&str]) -> String {
    let out = virsh(socket, args);
    assert!(
        out.status.success(),
        "virsh {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// virsh that must fail; its error output.
fn virsh_err(socket: &Path, args: &[&str]) -> String {
    let out = virsh(socket, args);
    assert!(
        !out.status.success(),
        "virsh {args:?} should have failed: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn write(scratch: &Scratch, name: &str, text: &str) -> PathBuf {
    let path = scratch.0.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

const FILTER: &str = "<filter name='virsh-test' chain='ipv4'>
  <uuid>0b7c6a5e-4d3c-4b2a-9f18-7e6d5c4b3a29</uuid>
  <rule action='drop' direction='in' priority='500'><ip srcipaddr='10.9.9.9'/></rule>
</filter>
";

#[test]
fn virsh_drives_every_verb_and_its_binding_filters_packets() {
    if !support::can_run("virsh_drives_every_verb_and_its_binding_filters_packets") {
        return;
    }
    let scratch = Scratch::new("virsh");
    let lab = Lab::ready(2);
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let (_daemon, sock) = start(&lab, &scratch);
    let rw = &sock.rw;

    let listing = virsh_ok(rw, &["nwfilter-list"]);
    assert!(listing.contains("clean-traffic"), "{listing}");

    // Filters: define, dumpxml by name and UUID, undefine.
    let file = write(&scratch, "f.xml", FILTER);
    let out = virsh_ok(rw, &["nwfilter-define", s(&file)]);
    assert!(out.contains("Network filter virsh-test defined"), "{out}");
    let out = virsh_ok(rw, &["nwfilter-define", "--validate", s(&file)]);
    assert!(out.contains("defined"), "{out}");
    let by_name = virsh_ok(rw, &["nwfilter-dumpxml", "virsh-test"]);
    assert!(by_name.contains("10.9.9.9"), "{by_name}");
    let by_uuid = virsh_ok(
        rw,
        &["nwfilter-dumpxml", "0b7c6a5e-4d3c-4b2a-9f18-7e6d5c4b3a29"],
    );
    assert_eq!(by_uuid, by_name);
    assert!(virsh_ok(rw, &["nwfilter-list"]).contains("virsh-test"));
    let out = virsh_ok(rw, &["nwfilter-undefine", "virsh-test"]);
    assert!(out.contains("Network filter virsh-test undefined"), "{out}");
    let err = virsh_err(rw, &["nwfilter-dumpxml", "virsh-test"]);
    assert!(
        err.contains("error: Network filter not found: no filter with name or UUID 'virsh-test'"),
        "{err}"
    );

    // An invalid filter: libvirt's code, our words for what is wrong.
    let bad = write(
        &scratch,
        "bad.xml",
        "<filter name='bad'><rule action='sideways' direction='in'/></filter>",
    );
    let err = virsh_err(rw, &["nwfilter-define", s(&bad)]);
    assert!(err.contains("error: Invalid network filter:"), "{err}");
    assert!(err.contains("sideways"), "names the bad value: {err}");
    assert!(!virsh_ok(rw, &["nwfilter-list"]).contains(" bad"));

    // Bindings: create, list, dumpxml, and the rules filter packets.
    assert!(a.pings(&b.ip));
    let binding = write(&scratch, "b.xml", &a.binding_xml("clean-traffic"));
    let out = virsh_ok(rw, &["nwfilter-binding-create", s(&binding)]);
    assert!(
        out.contains("Network filter binding on vnet0 created"),
        "{out}"
    );
    let list = virsh_ok(rw, &["nwfilter-binding-list"]);
    assert!(
        list.lines()
            .any(|l| l.split_whitespace().eq(["vnet0", "clean-traffic"])),
        "{list}"
    );
    let dump = virsh_ok(rw, &["nwfilter-binding-dumpxml", "vnet0"]);
    assert!(dump.contains("<portdev name='vnet0'/>"), "{dump}");
    assert!(dump.contains(&a.mac), "{dump}");
    assert!(
        a.pings(&b.ip),
        "the bound guest still talks with its own address"
    );
    a.set_ip("10.77.0.99");
    assert!(!a.pings(&b.ip), "a spoofed source address is dropped");
    a.set_ip(&a.ip);
    assert!(a.pings(&b.ip));
    let err = virsh_err(rw, &["nwfilter-binding-create", s(&binding)]);
    assert!(err.contains("already has a filter binding"), "{err}");

    // Delete: the port is unfiltered again, a second delete is "not found".
    let out = virsh_ok(rw, &["nwfilter-binding-delete", "vnet0"]);
    assert!(
        out.contains("Network filter binding on vnet0 deleted"),
        "{out}"
    );
    a.set_ip("10.77.0.99");
    assert!(a.pings(&b.ip), "no binding, no filtering");
    a.set_ip(&a.ip);
    let err = virsh_err(rw, &["nwfilter-binding-delete", "vnet0"]);
    assert!(
        err.contains("error: Network filter binding not found:"),
        "{err}"
    );
    assert!(!virsh_ok(rw, &["nwfilter-binding-list"]).contains("vnet0"));
}

#[test]
fn read_only_access_refuses_changes_and_an_idle_session_stays_alive() {
    if !support::can_run("read_only_access_refuses_changes_and_an_idle_session_stays_alive") {
        return;
    }
    let scratch = Scratch::new("virsh-ro");
    let lab = Lab::new(0);
    let (_daemon, sock) = start(&lab, &scratch);
    let file = write(&scratch, "f.xml", FILTER);

    // The read-only socket refuses a change even without -r ...
    let err = virsh_err(&sock.ro, &["nwfilter-define", s(&file)]);
    assert!(
        err.contains("error: operation forbidden: read only access prevents virNWFilterDefineXML"),
        "{err}"
    );
    assert!(virsh_ok(&sock.ro, &["nwfilter-list"]).contains("clean-traffic"));
    // ... and `virsh -r` on the read-write socket is refused too.
    let out = Command::new("virsh")
        .args(["-r", "-c", &uri(&sock.rw), "nwfilter-define", s(&file)])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("operation forbidden"), "{err}");
    assert!(!virsh_ok(&sock.rw, &["nwfilter-list"]).contains("virsh-test"));

    // An interactive session idle for several keepalive periods: virsh
    // pings every second and gives up after 2 missed answers.
    let mut session = Command::new("virsh")
        .args(["-k", "1", "-K", "2", "-c", &uri(&sock.rw)])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = session.stdin.take().unwrap();
    writeln!(input, "nwfilter-list").unwrap();
    std::thread::sleep(Duration::from_secs(6));
    writeln!(input, "nwfilter-define {}", s(&file)).unwrap();
    writeln!(input, "quit").unwrap();
    drop(input);
    let out = session.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(!stderr.contains("keepalive"), "{stderr}");
    assert!(
        stdout.contains("Network filter virsh-test defined"),
        "the command after the idle time ran: {stdout}{stderr}"
    );
}

#[test]
fn a_peer_that_is_not_root_cannot_change_filters() {
    if !support::can_run("a_peer_that_is_not_root_cannot_change_filters") {
        return;
    }
    let scratch = Scratch::new("virsh-peer");
    let lab = Lab::new(0);
    let (_daemon, sock) = start(&lab, &scratch);
    // Let anyone reach the socket (as a careless chmod would): the kernel's
    // peer credentials still decide.
    for dir in [&scratch.0, &scratch.run()] {
        Command::new("chmod")
            .args(["755", s(dir)])
            .status()
            .unwrap();
    }
    Command::new("chmod")
        .args(["666", s(&sock.rw)])
        .status()
        .unwrap();
    let file = write(&scratch, "f.xml", FILTER);
    Command::new("chmod")
        .args(["644", s(&file)])
        .status()
        .unwrap();
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(["virsh", "-c", &uri(&sock.rw), "nwfilter-define", s(&file)])
        .env("HOME", "/tmp")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("operation forbidden: uid 65534 may not call virNWFilterDefineXML"),
        "{err}"
    );
    assert!(!virsh_ok(&sock.rw, &["nwfilter-list"]).contains("virsh-test"));
}
