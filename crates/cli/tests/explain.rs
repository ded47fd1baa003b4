//! `nwfilter explain` and `nwfilter graph` from the user's side: files
//! only (no daemon, no root), and through a daemon (the service on a
//! socket in this process, applying through a recording runner) with the
//! addresses it learned.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use host_io::RecordingRunner;
use nwfilter_driver::{Backend, BindingStore, Engine, FilterStore};
use nwfilter_model::IfName;
use nwfilter_service::{EngineService, Op};

mod service_socket;

const MY_FILTER: &str = "<filter name='no-smtp' chain='root'>
  <filterref filter='clean-traffic'/>
  <!-- mail goes through the relay only -->
  <rule action='drop' direction='out' priority='100'>
    <tcp dstipaddr='10.0.0.25' dstportstart='25'/>
  </rule>
</filter>
";

fn binding(filter: &str, ip: Option<&str>) -> String {
    let param = ip.map_or(String::new(), |ip| {
        format!("<parameter name='IP' value='{ip}'/>")
    });
    format!(
        "<filterbinding><owner><name>vm</name>\
         <uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner>\
         <portdev name='vnet0'/><mac address='52:54:00:00:00:01'/>\
         <filterref filter='{filter}'>{param}</filterref></filterbinding>"
    )
}

struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/no-smtp.xml"), MY_FILTER).unwrap();
        std::fs::write(
            dir.path().join("b.xml"),
            binding("no-smtp", Some("10.0.0.5")),
        )
        .unwrap();
        Files { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn nwfilter(&self, args: &[&str]) -> Output {
        nwfilter(self.dir.path(), args, None)
    }
}

fn nwfilter(dir: &Path, args: &[&str], path_env: Option<&str>) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nwfilter"));
    cmd.arg("--config-dir")
        .arg(dir.join("etc"))
        .arg("--state-dir")
        .arg(dir.join("run"))
        .args(args);
    if let Some(p) = path_env {
        cmd.env("PATH", p);
    }
    cmd.output().unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn failed(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn explain_from_files_names_the_deciding_rule_with_its_file_and_line() {
    let f = Files::new();
    let b = f.path("b.xml");
    let b = b.to_str().unwrap();
    let spec = "ip src=10.0.0.5 dst=10.0.0.25 tcp dport=25";
    let text = ok(&f.nwfilter(&[
        "explain",
        "vnet0",
        "--binding",
        b,
        "--direction",
        "out",
        "--packet",
        spec,
    ]));
    let file = f.path("etc/no-smtp.xml");
    assert!(text.contains("verdict: dropped"), "{text}");
    assert!(
        text.contains(&format!(
            "filter no-smtp, rule 1 (priority 100, chain root) at {}:4",
            file.display()
        )),
        "{text}"
    );
    assert!(
        text.contains("ipv4 forward-from-vm: drop by rule 1"),
        "{text}"
    );
    // The same frame, spoofed: the bridge layer drops it first.
    let spoofed = "ip src=10.0.0.6 dst=10.0.0.25 tcp dport=25";
    let text = ok(&f.nwfilter(&[
        "explain",
        "vnet0",
        "--binding",
        b,
        "--direction",
        "out",
        "--packet",
        spoofed,
    ]));
    assert!(
        text.contains("filter no-ip-spoofing, rule 3")
            && text.contains("(built-in) no-ip-spoofing.xml:"),
        "{text}"
    );
}

#[test]
fn explain_reads_raw_frames_and_prints_json_for_scripts() {
    let f = Files::new();
    let b = f.path("b.xml");
    // ARP request from the VM claiming 10.0.0.9 (not its address).
    let frame = "ffffffffffff 525400000001 0806 0001 0800 06 04 0001 \
                 525400000001 0a000009 000000000000 0a000001";
    let out = f.nwfilter(&[
        "explain",
        "vnet0",
        "--binding",
        b.to_str().unwrap(),
        "--direction",
        "out",
        "--frame",
        frame,
        "--json",
        "--backend",
        "nftables",
    ]);
    let json: serde_json::Value = serde_json::from_str(&ok(&out)).unwrap();
    assert_eq!(json["verdict"], "drop");
    assert_eq!(json["backend"], "nftables");
    assert_eq!(json["decisive"]["origin"]["filter"], "no-arp-ip-spoofing");
    assert_eq!(json["decisive"]["position"], 2);
    let chains: Vec<&str> = json["path"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["chain"].as_str().unwrap())
        .collect();
    assert_eq!(chains.last(), Some(&"bridge from-vm sub arp-ip"));
}

#[test]
fn explain_refuses_bad_input_with_a_clear_message() {
    let f = Files::new();
    let b = f.path("b.xml");
    let b = b.to_str().unwrap();
    let err = failed(&f.nwfilter(&[
        "explain",
        "vnet1",
        "--binding",
        b,
        "--direction",
        "out",
        "--packet",
        "arp",
    ]));
    assert!(err.contains("binding of port vnet0, not vnet1"), "{err}");
    let err = failed(&f.nwfilter(&[
        "explain",
        "vnet0",
        "--binding",
        b,
        "--direction",
        "out",
        "--packet",
        "ip src=10.0.0.5",
    ]));
    assert!(err.contains("ip needs dst=ADDRESS"), "{err}");
    let err = failed(&f.nwfilter(&[
        "explain",
        "vnet0",
        "--binding",
        b,
        "--direction",
        "out",
        "--frame",
        "0102",
    ]));
    assert!(err.contains("frame at byte 0"), "{err}");
    let err = failed(&f.nwfilter(&["explain", "vnet0", "--direction", "out", "--packet", "arp"]));
    assert!(err.contains("no binding for port vnet0"), "{err}");
    // A binding that must learn its address has no filter rules yet.
    std::fs::write(f.path("nolearn.xml"), binding("clean-traffic", None)).unwrap();
    let p = f.path("nolearn.xml");
    let err = failed(&f.nwfilter(&[
        "explain",
        "vnet0",
        "--binding",
        p.to_str().unwrap(),
        "--direction",
        "out",
        "--packet",
        "arp",
    ]));
    assert!(err.contains("still learning its IP address"), "{err}");
}

#[test]
fn explain_through_the_daemon_uses_the_learned_addresses_and_its_backend() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("sock");
    let engine = Engine::new(
        FilterStore::open(dir.path().join("etc")),
        BindingStore::open(dir.path().join("run")),
        Arc::new(RecordingRunner::new()),
    )
    .with_backend(Backend::Xtables);
    let service = Arc::new(EngineService::new(engine));
    service
        .call(Op::BindingCreate {
            xml: binding("clean-traffic", Some("10.0.0.5")),
        })
        .unwrap();
    // As the learner would: the binding leaves IP to learning.
    service
        .call(Op::BindingDelete {
            portdev: "vnet0".into(),
        })
        .unwrap();
    let learning = binding("clean-traffic", None);
    std::fs::write(dir.path().join("run/vnet0.xml"), &learning).unwrap();
    let port = IfName::new("vnet0").unwrap();
    service
        .engine()
        .set_learned(&port, vec!["10.0.0.7".parse().unwrap()])
        .unwrap();
    service_socket::serve(service.clone(), &socket);
    let explain = |spec: &str, more: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_nwfilter"))
            .arg("--connect")
            .arg(&socket)
            .args([
                "explain",
                "vnet0",
                "--direction",
                "out",
                "--json",
                "--packet",
                spec,
            ])
            .args(more)
            .output()
            .unwrap();
        serde_json::from_str::<serde_json::Value>(&ok(&out)).unwrap()
    };
    let learned = explain("arp spa=10.0.0.7 tpa=10.0.0.1", &[]);
    assert_eq!(learned["verdict"], "accept", "{learned}");
    // The backend that holds the port's rules, unless asked otherwise.
    assert_eq!(learned["backend"], "xtables");
    let other = explain("arp spa=10.0.0.5 tpa=10.0.0.1", &["--backend", "nftables"]);
    assert_eq!(other["verdict"], "drop", "{other}");
    assert_eq!(other["backend"], "nftables");
    // The same verdicts without the daemon, from the store and the
    // learned-address file it keeps.
    let out = nwfilter(
        dir.path(),
        &[
            "explain",
            "vnet0",
            "--direction",
            "out",
            "--packet",
            "arp spa=10.0.0.7",
        ],
        None,
    );
    assert!(ok(&out).contains("verdict: accepted"));
}

#[test]
fn graph_prints_the_filterref_dag_as_dot_and_svg() {
    let f = Files::new();
    let dot = ok(&f.nwfilter(&["graph", "no-smtp"]));
    assert!(dot.starts_with("digraph filters {"), "{dot}");
    assert!(dot.contains("\"no-smtp\" [label=\"no-smtp\\nchain root (priority 0)\\n1 rules: 1 out, 0 in, 0 inout\\n1 references\", style=bold];"), "{dot}");
    assert!(dot.contains("\"no-smtp\" -> \"clean-traffic\";"));
    assert!(dot.contains("\"no-arp-spoofing\" -> \"no-arp-ip-spoofing\";"));
    assert!(dot.contains("\"no-ip-spoofing\" [label=\"no-ip-spoofing\\nchain ipv4-ip (priority -710)\\n3 rules: 3 out"));
    let err = failed(&f.nwfilter(&["graph", "missing"]));
    assert!(err.contains("missing"), "{err}");
    // SVG needs graphviz: without `dot` on PATH the error says so.
    let empty = f.path("no-bin");
    std::fs::create_dir_all(&empty).unwrap();
    let err = failed(&nwfilter(
        f.dir.path(),
        &["graph", "no-smtp", "--format", "svg"],
        Some(empty.to_str().unwrap()),
    ));
    assert!(
        err.contains("needs graphviz's `dot` command") && err.contains("--format dot"),
        "{err}"
    );
    let has_dot = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("dot").is_file()));
    if has_dot {
        let svg = ok(&f.nwfilter(&["graph", "no-smtp", "--format", "svg"]));
        // Graphviz writes '-' as an entity in SVG text.
        assert!(
            svg.contains("<svg") && svg.contains("no&#45;arp&#45;ip&#45;spoofing"),
            "{svg}"
        );
    } else {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI installs graphviz (.ci/run)"
        );
    }
}

#[test]
fn explain_from_files_needs_no_root() {
    use std::os::unix::fs::PermissionsExt;
    let is_root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n");
    if !is_root || !netns_lab::on_path("setpriv") {
        netns_lab::note_skip(
            "explain_from_files_needs_no_root",
            "needs root to drop to nobody",
        );
        return;
    }
    let f = Files::new();
    // Readable by anyone, writable by nobody but root.
    for (path, mode) in [
        (f.dir.path().to_owned(), 0o755),
        (f.path("etc"), 0o755),
        (f.path("b.xml"), 0o644),
        (f.path("etc/no-smtp.xml"), 0o644),
    ] {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            env!("CARGO_BIN_EXE_nwfilter"),
        ])
        .arg("--config-dir")
        .arg(f.path("etc"))
        .arg("--state-dir")
        .arg(f.path("run"))
        .args([
            "explain",
            "vnet0",
            "--direction",
            "out",
            "--packet",
            "ip src=10.0.0.5 dst=10.0.0.25 tcp dport=25",
            "--binding",
        ])
        .arg(f.path("b.xml"))
        .output()
        .unwrap();
    assert!(ok(&out).contains("verdict: dropped"));
}

#[test]
fn explain_says_when_the_other_backend_would_decide_otherwise() {
    let f = Files::new();
    std::fs::write(
        f.path("etc/udp-only.xml"),
        "<filter name='udp-only' chain='ipv4' priority='-700'>\n\
         <rule action='accept' direction='out'><ip protocol='udp'/></rule>\n</filter>\n",
    )
    .unwrap();
    std::fs::write(
        f.path("etc/top.xml"),
        "<filter name='top' chain='root'>\n<filterref filter='udp-only'/>\n\
         <rule action='drop' direction='out' priority='1000'/>\n</filter>\n",
    )
    .unwrap();
    std::fs::write(f.path("top.xml"), binding("top", None)).unwrap();
    let b = f.path("top.xml");
    let spec = "ip src=10.0.0.5 dst=10.0.0.1 tcp dport=25";
    let args = |backend| {
        [
            "explain",
            "vnet0",
            "--binding",
            b.to_str().unwrap(),
            "--direction",
            "out",
        ]
        .into_iter()
        .chain(["--packet", spec, "--backend", backend])
        .map(str::to_owned)
        .collect::<Vec<String>>()
    };
    let run = |backend| {
        let a = args(backend);
        ok(&f.nwfilter(&a.iter().map(String::as_str).collect::<Vec<_>>()))
    };
    let x = run("xtables");
    assert!(x.contains("verdict: accepted"), "{x}");
    assert!(
        x.contains(
            "bridge from-vm sub ipv4: ran out of rules; an ebtables user chain's policy is ACCEPT"
        ),
        "{x}"
    );
    assert!(
        x.contains("backend difference: with nftables this packet is dropped"),
        "{x}"
    );
    let n = run("nftables");
    assert!(n.contains("verdict: dropped"), "{n}");
    assert!(
        n.contains(&format!(
            "filter top, rule 1 (priority 1000, chain root) at {}:3",
            f.path("etc/top.xml").display()
        )),
        "{n}"
    );
    assert!(
        n.contains("backend difference: with xtables this packet is accepted"),
        "{n}"
    );
}
