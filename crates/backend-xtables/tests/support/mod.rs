//! Network-namespace labs for kernel tests.
//!
//! A lab is a "host" namespace with a bridge `br0` and one `vnetN` veth
//! port per guest; each guest is its own namespace whose `eth0` is the
//! other end. Everything is created under unique names (test pid and a
//! counter) and removed by `Drop`, also when the test panics. Only
//! processes the lab started are killed, by their PID. Nothing ever runs
//! in this machine's own namespace except `ip netns add/del`.

#![allow(dead_code, clippy::print_stderr)]

use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Whether kernel tests can run here. Without root or `ip netns` they are
/// skipped with the reason printed, except under CI (`CI=true`), where
/// that is a failure.
pub fn can_run(test: &str) -> bool {
    let reason = if !is_root() {
        Some("not running as root")
    } else if !ip_netns_works() {
        Some("`ip netns add` does not work here")
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

/// Prints why a test did not run.
pub fn note_skip(test: &str, why: &str) {
    eprintln!("skipped {test}: {why}");
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

fn ip_netns_works() -> bool {
    let probe = Netns::try_new("probe");
    probe.is_some()
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
        let name = format!("nwft-{}-{n}-{tag}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then(|| Netns { name })
    }

    pub fn new(tag: &str) -> Netns {
        Netns::try_new(tag).expect("ip netns add")
    }

    /// Runs `argv` inside the namespace.
    pub fn run(&self, argv: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(argv)
            .stdin(Stdio::null())
            .output()
            .expect("ip netns exec")
    }

    /// Runs `argv` inside the namespace; panics with its stderr on failure.
    pub fn ok(&self, argv: &[&str]) -> String {
        let out = self.run(argv);
        assert!(
            out.status.success(),
            "in {}: {:?} failed: {}{}",
            self.name,
            argv,
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs `argv` inside the namespace with `input` on stdin.
    pub fn run_stdin(&self, argv: &[&str], input: &str) -> Output {
        use std::io::Write;
        let mut child = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(argv)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs `argv` with `input` on stdin; panics with its stderr on failure.
    pub fn ok_stdin(&self, argv: &[&str], input: &str) -> String {
        let out = self.run_stdin(argv, input);
        assert!(
            out.status.success(),
            "{argv:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Starts `argv` in the background; the guard kills it by PID.
    pub fn spawn(&self, argv: &[&str]) -> Background {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(argv)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
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

/// A process we started; killed (by its PID) when dropped.
#[derive(Debug)]
pub struct Background {
    child: Option<Child>,
}

impl Background {
    /// The process id (to signal it).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("still running").id()
    }

    /// Waits for it to exit on its own and returns its output.
    pub fn wait(mut self) -> Output {
        self.child.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A scratch directory with a config (`etc/`) and a state (`run/`)
/// directory, removed on drop: for the CLI and the daemon under test.
pub struct Scratch(pub std::path::PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        let name = format!("nwfilter-test-{}-{tag}", std::process::id());
        let dir = std::env::temp_dir().join(name);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::create_dir_all(dir.join("run")).unwrap();
        Scratch(dir)
    }
    pub fn etc(&self) -> std::path::PathBuf {
        self.0.join("etc")
    }
    pub fn run(&self) -> std::path::PathBuf {
        self.0.join("run")
    }
    /// Where `nwfilterd` listens by default.
    pub fn socket(&self) -> std::path::PathBuf {
        self.run().join("nwfilterd.sock")
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One guest: its namespace, its port in the host, address and MAC.
#[derive(Debug)]
pub struct Guest {
    pub ns: Netns,
    pub port: String,
    pub ip: String,
    /// A static IPv6 address (fd77::N), to show IPv6 is dropped.
    pub ip6: String,
    pub mac: String,
}

impl Guest {
    /// A `<filterbinding>` of `filter` to this guest's port, MAC and IP.
    pub fn binding_xml(&self, filter: &str) -> String {
        format!(
            "<filterbinding>
  <owner><name>vm-{port}</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner>
  <portdev name='{port}'/>
  <mac address='{mac}'/>
  <filterref filter='{filter}'><parameter name='IP' value='{ip}'/></filterref>
</filterbinding>
",
            port = self.port,
            mac = self.mac,
            ip = self.ip
        )
    }

    /// `ping` from the guest: true if at least one reply came back.
    pub fn pings(&self, to: &str) -> bool {
        self.ns
            .run(&["ping", "-c", "2", "-i", "0.2", "-W", "1", "-n", "-q", to])
            .status
            .success()
    }

    /// Changes the guest's IPv4 address (on eth0, /24).
    pub fn set_ip(&self, ip: &str) {
        self.ns
            .ok(&["ip", "addr", "flush", "dev", "eth0", "scope", "global"]);
        self.ns
            .ok(&["ip", "addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
    }

    /// `ping -6` from the guest: true if a reply came back.
    pub fn pings6(&self, to: &str) -> bool {
        self.ns
            .run(&[
                "ping", "-6", "-c", "2", "-i", "0.2", "-W", "1", "-n", "-q", to,
            ])
            .status
            .success()
    }

    /// The MAC address this guest's kernel has for `ip` (empty if none).
    pub fn neighbour_mac(&self, ip: &str) -> String {
        let out = self.ns.ok(&["ip", "neigh", "show", ip, "dev", "eth0"]);
        out.split_whitespace()
            .skip_while(|w| *w != "lladdr")
            .nth(1)
            .unwrap_or("")
            .to_string()
    }

    pub fn set_mac(&self, mac: &str) {
        self.ns.ok(&["ip", "link", "set", "eth0", "address", mac]);
    }

    /// Opens a TCP connection to `ip:port` (IPv4 or IPv6); true if it was
    /// accepted.
    pub fn connects(&self, ip: &str, port: u16) -> bool {
        self.ns
            .run(&["nc", "-z", "-w", "2", ip, &port.to_string()])
            .status
            .success()
    }

    /// Accepts TCP connections on `port` (IPv4) until the guard drops.
    pub fn listen(&self, port: u16) -> Background {
        self.ns.spawn(&["nc", "-l", "-k", &port.to_string()])
    }

    /// Accepts TCP connections on `port` (IPv6) until the guard drops.
    pub fn listen6(&self, port: u16) -> Background {
        self.ns.spawn(&["nc", "-6", "-l", "-k", &port.to_string()])
    }

    /// Sends ARP replies claiming `victim`'s address (`arping -A -S`).
    pub fn forge_arp_for(&self, victim: &Guest) {
        let _ = self.ns.run(&[
            "arping", "-q", "-A", "-c", "3", "-w", "2", "-i", "eth0", "-S", &victim.ip, &victim.ip,
        ]);
    }
}

/// The lines of `listing` that name `port` as a whole word (`vnet1` but
/// not `vnet10`): after a port is removed, none may be left.
pub fn lines_naming(listing: &str, port: &str) -> Vec<String> {
    let boundary = |c: Option<char>| !c.is_some_and(|c| c.is_ascii_alphanumeric());
    listing
        .lines()
        .filter(|line| {
            line.match_indices(port).any(|(at, _)| {
                boundary(line[..at].chars().next_back())
                    && boundary(line[at + port.len()..].chars().next())
            })
        })
        .map(String::from)
        .collect()
}

/// A host namespace with a bridge and guests on `vnetN` ports.
#[derive(Debug)]
pub struct Lab {
    pub guests: Vec<Guest>,
    // Declared last: dropped after the guests' namespaces.
    pub host: Netns,
}

impl Lab {
    /// `n` guests: guest i has port `vnet{i}`, IP 10.77.0.{i+10}, MAC
    /// 52:54:00:00:00:{i+10}. IPv6 stays on (link-local) so tests can
    /// show it is dropped.
    pub fn new(n: usize) -> Lab {
        let host = Netns::new("host");
        host.ok(&["ip", "link", "set", "lo", "up"]);
        host.ok(&["ip", "link", "add", "br0", "type", "bridge"]);
        host.ok(&["ip", "link", "set", "br0", "up"]);
        host.ok(&["ip", "addr", "add", "10.77.0.1/24", "dev", "br0"]);
        let guests = (0..n).map(|i| Lab::add_guest(&host, i)).collect();
        Lab { guests, host }
    }

    /// [`Lab::new`], then [`Lab::wait_ready`].
    pub fn ready(n: usize) -> Lab {
        let lab = Lab::new(n);
        lab.wait_ready();
        lab
    }

    /// [`Lab::ready`], with the admin rules of [`add_admin_rules`].
    pub fn with_admin_rules(n: usize) -> Lab {
        let lab = Lab::ready(n);
        add_admin_rules(&lab.host);
        lab
    }

    fn add_guest(host: &Netns, i: usize) -> Guest {
        let ns = Netns::new(&format!("g{i}"));
        let port = format!("vnet{i}");
        let ip = format!("10.77.0.{}", i + 10);
        let mac = format!("52:54:00:00:00:{:02x}", i + 10);
        host.ok(&[
            "ip", "link", "add", &port, "type", "veth", "peer", "name", "eth0", "netns", &ns.name,
        ]);
        host.ok(&["ip", "link", "set", &port, "master", "br0", "up"]);
        ns.ok(&["ip", "link", "set", "lo", "up"]);
        ns.ok(&["ip", "link", "set", "eth0", "address", &mac]);
        ns.ok(&["ip", "addr", "add", &format!("{ip}/24"), "dev", "eth0"]);
        let ip6 = format!("fd77::{}", i + 10);
        let cidr6 = format!("{ip6}/64");
        ns.ok(&["ip", "addr", "add", &cidr6, "dev", "eth0", "nodad"]);
        ns.ok(&["ip", "link", "set", "eth0", "up"]);
        Guest {
            ns,
            port,
            ip,
            ip6,
            mac,
        }
    }

    /// Waits until every guest reaches the host (ports forwarding, IPv6
    /// DAD done) so tests do not race link set-up.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        for guest in &self.guests {
            while !guest.pings("10.77.0.1") {
                assert!(Instant::now() < deadline, "{} never came up", guest.port);
            }
        }
    }

    /// The host namespace's tables as the save tools print them, without
    /// comments and counters: what "the ruleset" means for comparisons.
    pub fn ruleset(&self) -> String {
        let mut text = String::new();
        for tool in ["ebtables-save", "iptables-save", "ip6tables-save"] {
            let out = self.host.ok(&[tool]);
            for line in out.lines().filter(|l| !l.starts_with('#')) {
                text.push_str(line);
                text.push('\n');
            }
        }
        text.push_str(&chains_sorted(&self.host.ok(&["nft", "list", "ruleset"])));
        text
    }

    /// [`Lab::ruleset`] without counters: equal snapshots mean nothing
    /// that filters changed.
    pub fn snapshot(&self) -> String {
        without_counters(&self.ruleset())
    }
}

/// Removes what changes without anyone changing rules: counters.
pub fn without_counters(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut words: Vec<&str> = line.split(' ').collect();
        // iptables-save: ":CHAIN POLICY [p:b]"; nft: "counter packets P bytes B".
        if words
            .last()
            .is_some_and(|w| w.starts_with('[') && w.ends_with(']'))
        {
            words.pop();
        }
        let mut kept = Vec::new();
        let mut i = 0;
        while i < words.len() {
            if words[i] == "packets" || words[i] == "bytes" {
                i += 2;
                continue;
            }
            kept.push(words[i]);
            i += 1;
        }
        out.push_str(&kept.join(" "));
        out.push('\n');
    }
    out
}

/// Admin rules a real host might have in every table we touch; they must
/// survive everything we do.
pub fn add_admin_rules(host: &Netns) {
    host.ok_stdin(
        &["ebtables-restore", "--noflush"],
        "*nat\n-A PREROUTING -p 0x88b5 -j DROP\n-A POSTROUTING -p 0x88b6 -j DROP\nCOMMIT\n",
    );
    for tool in ["iptables-restore", "ip6tables-restore"] {
        host.ok_stdin(
            &[tool, "--noflush"],
            "*filter\n:ADMIN - [0:0]\n-A ADMIN -p tcp --dport 9 -j DROP\n-A FORWARD -j ADMIN\n-A INPUT -p tcp --dport 7 -j DROP\nCOMMIT\n",
        );
    }
}

/// A guest address (in the lab's subnet) that no filter allows.
pub const SPOOFED_IP: &str = "10.77.0.99";

/// Checks that `a`'s old rules, which drop tcp/25 and a spoofed source
/// address, still filter its traffic to `b`, and that `open` (which an
/// update that did not happen would have closed) still connects.
pub fn assert_old_rules_filter(a: &Guest, b: &Guest, open: u16) {
    let _l25 = b.listen(25);
    let _lopen = b.listen(open);
    std::thread::sleep(Duration::from_millis(300));
    assert!(!a.connects(&b.ip, 25), "the old rule still drops tcp/25");
    assert!(a.connects(&b.ip, open), "the new rules never took effect");
    a.set_ip(SPOOFED_IP);
    assert!(!a.pings(&b.ip), "the old rules still stop a spoofed IP");
    a.set_ip(&a.ip);
    assert!(a.pings(&b.ip), "and still let A's own address through");
}

/// Packets that reached `guest` from `source` (IPv4), counted by a rule
/// in the guest's own namespace (installed by `count_arrivals`).
pub fn arrivals(guest: &Guest, source: &str) -> u64 {
    let listing = guest
        .ns
        .ok(&["iptables", "-w", "-n", "-v", "-x", "-L", "INPUT"]);
    listing
        .lines()
        .filter(|l| l.split_whitespace().nth(7) == Some(source))
        .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

/// Starts counting packets from `source` arriving at `guest`.
pub fn count_arrivals(guest: &Guest, source: &str) {
    guest.ns.ok(&[
        "iptables", "-w", "-I", "INPUT", "-s", source, "-j", "ACCEPT",
    ]);
}

/// `nft list ruleset` with each table's chains sorted by name: nft lists
/// chains in creation order, which carries no meaning for filtering.
pub fn chains_sorted(listing: &str) -> String {
    let mut out = String::new();
    let mut chains: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    for line in listing.lines() {
        if let Some(chain) = current.as_mut() {
            chain.push_str(line);
            chain.push('\n');
            if line == "\t}" {
                chains.push(current.take().unwrap());
            }
        } else if line.starts_with("\tchain ") {
            current = Some(format!("{line}\n"));
        } else if line.is_empty() {
            continue;
        } else {
            if line == "}" {
                chains.sort();
                out.extend(chains.drain(..));
            }
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Compiles `filter` (built-in or one of `extra` filter documents) for
/// `guest`'s port and MAC with `params`, through the real compiler: the
/// chain IR every backend renders.
pub fn program(
    extra: &[&str],
    guest: &Guest,
    filter: &str,
    params: &[(&str, &str)],
) -> nwfilter_compile::ir::Program {
    use nwfilter_compile::{compile, Compiled, MemorySource};
    use nwfilter_model::{builtin_filters, parse_filter, FilterName, FilterRef, IfName, Params};
    let mut source = MemorySource::new();
    for f in builtin_filters() {
        source.insert(f);
    }
    for xml in extra {
        source.insert(parse_filter(xml).expect("test filter parses"));
    }
    let mut p = Params::default();
    for (name, value) in params {
        p.push(*name, *value);
    }
    let top = FilterRef {
        filter: FilterName::new(filter).unwrap(),
        params: p,
    };
    let mac = guest.mac.parse().unwrap();
    let port = IfName::new(guest.port.clone()).unwrap();
    let Compiled::Program(program) = compile(&source, &top, mac, &port).expect("compiles") else {
        panic!("{filter}: every variable must be bound in these tests");
    };
    program
}
