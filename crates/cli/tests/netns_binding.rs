//! `nwfilter binding-create` / `binding-delete` in a network namespace,
//! without a daemon: filters from the config directory and the built-in
//! set, the binding recorded in the state directory, real packets.

use netns_lab as support;

use std::time::Duration;

use support::{add_admin_rules, without_counters, Lab, Scratch};

const NO_SPAMMING: &str = "<filter name='no-spamming' chain='root'>
  <filterref filter='clean-traffic'/>
  <rule action='drop' direction='out' priority='500'>
    <tcp dstportstart='25'/>
  </rule>
</filter>
";

#[test]
fn binding_create_and_delete_without_a_daemon() {
    if !support::can_run("binding_create_and_delete_without_a_daemon") {
        return;
    }
    let scratch = Scratch::new("create");
    let (etc, run) = (scratch.etc(), scratch.run());
    std::fs::write(etc.join("no-spamming.xml"), NO_SPAMMING).unwrap();
    let lab = Lab::new(2);
    lab.wait_ready();
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let file = scratch.0.join("binding.xml");
    std::fs::write(&file, a.binding_xml("no-spamming")).unwrap();
    add_admin_rules(&lab.host);
    let before = without_counters(&lab.ruleset());
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

    let out = nwfilter(&["binding-create", file.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "Network filter binding on vnet0 created\n"
    );
    assert!(run.join("vnet0.xml").exists(), "the binding is recorded");
    let _l25 = b.ns.spawn(&["nc", "-l", "-k", "25"]);
    let _l80 = b.ns.spawn(&["nc", "-l", "-k", "80"]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        !a.connects(&b.ip, 25),
        "no-spamming from the config dir applies"
    );
    assert!(a.connects(&b.ip, 80));
    a.set_ip("10.77.0.99");
    assert!(!a.pings(&b.ip), "built-in clean-traffic applies");
    a.set_ip(&a.ip);

    let again = nwfilter(&["binding-create", file.to_str().unwrap()]);
    assert!(!again.status.success() && again.stdout.is_empty());
    assert!(String::from_utf8_lossy(&again.stderr).contains("vnet0 already has a filter binding"));

    let out = nwfilter(&["binding-delete", "vnet0"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!run.join("vnet0.xml").exists());
    assert_eq!(
        without_counters(&lab.ruleset()),
        before,
        "nothing of ours is left"
    );
    assert!(a.connects(&b.ip, 25));

    let missing = nwfilter(&["binding-delete", "vnet0"]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("no filter binding for port \"vnet0\"")
    );
}
