//! The filter and binding verbs: messages, exit codes, `edit` with a
//! scripted `$EDITOR`, and the same verbs through a daemon (`--connect`).
//! No root needed: embedded mode here only touches the directories, and
//! the daemon in the last tests applies through a recording runner.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;

use host_io::RecordingRunner;
use nwfilter_driver::{BindingStore, Engine, FilterStore};
use nwfilter_service::EngineService;

mod service_socket;

const FILTER: &str = "<filter name='no-smtp' chain='root'>
  <rule action='drop' direction='out'><tcp dstportstart='25'/></rule>
</filter>
";

struct Dirs(tempfile::TempDir);

impl Dirs {
    fn new() -> Dirs {
        Dirs(tempfile::tempdir().unwrap())
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::write(&path, text).unwrap();
        path
    }
    /// `nwfilter --config-dir D/etc --state-dir D/run ARGS`, with extra env.
    fn nwfilter(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_nwfilter"))
            .arg("--config-dir")
            .arg(self.path("etc"))
            .arg("--state-dir")
            .arg(self.path("run"))
            .args(args)
            .envs(env.iter().copied())
            .output()
            .unwrap()
    }
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn failure(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "must fail with exit status 1");
    assert!(out.stdout.is_empty(), "nothing on stdout on failure");
    String::from_utf8(out.stderr.clone()).unwrap()
}

#[test]
fn define_dumpxml_list_undefine() {
    let d = Dirs::new();
    let file = d.write("f.xml", FILTER);
    let out = stdout(&d.nwfilter(&["define", file.to_str().unwrap()], &[]));
    assert_eq!(
        out,
        format!("Network filter no-smtp defined from {}\n", file.display())
    );
    let xml = stdout(&d.nwfilter(&["dumpxml", "no-smtp"], &[]));
    assert!(
        xml.starts_with("<filter name='no-smtp' chain='root'>\n  <uuid>"),
        "{xml}"
    );
    let uuid = xml
        .split("<uuid>")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap();
    // By UUID too, as virsh allows.
    assert_eq!(stdout(&d.nwfilter(&["dumpxml", uuid], &[])), xml);

    let table = stdout(&d.nwfilter(&["list"], &[]));
    assert!(table.starts_with(" UUID "), "{table}");
    assert!(table.contains(&format!(" {uuid:<38} no-smtp\n")), "{table}");
    assert!(
        table.contains(" clean-traffic\n"),
        "built-in filters are listed"
    );
    let json: serde_json::Value =
        serde_json::from_str(&stdout(&d.nwfilter(&["list", "--json"], &[]))).unwrap();
    let entry = json
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["name"] == "no-smtp")
        .unwrap();
    assert_eq!(entry["uuid"], uuid);
    assert_eq!(entry["builtin"], false);

    let out = stdout(&d.nwfilter(&["undefine", "no-smtp"], &[]));
    assert_eq!(out, "Network filter no-smtp undefined\n");
    let err = failure(&d.nwfilter(&["dumpxml", "no-smtp"], &[]));
    assert!(err.contains("no-smtp"), "{err}");
}

#[test]
fn an_invalid_definition_changes_nothing_and_says_where() {
    let d = Dirs::new();
    let good = d.write("f.xml", FILTER);
    stdout(&d.nwfilter(&["define", good.to_str().unwrap()], &[]));
    let before = stdout(&d.nwfilter(&["dumpxml", "no-smtp"], &[]));
    let bad = d.write("bad.xml", &FILTER.replace("'25'", "'70000'"));
    let err = failure(&d.nwfilter(&["define", bad.to_str().unwrap()], &[]));
    assert!(
        err.contains("dstportstart") && err.contains("70000"),
        "{err}"
    );
    assert!(err.contains("2:"), "line number: {err}");
    assert_eq!(stdout(&d.nwfilter(&["dumpxml", "no-smtp"], &[])), before);
}

#[test]
fn undefining_a_built_in_filter_is_refused() {
    let d = Dirs::new();
    let err = failure(&d.nwfilter(&["undefine", "clean-traffic"], &[]));
    assert!(err.contains("built in"), "{err}");
}

#[test]
fn edit_defines_what_the_editor_wrote() {
    let d = Dirs::new();
    let file = d.write("f.xml", FILTER);
    stdout(&d.nwfilter(&["define", file.to_str().unwrap()], &[]));
    // The "editor" is sed: EDITOR may carry arguments; no shell involved.
    let out = stdout(&d.nwfilter(&["edit", "no-smtp"], &[("EDITOR", "sed -i s/'25'/'587'/")]));
    assert_eq!(out, "Network filter no-smtp XML configuration edited.\n");
    let xml = stdout(&d.nwfilter(&["dumpxml", "no-smtp"], &[]));
    assert!(xml.contains("dstportstart='587'"), "{xml}");

    let out = stdout(&d.nwfilter(&["edit", "no-smtp"], &[("EDITOR", "true")]));
    assert_eq!(
        out,
        "Network filter no-smtp XML configuration not changed.\n"
    );
}

#[test]
fn an_invalid_edit_changes_nothing_and_says_why() {
    let d = Dirs::new();
    let file = d.write("f.xml", FILTER);
    stdout(&d.nwfilter(&["define", file.to_str().unwrap()], &[]));
    let before = stdout(&d.nwfilter(&["dumpxml", "no-smtp"], &[]));
    let err = failure(&d.nwfilter(
        &["edit", "no-smtp"],
        &[("EDITOR", "sed -i s/'25'/'99999'/")],
    ));
    assert!(
        err.contains("nothing changed") && err.contains("99999"),
        "{err}"
    );
    assert_eq!(stdout(&d.nwfilter(&["dumpxml", "no-smtp"], &[])), before);

    let err = failure(&d.nwfilter(&["edit", "no-smtp"], &[("EDITOR", "false")]));
    assert!(err.contains("editor"), "{err}");
    assert_eq!(stdout(&d.nwfilter(&["dumpxml", "no-smtp"], &[])), before);
}

#[test]
fn binding_verbs_on_an_unknown_port_fail_cleanly() {
    let d = Dirs::new();
    let err = failure(&d.nwfilter(&["binding-dumpxml", "vnet9"], &[]));
    assert!(err.contains("vnet9"), "{err}");
    let err = failure(&d.nwfilter(&["binding-delete", "vnet9"], &[]));
    assert!(
        err.contains("no filter binding for port \"vnet9\""),
        "{err}"
    );
    let table = stdout(&d.nwfilter(&["binding-list"], &[]));
    assert!(table.starts_with(" Port Dev"), "{table}");
    assert_eq!(
        stdout(&d.nwfilter(&["binding-list", "--json"], &[])),
        "[]\n"
    );
}

/// A daemon in this process, applying through a recording runner.
struct Daemon {
    socket: PathBuf,
    runner: Arc<RecordingRunner>,
    _dir: tempfile::TempDir,
}

impl Daemon {
    fn start() -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("sock");
        let runner = Arc::new(RecordingRunner::new());
        let engine = Engine::new(
            FilterStore::open(dir.path().join("etc")),
            BindingStore::open(dir.path().join("run")),
            Arc::clone(&runner),
        );
        let networks =
            nwfilter_service::net_ops::store(&dir.path().join("etc"), &dir.path().join("run"));
        let service = Arc::new(EngineService::new(engine).with_networks(networks));
        service_socket::serve(service, &socket);
        Daemon {
            socket,
            runner,
            _dir: dir,
        }
    }
}

fn via(daemon: &Daemon, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nwfilter"))
        .arg("--connect")
        .arg(&daemon.socket)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn verbs_go_through_the_daemon_with_connect() {
    let daemon = Daemon::start();
    let d = Dirs::new();
    let file = d.write("f.xml", FILTER);
    let out = stdout(&via(&daemon, &["define", file.to_str().unwrap()]));
    assert!(out.starts_with("Network filter no-smtp defined"), "{out}");
    let binding = d.write(
        "b.xml",
        "<filterbinding><owner><name>vm</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner>\
         <portdev name='vnet0'/><mac address='52:54:00:7b:35:93'/>\
         <filterref filter='no-smtp'/></filterbinding>",
    );
    let out = stdout(&via(
        &daemon,
        &["binding-create", binding.to_str().unwrap()],
    ));
    assert_eq!(out, "Network filter binding on vnet0 created\n");
    let applied: String = daemon
        .runner
        .calls()
        .iter()
        .filter_map(|c| c.stdin.clone())
        .collect();
    assert!(
        applied.contains("--dport 25"),
        "the daemon applied the rules: {applied}"
    );
    let listed = stdout(&via(&daemon, &["binding-list"]));
    assert!(
        listed.contains(" vnet0 ") && listed.contains("no-smtp"),
        "{listed}"
    );
    // Errors from the daemon reach stderr with exit status 1.
    let err = failure(&via(&daemon, &["undefine", "no-smtp"]));
    assert!(err.contains("in use") && err.contains("vnet0"), "{err}");
    stdout(&via(&daemon, &["binding-delete", "vnet0"]));
    stdout(&via(&daemon, &["undefine", "no-smtp"]));
}

#[test]
fn connect_to_a_missing_daemon_is_an_error_naming_the_socket() {
    let d = Dirs::new();
    let socket = d.path("nope.sock");
    let out = Command::new(env!("CARGO_BIN_EXE_nwfilter"))
        .arg("--connect")
        .arg(&socket)
        .arg("list")
        .output()
        .unwrap();
    let err = failure(&out);
    assert!(err.contains(socket.to_str().unwrap()), "{err}");
}

#[test]
fn network_verbs_go_through_the_daemon_with_connect() {
    let daemon = Daemon::start();
    let d = Dirs::new();
    let file = d.write(
        "net.xml",
        "<network><name>lab</name><bridge name='virbr9' stp='off'/>\
         <ip address='10.99.0.1' prefix='24'/></network>",
    );
    let out = stdout(&via(&daemon, &["net-define", file.to_str().unwrap()]));
    assert_eq!(
        out,
        format!("Network lab defined from {}\n", file.display())
    );
    // The daemon's store has it; this CLI's own directories do not.
    let listed = stdout(&via(&daemon, &["net-list", "--all"]));
    assert!(
        listed.contains(" lab ") && listed.contains("inactive"),
        "{listed}"
    );
    assert!(!stdout(&d.nwfilter(&["net-list", "--all"], &[])).contains(" lab "));
    let xml = stdout(&via(&daemon, &["net-dumpxml", "lab"]));
    assert!(xml.contains("<bridge name='virbr9'"), "{xml}");
    let out = stdout(&via(&daemon, &["net-autostart", "lab"]));
    assert_eq!(out, "Network lab marked as autostarted\n");
    let err = failure(&via(&daemon, &["net-dumpxml", "nope"]));
    assert!(err.contains("nope"), "{err}");
    stdout(&via(&daemon, &["net-undefine", "lab"]));
}

#[test]
fn a_reload_that_leaves_a_binding_without_rules_exits_non_zero() {
    let daemon = Daemon::start();
    let d = Dirs::new();
    let file = d.write("f.xml", FILTER);
    stdout(&via(&daemon, &["define", file.to_str().unwrap()]));
    let binding = d.write(
        "b.xml",
        "<filterbinding><owner><name>vm</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner>\
         <portdev name='vnet1'/><mac address='52:54:00:7b:35:93'/>\
         <filterref filter='no-smtp'/></filterbinding>",
    );
    stdout(&via(
        &daemon,
        &["binding-create", binding.to_str().unwrap()],
    ));
    let out = stdout(&via(&daemon, &["reload"]));
    assert!(out.starts_with("Reloaded"), "{out}");
    // A redefinition that would leave vnet1 without rules is refused.
    let broken = d.write(
        "broken.xml",
        "<filter name='no-smtp' chain='root'><filterref filter='missing'/></filter>",
    );
    let err = failure(&via(&daemon, &["define", broken.to_str().unwrap()]));
    assert!(err.contains("vnet1") && err.contains("missing"), "{err}");
    // The same definition written into the config directory by hand.
    let etc = daemon._dir.path().join("etc");
    std::fs::copy(&broken, etc.join("no-smtp.xml")).unwrap();
    let err = failure(&via(&daemon, &["reload"]));
    assert!(err.contains("port vnet1 not applied"), "{err}");
}
