//! A port whose name a firewall tool reads as an option (`-j`): Linux
//! accepts the interface, `binding-create` refuses it before anything is
//! applied or stored, and a binding an older version stored under such a
//! name can still be deleted. Real tools, in a network namespace.

use netns_lab as support;

use std::process::Output;

use support::{Lab, Scratch};

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_port_named_like_an_option_is_refused_and_an_old_one_can_be_deleted() {
    if !support::can_run("a_port_named_like_an_option_is_refused_and_an_old_one_can_be_deleted") {
        return;
    }
    let scratch = Scratch::new("optname");
    let (etc, run) = (scratch.etc(), scratch.run());
    let lab = Lab::with_admin_rules(1);
    let a = &lab.guests[0];
    // The kernel takes the name.
    lab.host.ok(&[
        "ip", "link", "add", "name", "-j", "type", "veth", "peer", "name", "pj0",
    ]);
    lab.host
        .ok(&["ip", "link", "set", "dev", "-j", "master", "br0", "up"]);
    let nwfilter = |args: &[&str]| {
        let mut argv = vec![
            env!("CARGO_BIN_EXE_nwfilter"),
            "--config-dir",
            etc.to_str().unwrap(),
            "--state-dir",
            run.to_str().unwrap(),
        ];
        argv.extend(args);
        lab.host.run(&argv)
    };
    let dash_binding = a.binding_xml("clean-traffic").replace("'vnet0'", "'-j'");
    assert!(dash_binding.contains("<portdev name='-j'/>"));
    let dash_file = scratch.0.join("dash.xml");
    std::fs::write(&dash_file, &dash_binding).unwrap();
    let before = lab.snapshot();

    let out = nwfilter(&["binding-create", dash_file.to_str().unwrap()]);
    let (stdout, stderr) = text(&out);
    assert!(!out.status.success() && stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("\"-j\"") && stderr.contains("read it as an option"),
        "the error names the value and why: {stderr}"
    );
    assert!(!run.join("-j.xml").exists(), "nothing is stored");
    assert_eq!(lab.snapshot(), before, "nothing is applied");

    // A binding an older version stored under that name, next to a good one.
    let good = scratch.0.join("vnet0.xml");
    std::fs::write(&good, a.binding_xml("clean-traffic")).unwrap();
    let out = nwfilter(&["binding-create", good.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out).1);
    std::fs::write(run.join("-j.xml"), &dash_binding).unwrap();
    let out = nwfilter(&["reload"]);
    assert!(
        !text(&out).1.contains("CHAIN_DEL"),
        "the old binding is not applied: {}",
        text(&out).1
    );
    a.set_ip("10.77.0.99");
    assert!(!a.pings("10.77.0.1"), "vnet0 stays filtered");
    a.set_ip(&a.ip);

    let out = nwfilter(&["binding-delete", "--", "-j"]);
    let (_, stderr) = text(&out);
    assert!(
        stderr.contains("'-j'") && stderr.contains("was removed"),
        "{stderr}"
    );
    assert!(!run.join("-j.xml").exists(), "the old record is gone");
    let out = nwfilter(&["binding-delete", "--", "-j"]);
    assert!(!out.status.success());
    assert!(
        text(&out).1.contains("read it as an option"),
        "{}",
        text(&out).1
    );

    let out = nwfilter(&["binding-delete", "vnet0"]);
    assert!(out.status.success(), "{}", text(&out).1);
    assert_eq!(lab.snapshot(), before, "nothing of ours is left");
}
