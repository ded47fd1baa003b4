//! The learner's start/stop contract, with a recording firewall (no
//! kernel rules are touched).

use std::net::Ipv4Addr;
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nwfilter_compile::ir::{BridgeDir, ChainRole, Program};
use nwfilter_learn::{
    Config, FirewallError, LearnEvent, Learner, LearningMode, Lease, LeaseKey, LeaseStore,
    PortFirewall, PortSpec, StartError,
};
use nwfilter_model::{IfName, MacAddr6};

#[derive(Default)]
struct Recording {
    applied: Mutex<Vec<Program>>,
}

impl PortFirewall for Recording {
    fn apply(&self, rules: &Program) -> Result<(), FirewallError> {
        self.applied.lock().unwrap().push(rules.clone());
        Ok(())
    }
}

impl Recording {
    /// Each applied ruleset as the number of rules in its chain towards
    /// the guest (None: no such chain) - enough to tell them apart.
    fn kinds(&self) -> Vec<&'static str> {
        self.applied
            .lock()
            .unwrap()
            .iter()
            .map(|r| {
                let to_guest = r
                    .chains
                    .iter()
                    .find(|c| c.role == ChainRole::BridgeRoot(BridgeDir::ToVm));
                match to_guest.map(|c| c.rules.len()) {
                    None => "learning-any",
                    Some(1) => "blocked",
                    Some(_) => "learning-dhcp",
                }
            })
            .collect()
    }
}

const MAC: MacAddr6 = MacAddr6::new(0x52, 0x54, 0, 0, 0, 0x10);

fn spec(port: &str, mode: LearningMode) -> PortSpec {
    PortSpec {
        port: IfName::new(port).unwrap(),
        mac: MAC,
        mode,
        dhcp_servers: Vec::new(),
        lease_key: LeaseKey::new("vm", MAC),
    }
}

fn learner(state: &std::path::Path, firewall: Arc<Recording>) -> Learner {
    let store = LeaseStore::open(state, now()).unwrap();
    Learner::new(Config::default(), firewall, Arc::new(store))
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

#[test]
fn mode_none_does_not_learn_and_touches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let firewall = Arc::new(Recording::default());
    let learner = learner(dir.path(), Arc::clone(&firewall));
    let err = learner
        .start(spec("vnet0", LearningMode::None), Box::new(|_| {}))
        .unwrap_err();
    assert!(matches!(err, StartError::NotLearning { .. }), "{err}");
    assert!(err.to_string().contains("vnet0"), "{err}");
    assert!(firewall.kinds().is_empty());
}

#[test]
fn a_missing_port_is_an_error_and_left_blocked() {
    let dir = tempfile::tempdir().unwrap();
    let firewall = Arc::new(Recording::default());
    let learner = learner(dir.path(), Arc::clone(&firewall));
    let err = learner
        .start(spec("nosuchport9", LearningMode::Dhcp), Box::new(|_| {}))
        .unwrap_err();
    assert_eq!(err.to_string(), "port nosuchport9: no such interface");
    assert_eq!(firewall.kinds(), ["learning-dhcp", "blocked"]);
}

#[test]
fn stored_leases_are_reported_first_without_learning_rules() {
    if !is_root() {
        // Capturing (even on lo) needs CAP_NET_RAW.
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "needs root under CI"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let addr = Ipv4Addr::new(10, 77, 0, 50);
    {
        let store = LeaseStore::open(dir.path(), now()).unwrap();
        let lease = Lease {
            addr,
            server: Ipv4Addr::new(10, 77, 0, 1),
            expires: Some(now() + 600),
        };
        store.record(&LeaseKey::new("vm", MAC), &[lease]).unwrap();
    }
    let firewall = Arc::new(Recording::default());
    let learner = learner(dir.path(), Arc::clone(&firewall));
    let (tx, rx) = channel();
    // lo stands in for a port: it exists everywhere, and nothing on it
    // is DHCP for this MAC.
    let watch = learner
        .start(
            spec("lo", LearningMode::Dhcp),
            Box::new(move |e| {
                let _ = tx.send(e);
            }),
        )
        .unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(2)).ok(),
        Some(LearnEvent::Learned(vec![addr]))
    );
    assert!(
        firewall.kinds().is_empty(),
        "no learning rules over a live lease"
    );
    assert!(!watch.finished());
    drop(watch);
    assert!(rx.recv_timeout(Duration::from_millis(500)).is_err());
}

/// Issue 23, item 1: a lease acknowledged by a server the binding no
/// longer trusts (`DHCPSERVER` changed) does not unlock the port after a
/// restart: the port gets the learning rules and nothing is learned. Of
/// trusted leases, at most `max_addresses` come back.
#[test]
fn stored_leases_of_untrusted_servers_or_beyond_the_cap_are_not_restored() {
    if !is_root() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "needs root under CI"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let rogue = Ipv4Addr::new(10, 77, 0, 1);
    let trusted = Ipv4Addr::new(10, 77, 0, 254);
    let lease = |last: u8, server| Lease {
        addr: Ipv4Addr::new(10, 77, 0, last),
        server,
        expires: Some(now() + 600),
    };
    {
        let store = LeaseStore::open(dir.path(), now()).unwrap();
        let mut stored = vec![lease(50, rogue)];
        stored.extend((60..65).map(|n| lease(n, trusted)));
        store.record(&LeaseKey::new("vm", MAC), &stored).unwrap();
    }
    let start = |servers: Vec<Ipv4Addr>, max_addresses| {
        let firewall = Arc::new(Recording::default());
        let store = LeaseStore::open(dir.path(), now()).unwrap();
        let config = Config {
            max_addresses,
            ..Config::default()
        };
        let learner = Learner::new(config, firewall.clone(), Arc::new(store));
        let (tx, rx) = channel();
        let spec = PortSpec {
            dhcp_servers: servers,
            ..spec("lo", LearningMode::Dhcp)
        };
        let on_change = Box::new(move |e| {
            let _ = tx.send(e);
        });
        let watch = learner.start(spec, on_change).unwrap();
        let event = rx.recv_timeout(Duration::from_millis(800)).ok();
        watch.stop();
        (firewall.kinds(), event)
    };

    // Trusting 10.77.0.254 with a cap of 2: the rogue server's lease stays
    // out, and two of the trusted server's five come back.
    let (rules, event) = start(vec![trusted], 2);
    assert!(rules.is_empty(), "{rules:?}");
    let two = vec![Ipv4Addr::new(10, 77, 0, 60), Ipv4Addr::new(10, 77, 0, 61)];
    assert_eq!(event, Some(LearnEvent::Learned(two)));
    // Trusting a third server only: nothing is restored, learning rules go on.
    let (rules, event) = start(vec![Ipv4Addr::new(10, 77, 0, 9)], 16);
    assert_eq!(rules, ["learning-dhcp"]);
    assert_eq!(event, None);
}

#[test]
fn stop_ends_delivery_and_give_up_reports_once() {
    if !is_root() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "needs root under CI"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let firewall = Arc::new(Recording::default());
    let store = LeaseStore::open(dir.path(), now()).unwrap();
    let config = Config {
        give_up_after: Some(Duration::from_millis(300)),
        ..Config::default()
    };
    let learner = Learner::new(config, Arc::clone(&firewall) as _, Arc::new(store));
    let (tx, rx) = channel();
    let watch = learner
        .start(
            spec("lo", LearningMode::Any),
            Box::new(move |e| {
                let _ = tx.send(e);
            }),
        )
        .unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(3)).ok(),
        Some(LearnEvent::TimedOut)
    );
    assert!(rx.recv_timeout(Duration::from_millis(500)).is_err());
    assert!(watch.finished());
    assert_eq!(firewall.kinds(), ["learning-any", "blocked"]);

    // A stopped watch hears nothing more, even when its deadline passes.
    let (tx, rx) = channel();
    let watch = learner
        .start(
            spec("lo", LearningMode::Any),
            Box::new(move |e| {
                let _ = tx.send(e);
            }),
        )
        .unwrap();
    watch.stop();
    assert!(rx.recv_timeout(Duration::from_secs(1)).is_err());
}

#[test]
fn learner_and_watch_can_be_shared_across_the_daemons_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Learner>();
    shareable::<nwfilter_learn::Watch>();
    shareable::<LeaseStore>();
}
