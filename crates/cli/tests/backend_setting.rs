//! The backend setting from the CLI's side: a daemon's setting decides and
//! a different `--backend` is refused; a malformed settings file is an
//! error naming file, line and value. No root needed: the daemon here is
//! in this process and applies through a recording runner.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::Arc;

use host_io::RecordingRunner;
use nwfilter_driver::{Backend, BindingStore, Engine, FilterStore};
use nwfilter_service::EngineService;

mod service_socket;

/// A daemon in this process applying with `backend`.
struct Daemon {
    socket: PathBuf,
    _dir: tempfile::TempDir,
}

impl Daemon {
    fn start(backend: Backend) -> Daemon {
        let dir = tempfile::tempdir().unwrap();
        let socket = dir.path().join("sock");
        let engine = Engine::new(
            FilterStore::open(dir.path().join("etc")),
            BindingStore::open(dir.path().join("run")),
            Arc::new(RecordingRunner::new()),
        )
        .with_backend(backend);
        let service = Arc::new(EngineService::new(engine));
        service_socket::serve(service, &socket);
        Daemon { socket, _dir: dir }
    }

    fn nwfilter(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_nwfilter"))
            .arg("--connect")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap()
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_backend_other_than_the_daemons_is_refused_not_ignored() {
    let daemon = Daemon::start(Backend::Nftables);
    let out = daemon.nwfilter(&["reload", "--backend", "xtables"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = stderr(&out);
    assert!(
        err.contains("--backend xtables")
            && err.contains("applies rules with the nftables backend"),
        "{err}"
    );
    let out = daemon.nwfilter(&["reload", "--backend", "nftables"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = daemon.nwfilter(&["list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("clean-traffic"));
}

#[test]
fn backend_is_offered_only_on_verbs_it_affects() {
    let daemon = Daemon::start(Backend::Nftables);
    for verb in [
        "list",
        "dumpxml",
        "binding-list",
        "binding-delete",
        "undefine",
    ] {
        let out = daemon.nwfilter(&[verb, "--backend", "nftables", "x"]);
        assert_eq!(out.status.code(), Some(2), "{verb}");
        assert!(
            stderr(&out).contains("unexpected argument '--backend'"),
            "{verb}: {}",
            stderr(&out)
        );
    }
    let out = daemon.nwfilter(&["--backend", "nftables", "list"]);
    assert_eq!(out.status.code(), Some(2), "not a global option any more");
    for verb in ["define", "edit", "binding-create", "reload", "render"] {
        let out = daemon.nwfilter(&[verb, "--help"]);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("--backend"),
            "{verb}"
        );
    }
}

#[test]
fn a_malformed_settings_file_names_file_line_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let etc = dir.path().join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    let conf = etc.join("nwfilter.conf");
    std::fs::write(&conf, "# ours\nbackend = nft\n").unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_nwfilter"))
            .arg("--config-dir")
            .arg(&etc)
            .arg("--state-dir")
            .arg(dir.path().join("run"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["list"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{}:2", conf.display()))
            && err.contains("'nft'")
            && err.contains("xtables, nftables"),
        "{err}"
    );
    // The command line beats the file (which is then not consulted).
    let filter = dir.path().join("f.xml");
    std::fs::write(
        &filter,
        "<filter name='f'><rule action='drop' direction='in'><tcp/></rule></filter>",
    )
    .unwrap();
    let file = filter.to_str().unwrap();
    let out = run(&["render", "--portdev", "vnet0", file]);
    assert_eq!(out.status.code(), Some(1), "the file is read");
    let out = run(&["render", "--backend", "xtables", "--portdev", "vnet0", file]);
    assert!(out.status.success(), "{}", stderr(&out));
}
