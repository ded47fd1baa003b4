//! The namespace lab of the virtual-network tests (`netns_network.rs` on
//! iptables, `netns_network_nft.rs` on nftables): namespace H runs the
//! network (bridge `virbr0`); guest G hangs off the bridge through a veth;
//! outside O stands for the LAN, joined to H by the uplink veth `up0`
//! (198.51.100.1 ↔ .2). Small Python helpers act as DHCP client, DNS
//! client and TCP endpoints.

#![allow(dead_code)]
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

use netns_lab::Netns;

pub const GUEST_MAC: &str = "52:54:00:4e:44:10";
pub const GUEST_IP: &str = "10.77.0.10";

/// Whether this machine can run the test (the lab's conditions and the
/// programs the network and its helpers use).
pub fn can_run(test: &str) -> bool {
    netns_lab::can_run_with(
        test,
        &["iptables", "ip6tables", "dnsmasq", "python3", "busybox"],
    )
}

pub fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

pub fn ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What this test does in a namespace beyond the lab's [`Netns`].
pub trait Endpoints {
    fn python(&self, script: &str, args: &[&str]) -> Output;
    /// Starts a one-connection TCP server that prints the peer's address;
    /// returns once it listens.
    fn tcp_server(&self, addr: &str, port: &str) -> Server;
    fn connects(&self, addr: &str, port: &str) -> bool;
}

impl Endpoints for Netns {
    fn python(&self, script: &str, args: &[&str]) -> Output {
        let mut argv = vec!["python3", "-c", script];
        argv.extend_from_slice(args);
        self.run(&argv)
    }

    fn tcp_server(&self, addr: &str, port: &str) -> Server {
        let mut child = Command::new("ip")
            .args([
                "netns", "exec", &self.name, "python3", "-c", TCP_SERVER, addr, port,
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 starts");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped");
        let mut reader = BufReader::new(stdout);
        reader.read_line(&mut line).expect("server says it listens");
        assert_eq!(line.trim(), "listening");
        Server { child, reader }
    }

    fn connects(&self, addr: &str, port: &str) -> bool {
        self.python(TCP_CLIENT, &[addr, port]).status.success()
    }
}

/// A namespace of the lab with its loopback up.
pub fn namespace(tag: &str) -> Netns {
    let ns = Netns::new(tag);
    ns.ok(&["ip", "link", "set", "lo", "up"]);
    ns
}

/// A TCP server we started; killed (by its pid) on drop if still running.
pub struct Server {
    child: Child,
    reader: BufReader<std::process::ChildStdout>,
}

impl Server {
    /// The peer address it saw, or None if nobody connected in time.
    pub fn peer(mut self) -> Option<String> {
        let mut line = String::new();
        self.reader.read_line(&mut line).ok()?;
        let peer = line.trim().to_owned();
        (!peer.is_empty()).then_some(peer)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub const TCP_SERVER: &str = "
import socket, sys
family = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET
s = socket.socket(family); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2]))); s.listen(1); s.settimeout(10)
print('listening', flush=True)
try:
    c, peer = s.accept(); print(peer[0], flush=True); c.close()
except socket.timeout:
    print('', flush=True)
";

pub const TCP_CLIENT: &str = "
import socket, sys
family = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET
s = socket.socket(family); s.settimeout(3)
try:
    s.connect((sys.argv[1], int(sys.argv[2])))
except OSError:
    sys.exit(1)
";

/// Broadcasts a DHCPDISCOVER from interface argv[1] with MAC argv[2];
/// prints the offered address.
pub const DHCP_DISCOVER: &str = "
import socket, struct, random, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.setsockopt(socket.SOL_SOCKET, 25, sys.argv[1].encode())  # SO_BINDTODEVICE
s.bind(('0.0.0.0', 68)); s.settimeout(3)
mac = bytes.fromhex(sys.argv[2].replace(':', ''))
xid = random.getrandbits(32)
pkt = struct.pack('!BBBBIHH16s16s64s128s', 1, 1, 6, 0, xid, 0, 0x8000, bytes(16), mac + bytes(10), bytes(64), bytes(128))
pkt += bytes([99, 130, 83, 99, 53, 1, 1, 255])
for _ in range(5):
    s.sendto(pkt, ('255.255.255.255', 67))
    try:
        while True:
            d, _ = s.recvfrom(2048)
            if len(d) >= 240 and d[0] == 2 and struct.unpack('!I', d[4:8])[0] == xid:
                print(socket.inet_ntoa(d[16:20])); sys.exit(0)
    except socket.timeout:
        pass
sys.exit(1)
";

/// Asks DNS server argv[2] for the A record of argv[1]; prints it.
pub const DNS_QUERY: &str = "
import socket, struct, sys
q = struct.pack('!HHHHHH', 0x4e44, 0x0100, 1, 0, 0, 0)
q += b''.join(bytes([len(p)]) + p.encode() for p in sys.argv[1].split('.')) + b'\\0' + struct.pack('!HH', 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
s.sendto(q, (sys.argv[2], 53)); d, _ = s.recvfrom(512)
if struct.unpack('!H', d[6:8])[0] == 0: sys.exit(1)
print(socket.inet_ntoa(d[-4:]))
";

/// Three namespaces wired up, and the directories `nwfilter` works in.
pub struct Lab {
    pub dirs: tempfile::TempDir,
    // Dropped in this order after the network guard: guest, outside, host.
    pub guest: Netns,
    pub outside: Netns,
    pub host: Netns,
}

impl Lab {
    pub fn new() -> Lab {
        let dirs = tempfile::tempdir().unwrap();
        // dnsmasq drops root before reading its hosts files there.
        std::fs::set_permissions(
            dirs.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        let lab = Lab {
            dirs,
            guest: namespace("guest"),
            outside: namespace("outside"),
            host: namespace("host"),
        };
        let (h, g, o) = (&lab.host.name, &lab.guest.name, &lab.outside.name);
        ok(
            "ip",
            &[
                "-n", h, "link", "add", "up0", "type", "veth", "peer", "name", "out0", "netns", o,
            ],
        );
        ok(
            "ip",
            &["-n", h, "addr", "add", "198.51.100.1/24", "dev", "up0"],
        );
        ok("ip", &["-n", h, "link", "set", "up0", "up"]);
        ok(
            "ip",
            &["-n", o, "addr", "add", "198.51.100.2/24", "dev", "out0"],
        );
        ok("ip", &["-n", o, "link", "set", "out0", "up"]);
        ok(
            "ip",
            &[
                "-n", h, "link", "add", "vg0", "type", "veth", "peer", "name", "g0", "netns", g,
            ],
        );
        ok("ip", &["-n", g, "link", "set", "g0", "address", GUEST_MAC]);
        ok("ip", &["-n", g, "link", "set", "g0", "up"]);
        lab
    }

    /// `nwfilter ARGS` inside the host namespace, on the lab's directories.
    pub fn nwfilter(&self, args: &[&str]) -> Output {
        let bin = env!("CARGO_BIN_EXE_nwfilter");
        let config = self.dirs.path().join("config");
        let state = self.dirs.path().join("state");
        let mut argv = vec![
            bin,
            "--config-dir",
            config.to_str().unwrap(),
            "--state-dir",
            state.to_str().unwrap(),
        ];
        argv.extend_from_slice(args);
        self.host.run(&argv)
    }

    pub fn nwfilter_ok(&self, args: &[&str]) -> String {
        let out = self.nwfilter(args);
        assert!(
            out.status.success(),
            "nwfilter {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Defines and starts `xml`; the guard destroys it on drop.
    pub fn start(&self, xml: &str) -> Running<'_> {
        let file: PathBuf = self.dirs.path().join("net.xml");
        std::fs::write(&file, xml).unwrap();
        self.nwfilter_ok(&["net-define", file.to_str().unwrap()]);
        self.nwfilter_ok(&["net-start", "lab"]);
        // Plug the guest's cable into the bridge.
        self.host
            .ok(&["ip", "link", "set", "vg0", "master", "virbr0", "up"]);
        Running {
            lab: self,
            active: true,
        }
    }

    /// Gives the guest its address and default route through the bridge.
    pub fn configure_guest(&self) {
        self.guest
            .ok(&["ip", "addr", "add", &format!("{GUEST_IP}/24"), "dev", "g0"]);
        self.guest
            .ok(&["ip", "route", "add", "default", "via", "10.77.0.1"]);
    }

    pub fn dnsmasq_pid(&self) -> Option<u32> {
        let state = self.dirs.path().join("state/networks/lab.json");
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(state).ok()?).ok()?;
        json["dnsmasq_pid"].as_u64().map(|p| p as u32)
    }

    /// The host namespace's whole IPv4 ruleset.
    pub fn ruleset(&self) -> String {
        self.host.ok(&["iptables-save"])
    }
}

/// A started network; destroyed on drop unless the test destroyed it.
pub struct Running<'a> {
    lab: &'a Lab,
    active: bool,
}

impl Running<'_> {
    pub fn destroy(mut self) {
        self.active = false;
        self.lab.nwfilter_ok(&["net-destroy", "lab"]);
    }
}

impl Drop for Running<'_> {
    fn drop(&mut self) {
        if self.active {
            let _ = self.lab.nwfilter(&["net-destroy", "lab"]);
        }
    }
}

pub fn network(forward: &str) -> String {
    format!(
        // STP off: with STP the kernel holds a new bridge port in the
        // listening and learning states for at least 2 s each.
        "<network><name>lab</name><bridge name='virbr0' stp='off'/>{forward}
           <domain name='lab.test'/>
           <dns><host ip='10.77.0.99'><hostname>db</hostname></host></dns>
           <ip address='10.77.0.1' prefix='24'><dhcp>
             <range start='10.77.0.100' end='10.77.0.150'/>
             <host mac='{GUEST_MAC}' name='guest' ip='{GUEST_IP}'/>
           </dhcp></ip></network>"
    )
}

pub fn pid_alive(pid: u32) -> bool {
    // A zombie has an empty command line: it no longer runs.
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
}

impl Lab {
    /// Writes `backend = NAME` into the lab's settings file: every later
    /// verb applies with that backend (as `nwfilter.conf` does on a host).
    pub fn set_backend(&self, backend: &str) {
        let config = self.dirs.path().join("config");
        std::fs::create_dir_all(&config).unwrap();
        std::fs::write(
            config.join("nwfilter.conf"),
            format!("backend = {backend}\n"),
        )
        .unwrap();
    }

    /// The host namespace's whole nftables ruleset (iptables-nft tables
    /// included), without counters, which traffic changes.
    pub fn nft_ruleset(&self) -> String {
        self.host.ok(&["nft", "-s", "list", "ruleset"])
    }

    /// What Docker leaves in iptables(-nft): `FORWARD` policy DROP, the
    /// `DOCKER-USER` chain for the admin's rules and Docker's own chain,
    /// jumped to from the top of `FORWARD`.
    pub fn docker_like_firewall(&self) {
        for args in [
            &["-N", "DOCKER-USER"][..],
            &["-A", "DOCKER-USER", "-j", "RETURN"],
            &["-N", "DOCKER-FORWARD"],
            &["-A", "DOCKER-FORWARD", "-i", "docker0", "-j", "ACCEPT"],
            &["-P", "FORWARD", "DROP"],
            &["-A", "FORWARD", "-j", "DOCKER-USER"],
            &["-A", "FORWARD", "-j", "DOCKER-FORWARD"],
        ] {
            let mut argv = vec!["iptables", "-w"];
            argv.extend_from_slice(args);
            self.host.ok(&argv);
        }
    }

    /// What ufw leaves (it drives iptables-nft too): `INPUT` policy DROP,
    /// only loopback and replies let in by its `ufw-before-input` chain.
    pub fn ufw_like_firewall(&self) {
        for args in [
            &["-N", "ufw-before-input"][..],
            &["-A", "ufw-before-input", "-i", "lo", "-j", "ACCEPT"],
            &[
                "-A",
                "ufw-before-input",
                "-m",
                "conntrack",
                "--ctstate",
                "RELATED,ESTABLISHED",
                "-j",
                "ACCEPT",
            ],
            &["-P", "INPUT", "DROP"],
            &["-A", "INPUT", "-j", "ufw-before-input"],
        ] {
            let mut argv = vec!["iptables", "-w"];
            argv.extend_from_slice(args);
            self.host.ok(&argv);
        }
    }
}

/// Asserts that the guest gets its static lease and a DNS answer from the
/// network's dnsmasq.
pub fn assert_dhcp_and_dns(lab: &Lab) {
    let offer = lab.guest.python(DHCP_DISCOVER, &["g0", GUEST_MAC]);
    assert_eq!(
        String::from_utf8_lossy(&offer.stdout).trim(),
        GUEST_IP,
        "no DHCP offer of the static host's address: {}",
        String::from_utf8_lossy(&offer.stderr)
    );
    lab.configure_guest();
    let answer = lab.guest.python(DNS_QUERY, &["db.lab.test", "10.77.0.1"]);
    assert_eq!(
        String::from_utf8_lossy(&answer.stdout).trim(),
        "10.77.0.99",
        "no DNS answer: {}",
        String::from_utf8_lossy(&answer.stderr)
    );
}

impl Lab {
    /// A rule in each iptables table the iptables backend uses, for both
    /// families: iptables-nft tables outlive their last rule, so only a
    /// host that has them already can get its ruleset back exactly.
    pub fn with_iptables_tables(&self) {
        for tool in ["iptables", "ip6tables"] {
            for (table, chain) in [("nat", "POSTROUTING"), ("mangle", "POSTROUTING")] {
                self.host.ok(&[
                    tool, "-w", "-t", table, "-A", chain, "-o", "lo", "-j", "RETURN",
                ]);
            }
            for (chain, dev) in [("INPUT", "-i"), ("FORWARD", "-i"), ("OUTPUT", "-o")] {
                self.host
                    .ok(&[tool, "-w", "-A", chain, dev, "lo", "-j", "RETURN"]);
            }
        }
    }
}
