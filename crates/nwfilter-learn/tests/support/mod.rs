//! A network-namespace lab for learning tests.
//!
//! A "host" namespace holds a bridge `br0` (10.77.0.1/24) and one `vnetN`
//! veth port per guest; each guest is its own namespace whose `eth0` is
//! the other end. Names are unique (test pid and a counter); namespaces
//! are deleted and processes killed (by their PID) on `Drop`, also when
//! a test panics. Nothing runs in this machine's own namespace except
//! `ip netns add/del`.

#![allow(dead_code, clippy::print_stderr)]

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::sync::Mutex;

use host_io::{ProcessRunner, Toolset};
pub use nwfilter_driver::Backend;
use nwfilter_driver::{apply_once, Rendered};
use nwfilter_compile::ir::Program;
use nwfilter_compile::{bind, lower, BindOutcome, MemorySource};
use nwfilter_learn::{
    AddressBook, Config, FirewallError, LearnEvent, Learner, LearningMode, LeaseKey, LeaseStore,
    NothingTaken, PortFirewall, PortSpec, Watch,
};
use nwfilter_model::{builtin_filters, FilterName, FilterRef, IfName, MacAddr6, Params};

/// Whether namespace tests can run. Without root or `ip netns` they are
/// skipped with the reason printed, except under CI (`CI=true`), where
/// that is a failure.
pub fn can_run(test: &str) -> bool {
    let reason = if !is_root() {
        Some("not running as root")
    } else if Netns::try_new("probe").is_none() {
        Some("`ip netns add` does not work here")
    } else if !on_path("dnsmasq") || !on_path("busybox") {
        Some("dnsmasq or busybox (udhcpc) is not installed")
    } else {
        None
    };
    match reason {
        None => true,
        Some(why) => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "{test}: cannot run under CI: {why}"
            );
            eprintln!("skipped {test}: {why}");
            false
        }
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn on_path(program: &str) -> bool {
    std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths)
            .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
            .any(|dir| dir.join(program).is_file())
    })
}

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A network namespace we created; deleted on drop.
#[derive(Debug)]
pub struct Netns {
    pub name: String,
}

impl Netns {
    fn try_new(tag: &str) -> Option<Netns> {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("nwfl-{}-{n}-{tag}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Netns { name })
    }

    pub fn new(tag: &str) -> Netns {
        Netns::try_new(tag).expect("ip netns add")
    }

    /// The namespace's file, for setns(2).
    pub fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }

    pub fn run(&self, argv: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(argv)
            .stdin(Stdio::null())
            .output()
            .expect("ip netns exec")
    }

    /// Runs `argv`; panics with its output on failure.
    pub fn ok(&self, argv: &[&str]) -> String {
        let out = self.run(argv);
        assert!(
            out.status.success(),
            "in {}: {argv:?} failed: {}{}",
            self.name,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `argv` in the background; the guard kills it by PID.
    pub fn spawn(&self, argv: &[&str]) -> Background {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        Background { child: Some(child) }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A process we started (`ip netns exec` execs the program, so this PID
/// is the program's); killed by that PID when dropped.
#[derive(Debug)]
pub struct Background {
    child: Option<Child>,
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// One guest: its namespace and its port in the host.
#[derive(Debug)]
pub struct Guest {
    pub ns: Netns,
    pub port: String,
    pub mac: String,
}

impl Guest {
    pub fn pings(&self, to: &str) -> bool {
        self.ns
            .run(&["ping", "-c", "2", "-i", "0.2", "-W", "1", "-n", "-q", to])
            .status
            .success()
    }

    pub fn set_ip(&self, ip: &str) {
        self.ns
            .ok(&["ip", "addr", "flush", "dev", "eth0", "scope", "global"]);
        self.ns
            .ok(&["ip", "addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
    }

    /// The guest's IPv4 address on eth0, if it has one.
    pub fn address(&self) -> Option<Ipv4Addr> {
        let out = self
            .ns
            .ok(&["ip", "-4", "-o", "addr", "show", "dev", "eth0"]);
        let word = out.split_whitespace().skip_while(|w| *w != "inet").nth(1)?;
        word.split('/').next()?.parse().ok()
    }

    /// Runs busybox udhcpc once (no renewal: it exits after the lease);
    /// true if it got a lease. `script` configures the address.
    pub fn dhcp(&self, script: &Path) -> bool {
        let script = script.to_str().unwrap();
        self.ns
            .run(&[
                "busybox", "udhcpc", "-f", "-q", "-n", "-t", "4", "-T", "1", "-i", "eth0", "-s",
                script,
            ])
            .status
            .success()
    }

    /// A udhcpc that stays and renews its lease (killed on drop).
    pub fn dhcp_client(&self, script: &Path) -> Background {
        let script = script.to_str().unwrap();
        self.ns.spawn(&[
            "busybox", "udhcpc", "-f", "-t", "4", "-T", "1", "-i", "eth0", "-s", script,
        ])
    }

    pub fn port(&self) -> IfName {
        IfName::new(self.port.clone()).unwrap()
    }

    pub fn mac(&self) -> MacAddr6 {
        self.mac.parse().unwrap()
    }
}

/// Host namespace with a bridge and guests on `vnetN` ports.
#[derive(Debug)]
pub struct Lab {
    pub guests: Vec<Guest>,
    // Declared last: dropped after the guests' namespaces.
    pub host: Netns,
}

pub const HOST_IP: &str = "10.77.0.1";

impl Lab {
    /// `statics[i]` is guest i's static address, or `None` (no address).
    /// Guest i has port `vnet{i}` and MAC 52:54:00:00:00:{i+10}.
    pub fn new(statics: &[Option<&str>]) -> Lab {
        let host = Netns::new("host");
        host.ok(&["ip", "link", "set", "lo", "up"]);
        host.ok(&["ip", "link", "add", "br0", "type", "bridge"]);
        host.ok(&["ip", "link", "set", "br0", "up"]);
        host.ok(&["ip", "addr", "add", &format!("{HOST_IP}/24"), "dev", "br0"]);
        let guests = statics
            .iter()
            .enumerate()
            .map(|(i, ip)| add_guest(&host, i, *ip))
            .collect();
        Lab { guests, host }
    }

    /// dnsmasq serving DHCP on br0 (10.77.0.50–59, leases of `lease`,
    /// e.g. "2m": dnsmasq's minimum), its lease file in `dir`.
    pub fn dnsmasq(&self, dir: &Path, lease: &str) -> Background {
        let range = format!("--dhcp-range=10.77.0.50,10.77.0.59,255.255.255.0,{lease}");
        let leases = format!("--dhcp-leasefile={}", dir.join("dnsmasq.leases").display());
        let server = self.host.spawn(&[
            "dnsmasq",
            "--keep-in-foreground",
            "--conf-file=/dev/null",
            "--no-resolv",
            "--no-hosts",
            "--port=0",
            "--interface=br0",
            "--bind-interfaces",
            &range,
            &leases,
            "--pid-file=",
        ]);
        // Ready once its DHCP socket is bound.
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self.host.ok(&["ss", "-ulnp"]).contains(":67 ") {
            assert!(Instant::now() < deadline, "dnsmasq did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    pub fn runner(&self) -> ProcessRunner {
        ProcessRunner::new(Toolset::default()).in_netns(self.host.name.clone())
    }

    /// A learner capturing in the host namespace, applying its rules there.
    pub fn learner(&self, state: &Path, give_up: Option<Duration>) -> Learner {
        self.learner_with(state, give_up, Backend::Xtables)
    }

    /// Like [`Lab::learner`], rendering the learning rules with `backend`.
    pub fn learner_with(
        &self,
        state: &Path,
        give_up: Option<Duration>,
        backend: Backend,
    ) -> Learner {
        let config = Config {
            workers: 1,
            give_up_after: give_up,
            netns: Some(self.host.path()),
            ..Config::default()
        };
        self.learner_configured(state, config, backend, Arc::new(NothingTaken))
    }

    /// A learner with `config` (its namespace set to the lab's host) and
    /// the addresses `book` says other ports hold.
    pub fn learner_configured(
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

fn add_guest(host: &Netns, i: usize, ip: Option<&str>) -> Guest {
    let ns = Netns::new(&format!("g{i}"));
    let port = format!("vnet{i}");
    let mac = format!("52:54:00:00:00:{:02x}", i + 10);
    host.ok(&[
        "ip", "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns.name,
    ]);
    host.ok(&["ip", "link", "set", &port, "master", "br0", "up"]);
    ns.ok(&["ip", "link", "set", "lo", "up"]);
    ns.ok(&["ip", "link", "set", "eth0", "address", &mac]);
    if let Some(ip) = ip {
        ns.ok(&["ip", "addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
    }
    ns.ok(&["ip", "link", "set", "eth0", "up"]);
    Guest { ns, port, mac }
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

impl Netns {
    /// Like [`Netns::spawn`], with `/dev/zero` as standard input (an
    /// endless source for a flood).
    pub fn spawn_with_zero_stdin(&self, argv: &[&str]) -> Background {
        let zero = std::fs::File::open("/dev/zero").unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(argv)
            .stdin(Stdio::from(zero))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        Background { child: Some(child) }
    }
}

/// Whether python3 (which sends hand-built frames) is there; like
/// [`can_run`], a skip outside CI and a failure under it.
pub fn can_send_frames(test: &str) -> bool {
    if !can_run(test) {
        return false;
    }
    if on_path("python3") {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{test}: cannot run under CI: python3 is not installed"
    );
    eprintln!("skipped {test}: python3 is not installed");
    false
}

/// Sends each frame as is (an AF_PACKET socket on eth0), `gap` apart.
const SEND_FRAMES: &str = r#"
import socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("eth0", 0))
gap = float(sys.argv[1])
for frame in sys.argv[2:]:
    s.send(bytes.fromhex(frame))
    time.sleep(gap)
"#;

impl Guest {
    /// Sends hand-built Ethernet frames out of the guest's eth0.
    pub fn send_frames(&self, frames: &[Vec<u8>], gap: Duration) {
        let hex: Vec<String> = frames
            .iter()
            .map(|f| f.iter().map(|b| format!("{b:02x}")).collect())
            .collect();
        let gap = format!("{}", gap.as_secs_f64());
        let mut argv = vec!["python3", "-c", SEND_FRAMES, &gap];
        argv.extend(hex.iter().map(String::as_str));
        self.ns.ok(&argv);
    }
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

impl Guest {
    /// The guest's MAC as bytes.
    pub fn mac_bytes(&self) -> [u8; 6] {
        self.mac().into_array()
    }
}

/// Events until none arrives for `quiet`.
pub fn drain_events(events: &Receiver<LearnEvent>, quiet: Duration) -> Vec<LearnEvent> {
    let mut out = Vec::new();
    while let Ok(event) = events.recv_timeout(quiet) {
        out.push(event);
    }
    out
}
