//! What the learning tests add to the workspace's namespace lab
//! (`netns-lab`): a learner applying its rules in the lab's host through
//! the driver, DHCP clients, hand-built frames.

#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{channel, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use host_io::{ProcessRunner, Toolset};
pub use netns_lab::{Guest, Lab, Netns, HOST_IP};
use nwfilter_compile::ir::Program;
use nwfilter_compile::{bind, lower, BindOutcome, MemorySource};
pub use nwfilter_driver::Backend;
use nwfilter_driver::{apply_once, Rendered};
use nwfilter_learn::{
    AddressBook, Config, FirewallError, LearnEvent, Learner, LearningMode, LeaseKey, LeaseStore,
    NothingTaken, PortFirewall, PortSpec, Watch,
};
use nwfilter_model::{builtin_filters, FilterName, FilterRef, Params};

/// Whether the learning tests can run: the lab's conditions, plus dnsmasq
/// and busybox (udhcpc).
pub fn can_run(test: &str) -> bool {
    netns_lab::can_run_with(test, &["dnsmasq", "busybox"])
}

/// The learner's side of the lab: applying rules in its host namespace.
pub trait LearnLab {
    fn runner(&self) -> ProcessRunner;
    /// A learner capturing in the host namespace, applying its rules there.
    fn learner(&self, state: &Path, give_up: Option<Duration>) -> Learner;
    /// Like [`LearnLab::learner`], rendering the learning rules with `backend`.
    fn learner_with(&self, state: &Path, give_up: Option<Duration>, backend: Backend) -> Learner;
    /// A learner with `config` (its namespace set to the lab's host) and
    /// the addresses `book` says other ports hold.
    fn learner_configured(
        &self,
        state: &Path,
        config: Config,
        backend: Backend,
        book: Arc<dyn AddressBook>,
    ) -> Learner;
}

impl LearnLab for Lab {
    fn runner(&self) -> ProcessRunner {
        ProcessRunner::new(Toolset::default()).in_netns(self.host.name.clone())
    }

    fn learner(&self, state: &Path, give_up: Option<Duration>) -> Learner {
        self.learner_with(state, give_up, Backend::Xtables)
    }

    fn learner_with(&self, state: &Path, give_up: Option<Duration>, backend: Backend) -> Learner {
        let config = Config {
            workers: 1,
            give_up_after: give_up,
            netns: Some(self.host.path()),
            ..Config::default()
        };
        self.learner_configured(state, config, backend, Arc::new(NothingTaken))
    }

    fn learner_configured(
        &self,
        state: &Path,
        config: Config,
        backend: Backend,
        book: Arc<dyn AddressBook>,
    ) -> Learner {
        let store = LeaseStore::open(state, nwfilter_learn_epoch()).unwrap();
        let config = Config {
            netns: Some(self.host.path()),
            ..config
        };
        let firewall = Arc::new(DriverFirewall {
            backend,
            runner: self.runner(),
            one_at_a_time: Mutex::new(()),
        });
        Learner::with_book(config, firewall, Arc::new(store), book)
    }
}

/// The learning rules rendered and applied by `backend` through the
/// driver, one port at a time: an apply reads the tables and then writes,
/// and the mutex keeps two learners' applies from interleaving between.
#[derive(Debug)]
pub struct DriverFirewall {
    backend: Backend,
    runner: ProcessRunner,
    one_at_a_time: Mutex<()>,
}

impl PortFirewall for DriverFirewall {
    fn apply(&self, rules: &Program) -> Result<(), FirewallError> {
        let rendered = Rendered::render(self.backend, rules)?;
        let _guard = self.one_at_a_time.lock().unwrap_or_else(|p| p.into_inner());
        apply_once(self.backend, &self.runner, &[&rendered])?;
        Ok(())
    }
}

pub fn nwfilter_learn_epoch() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// The udhcpc event script: configures the leased address (busybox
/// passes `ip` and the prefix length `mask`).
pub fn udhcpc_script(dir: &Path) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = dir.join("udhcpc.sh");
    std::fs::write(
        &path,
        "#!/bin/sh\ncase \"$1\" in\n  bound|renew)\n    ip addr flush dev \"$interface\" scope global\n    ip addr add \"$ip/${mask:-24}\" dev \"$interface\" ;;\n  deconfig)\n    ip addr flush dev \"$interface\" scope global ;;\nesac\nexit 0\n",
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

/// Starts learning on `guest`'s port with the binding parameters
/// `params`, the way a daemon would: bind clean-traffic, and on
/// `AwaitingIp` hand mode and servers to the learner. Events arrive on
/// the returned channel.
pub fn start_learning(
    learner: &Learner,
    guest: &Guest,
    params: &[(&str, &str)],
) -> (Watch, Receiver<LearnEvent>) {
    let BindOutcome::AwaitingIp { mode, dhcp_servers } =
        bind(&filters(), &top("clean-traffic", params), guest.mac()).expect("binds")
    else {
        panic!("clean-traffic without IP must await learning");
    };
    let (tx, rx) = channel();
    let spec = PortSpec {
        port: guest.port(),
        mac: guest.mac(),
        mode,
        dhcp_servers,
        lease_key: LeaseKey::new("test-vm", guest.mac()),
    };
    let watch = learner
        .start(
            spec,
            Box::new(move |event| {
                let _ = tx.send(event);
            }),
        )
        .expect("learning starts");
    (watch, rx)
}

/// clean-traffic for `guest` with `IP` bound to `addrs`, compiled and
/// rendered by the real compiler and backend.
pub fn clean_traffic(guest: &Guest, addrs: &[Ipv4Addr]) -> Rendered {
    let texts: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    let params: Vec<(&str, &str)> = texts.iter().map(|a| ("IP", a.as_str())).collect();
    let BindOutcome::Bound(rules) =
        bind(&filters(), &top("clean-traffic", &params), guest.mac()).expect("binds")
    else {
        panic!("IP is bound");
    };
    let program = lower(&rules, &guest.port()).expect("lowers");
    Rendered::render(Backend::Xtables, &program).expect("renders")
}

pub fn apply(lab: &Lab, rules: &Rendered) {
    apply_once(rules.backend(), &lab.runner(), &[rules]).expect("applies");
}

fn filters() -> MemorySource {
    let mut source = MemorySource::new();
    for f in builtin_filters() {
        source.insert(f);
    }
    source
}

fn top(name: &str, params: &[(&str, &str)]) -> FilterRef {
    let mut p = Params::default();
    for (k, v) in params {
        p.push(*k, *v);
    }
    FilterRef {
        filter: FilterName::new(name).unwrap(),
        params: p,
    }
}

/// The next event, waiting at most `within`.
pub fn next_event(events: &Receiver<LearnEvent>, within: Duration) -> Option<LearnEvent> {
    events.recv_timeout(within).ok()
}

/// `LearningMode` re-exported for tests that name it.
pub const DHCP: LearningMode = LearningMode::Dhcp;

/// The MAC address of `dev` in `ns`.
pub fn link_mac(ns: &Netns, dev: &str) -> String {
    let out = ns.ok(&["cat", &format!("/sys/class/net/{dev}/address")]);
    out.trim().to_string()
}

/// Frames `dev` in `ns` has received (for a port: sent by its guest).
pub fn rx_packets(ns: &Netns, dev: &str) -> u64 {
    let out = ns.ok(&[
        "cat",
        &format!("/sys/class/net/{dev}/statistics/rx_packets"),
    ]);
    out.trim().parse().unwrap()
}

/// Whether python3 (which sends hand-built frames) is there too; like
/// [`can_run`], a skip outside CI and a failure under it.
pub fn can_send_frames(test: &str) -> bool {
    if !can_run(test) {
        return false;
    }
    netns_lab::can_run_with(test, &["python3"])
}

/// An IPv4 UDP frame.
pub fn udp_frame(
    (src_mac, dst_mac): ([u8; 6], [u8; 6]),
    (src, dst): (Ipv4Addr, Ipv4Addr),
    (sport, dport): (u16, u16),
    payload: &[u8],
) -> Vec<u8> {
    let builder = etherparse::PacketBuilder::ethernet2(src_mac, dst_mac)
        .ipv4(src.octets(), dst.octets(), 64)
        .udp(sport, dport);
    let mut out = Vec::with_capacity(builder.size(payload.len()));
    builder.write(&mut out, payload).unwrap();
    out
}

/// An ARP request from `mac` claiming `sender`, asking for `target`.
pub fn arp_request(mac: [u8; 6], sender: Ipv4Addr, target: Ipv4Addr) -> Vec<u8> {
    let mut out = vec![0xff; 6];
    out.extend_from_slice(&mac);
    out.extend_from_slice(&[0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1]);
    out.extend_from_slice(&mac);
    out.extend_from_slice(&sender.octets());
    out.extend_from_slice(&[0; 6]);
    out.extend_from_slice(&target.octets());
    out
}

/// `frame` with a VLAN tag (`tpid`, VLAN id `id`) after its MAC addresses.
pub fn tagged(frame: &[u8], tpid: u16, id: u16) -> Vec<u8> {
    let mut out = frame[..12].to_vec();
    out.extend_from_slice(&tpid.to_be_bytes());
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&frame[12..]);
    out
}

/// A DHCPACK (BOOTREPLY, option 53 = 5) of `yiaddr` for `client`, with a
/// lease of `secs`, as a frame from `server` to the client's MAC.
pub fn dhcp_ack(
    (server_mac, server): ([u8; 6], Ipv4Addr),
    client: [u8; 6],
    yiaddr: Ipv4Addr,
    secs: u32,
) -> Vec<u8> {
    let mut msg = vec![0u8; 236];
    msg[0] = 2; // BOOTREPLY
    msg[1] = 1; // Ethernet
    msg[2] = 6;
    msg[16..20].copy_from_slice(&yiaddr.octets());
    msg[28..34].copy_from_slice(&client);
    msg.extend_from_slice(&[99, 130, 83, 99, 53, 1, 5, 54, 4]);
    msg.extend_from_slice(&server.octets());
    msg.extend_from_slice(&[51, 4]);
    msg.extend_from_slice(&secs.to_be_bytes());
    msg.push(255);
    udp_frame((server_mac, client), (server, yiaddr), (67, 68), &msg)
}

/// Events until none arrives for `quiet`.
pub fn drain_events(events: &Receiver<LearnEvent>, quiet: Duration) -> Vec<LearnEvent> {
    let mut out = Vec::new();
    while let Ok(event) = events.recv_timeout(quiet) {
        out.push(event);
    }
    out
}
