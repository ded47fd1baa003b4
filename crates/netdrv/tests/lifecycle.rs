//! Start, destroy and rollback, with a recorded host, runner and daemons
//! (no root needed; the real kernel is exercised by tests/netns.rs).

use std::cell::RefCell;
use std::net::IpAddr;

use host_io::{RecordingRunner, Tool};
use netdrv::daemons::Daemons;
use netdrv::dnsmasq::DnsmasqPaths;
use netdrv::host::{BridgeSpec, Host, HostRoute};
use netdrv::{Driver, LifecycleError, Store};
use nwfilter_model::IfName;

/// Records what was done to the "host"; links come and go.
#[derive(Default)]
struct FakeHost {
    log: RefCell<Vec<String>>,
    links: RefCell<Vec<String>>,
    routes: Vec<HostRoute>,
}

impl Host for FakeHost {
    fn link_exists(&self, name: &IfName) -> Result<bool, LifecycleError> {
        Ok(self.links.borrow().iter().any(|l| l == name.as_str()))
    }
    fn create_bridge(&self, spec: &BridgeSpec) -> Result<(), LifecycleError> {
        self.log.borrow_mut().push(format!("create {}", spec.name));
        self.links.borrow_mut().push(spec.name.to_string());
        Ok(())
    }
    fn add_address(
        &self,
        link: &IfName,
        address: IpAddr,
        prefix: u8,
    ) -> Result<(), LifecycleError> {
        self.log
            .borrow_mut()
            .push(format!("addr {link} {address}/{prefix}"));
        Ok(())
    }
    fn set_up(&self, link: &IfName) -> Result<(), LifecycleError> {
        self.log.borrow_mut().push(format!("up {link}"));
        Ok(())
    }
    fn delete_link(&self, link: &IfName) -> Result<(), LifecycleError> {
        self.log.borrow_mut().push(format!("delete {link}"));
        self.links.borrow_mut().retain(|l| l != link.as_str());
        Ok(())
    }
    fn routes(&self) -> Result<Vec<HostRoute>, LifecycleError> {
        Ok(self.routes.clone())
    }
    fn set_sysctl(&self, key: &str, value: &str) -> Result<(), LifecycleError> {
        self.log.borrow_mut().push(format!("sysctl {key}={value}"));
        Ok(())
    }
}

#[derive(Default)]
struct FakeDaemons {
    log: RefCell<Vec<String>>,
}

impl Daemons for FakeDaemons {
    fn start_dnsmasq(&self, paths: &DnsmasqPaths) -> Result<u32, LifecycleError> {
        assert!(
            paths.conf.exists(),
            "the configuration is written before dnsmasq starts"
        );
        self.log.borrow_mut().push("start dnsmasq".into());
        Ok(4242)
    }
    fn stop_dnsmasq(&self, pid: u32, _: &DnsmasqPaths) -> Result<(), LifecycleError> {
        self.log.borrow_mut().push(format!("stop {pid}"));
        Ok(())
    }
}

const NAT: &str = "<network><name>lab</name><bridge name='virbr7'/><forward/>
  <ip address='10.7.0.1' prefix='24'><dhcp><range start='10.7.0.2' end='10.7.0.9'/></dhcp></ip></network>";

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path().join("config"), dir.path().join("state"));
    store.define(NAT, &|_| false).unwrap();
    (dir, store)
}

fn is_removal_or_listing(c: &host_io::Command) -> bool {
    c.args
        .iter()
        .any(|a| a == "--delete" || a == "--list-rules")
}

#[test]
fn start_then_destroy_leaves_nothing_behind() {
    let (_dir, store) = store();
    let (host, runner, daemons) = (
        FakeHost::default(),
        RecordingRunner::new(),
        FakeDaemons::default(),
    );
    let driver = Driver {
        store: &store,
        host: &host,
        runner: &runner,
        daemons: &daemons,
        backend: netdrv::firewall::Backend::Iptables,
        tables_lock: None,
    };

    let state = driver.start("lab").unwrap();
    assert_eq!(state.dnsmasq_pid, Some(4242));
    assert_eq!(
        *host.log.borrow(),
        [
            "create virbr7",
            "sysctl net/ipv6/conf/virbr7/disable_ipv6=1",
            "addr virbr7 10.7.0.1/24",
            "up virbr7",
            "sysctl net/ipv4/ip_forward=1"
        ]
    );
    let tools: Vec<Tool> = runner.calls().iter().map(|c| c.tool).collect();
    assert_eq!(
        tools
            .iter()
            .filter(|t| **t == Tool::IptablesRestore)
            .count(),
        2,
        "rules + checksum batch"
    );
    assert_eq!(
        tools
            .iter()
            .filter(|t| **t == Tool::Ip6tablesRestore)
            .count(),
        0,
        "no IPv6 here"
    );
    assert!(store.list().unwrap()[0].active);
    assert!(matches!(
        driver.start("lab"),
        Err(LifecycleError::AlreadyRunning(_))
    ));
    assert!(matches!(
        store.undefine("lab"),
        Err(LifecycleError::Running(_))
    ));

    let before = runner.calls().len();
    driver.destroy("lab").unwrap();
    let removals = &runner.calls()[before..];
    // The rules, then (the last network gone) a listing to see which of
    // the private chains it created are empty again: here none exist.
    assert!(removals.iter().all(is_removal_or_listing), "{removals:?}");
    assert!(removals[0].args.contains(&"CHECKSUM".to_owned()));
    assert_eq!(host.log.borrow().last().unwrap(), "delete virbr7");
    assert_eq!(*daemons.log.borrow(), ["start dnsmasq", "stop 4242"]);
    assert!(host.links.borrow().is_empty());
    assert!(!store.list().unwrap()[0].active);
    assert!(
        !store.state_dir().join("lab.conf").exists(),
        "dnsmasq files removed"
    );
    assert!(matches!(
        driver.destroy("lab"),
        Err(LifecycleError::NotRunning(_))
    ));
}

#[test]
fn a_failed_rule_batch_rolls_the_start_back() {
    let (_dir, store) = store();
    let (host, runner, daemons) = (
        FakeHost::default(),
        RecordingRunner::new(),
        FakeDaemons::default(),
    );
    // 6 listings + 28 chain set-ups, then the IPv4 rule batch.
    runner.fail_call(35);
    let driver = Driver {
        store: &store,
        host: &host,
        runner: &runner,
        daemons: &daemons,
        backend: netdrv::firewall::Backend::Iptables,
        tables_lock: None,
    };
    let err = driver.start("lab").unwrap_err();
    assert!(err.to_string().contains("injected failure"), "{err}");
    assert_eq!(runner.calls()[34].tool, Tool::IptablesRestore);
    assert!(runner.calls()[35..].iter().all(is_removal_or_listing));
    assert_eq!(*host.log.borrow(), ["create virbr7", "delete virbr7"]);
    assert!(daemons.log.borrow().is_empty(), "dnsmasq never started");
    assert!(!store.list().unwrap()[0].active);
}

#[test]
fn existing_chains_are_not_created_twice() {
    let (_dir, store) = store();
    let (host, runner, daemons) = (
        FakeHost::default(),
        RecordingRunner::new(),
        FakeDaemons::default(),
    );
    runner.answer(
        Tool::Iptables,
        "-N LIBVIRT_INP\n-N LIBVIRT_OUT\n-N LIBVIRT_FWO\n-N LIBVIRT_FWI\n-N LIBVIRT_FWX\n-N LIBVIRT_PRT\n\
         -A INPUT -j LIBVIRT_INP\n-A OUTPUT -j LIBVIRT_OUT\n-A FORWARD -j LIBVIRT_FWX\n-A FORWARD -j LIBVIRT_FWI\n\
         -A FORWARD -j LIBVIRT_FWO\n-A POSTROUTING -j LIBVIRT_PRT\n",
    );
    let driver = Driver {
        store: &store,
        host: &host,
        runner: &runner,
        daemons: &daemons,
        backend: netdrv::firewall::Backend::Iptables,
        tables_lock: None,
    };
    driver.start("lab").unwrap();
    let setup: Vec<_> = runner
        .calls()
        .into_iter()
        .filter(|c| c.args.iter().any(|a| a == "--new-chain" || a == "--jump") && c.stdin.is_none())
        .collect();
    assert!(
        setup.iter().all(|c| c.tool == Tool::Ip6tables),
        "only IPv6 was missing: {setup:?}"
    );
}

#[test]
fn refused_starts_change_nothing() {
    let (_dir, store) = store();
    let (runner, daemons) = (RecordingRunner::new(), FakeDaemons::default());

    let busy = FakeHost::default();
    busy.links.borrow_mut().push("virbr7".into());
    let driver = Driver {
        store: &store,
        host: &busy,
        runner: &runner,
        daemons: &daemons,
        backend: netdrv::firewall::Backend::Iptables,
        tables_lock: None,
    };
    assert!(
        matches!(driver.start("lab"), Err(LifecycleError::InterfaceExists(b)) if b == "virbr7")
    );

    let routed = FakeHost {
        routes: vec![HostRoute {
            destination: "10.0.0.0/8".parse().unwrap(),
            device: Some("eth0".into()),
        }],
        ..FakeHost::default()
    };
    let driver = Driver {
        store: &store,
        host: &routed,
        runner: &runner,
        daemons: &daemons,
        backend: netdrv::firewall::Backend::Iptables,
        tables_lock: None,
    };
    let err = driver.start("lab").unwrap_err();
    assert!(matches!(err, LifecycleError::RouteOverlap { .. }), "{err}");
    assert!(
        err.to_string().contains("10.0.0.0/8") && err.to_string().contains("eth0"),
        "{err}"
    );

    assert!(runner.calls().is_empty());
    assert!(busy.log.borrow().is_empty() && routed.log.borrow().is_empty());
    assert!(!store.list().unwrap()[0].active);
}

#[test]
fn reload_puts_every_running_networks_rules_back() {
    let (_dir, store) = store();
    let (host, runner, daemons) = (
        FakeHost::default(),
        RecordingRunner::new(),
        FakeDaemons::default(),
    );
    let driver = Driver {
        store: &store,
        host: &host,
        runner: &runner,
        daemons: &daemons,
        backend: netdrv::firewall::Backend::Iptables,
        tables_lock: None,
    };
    assert!(
        driver.reload_firewall().unwrap().is_empty(),
        "nothing runs yet"
    );
    driver.start("lab").unwrap();
    let before = runner.calls().len();

    let results = driver.reload_firewall().unwrap();
    assert_eq!(results.len(), 1);
    assert!(results[0].1.is_ok());
    let calls = &runner.calls()[before..];
    let deletes = calls
        .iter()
        .take_while(|c| c.args.contains(&"--delete".to_owned()))
        .count();
    assert!(deletes > 0, "old rules removed first");
    let rest = &calls[deletes..];
    assert!(
        rest.iter()
            .any(|c| c.args.contains(&"--list-rules".to_owned())),
        "chains checked"
    );
    assert_eq!(
        rest.last().unwrap().tool,
        Tool::IptablesRestore,
        "rules added back"
    );
    driver.destroy("lab").unwrap();
}

/// What `--list-rules` shows once every private chain and jump exists (the
/// recording runner answers the same for every table).
const ALL_PRIVATE_CHAINS: &str = "-N LIBVIRT_INP\n-N LIBVIRT_OUT\n-N LIBVIRT_FWO\n-N LIBVIRT_FWI\n\
    -N LIBVIRT_FWX\n-N LIBVIRT_PRT\n-A INPUT -j LIBVIRT_INP\n-A OUTPUT -j LIBVIRT_OUT\n\
    -A FORWARD -j LIBVIRT_FWX\n-A FORWARD -j LIBVIRT_FWI\n-A FORWARD -j LIBVIRT_FWO\n\
    -A POSTROUTING -j LIBVIRT_PRT\n";

#[test]
fn the_last_network_destroyed_takes_back_the_private_chains_its_start_created() {
    let (_dir, store) = store();
    store
        .define(
            "<network><name>lab2</name><bridge name='virbr8'/>
               <ip address='10.8.0.1' prefix='24'/></network>",
            &|_| false,
        )
        .unwrap();
    let (host, runner, daemons) = (
        FakeHost::default(),
        RecordingRunner::new(),
        FakeDaemons::default(),
    );
    let driver = Driver {
        store: &store,
        host: &host,
        runner: &runner,
        daemons: &daemons,
        backend: netdrv::firewall::Backend::Iptables,
        tables_lock: None,
    };
    let record = store.state_dir().join("firewall/private-chains.json");
    driver.start("lab").unwrap();
    assert!(record.exists(), "what the set-up created is recorded");
    // From now on the kernel shows every chain: lab2 creates nothing.
    runner.answer(Tool::Iptables, ALL_PRIVATE_CHAINS);
    runner.answer(Tool::Ip6tables, ALL_PRIVATE_CHAINS);
    driver.start("lab2").unwrap();

    let deleted_chains = |from: usize| -> Vec<(Tool, String)> {
        runner.calls()[from..]
            .iter()
            .filter(|c| c.args.iter().any(|a| a == "--delete-chain"))
            .map(|c| (c.tool, c.args.last().unwrap().clone()))
            .collect()
    };
    let before = runner.calls().len();
    driver.destroy("lab").unwrap();
    assert!(deleted_chains(before).is_empty(), "lab2 still needs them");

    let before = runner.calls().len();
    driver.destroy("lab2").unwrap();
    let deleted = deleted_chains(before);
    assert_eq!(deleted.len(), 14, "7 per family: {deleted:?}");
    assert_eq!(deleted[0], (Tool::Ip6tables, "LIBVIRT_PRT".to_owned()));
    let unhooked = runner.calls()[before..]
        .iter()
        .filter(|c| c.args.iter().any(|a| a == "--delete") && c.args.contains(&"--jump".to_owned()))
        .filter(|c| c.args.iter().any(|a| a.starts_with("LIBVIRT_")) && c.stdin.is_none())
        .count();
    assert!(unhooked >= 14, "each jump deleted before its chain");
    assert!(!record.exists(), "nothing left to take back");
}

/// Where in `calls` the first command of `tool` whose arguments contain
/// `word` is.
fn first(calls: &[host_io::Command], tool: Tool, word: &str) -> usize {
    calls
        .iter()
        .position(|c| c.tool == tool && c.args.iter().any(|a| a == word))
        .unwrap_or_else(|| panic!("no {tool:?} {word} in {calls:#?}"))
}

#[test]
fn a_backend_switch_puts_the_new_rules_in_before_taking_the_old_ones_out() {
    use netdrv::firewall::Backend;
    let (_dir, store) = store();
    let (host, runner, daemons) = (
        FakeHost::default(),
        RecordingRunner::new(),
        FakeDaemons::default(),
    );
    let on = |backend| Driver {
        store: &store,
        host: &host,
        runner: &runner,
        daemons: &daemons,
        backend,
        tables_lock: None,
    };
    on(Backend::Iptables).start("lab").unwrap();
    let before = runner.calls().len();
    let results = on(Backend::Nftables).reload_firewall().unwrap();
    assert!(results.iter().all(|(_, r)| r.is_ok()), "{results:?}");
    let calls = runner.calls()[before..].to_vec();
    let nft_in = first(&calls, Tool::Nft, "-f");
    let iptables_out = first(&calls, Tool::Iptables, "--delete");
    assert!(nft_in < iptables_out, "make before break: {calls:#?}");
    let state = store.run_state("lab").unwrap().unwrap();
    assert_eq!(state.firewall, Backend::Nftables);

    // And back: iptables rules in first, then our table's chains out.
    runner.answer(
        Tool::Nft,
        r#"{"nftables": [{"table": {"family": "inet", "name": "nwfilter-net"}},
            {"chain": {"family": "inet", "table": "nwfilter-net", "name": "fwd-virbr7",
                       "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"}}]}"#,
    );
    let before = runner.calls().len();
    on(Backend::Iptables).reload_firewall().unwrap();
    let calls = runner.calls()[before..].to_vec();
    let iptables_in = first(&calls, Tool::IptablesRestore, "--noflush");
    let nft_out = first(&calls, Tool::Nft, "-f");
    assert!(iptables_in < nft_out, "make before break: {calls:#?}");
    assert!(calls[nft_out]
        .stdin
        .as_deref()
        .unwrap()
        .contains(r#""delete":{"table""#));
    assert_eq!(
        store.run_state("lab").unwrap().unwrap().firewall,
        Backend::Iptables
    );
    on(Backend::Iptables).destroy("lab").unwrap();
}

#[test]
fn a_failed_nftables_start_is_taken_back_and_leaves_the_old_backend() {
    use netdrv::firewall::Backend;
    let (_dir, store) = store();
    let (host, runner, daemons) = (
        FakeHost::default(),
        RecordingRunner::new(),
        FakeDaemons::default(),
    );
    let on = |backend| Driver {
        store: &store,
        host: &host,
        runner: &runner,
        daemons: &daemons,
        backend,
        tables_lock: None,
    };
    on(Backend::Iptables).start("lab").unwrap();
    let before = runner.calls().len();
    // The nft transaction (the first command of the move; 1-based) is
    // refused.
    runner.fail_call(before + 1);
    let results = on(Backend::Nftables).reload_firewall().unwrap();
    assert!(results[0].1.is_err(), "{results:?}");
    let calls = runner.calls()[before..].to_vec();
    assert!(
        !calls.iter().any(|c| c.tool == Tool::Iptables
            && c.args.iter().any(|a| a == "--delete")
            && c.args.iter().any(|a| a.starts_with("LIBVIRT_"))),
        "the iptables rules stay: {calls:#?}"
    );
    assert_eq!(
        store.run_state("lab").unwrap().unwrap().firewall,
        Backend::Iptables
    );
}

/// A log sink for one test's subscriber.
#[derive(Clone, Default)]
struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn an_nftables_start_needs_no_checksum_helper_and_logs_what_that_means() {
    let (_dir, store) = store();
    let (host, runner, daemons) = (
        FakeHost::default(),
        RecordingRunner::new(),
        FakeDaemons::default(),
    );
    let driver = Driver {
        store: &store,
        host: &host,
        runner: &runner,
        daemons: &daemons,
        backend: netdrv::firewall::Backend::Nftables,
        tables_lock: None,
    };
    let log = LogBuffer::default();
    let sink = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    tracing::subscriber::with_default(subscriber, || driver.start("lab").unwrap());
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("nftables has no CHECKSUM --checksum-fill")
            && text.contains("very old ones (dhclient before 4.2")
            && text.contains("network firewall applied"),
        "{text}"
    );
    // Only nft ran (no iptables filter table listed, so no accepts), and
    // nothing like `tc … action csum`.
    let tools: Vec<Tool> = runner.calls().iter().map(|c| c.tool).collect();
    assert_eq!(tools, [Tool::Nft, Tool::Nft], "{:#?}", runner.calls());
    driver.destroy("lab").unwrap();
}

#[test]
fn firewall_changes_wait_for_the_tables_lock() {
    let (dir, store) = store();
    let lock_path = dir.path().join("tables.lock");
    let (host, runner, daemons) = (
        FakeHost::default(),
        RecordingRunner::new(),
        FakeDaemons::default(),
    );
    let driver = Driver {
        store: &store,
        host: &host,
        runner: &runner,
        daemons: &daemons,
        backend: netdrv::firewall::Backend::Nftables,
        tables_lock: Some(&lock_path),
    };
    let held = host_io::TablesLock::acquire(&lock_path).unwrap();
    let (runner_ref, (tx, rx)) = (&runner, std::sync::mpsc::channel());
    std::thread::scope(|scope| {
        scope.spawn(move || {
            // Give the start every chance to run a tool while we hold it.
            std::thread::sleep(std::time::Duration::from_millis(300));
            tx.send(runner_ref.calls().len()).unwrap();
            drop(held);
        });
        driver.start("lab").unwrap();
    });
    assert_eq!(rx.recv().unwrap(), 0, "nothing ran while the lock was held");
    assert!(!runner.calls().is_empty());
}
