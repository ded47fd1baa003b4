//! What a user meets at the command line (issue 23, items 13, 17, 18):
//! errors and warnings that name the file, `--strict`, `edit`'s "Try
//! again?", marked overrides, `net-render --backend nftables` (the nft script), generated
//! completions and man pages. No root needed: embedded mode here only
//! touches the directories.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

const FILTER: &str = "<filter name='no-smtp' chain='root'>
  <rule action='drop' direction='out'><tcp dstportstart='25'/></rule>
</filter>
";

/// libvirt-tck's arp-test: `protocolid` is not an `<arp>` attribute.
const TCK_ARP: &str = "<filter name='tck-arp' chain='root'>
  <rule action='accept' direction='out'>
    <arp srcmacaddr='1:2:3:4:5:6'
         protocolid='arp' opcode='Request'/>
  </rule>
</filter>
";

struct Dirs(tempfile::TempDir);

impl Dirs {
    fn new() -> Dirs {
        Dirs(tempfile::tempdir().unwrap())
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }
    /// `nwfilter --config-dir D/etc --state-dir D/run ARGS` with `input`
    /// on stdin and extra environment.
    fn run(&self, args: &[&str], env: &[(&str, &str)], input: &str) -> Output {
        let mut child = Command::new(env!("CARGO_BIN_EXE_nwfilter"))
            .arg("--config-dir")
            .arg(self.0.path().join("etc"))
            .arg("--state-dir")
            .arg(self.0.path().join("run"))
            .args(args)
            .envs(env.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(input.as_bytes()).unwrap();
        drop(stdin);
        child.wait_with_output().unwrap()
    }
    fn nwfilter(&self, args: &[&str]) -> Output {
        self.run(args, &[], "")
    }
}

fn ok(out: &Output) -> (String, String) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    texts(out)
}

fn failed(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1), "{}", texts(out).0);
    assert!(out.stdout.is_empty(), "nothing on stdout on failure");
    texts(out).1
}

fn texts(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn define_errors_name_the_file_not_input() {
    let d = Dirs::new();
    let bad = d.write("bad.xml", &FILTER.replace("'25'", "'70000'"));
    let err = failed(&d.nwfilter(&["define", bad.to_str().unwrap()]));
    assert!(
        err.contains(&format!("{}:2:", bad.display())) && !err.contains("<input>"),
        "{err}"
    );
}

#[test]
fn unknown_attributes_warn_with_file_and_line_and_strict_refuses() {
    let d = Dirs::new();
    let file = d.write("arp-test.xml", TCK_ARP);
    let path = file.to_str().unwrap();
    let (out, err) = ok(&d.nwfilter(&["format", path]));
    assert!(
        out.contains("opcode='Request'") && !out.contains("protocolid"),
        "{out}"
    );
    assert!(
        err.contains(&format!(
            "warning: {path}:4:10: <arp> attribute protocolid=\"arp\""
        )),
        "{err}"
    );
    let err = failed(&d.nwfilter(&["format", "--strict", path]));
    assert!(
        err.contains("unknown attribute") && err.contains("protocolid"),
        "{err}"
    );

    let err = failed(&d.nwfilter(&["define", "--strict", path]));
    assert!(err.contains(&format!("{path}:4:10")), "{err}");
    assert!(
        !d.0.path().join("etc/tck-arp.xml").exists(),
        "nothing stored"
    );
    let (out, err) = ok(&d.nwfilter(&["define", path]));
    assert_eq!(out, format!("Network filter tck-arp defined from {path}\n"));
    assert!(err.contains("protocolid"), "{err}");
    let (xml, _) = ok(&d.nwfilter(&["dumpxml", "tck-arp"]));
    assert!(!xml.contains("protocolid"), "{xml}");
}

#[test]
fn a_very_long_filter_name_is_a_clear_error() {
    let d = Dirs::new();
    let long = "f".repeat(300);
    let file = d.write("long.xml", &FILTER.replace("no-smtp", &long));
    let err = failed(&d.nwfilter(&["define", file.to_str().unwrap()]));
    assert!(
        err.contains("longer than 200 bytes") && err.contains("long.xml:1:"),
        "{err}"
    );
}

/// An "editor" that breaks the port on its first run and fixes it on the
/// second (it counts its runs in a file next to itself). It edits the
/// attribute, not any "25": the filter's random UUID may hold those
/// digits too (the first edit then broke the UUID instead of the port).
fn two_step_editor(d: &Dirs) -> String {
    let script = d.write(
        "editor.sh",
        "count=\"$(dirname \"$0\")/runs\"\n\
         echo x >> \"$count\"\n\
         if [ \"$(wc -l < \"$count\")\" -eq 1 ]; then sed -i \"s/dstportstart='25'/dstportstart='99999'/\" \"$1\";\n\
         else sed -i \"s/dstportstart='99999'/dstportstart='587'/\" \"$1\"; fi\n",
    );
    format!("sh {}", script.display())
}

#[test]
fn an_invalid_edit_asks_to_try_again_and_y_edits_again() {
    let d = Dirs::new();
    let file = d.write("f.xml", FILTER);
    ok(&d.nwfilter(&["define", file.to_str().unwrap()]));
    let editor = two_step_editor(&d);
    let out = d.run(&["edit", "no-smtp"], &[("EDITOR", &editor)], "y\n");
    let (stdout, stderr) = ok(&out);
    assert_eq!(stdout, "Network filter no-smtp XML configuration edited.\n");
    assert!(
        stderr.contains("99999") && stderr.contains("Failed. Try again? [y,n,?]"),
        "{stderr}"
    );
    let (xml, _) = ok(&d.nwfilter(&["dumpxml", "no-smtp"]));
    assert!(xml.contains("dstportstart='587'"), "{xml}");
}

#[test]
fn an_invalid_edit_answered_n_changes_nothing() {
    let d = Dirs::new();
    let file = d.write("f.xml", FILTER);
    ok(&d.nwfilter(&["define", file.to_str().unwrap()]));
    let (before, _) = ok(&d.nwfilter(&["dumpxml", "no-smtp"]));
    let editor = two_step_editor(&d);
    let err = failed(&d.run(&["edit", "no-smtp"], &[("EDITOR", &editor)], "?\nn\n"));
    assert!(
        err.contains("Try again?") && err.contains("give up") && err.contains("nothing changed"),
        "{err}"
    );
    assert!(
        err.contains("no-smtp.xml:4:"),
        "the error names the edited file: {err}"
    );
    assert_eq!(ok(&d.nwfilter(&["dumpxml", "no-smtp"])).0, before);
}

#[test]
fn list_marks_a_stored_filter_that_overrides_a_built_in() {
    let d = Dirs::new();
    let file = d.write(
        "allow-arp.xml",
        "<filter name='allow-arp' chain='arp'><rule action='drop' direction='inout'/></filter>",
    );
    let (before, _) = ok(&d.nwfilter(&["list"]));
    assert!(!before.contains("overrides"), "{before}");
    ok(&d.nwfilter(&["define", file.to_str().unwrap()]));
    let (list, _) = ok(&d.nwfilter(&["list"]));
    let marked: Vec<&str> = list.lines().filter(|l| l.contains("overrides")).collect();
    assert_eq!(marked.len(), 1, "{list}");
    assert!(
        marked[0].ends_with("allow-arp (overrides the built-in)"),
        "{list}"
    );
    let (json, _) = ok(&d.nwfilter(&["list", "--json"]));
    let rows: serde_json::Value = serde_json::from_str(&json).unwrap();
    let row = |name: &str| {
        rows.as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == name)
            .unwrap()
            .clone()
    };
    assert_eq!(row("allow-arp")["overrides_builtin"], true);
    assert_eq!(row("clean-traffic")["overrides_builtin"], false);
}

#[test]
fn net_render_prints_the_nft_script_with_backend_nftables() {
    let d = Dirs::new();
    let net = d.write(
        "net.xml",
        "<network><name>t</name><bridge name='virbr7'/><forward/>\
         <ip address='10.7.0.1' prefix='24'/></network>",
    );
    let path = net.to_str().unwrap();
    let (out, _) = ok(&d.nwfilter(&["net-render", "--backend", "nftables", path]));
    assert!(out.starts_with("add table inet nwfilter-net\n"), "{out}");
    assert!(
        out.contains("add rule inet nwfilter-net nat-virbr7 ip saddr 10.7.0.0/24 ip daddr != 10.7.0.0/24 masquerade\n"),
        "{out}"
    );
    assert!(!out.contains("iptables"), "{out}");
    let (out, _) = ok(&d.nwfilter(&["net-render", "--backend", "xtables", path]));
    assert!(out.starts_with("iptables "), "{out}");
    // A bridge name nft's text syntax cannot hold as a chain name.
    let odd = d.write(
        "odd.xml",
        "<network><name>o</name><bridge name='br@7'/><forward/>\
         <ip address='10.8.0.1' prefix='24'/></network>",
    );
    let odd = odd.to_str().unwrap();
    let err = failed(&d.nwfilter(&["net-render", "--backend", "nftables", odd]));
    assert!(err.contains("odd.xml") && err.contains("'br@7'"), "{err}");
}

#[test]
fn completions_and_man_pages_are_generated_and_name_the_verbs() {
    let d = Dirs::new();
    let verbs = [
        "define",
        "binding-create",
        "binding-delete",
        "net-start",
        "completions",
    ];
    for shell in ["bash", "zsh", "fish"] {
        let (script, _) = ok(&d.nwfilter(&["completions", shell]));
        for verb in verbs {
            assert!(script.contains(verb), "{shell}: {verb}");
        }
    }
    let (page, _) = ok(&d.nwfilter(&["man"]));
    assert!(page.contains(".TH nwfilter 1"), "{page}");
    for verb in verbs {
        assert!(page.contains(&verb.replace('-', "\\-")), "man: {verb}");
    }
    let dir = d.0.path().join("man1");
    let (written, _) = ok(&d.nwfilter(&["man", "--dir", dir.to_str().unwrap()]));
    assert!(written.lines().count() > 20, "{written}");
    let define = std::fs::read_to_string(dir.join("nwfilter-define.1")).unwrap();
    assert!(define.contains(".TH nwfilter-define 1") && define.contains("\\-\\-strict"));
}

/// The service (daemon or embedded) passes what it ignored back to any
/// client, one `warning:` line each after the reply.
#[test]
fn the_service_passes_warnings_back_to_the_client() {
    use std::sync::Arc;

    use nwfilter_driver::{BindingStore, Engine, FilterStore};
    use nwfilter_service::{EngineService, Op, Reply};

    let d = Dirs::new();
    let engine = Engine::new(
        FilterStore::open(d.0.path().join("etc")),
        BindingStore::open(d.0.path().join("run")),
        Arc::new(host_io::RecordingRunner::new()),
    );
    let service = EngineService::new(engine);
    let reply = service.call(Op::Define {
        xml: TCK_ARP.to_owned(),
    });
    let Ok(Reply::Done { message }) = reply else {
        panic!("{reply:?}");
    };
    let lines: Vec<&str> = message.lines().collect();
    assert_eq!(lines[0], "Network filter tck-arp defined");
    assert_eq!(lines.len(), 2, "{message}");
    assert!(
        lines[1].starts_with("warning: <input>:4:10: <arp> attribute protocolid=\"arp\""),
        "{message}"
    );
}

#[test]
fn an_error_and_its_cause_are_each_said_once() {
    // The client error names its cause in its own text and also returns
    // it as its source; the printed chain must not repeat it.
    let d = Dirs::new();
    let missing = d.0.path().join("no-such-dir").join("nwfilterd.sock");
    let out = d.nwfilter(&["--connect", missing.to_str().unwrap(), "list"]);
    let err = failed(&out);
    assert!(err.contains("cannot connect to the daemon at"), "{err}");
    assert_eq!(err.matches("No such file or directory").count(), 1, "{err}");
}
