//! End to end: virtual networks started by `nwfilter net-start` in network
//! namespaces this test creates and removes (Drop guards, also on failure).
//!
//! Topology per test: namespace H runs the network (bridge `virbr0`);
//! guest G hangs off the bridge through a veth; outside O stands for the
//! LAN, joined to H by the uplink veth `up0` (198.51.100.1 ↔ .2). Small
//! Python helpers act as DHCP client, DNS client and TCP endpoints.
//!
//! Needs root, `ip`, `iptables`, `ip6tables`, `dnsmasq`, `python3` and
//! `busybox` (its `nslookup` is the guest's resolver); skips with the
//! reason otherwise, and fails instead under `CI=true`.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};

use netns_lab::Netns;

const GUEST_MAC: &str = "52:54:00:4e:44:10";
const GUEST_IP: &str = "10.77.0.10";

/// Whether this machine can run the test (the lab's conditions and the
/// programs the network and its helpers use).
fn can_run(test: &str) -> bool {
    netns_lab::can_run_with(
        test,
        &["iptables", "ip6tables", "dnsmasq", "python3", "busybox"],
    )
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {program}: {e}"))
}

fn ok(program: &str, args: &[&str]) -> String {
    let out = run(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// What this test does in a namespace beyond the lab's [`Netns`].
trait Endpoints {
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
fn namespace(tag: &str) -> Netns {
    let ns = Netns::new(tag);
    ns.ok(&["ip", "link", "set", "lo", "up"]);
    ns
}

/// A TCP server we started; killed (by its pid) on drop if still running.
struct Server {
    child: Child,
    reader: BufReader<std::process::ChildStdout>,
}

impl Server {
    /// The peer address it saw, or None if nobody connected in time.
    fn peer(mut self) -> Option<String> {
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

const TCP_SERVER: &str = "
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

const TCP_CLIENT: &str = "
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
const DHCP_DISCOVER: &str = "
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
const DNS_QUERY: &str = "
import socket, struct, sys
q = struct.pack('!HHHHHH', 0x4e44, 0x0100, 1, 0, 0, 0)
q += b''.join(bytes([len(p)]) + p.encode() for p in sys.argv[1].split('.')) + b'\\0' + struct.pack('!HH', 1, 1)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(5)
s.sendto(q, (sys.argv[2], 53)); d, _ = s.recvfrom(512)
if struct.unpack('!H', d[6:8])[0] == 0: sys.exit(1)
print(socket.inet_ntoa(d[-4:]))
";

/// Three namespaces wired up, and the directories `nwfilter` works in.
struct Lab {
    dirs: tempfile::TempDir,
    // Dropped in this order after the network guard: guest, outside, host.
    guest: Netns,
    outside: Netns,
    host: Netns,
}

impl Lab {
    fn new() -> Lab {
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
    fn nwfilter(&self, args: &[&str]) -> Output {
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

    fn nwfilter_ok(&self, args: &[&str]) -> String {
        let out = self.nwfilter(args);
        assert!(
            out.status.success(),
            "nwfilter {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Defines and starts `xml`; the guard destroys it on drop.
    fn start(&self, xml: &str) -> Running<'_> {
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
    fn configure_guest(&self) {
        self.guest
            .ok(&["ip", "addr", "add", &format!("{GUEST_IP}/24"), "dev", "g0"]);
        self.guest
            .ok(&["ip", "route", "add", "default", "via", "10.77.0.1"]);
    }

    fn dnsmasq_pid(&self) -> Option<u32> {
        let state = self.dirs.path().join("state/networks/lab.json");
        let json: serde_json::Value = serde_json::from_slice(&std::fs::read(state).ok()?).ok()?;
        json["dnsmasq_pid"].as_u64().map(|p| p as u32)
    }

    /// The host namespace's whole IPv4 ruleset.
    fn ruleset(&self) -> String {
        self.host.ok(&["iptables-save"])
    }
}

/// A started network; destroyed on drop unless the test destroyed it.
struct Running<'a> {
    lab: &'a Lab,
    active: bool,
}

impl Running<'_> {
    fn destroy(mut self) {
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

fn network(forward: &str) -> String {
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

fn pid_alive(pid: u32) -> bool {
    // A zombie has an empty command line: it no longer runs.
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
}

#[test]
fn isolated_network_serves_dhcp_and_dns_but_no_way_out() {
    if !can_run("isolated_network_serves_dhcp_and_dns_but_no_way_out") {
        return;
    }
    let lab = Lab::new();
    // A host that forwards anyway: only our rules keep the guest in.
    lab.host.ok(&["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    lab.outside
        .ok(&["ip", "route", "add", "10.77.0.0/24", "via", "198.51.100.1"]);
    let net = lab.start(&network(""));

    let offer = lab.guest.python(DHCP_DISCOVER, &["g0", GUEST_MAC]);
    assert!(
        offer.status.success(),
        "no DHCP offer: {}",
        String::from_utf8_lossy(&offer.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&offer.stdout).trim(),
        GUEST_IP,
        "the static host's address"
    );

    lab.configure_guest();
    let answer = lab.guest.python(DNS_QUERY, &["db.lab.test", "10.77.0.1"]);
    assert!(
        answer.status.success(),
        "no DNS answer: {}",
        String::from_utf8_lossy(&answer.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&answer.stdout).trim(), "10.77.0.99");

    lab.guest.ok(&["ping", "-c1", "-W2", "10.77.0.1"]);
    let server = lab.outside.tcp_server("198.51.100.2", "8080");
    assert!(
        !lab.guest.connects("198.51.100.2", "8080"),
        "an isolated guest reached the outside"
    );
    drop(server);

    let pid = lab.dnsmasq_pid().expect("dnsmasq runs");
    assert!(pid_alive(pid));
    net.destroy();
    assert!(!pid_alive(pid), "dnsmasq stopped");
    assert!(
        !lab.host
            .run(&["ip", "link", "show", "virbr0"])
            .status
            .success(),
        "bridge gone"
    );
    let rules = lab.ruleset();
    assert!(
        !rules.contains("virbr0") && !rules.contains("10.77.0."),
        "rules left:\n{rules}"
    );
}

/// `busybox nslookup NAME SERVER` from the guest: the addresses it printed
/// for NAME, or the failure.
fn resolve(lab: &Lab, name: &str, server: &str) -> Result<Vec<String>, String> {
    let out = lab
        .guest
        .run(&["busybox", "nslookup", "-type=a", name, server]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() {
        return Err(format!("{text}{}", String::from_utf8_lossy(&out.stderr)));
    }
    // The first "Address:" line is the server's own.
    Ok(text
        .lines()
        .filter_map(|l| l.strip_prefix("Address:"))
        .skip(1)
        .map(|a| a.trim().to_owned())
        .collect())
}

#[test]
fn nat_network_answers_its_dns_hosts_and_static_leases_from_a_private_state_dir() {
    if !can_run("nat_network_answers_its_dns_hosts_and_static_leases_from_a_private_state_dir") {
        return;
    }
    let lab = Lab::new();
    // As `mktemp -d` or a root-only /var/lib makes it: dnsmasq's
    // unprivileged user cannot enter the state directory.
    std::fs::set_permissions(
        lab.dirs.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
    let net = lab.start(&network("<forward mode='nat' dev='up0'/>"));

    lab.configure_guest();
    for name in ["db.lab.test", "db"] {
        assert_eq!(
            resolve(&lab, name, "10.77.0.1").as_deref(),
            Ok(&["10.77.0.99".to_owned()][..]),
            "{name}"
        );
    }
    let offer = lab.guest.python(DHCP_DISCOVER, &["g0", GUEST_MAC]);
    assert_eq!(
        String::from_utf8_lossy(&offer.stdout).trim(),
        GUEST_IP,
        "the static host's address: {}",
        String::from_utf8_lossy(&offer.stderr)
    );
    net.destroy();
}

#[test]
fn nat_network_reaches_out_as_the_host_even_behind_a_forward_drop_policy() {
    if !can_run("nat_network_reaches_out_as_the_host_even_behind_a_forward_drop_policy") {
        return;
    }
    let lab = Lab::new();
    // Another tool's firewall: forwarded traffic is dropped by default.
    lab.host.ok(&["iptables", "-P", "FORWARD", "DROP"]);
    lab.outside
        .ok(&["ip", "route", "add", "10.77.0.0/24", "via", "198.51.100.1"]);
    let net = lab.start(&network("<forward mode='nat' dev='up0'/>"));
    lab.configure_guest();

    let server = lab.outside.tcp_server("198.51.100.2", "8080");
    assert!(
        lab.guest.connects("198.51.100.2", "8080"),
        "the guest cannot reach the outside"
    );
    assert_eq!(
        server.peer().as_deref(),
        Some("198.51.100.1"),
        "masqueraded to the uplink address"
    );

    let inside = lab.guest.tcp_server(GUEST_IP, "8081");
    assert!(
        !lab.outside.connects(GUEST_IP, "8081"),
        "the outside opened a connection to a NAT guest"
    );
    drop(inside);

    net.destroy();
    let rules = lab.ruleset();
    assert!(
        !rules.contains("virbr0") && !rules.contains("10.77.0."),
        "rules left:\n{rules}"
    );
}

#[test]
fn routed_network_shows_the_guests_own_address() {
    if !can_run("routed_network_shows_the_guests_own_address") {
        return;
    }
    let lab = Lab::new();
    lab.outside
        .ok(&["ip", "route", "add", "10.77.0.0/24", "via", "198.51.100.1"]);
    let net = lab.start(&network("<forward mode='route'/>"));
    lab.configure_guest();

    let server = lab.outside.tcp_server("198.51.100.2", "8080");
    assert!(lab.guest.connects("198.51.100.2", "8080"));
    assert_eq!(
        server.peer().as_deref(),
        Some(GUEST_IP),
        "routed, not masqueraded"
    );
    net.destroy();
}

#[test]
fn a_second_start_a_taken_bridge_and_an_overlapping_route_are_refused_without_side_effects() {
    if !can_run(
        "a_second_start_a_taken_bridge_and_an_overlapping_route_are_refused_without_side_effects",
    ) {
        return;
    }
    let lab = Lab::new();
    let net = lab.start(&network(""));
    let before = lab.ruleset();
    let again = lab.nwfilter(&["net-start", "lab"]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already running"));
    assert_eq!(lab.ruleset(), before, "nothing changed");
    net.destroy();

    lab.host
        .ok(&["ip", "link", "add", "virbr0", "type", "bridge"]);
    let taken = lab.nwfilter(&["net-start", "lab"]);
    assert!(!taken.status.success());
    let err = String::from_utf8_lossy(&taken.stderr);
    assert!(
        err.contains("virbr0") && err.contains("already exists"),
        "{err}"
    );
    assert!(!lab.ruleset().contains("10.77.0."), "no rules were added");
    lab.host.ok(&["ip", "link", "del", "virbr0"]);

    lab.host
        .ok(&["ip", "route", "add", "10.77.0.0/16", "via", "198.51.100.2"]);
    let overlap = lab.nwfilter(&["net-start", "lab"]);
    assert!(!overlap.status.success());
    let err = String::from_utf8_lossy(&overlap.stderr);
    assert!(err.contains("10.77.0.0/16") && err.contains("up0"), "{err}");
    assert!(
        !lab.host
            .run(&["ip", "link", "show", "virbr0"])
            .status
            .success(),
        "no bridge was created"
    );
    assert!(!lab.ruleset().contains("10.77.0."), "no rules were added");
}

#[test]
fn ipv6_nat_masquerades_guests_to_the_uplink_address() {
    if !can_run("ipv6_nat_masquerades_guests_to_the_uplink_address") {
        return;
    }
    let lab = Lab::new();
    lab.host.ok(&[
        "ip",
        "addr",
        "add",
        "2001:db8:1::1/64",
        "dev",
        "up0",
        "nodad",
    ]);
    lab.outside.ok(&[
        "ip",
        "addr",
        "add",
        "2001:db8:1::2/64",
        "dev",
        "out0",
        "nodad",
    ]);
    let xml = network("<forward mode='nat' dev='up0'><nat ipv6='yes'/></forward>").replace(
        "</network>",
        "<ip family='ipv6' address='2001:db8:77::1' prefix='64'/></network>",
    );
    let net = lab.start(&xml);
    let v6 = lab.host.ok(&["ip6tables-save"]);
    assert!(
        v6.contains(
            "-A LIBVIRT_PRT -s 2001:db8:77::/64 ! -d 2001:db8:77::/64 -o up0 -j MASQUERADE"
        ),
        "IPv6 masquerading missing:\n{v6}"
    );
    lab.guest.ok(&[
        "ip",
        "addr",
        "add",
        "2001:db8:77::10/64",
        "dev",
        "g0",
        "nodad",
    ]);
    lab.guest.ok(&[
        "ip",
        "-6",
        "route",
        "add",
        "default",
        "via",
        "2001:db8:77::1",
    ]);

    let server = lab.outside.tcp_server("2001:db8:1::2", "8080");
    // The bridge's own address is tentative until duplicate address
    // detection is over (about a second): retry for a while.
    let reached = (0..10).any(|attempt| {
        if attempt > 0 {
            std::thread::sleep(std::time::Duration::from_millis(500));
        }
        lab.guest.connects("2001:db8:1::2", "8080")
    });
    assert!(reached, "the guest cannot reach the outside over IPv6");
    assert_eq!(server.peer().as_deref(), Some("2001:db8:1::1"));
    net.destroy();
    let v6 = lab.host.ok(&["ip6tables-save"]);
    assert!(
        !v6.contains("virbr0") && !v6.contains("2001:db8:77"),
        "rules left:\n{v6}"
    );
}

/// The host namespace's iptables and ip6tables rulesets, without the
/// comment lines and the counters the traffic of a test changes.
fn both_rulesets(lab: &Lab) -> String {
    let mut text = String::new();
    for tool in ["iptables-save", "ip6tables-save"] {
        for line in lab.host.ok(&[tool]).lines() {
            if line.starts_with('#') {
                continue;
            }
            // ":INPUT ACCEPT [12:345]" -> ":INPUT ACCEPT"
            let line = match line.rfind(" [") {
                Some(at) if line.starts_with(':') => &line[..at],
                _ => line,
            };
            text.push_str(line);
            text.push('\n');
        }
    }
    text
}

/// The host's own firewall before any network: a rule in each table the
/// networks use, for both families. (The tables themselves, once made by
/// iptables-nft, outlive their last rule: only chains and rules can be
/// taken back with the iptables tools.)
fn add_host_rules(lab: &Lab) {
    for tool in ["iptables", "ip6tables"] {
        for (table, chain, dev) in [
            ("filter", "INPUT", "-i"),
            ("filter", "FORWARD", "-i"),
            ("filter", "OUTPUT", "-o"),
            ("nat", "POSTROUTING", "-o"),
            ("mangle", "POSTROUTING", "-o"),
        ] {
            lab.host.ok(&[
                tool, "-w", "-t", table, "-A", chain, dev, "lo", "-j", "RETURN",
            ]);
        }
    }
}

#[test]
fn destroying_the_last_network_leaves_the_firewall_as_it_was() {
    if !can_run("destroying_the_last_network_leaves_the_firewall_as_it_was") {
        return;
    }
    let lab = Lab::new();
    add_host_rules(&lab);
    let before = both_rulesets(&lab);
    let ipv6 = network("<forward mode='nat' dev='up0'><nat ipv6='yes'/></forward>").replace(
        "</network>",
        "<ip family='ipv6' address='2001:db8:77::1' prefix='64'/></network>",
    );
    for xml in [network("<forward mode='nat' dev='up0'/>"), ipv6] {
        let net = lab.start(&xml);
        let during = both_rulesets(&lab);
        assert!(during.contains("-A FORWARD -j LIBVIRT_FWX"), "{during}");
        net.destroy();
        assert_eq!(both_rulesets(&lab), before, "after destroying\n{xml}");
    }
}

#[test]
fn private_chains_created_by_someone_else_stay() {
    if !can_run("private_chains_created_by_someone_else_stay") {
        return;
    }
    let lab = Lab::new();
    add_host_rules(&lab);
    // As a libvirtd that set up its chains would leave them.
    for tool in ["iptables", "ip6tables"] {
        lab.host.ok(&[tool, "-w", "-N", "LIBVIRT_FWX"]);
        lab.host
            .ok(&[tool, "-w", "-I", "FORWARD", "-j", "LIBVIRT_FWX"]);
    }
    let before = both_rulesets(&lab);
    lab.start(&network("<forward mode='nat' dev='up0'/>"))
        .destroy();
    let after = both_rulesets(&lab);
    assert!(after.contains(":LIBVIRT_FWX"), "{after}");
    assert!(after.contains("-A FORWARD -j LIBVIRT_FWX"), "{after}");
    assert!(!after.contains("LIBVIRT_FWI"), "{after}");
    assert_eq!(after, before);
}
