//! The lab: a host namespace with a bridge, and guests on its ports.

use std::net::Ipv4Addr;
use std::path::Path;
use std::time::{Duration, Instant};

use crate::listing::{add_admin_rules, chains_sorted, without_counters};
use crate::netns::{Background, Netns};

/// The host's address on `br0`; guests are in 10.77.0.0/24.
pub const HOST_IP: &str = "10.77.0.1";

/// One guest: its namespace, its port in the host, address and MAC.
#[derive(Debug)]
pub struct Guest {
    pub ns: Netns,
    pub port: String,
    /// The static IPv4 address it was given; empty for a guest made
    /// without one (it gets one by DHCP, see [`Guest::address`]).
    pub ip: String,
    /// A static IPv6 address (fd77::N), to show IPv6 is dropped; empty
    /// for a guest of [`Lab::with_guests`].
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
        self.ns.spawn_quiet(&[
            "busybox", "udhcpc", "-f", "-t", "4", "-T", "1", "-i", "eth0", "-s", script,
        ])
    }

    /// The guest's port, as the model names it.
    pub fn port(&self) -> nwfilter_model::IfName {
        nwfilter_model::IfName::new(self.port.clone()).expect("the lab's port names are valid")
    }

    /// The guest's MAC, as the model holds it.
    pub fn mac(&self) -> nwfilter_model::MacAddr6 {
        self.mac.parse().expect("the lab's MACs are valid")
    }

    /// The guest's MAC as bytes.
    pub fn mac_bytes(&self) -> [u8; 6] {
        self.mac().into_array()
    }

    /// Sends hand-built Ethernet frames out of the guest's eth0 (python3:
    /// an AF_PACKET socket), `gap` apart.
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
        let host = bridge_host();
        let guests = (0..n)
            .map(|i| add_guest(&host, i, Some(&format!("10.77.0.{}", i + 10)), true))
            .collect();
        Lab { guests, host }
    }

    /// Guests with the given static IPv4 addresses: `statics[i]` is guest
    /// i's, or `None` (no address: it may get one by DHCP, see
    /// [`Lab::dnsmasq`]). Guest i has port `vnet{i}` and MAC
    /// 52:54:00:00:00:{i+10}; no guest gets a static IPv6 address.
    pub fn with_guests(statics: &[Option<&str>]) -> Lab {
        let host = bridge_host();
        let guests = statics
            .iter()
            .enumerate()
            .map(|(i, ip)| add_guest(&host, i, *ip, false))
            .collect();
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

    /// Waits until every guest reaches the host (ports forwarding, IPv6
    /// DAD done) so tests do not race link set-up.
    pub fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        for guest in &self.guests {
            while !guest.pings(HOST_IP) {
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

    /// dnsmasq serving DHCP on br0 (10.77.0.50–59, leases of `lease`,
    /// e.g. "2m": dnsmasq's minimum), its lease file in `dir`; returns once
    /// it listens on port 67.
    pub fn dnsmasq(&self, dir: &Path, lease: &str) -> Background {
        let range = format!("10.77.0.50,10.77.0.59,255.255.255.0,{lease}");
        self.dnsmasq_serving(dir, "dnsmasq.leases", &range, Dhcp::V4)
    }

    /// dnsmasq serving DHCPv6 on br0 (fd77::100–1ff, leases of `lease`),
    /// its lease file in `dir`; returns once it listens on port 547.
    pub fn dnsmasq_v6(&self, dir: &Path, lease: &str) -> Background {
        let range = format!("fd77::100,fd77::1ff,64,{lease}");
        self.dnsmasq_serving(dir, "dnsmasq6.leases", &range, Dhcp::V6)
    }

    fn dnsmasq_serving(&self, dir: &Path, leases: &str, range: &str, dhcp: Dhcp) -> Background {
        let range = format!("--dhcp-range={range}");
        let leases = format!("--dhcp-leasefile={}", dir.join(leases).display());
        let server = self.host.spawn_quiet(&[
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
        let (family, port) = match dhcp {
            Dhcp::V4 => ("-4", ":67 "),
            Dhcp::V6 => ("-6", ":547 "),
        };
        let deadline = Instant::now() + Duration::from_secs(5);
        while !self
            .host
            .ok(&["ss", "-u", "-l", "-n", family])
            .contains(port)
        {
            assert!(Instant::now() < deadline, "dnsmasq did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }
}

/// Which DHCP a dnsmasq of the lab serves.
#[derive(Clone, Copy)]
enum Dhcp {
    V4,
    V6,
}

/// The host namespace: loopback up, bridge `br0` with [`HOST_IP`].
fn bridge_host() -> Netns {
    let host = Netns::new("host");
    host.ok(&["ip", "link", "set", "lo", "up"]);
    host.ok(&["ip", "link", "add", "br0", "type", "bridge"]);
    host.ok(&["ip", "link", "set", "br0", "up"]);
    host.ok(&["ip", "addr", "add", &format!("{HOST_IP}/24"), "dev", "br0"]);
    host
}

/// Guest `i` on port `vnet{i}`, with `ip` or no address, and with `ip6`
/// the static IPv6 address fd77::{i+10} beside it.
fn add_guest(host: &Netns, i: usize, ip: Option<&str>, ip6: bool) -> Guest {
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
    let ip6 = if ip6 {
        let ip6 = format!("fd77::{}", i + 10);
        let cidr6 = format!("{ip6}/64");
        ns.ok(&["ip", "addr", "add", &cidr6, "dev", "eth0", "nodad"]);
        ip6
    } else {
        String::new()
    };
    let ip = ip.unwrap_or_default().to_owned();
    ns.ok(&["ip", "link", "set", "eth0", "up"]);
    Guest {
        ns,
        port,
        ip,
        ip6,
        mac,
    }
}
