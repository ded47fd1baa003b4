//! `nwfilterd` end to end in a network namespace: clients reach it over
//! its socket; rules flushed by someone else come back within 2 s; SIGHUP
//! re-applies; a restarted daemon still has its bindings and rules; many
//! concurrent clients each get the right reply to every call and leave
//! store and kernel consistent.

use netns_lab as support;

mod daemon_lab;
use daemon_lab::{call, start_daemon, Scratch};

use std::path::Path;
use std::time::{Duration, Instant};

use nwfilter_service::{Client, Op, Reply};
use support::{without_counters, Background, Lab};

/// Polls until `lab`'s ruleset equals `want`; returns how long it took.
fn until_ruleset(lab: &Lab, want: &str, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if without_counters(&lab.ruleset()) == want {
            return Some(start.elapsed());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// Sends `signal` to the daemon (a process this test started).
fn signal(daemon: &Background, signal: &str) {
    let pid = daemon.pid().to_string();
    let ok = std::process::Command::new("kill")
        .args(["-s", signal, &pid])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -s {signal} {pid}");
}

#[test]
fn the_daemon_applies_restores_reloads_and_survives_a_restart() {
    if !support::can_run("the_daemon_applies_restores_reloads_and_survives_a_restart") {
        return;
    }
    let scratch = Scratch::new("life");
    let lab = Lab::new(2);
    lab.wait_ready();
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let daemon = start_daemon(&lab.host, &scratch, &[]);
    let reply = call(
        &scratch,
        Op::BindingCreate {
            xml: a.binding_xml("clean-traffic"),
        },
    );
    assert_eq!(
        reply,
        Reply::Done {
            message: "Network filter binding on vnet0 created".into()
        }
    );
    assert!(a.pings(&b.ip));
    a.set_ip("10.77.0.99");
    assert!(!a.pings(&b.ip), "clean-traffic stops the spoofed address");
    let protected = without_counters(&lab.ruleset());

    // Someone flushes the iptables and ebtables rules: back within 2 s.
    lab.host.ok(&["iptables", "-F"]);
    lab.host.ok(&["ebtables", "-t", "nat", "-F"]);
    assert_ne!(without_counters(&lab.ruleset()), protected);
    let took = until_ruleset(&lab, &protected, Duration::from_secs(2));
    assert!(
        took.is_some(),
        "rules not restored within 2 s of a flush:\nwanted:\n{protected}\nfound:\n{}",
        without_counters(&lab.ruleset())
    );
    assert!(!a.pings(&b.ip), "restored rules filter again");

    // A firewall service restart that wipes every table.
    lab.host.ok(&["nft", "flush", "ruleset"]);
    assert!(
        until_ruleset(&lab, &protected, Duration::from_secs(2)).is_some(),
        "rules not restored within 2 s of `nft flush ruleset`"
    );

    // SIGHUP re-applies: the daemon keeps serving, rules unchanged.
    signal(&daemon, "HUP");
    std::thread::sleep(Duration::from_millis(300));
    let Reply::Bindings { bindings } = call(&scratch, Op::BindingList) else {
        panic!("binding-list")
    };
    assert_eq!(bindings.len(), 1);
    assert_eq!(bindings[0].portdev, "vnet0");
    assert_eq!(without_counters(&lab.ruleset()), protected);

    // SIGTERM: the daemon exits and the rules stay (guests stay protected).
    signal(&daemon, "TERM");
    let status = daemon.wait();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert_eq!(without_counters(&lab.ruleset()), protected);
    assert!(!a.pings(&b.ip));
    // What it knew of the tables is left for the next start.
    let handed_over = scratch.run().join("xtables-tables.handover");
    assert!(handed_over.exists(), "no tables handed over at the stop");

    // A new daemon finds the binding and keeps the rules exactly.
    let daemon = start_daemon(&lab.host, &scratch, &[]);
    assert!(
        !handed_over.exists(),
        "the handed-over tables were not taken"
    );
    let Reply::Xml { xml } = call(
        &scratch,
        Op::BindingDumpxml {
            portdev: "vnet0".into(),
        },
    ) else {
        panic!("binding-dumpxml")
    };
    assert!(xml.contains("<portdev name='vnet0'/>"), "{xml}");
    assert_eq!(without_counters(&lab.ruleset()), protected);
    a.set_ip(&a.ip);
    assert!(a.pings(&b.ip));

    call(
        &scratch,
        Op::BindingDelete {
            portdev: "vnet0".into(),
        },
    );
    drop(daemon);
}

#[test]
fn concurrent_clients_leave_store_and_kernel_consistent() {
    if !support::can_run("concurrent_clients_leave_store_and_kernel_consistent") {
        return;
    }
    const CLIENTS: usize = 20;
    const OPS: usize = 100;
    let scratch = Scratch::new("many");
    let lab = Lab::new(0);
    let daemon = start_daemon(&lab.host, &scratch, &[]);
    let socket = scratch.socket();
    // Each client owns one filter and one port; its operations interleave
    // with everyone else's on the daemon.
    let threads: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let socket = socket.clone();
            std::thread::spawn(move || client_run(&socket, i, OPS))
        })
        .collect();
    let mut expected = Vec::new();
    for t in threads {
        if let Some(port) = t.join().unwrap() {
            expected.push(port);
        }
    }
    expected.sort();

    let Reply::Bindings { bindings } = call(&scratch, Op::BindingList) else {
        panic!("binding-list")
    };
    let mut stored: Vec<String> = bindings.into_iter().map(|b| b.portdev).collect();
    stored.sort();
    assert_eq!(stored, expected, "the store holds exactly the last state");

    // The kernel holds rules for exactly those ports.
    let eb = lab.host.ok(&["ebtables-save", "-t", "nat"]);
    for i in 0..CLIENTS {
        let port = format!("cc{i}");
        let hooked = eb.contains(&format!("-A PREROUTING -i {port} -j libvirt-I-{port}"));
        assert_eq!(
            hooked,
            expected.contains(&port),
            "{port} in the kernel:\n{eb}"
        );
    }
    drop(daemon);
}

/// Client `i`: defines its filter, creates and deletes its binding, lists
/// filters and bindings, redefines (which rebuilds its binding); every
/// reply is checked against what the client knows of its own filter and
/// port (others change theirs at the same time). Odd clients end with a
/// binding. Returns its port if it ends with a binding.
fn client_run(socket: &Path, i: usize, ops: usize) -> Option<String> {
    let port = format!("cc{i}");
    let filter = format!("client-{i}");
    let mut client = Client::connect(socket).unwrap();
    let mut bound = false;
    let ends_bound = i % 2 == 1;
    let flips_after = |k: usize| (k + 1..ops).filter(|j| j % 5 == 1 || j % 5 == 3).count();
    for k in 0..ops {
        let op = match k % 5 {
            0 => Op::Define {
                xml: format!(
                    "<filter name='{filter}' chain='root'>\
                       <rule action='drop' direction='out'><tcp dstportstart='{}'/></rule>\
                       <filterref filter='clean-traffic'/></filter>",
                    1000 + k
                ),
            },
            1 | 3 if !bound => Op::BindingCreate {
                xml: format!(
                    "<filterbinding><owner><name>vm{i}</name>\
                       <uuid>d54df46f-1ab5-4a22-8618-4560ef5f{i:04}</uuid></owner>\
                       <portdev name='{port}'/><mac address='52:54:00:00:01:{i:02x}'/>\
                       <filterref filter='{filter}'><parameter name='IP' value='10.1.0.{i}'/>\
                       </filterref></filterbinding>"
                ),
            },
            // The last delete of a client that ends bound: a look instead.
            1 | 3 if ends_bound && flips_after(k) == 0 => Op::BindingDumpxml {
                portdev: port.clone(),
            },
            1 | 3 => Op::BindingDelete {
                portdev: port.clone(),
            },
            2 => Op::List,
            _ => Op::BindingList,
        };
        let reply = client
            .call(op.clone())
            .unwrap_or_else(|e| panic!("client {i} op {k} {op:?}: {e}"));
        let what = format!("client {i} op {k} {op:?}");
        check_reply(&what, &op, &reply, &filter, &port, bound);
        if matches!(op, Op::BindingCreate { .. } | Op::BindingDelete { .. }) {
            bound = !bound;
        }
    }
    assert_eq!(bound, ends_bound, "client {i}");
    bound.then_some(port)
}

/// The reply `op` must get, given the client's own filter and port and
/// whether the port had a binding before the call.
fn check_reply(what: &str, op: &Op, reply: &Reply, filter: &str, port: &str, bound: bool) {
    let done = |message: String| {
        assert_eq!(reply, &Reply::Done { message }, "{what}");
    };
    match op {
        Op::Define { .. } => done(format!("Network filter {filter} defined")),
        Op::BindingCreate { .. } => done(format!("Network filter binding on {port} created")),
        Op::BindingDelete { .. } => done(format!("Network filter binding on {port} deleted")),
        Op::List => {
            let Reply::Filters { filters, skipped } = reply else {
                panic!("{what}: {reply:?}")
            };
            assert!(skipped.is_empty(), "{what}: {skipped:?}");
            for name in [filter, "clean-traffic"] {
                assert!(filters.iter().any(|f| f.name == name), "{what}: no {name}");
            }
        }
        Op::BindingList => {
            let Reply::Bindings { bindings } = reply else {
                panic!("{what}: {reply:?}")
            };
            let mine: Vec<_> = bindings.iter().filter(|b| b.portdev == port).collect();
            assert_eq!(mine.len(), usize::from(bound), "{what}: {bindings:?}");
            if let Some(b) = mine.first() {
                assert_eq!(b.filter, filter, "{what}");
            }
        }
        Op::BindingDumpxml { .. } => {
            let Reply::Xml { xml } = reply else {
                panic!("{what}: {reply:?}")
            };
            assert!(
                xml.contains(&format!("<portdev name='{port}'/>")),
                "{what}: {xml}"
            );
            assert!(xml.contains(&format!("filter='{filter}'")), "{what}: {xml}");
        }
        other => panic!("{what}: not sent by this test: {other:?}"),
    }
}

#[test]
fn the_daemon_learns_a_guests_address_and_keeps_it_across_a_restart() {
    if !support::can_run("the_daemon_learns_a_guests_address_and_keeps_it_across_a_restart") {
        return;
    }
    let scratch = Scratch::new("learn");
    let lab = Lab::new(2);
    lab.wait_ready();
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let daemon = start_daemon(&lab.host, &scratch, &[]);
    // No IP parameter: CTRL_IP_LEARNING defaults to `any`.
    let xml = a
        .binding_xml("clean-traffic")
        .replace(&format!("<parameter name='IP' value='{}'/>", a.ip), "");
    let reply = call(&scratch, Op::BindingCreate { xml });
    assert_eq!(
        reply,
        Reply::Done {
            message: "Network filter binding on vnet0 created (learning its IP address)".into()
        }
    );
    let dumpxml = || {
        let Reply::Xml { xml } = call(
            &scratch,
            Op::BindingDumpxml {
                portdev: "vnet0".into(),
            },
        ) else {
            panic!("binding-dumpxml")
        };
        xml
    };
    let learned = format!("<parameter name='IP' value='{}'/>", a.ip);
    // The guest's first packets teach the daemon its address.
    let deadline = Instant::now() + Duration::from_secs(15);
    while !dumpxml().contains(&learned) {
        assert!(Instant::now() < deadline, "nothing learned: {}", dumpxml());
        let _ = a.pings(&b.ip);
    }
    let Reply::Bindings { bindings } = call(&scratch, Op::BindingList) else {
        panic!("binding-list")
    };
    assert_eq!(bindings[0].state, None, "active once learned");
    assert_eq!(
        bindings[0].learned,
        vec![a.ip.clone()],
        "binding-list shows it"
    );
    assert!(a.pings(&b.ip), "the learned address is allowed");
    a.set_ip("10.77.0.99");
    assert!(!a.pings(&b.ip), "any other address is not");
    a.set_ip(&a.ip);
    let protected = without_counters(&lab.ruleset());

    signal(&daemon, "TERM");
    daemon.wait();
    let daemon = start_daemon(&lab.host, &scratch, &[]);
    assert!(
        dumpxml().contains(&learned),
        "the learned address survives a restart"
    );
    assert_eq!(without_counters(&lab.ruleset()), protected);
    assert!(a.pings(&b.ip));
    call(
        &scratch,
        Op::BindingDelete {
            portdev: "vnet0".into(),
        },
    );
    drop(daemon);
}

#[test]
fn autostart_networks_start_with_the_daemon() {
    if !support::can_run("autostart_networks_start_with_the_daemon") {
        return;
    }
    let scratch = Scratch::new("net");
    let lab = Lab::new(0);
    // Isolated, no DHCP, no DNS: a bridge with an address and its firewall
    // rules, and no dnsmasq that could outlive the test.
    let store = netdrv::Store::new(
        scratch.etc().join("networks"),
        scratch.run().join("networks"),
    );
    store
        .define(
            "<network><name>lab</name><bridge name='virbr7' stp='off'/>\
             <dns enable='no'/><ip address='10.88.0.1' prefix='24'/></network>",
            &|_| false,
        )
        .unwrap();
    store.set_autostart("lab", true).unwrap();
    let _daemon = start_daemon(&lab.host, &scratch, &[]);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = lab.host.run(&["ip", "-4", "addr", "show", "dev", "virbr7"]);
        if String::from_utf8_lossy(&out.stdout).contains("10.88.0.1/24") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the autostart network was not started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let rules = lab.host.ok(&["iptables-save"]);
    assert!(
        rules.contains("virbr7"),
        "its firewall rules are in place:\n{rules}"
    );
}

/// Issue 23, item 11: in `any` mode a guest whose first packets claim
/// the address of another binding on the same bridge is not locked to it
/// (first come, first served); its own address is learned afterwards.
#[test]
fn the_daemon_does_not_learn_an_address_another_port_of_the_bridge_holds() {
    if !support::can_run("the_daemon_does_not_learn_an_address_another_port_of_the_bridge_holds") {
        return;
    }
    let scratch = Scratch::new("taken");
    let lab = Lab::new(2);
    lab.wait_ready();
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let daemon = start_daemon(&lab.host, &scratch, &[]);
    // b is bound with its fixed IP; a learns.
    let xml = b.binding_xml("clean-traffic");
    assert!(matches!(
        call(&scratch, Op::BindingCreate { xml }),
        Reply::Done { .. }
    ));
    let xml = a
        .binding_xml("clean-traffic")
        .replace(&format!("<parameter name='IP' value='{}'/>", a.ip), "");
    assert!(matches!(
        call(&scratch, Op::BindingCreate { xml }),
        Reply::Done { .. }
    ));
    let learned = || {
        let Reply::Bindings { bindings } = call(&scratch, Op::BindingList) else {
            panic!("binding-list")
        };
        let a = bindings.iter().find(|x| x.portdev == "vnet0").unwrap();
        a.learned.clone()
    };

    a.set_ip(&b.ip);
    let _ = a.pings("10.77.0.1");
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        learned(),
        Vec::<String>::new(),
        "a was locked to b's address"
    );

    a.set_ip(&a.ip);
    let deadline = Instant::now() + Duration::from_secs(10);
    while learned().is_empty() {
        assert!(Instant::now() < deadline, "a's own address was not learned");
        let _ = a.pings(&b.ip);
    }
    assert_eq!(learned(), vec![a.ip.clone()]);
    drop(daemon);
}

/// Issue 23, item 1, through the daemon: with `CTRL_IP_LEARNING=dhcp` and
/// `DHCPSERVER=10.77.0.254`, dnsmasq at 10.77.0.1 (not trusted) serves
/// leases on the bridge: none reaches the guest and nothing is learned.
#[test]
fn the_daemon_learns_nothing_from_an_untrusted_dhcp_server() {
    if !support::can_run("the_daemon_learns_nothing_from_an_untrusted_dhcp_server") {
        return;
    }
    let scratch = Scratch::new("rogue");
    let lab = Lab::new(1);
    lab.wait_ready();
    let a = &lab.guests[0];
    let _dnsmasq = lab.dnsmasq(&scratch.run(), "2m");
    let _daemon = start_daemon(&lab.host, &scratch, &[]);
    let xml = a.binding_xml("clean-traffic").replace(
        &format!("<parameter name='IP' value='{}'/>", a.ip),
        "<parameter name='CTRL_IP_LEARNING' value='dhcp'/>\
         <parameter name='DHCPSERVER' value='10.77.0.254'/>",
    );
    assert!(matches!(
        call(&scratch, Op::BindingCreate { xml }),
        Reply::Done { .. }
    ));
    a.ns.ok(&["ip", "addr", "flush", "dev", "eth0", "scope", "global"]);

    let udhcpc = a.ns.run(&[
        "busybox",
        "udhcpc",
        "-f",
        "-q",
        "-n",
        "-t",
        "3",
        "-T",
        "1",
        "-i",
        "eth0",
        "-s",
        "/bin/true",
    ]);
    assert!(
        !udhcpc.status.success(),
        "the untrusted server's lease reached the guest"
    );
    let Reply::Bindings { bindings } = call(&scratch, Op::BindingList) else {
        panic!("binding-list")
    };
    assert_eq!(bindings[0].learned, Vec::<String>::new());
}
