//! `nwfilter render`: the port's program on stdout, or an error on stderr
//! with exit status 1 and nothing on stdout.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn write_temp(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nwfilter-render-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn render(args: &[&str], file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nwfilter"))
        .arg("render")
        .args(args)
        .arg(file)
        .output()
        .unwrap()
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
        "printed {:?}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr.clone()).unwrap()
}

const BINDING: &str = "<filterbinding><owner><name>vm</name>\
    <uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner>\
    <portdev name='vnet7'/><mac address='52:54:00:56:44:32'/>\
    <filterref filter='clean-traffic'><parameter name='IP' value='10.0.0.5'/></filterref>\
    </filterbinding>";

#[test]
fn a_binding_renders_clean_traffic_from_the_built_in_filters() {
    let path = write_temp("binding.xml", BINDING);
    let text = ok(&render(&["--portdev", "vnet0"], &path));
    // --portdev wins over the binding's own device; its MAC and IP are used.
    assert!(text
        .contains("ebtables --concurrent -t nat -A I-vnet0-mac -s 52:54:00:56:44:32 -j RETURN\n"));
    assert!(text.contains("--ip-source 10.0.0.5 -j RETURN\n"));
    assert!(
        text.ends_with("ebtables --concurrent -t nat -A POSTROUTING -o vnet0 -j libvirt-O-vnet0\n")
    );
}

#[test]
fn a_binding_names_its_own_port_and_a_filter_needs_one() {
    let path = write_temp("binding-own-port.xml", BINDING);
    let text = ok(&render(&[], &path));
    assert!(
        text.contains("-A PREROUTING -i vnet7 -j libvirt-I-vnet7\n"),
        "{text}"
    );
    let filter = write_temp(
        "no-port.xml",
        "<filter name='np'><rule action='drop' direction='in'/></filter>",
    );
    let err = failed(&render(&[], &filter));
    assert!(err.contains("--portdev DEV is needed"), "{err}");
}

#[test]
fn params_override_the_binding_and_repeat_into_lists() {
    let path = write_temp("binding-list.xml", BINDING);
    let text = ok(&render(
        &[
            "--portdev",
            "vnet0",
            "--param",
            "IP=10.0.0.8",
            "--param",
            "IP=10.0.0.9",
        ],
        &path,
    ));
    assert!(!text.contains("10.0.0.5"));
    assert!(text.contains("--ip-source 10.0.0.8 -j RETURN\n"));
    assert!(text.contains("--ip-source 10.0.0.9 -j RETURN\n"));
}

#[test]
fn restore_format_has_a_block_per_tool() {
    let path = write_temp("binding-restore.xml", BINDING);
    let text = ok(&render(
        &["--portdev", "vnet0", "--format", "restore"],
        &path,
    ));
    // Chains declared first, in descending order of name (ebtables-nft
    // inserts each into a name-sorted list from its smallest end).
    assert!(
        text.starts_with("ebtables-restore --noflush\n*nat\n:libvirt-O-vnet0 ACCEPT\n"),
        "{text}"
    );
    let first_rule = text.find("\n-A ").unwrap();
    assert!(
        text[..first_rule].contains("\n:I-vnet0-mac ACCEPT\n"),
        "{text}"
    );
    assert!(text.ends_with("COMMIT\n"));
}

#[test]
fn a_filter_using_mac_needs_mac() {
    let filter = write_temp(
        "uses-mac.xml",
        "<filter name='uses-mac'><rule action='return' direction='out'>\
         <mac srcmacaddr='$MAC'/></rule></filter>",
    );
    let err = failed(&render(&["--portdev", "vnet0"], &filter));
    assert!(
        err.contains("filter 'uses-mac' uses $MAC: pass the VM's MAC address with --mac"),
        "{err}"
    );
    let text = ok(&render(
        &["--portdev", "vnet0", "--mac", "52:54:00:AB:CD:EF"],
        &filter,
    ));
    assert_eq!(
        text,
        "ebtables --concurrent -t nat -N libvirt-I-vnet0\n\
         ebtables --concurrent -t nat -A libvirt-I-vnet0 -s 52:54:00:ab:cd:ef -j RETURN\n\
         ebtables --concurrent -t nat -A PREROUTING -i vnet0 -j libvirt-I-vnet0\n"
    );
}

#[test]
fn bad_port_names_are_refused_before_anything_is_printed() {
    let path = write_temp("binding-badport.xml", BINDING);
    for dev in ["", "a-very-long-device-name", "vnet/0", "vnet 0", "vnet0\n"] {
        let err = failed(&render(&["--portdev", dev], &path));
        assert!(
            err.contains("--portdev") && err.contains("interface name"),
            "{dev:?}: {err}"
        );
    }
}

#[test]
fn shell_specials_in_comments_are_quoted_and_line_breaks_refused() {
    let quoted = write_temp(
        "comment.xml",
        "<filter name='c'><rule action='accept' direction='out'>\
         <tcp comment='it&apos;s $(rm -rf x)'/></rule></filter>",
    );
    let text = ok(&render(&["--portdev", "vnet0"], &quoted));
    assert!(
        text.contains("-m comment --comment 'it'\\''s $(rm -rf x)' -j RETURN\n"),
        "{text}"
    );
    let broken = write_temp(
        "comment-nl.xml",
        "<filter name='c'><rule action='accept' direction='out'>\
         <tcp comment='two&#10;lines'/></rule></filter>",
    );
    let err = failed(&render(&["--portdev", "vnet0"], &broken));
    assert!(err.contains("comment"), "{err}");
}

#[test]
fn unbound_variables_and_malformed_params_are_errors() {
    let path = write_temp(
        "needs-ip.xml",
        "<filter name='n'><filterref filter='clean-traffic'/></filter>",
    );
    let err = failed(&render(
        &["--portdev", "vnet0", "--mac", "52:54:00:00:00:01"],
        &path,
    ));
    assert!(err.contains("$IP") && err.contains("--param IP="), "{err}");
    let err = failed(&render(&["--portdev", "vnet0", "--param", "IP"], &path));
    assert!(err.contains("expected NAME=VALUE"), "{err}");
}

/// `../shared` beside the repository (or `$LIBVIRT_CORPUS`'s parent's
/// parent), where libvirt's corpus and the conformance tool live.
fn shared_dir() -> Option<PathBuf> {
    let corpus = std::env::var_os("LIBVIRT_CORPUS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/conformance/libvirt-9.0.0")
        });
    let shared = corpus.parent()?.parent()?.to_path_buf();
    let usable = corpus.join("nwfilterxml2firewall").is_dir()
        && shared.join("tools/libvirt-conformance").is_file();
    usable.then_some(shared)
}

/// Runs libvirt's own `nwfilterxml2firewall` cases through the project's
/// conformance tool, in both output formats.
#[test]
#[allow(clippy::print_stderr)] // the skip notice is for the person running the tests
fn libvirt_xml2firewall_corpus_passes_in_both_formats() {
    let Some(shared) = shared_dir() else {
        eprintln!("skipped: libvirt corpus or conformance tool not found (set LIBVIRT_CORPUS)");
        return;
    };
    let tool = shared.join("tools/libvirt-conformance");
    let restore = write_temp(
        "nwfilter-restore.sh",
        &format!(
            "#!/bin/sh\nverb=$1; shift\nexec '{}' \"$verb\" --format restore \"$@\"\n",
            env!("CARGO_BIN_EXE_nwfilter")
        ),
    );
    std::fs::set_permissions(&restore, std::fs::Permissions::from_mode(0o755)).unwrap();
    for bin in [PathBuf::from(env!("CARGO_BIN_EXE_nwfilter")), restore] {
        let out = Command::new("python3")
            .arg(&tool)
            .arg("--bin")
            .arg(&bin)
            .arg("--verbose")
            .arg("xml2firewall")
            .env("LIBVIRT_CORPUS", shared.join("conformance/libvirt-9.0.0"))
            .output()
            .expect("python3 runs the conformance tool");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.trim_end().ends_with("39 passed, 0 failed"),
            "{}: {text}",
            bin.display()
        );
    }
}

/// Our built-in filters lower and render exactly like libvirt's own
/// default filters (read from the corpus) for the same port and values.
#[test]
#[allow(clippy::print_stderr)] // the skip notice is for the person running the tests
fn builtin_filters_render_like_libvirts_default_filters() {
    let Some(shared) = shared_dir() else {
        eprintln!("skipped: libvirt corpus not found (set LIBVIRT_CORPUS)");
        return;
    };
    let defaults = shared.join("conformance/libvirt-9.0.0/default-filters");
    let mut names: Vec<String> = std::fs::read_dir(&defaults)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|f| f.strip_suffix(".xml").map(str::to_owned))
        .collect();
    names.sort();
    assert_eq!(names.len(), 24);
    let args = [
        "--portdev",
        "vnet0",
        "--mac",
        "52:54:00:56:44:32",
        "--param",
        "IP=10.0.0.5",
        "--param",
        "IPV6=fd00::5",
        "--param",
        "GATEWAY_MAC=52:54:00:aa:bb:cc",
    ];
    for name in names {
        let server = if name.contains("dhcpv6") {
            "fd00::1"
        } else {
            "10.0.0.1"
        };
        let top = write_temp(
            &format!("uses-{name}.xml"),
            &format!("<filter name='top'><filterref filter='{name}'/></filter>"),
        );
        let mut ours = args.to_vec();
        let dhcp = format!("DHCPSERVER={server}");
        ours.extend(["--param", &dhcp]);
        let mut libvirts = ours.clone();
        let dir = defaults.to_str().unwrap();
        libvirts.extend(["--filter-dir", dir]);
        let want = ok(&render(&libvirts, &top));
        assert!(want.contains(" -A "), "{name}: no rules rendered");
        assert_eq!(ok(&render(&ours, &top)), want, "{name}");
    }
}
