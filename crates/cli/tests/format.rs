//! `nwfilter format`: normalised output on stdout, or an error on stderr
//! with exit status 1 and nothing on stdout.

use std::path::PathBuf;
use std::process::{Command, Output};

fn write_temp(name: &str, text: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("nwfilter-format-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn format(path: &PathBuf) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nwfilter"))
        .arg("format")
        .arg(path)
        .output()
        .unwrap()
}

#[test]
fn prints_a_filter_normalised() {
    let path = write_temp(
        "ok.xml",
        "<filter name='f' chain='ipv4-x'><uuid>5c6d49afb0716127b4ec6f8ed4b55335</uuid>\
         <!-- dropped --><rule action='drop' direction='out'>\
         <ip srcipaddr='10.1' srcipmask='255.255.0.0'/></rule></filter>",
    );
    let out = format(&path);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8(out.stdout).unwrap(),
        "<filter name='f' chain='ipv4-x' priority='-700'>\n  \
         <uuid>5c6d49af-b071-6127-b4ec-6f8ed4b55335</uuid>\n  \
         <rule action='drop' direction='out' priority='500'>\n    \
         <ip srcipaddr='10.0.0.1' srcipmask='16'/>\n  </rule>\n</filter>\n"
    );
}

#[test]
fn invalid_input_fails_with_location_on_stderr_only() {
    let path = write_temp(
        "bad.xml",
        "<filter name='f'>\n  <rule action='drop' direction='out'>\n    \
         <tcp dstportstart='70000'/>\n  </rule>\n</filter>\n",
    );
    let out = format(&path);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains("bad.xml:3:10: <tcp> attribute dstportstart=\"70000\""),
        "{err}"
    );
}

#[test]
fn other_root_elements_are_refused() {
    let path = write_temp("other.xml", "<domain/>");
    let out = format(&path);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("<domain>"));
}
