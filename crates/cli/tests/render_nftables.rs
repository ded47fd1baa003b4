//! `nwfilter render --backend nftables`: the nftables transaction as an
//! `nft -f` script, or as JSON with `--format json`.

use std::process::{Command, Output};

fn nwfilter(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_nwfilter"))
        .args(args)
        .output()
        .unwrap()
}

/// A fresh file per call: tests run in parallel, and rewriting one shared
/// file while another test's `nwfilter` reads it made them flaky.
fn binding_file() -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("nwfilter-render-nft-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("binding-{n}.xml"));
    std::fs::write(
        &path,
        "<filterbinding>
  <owner><name>vm1</name><uuid>d217f2d7-5a04-0e01-8b98-ec2743436b74</uuid></owner>
  <portdev name='vnet0'/>
  <mac address='52:54:00:12:34:56'/>
  <filterref filter='clean-traffic'><parameter name='IP' value='10.0.0.5'/></filterref>
</filterbinding>",
    )
    .unwrap();
    path
}

#[test]
fn prints_the_nft_script() {
    let file = binding_file();
    let out = nwfilter(&[
        "render",
        "--backend",
        "nftables",
        "--portdev",
        "vnet0",
        file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    // Shared chains with every per-port value in sets, the RARP
    // addresses (raw header fields) in sets declared by `typeof`.
    assert!(text.starts_with("# template t"), "{text}");
    assert!(text.contains("\n# every rule is shared\n"), "{text}");
    assert!(
        text.contains("{ typeof iifname . ether saddr . @nh,64,48 . @nh,144,48; }"),
        "{text}"
    );
    assert!(text.contains("\nadd table bridge nwfilter\n"), "{text}");
    // The MAC check (I-mac: lookup, return, drop) is one negated lookup
    // written into the root chain.
    assert!(text.contains(" iifname . ether saddr != @s0/t"), "{text}");
    assert!(text.contains(" { \"vnet0\" . 10.0.0.5 }\n"), "{text}");
    assert!(
        text.contains("create element bridge nwfilter from-vm { \"vnet0\" : jump I/t"),
        "{text}"
    );
    assert!(!text.contains("I-mac/vnet0"), "{text}");
}

#[test]
fn prints_the_same_transaction_as_json() {
    let file = binding_file();
    let out = nwfilter(&[
        "render",
        "--backend",
        "nftables",
        "--format",
        "json",
        "--portdev",
        "vnet0",
        file.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let cmds = json["nftables"].as_array().unwrap();
    let script = nwfilter(&[
        "render",
        "--backend",
        "nftables",
        "--portdev",
        "vnet0",
        file.to_str().unwrap(),
    ]);
    let script = String::from_utf8(script.stdout).unwrap();
    let lines = script.lines().filter(|l| !l.starts_with('#')).count();
    // nft's JSON cannot declare a `typeof` set: the RARP rules go into two
    // chains of the port's own (add, flush, one rule each) and two verdict
    // maps with an element each, instead of two sets with an element each.
    assert_eq!(cmds.len(), lines + 6, "{script}");
    // The note that JSON cannot carry goes to stderr.
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(note.starts_with("# template t"), "{note}");
    assert!(
        note.contains("# in a chain of the port's own: chain I-rarp/t"),
        "{note}"
    );
    assert_eq!(
        cmds[0],
        serde_json::json!({"add": {"table": {"family": "bridge", "name": "nwfilter"}}})
    );
}

#[test]
fn formats_of_the_other_backend_are_refused() {
    let file = binding_file();
    let path = file.to_str().unwrap();
    let restore = nwfilter(&[
        "render",
        "--backend",
        "nftables",
        "--format",
        "restore",
        "--portdev",
        "vnet0",
        path,
    ]);
    assert_eq!(restore.status.code(), Some(1));
    assert!(restore.stdout.is_empty());
    assert!(String::from_utf8_lossy(&restore.stderr).contains("xtables backend's"));
    let json = nwfilter(&["render", "--format", "json", "--portdev", "vnet0", path]);
    assert_eq!(json.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&json.stderr).contains("add --backend nftables"));
}
