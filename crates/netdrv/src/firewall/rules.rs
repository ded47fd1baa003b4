//! libvirt's rule templates (`viriptables.c`), argument for argument.
//!
//! The network driver spells options long (`--in-interface`, `--jump`),
//! except `-p` in the masquerade rules, and passes `!` as an argument of
//! its own.

use std::net::IpAddr;

use host_io::Command;
use ipnet::IpNet;
use nwfilter_model::IfName;

use super::IpFamily;
use crate::network::{IpDef, Nat};

/// One rule: where it goes and what follows `--insert CHAIN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    family: IpFamily,
    table: &'static str,
    chain: &'static str,
    spec: Vec<String>,
}

impl Rule {
    fn new(family: IpFamily, table: &'static str, chain: &'static str, spec: Vec<String>) -> Rule {
        Rule {
            family,
            table,
            chain,
            spec,
        }
    }

    fn command(&self, op: &str) -> Command {
        let head = ["-w", "--table", self.table, op, self.chain].map(str::to_owned);
        Command::new(
            self.family.tool(),
            head.into_iter().chain(self.spec.iter().cloned()),
        )
    }

    pub(crate) fn insert(&self) -> Command {
        self.command("--insert")
    }

    pub(crate) fn delete(&self) -> Command {
        self.command("--delete")
    }

    pub(crate) fn check(&self) -> Command {
        self.command("--check")
    }

    pub(crate) fn family(&self) -> IpFamily {
        self.family
    }

    pub(crate) fn chain(&self) -> &'static str {
        self.chain
    }

    /// An `ACCEPT` of the `filter` table, moved from libvirt's private
    /// chain to the built-in chain that jumps there (`LIBVIRT_INP` →
    /// `INPUT`, `LIBVIRT_OUT` → `OUTPUT`, `LIBVIRT_FW*` → `FORWARD`):
    /// what the nftables backend puts into an iptables `filter` table
    /// that would otherwise drop the network's traffic.
    pub(crate) fn builtin_accept(&self) -> Option<Rule> {
        let accepts = self
            .spec
            .ends_with(&["--jump".to_owned(), "ACCEPT".to_owned()]);
        if self.table != "filter" || !accepts {
            return None;
        }
        let chain = match self.chain {
            "LIBVIRT_INP" => "INPUT",
            "LIBVIRT_OUT" => "OUTPUT",
            _ => "FORWARD",
        };
        Some(Rule {
            chain,
            ..self.clone()
        })
    }
}

/// A network's rules, grouped as libvirt adds and removes them.
#[derive(Debug, Clone, Default)]
pub(crate) struct RuleSet {
    pub(crate) general_v4: Vec<Rule>,
    pub(crate) general_v6: Vec<Rule>,
    /// One group per `<ip>`, in document order.
    pub(crate) per_ip: Vec<Vec<Rule>>,
    pub(crate) checksum: Option<Rule>,
}

fn strings<const N: usize>(parts: [&str; N]) -> Vec<String> {
    parts.into_iter().map(str::to_owned).collect()
}

fn family_of(net: &IpNet) -> IpFamily {
    match net {
        IpNet::V4(_) => IpFamily::V4,
        IpNet::V6(_) => IpFamily::V6,
    }
}

/// Host service port open from the bridge (`LIBVIRT_INP`).
fn input(family: IpFamily, bridge: &IfName, proto: &str, port: u16) -> Rule {
    let spec = strings([
        "--in-interface",
        bridge.as_str(),
        "--protocol",
        proto,
        "--destination-port",
    ]);
    let mut spec = spec;
    spec.extend([port.to_string(), "--jump".into(), "ACCEPT".into()]);
    Rule::new(family, "filter", "LIBVIRT_INP", spec)
}

/// Host service replies to the bridge (`LIBVIRT_OUT`).
fn output(family: IpFamily, bridge: &IfName, proto: &str, port: u16) -> Rule {
    let mut spec = strings([
        "--out-interface",
        bridge.as_str(),
        "--protocol",
        proto,
        "--destination-port",
    ]);
    spec.extend([port.to_string(), "--jump".into(), "ACCEPT".into()]);
    Rule::new(family, "filter", "LIBVIRT_OUT", spec)
}

/// Catch-all rejects and guest-to-guest accept; inserted last, so in the
/// kernel the per-address accepts come before the rejects.
fn isolation(family: IpFamily, bridge: &IfName) -> [Rule; 3] {
    let br = bridge.as_str();
    [
        Rule::new(
            family,
            "filter",
            "LIBVIRT_FWO",
            strings(["--in-interface", br, "--jump", "REJECT"]),
        ),
        Rule::new(
            family,
            "filter",
            "LIBVIRT_FWI",
            strings(["--out-interface", br, "--jump", "REJECT"]),
        ),
        Rule::new(
            family,
            "filter",
            "LIBVIRT_FWX",
            strings([
                "--in-interface",
                br,
                "--out-interface",
                br,
                "--jump",
                "ACCEPT",
            ]),
        ),
    ]
}

/// DHCP, DNS, optional TFTP, then isolation — for every network with
/// rules, even one without an IPv4 address.
pub(crate) fn general_v4(bridge: &IfName, service_ip: Option<&IpDef>) -> Vec<Rule> {
    let v4 = IpFamily::V4;
    let mut out = vec![
        input(v4, bridge, "tcp", 67),
        input(v4, bridge, "udp", 67),
        output(v4, bridge, "tcp", 68),
        output(v4, bridge, "udp", 68),
        input(v4, bridge, "tcp", 53),
        input(v4, bridge, "udp", 53),
        output(v4, bridge, "tcp", 53),
        output(v4, bridge, "udp", 53),
    ];
    if service_ip.is_some_and(|ip| ip.tftp_root.is_some()) {
        out.push(input(v4, bridge, "udp", 69));
        out.push(output(v4, bridge, "udp", 69));
    }
    out.extend(isolation(v4, bridge));
    out
}

/// Isolation, and with an IPv6 address DNS and DHCPv6.
pub(crate) fn general_v6(bridge: &IfName, has_ipv6_address: bool) -> Vec<Rule> {
    let v6 = IpFamily::V6;
    let mut out: Vec<Rule> = isolation(v6, bridge).into();
    if has_ipv6_address {
        out.extend([
            input(v6, bridge, "tcp", 53),
            input(v6, bridge, "udp", 53),
            output(v6, bridge, "tcp", 53),
            output(v6, bridge, "udp", 53),
            input(v6, bridge, "udp", 547),
            output(v6, bridge, "udp", 546),
        ]);
    }
    out
}

/// Forwarding out of the bridge for the subnet (`LIBVIRT_FWO`).
fn allow_out(subnet: IpNet, bridge: &IfName, dev: Option<&IfName>) -> Rule {
    let mut spec = strings(["--source"]);
    spec.extend([
        subnet.to_string(),
        "--in-interface".into(),
        bridge.to_string(),
    ]);
    if let Some(dev) = dev {
        spec.extend(["--out-interface".into(), dev.to_string()]);
    }
    spec.extend(strings(["--jump", "ACCEPT"]));
    Rule::new(family_of(&subnet), "filter", "LIBVIRT_FWO", spec)
}

/// Forwarding into the bridge for the subnet (`LIBVIRT_FWI`), optionally
/// only for connections the guests opened.
fn allow_in(subnet: IpNet, bridge: &IfName, dev: Option<&IfName>, related_only: bool) -> Rule {
    let mut spec = vec!["--destination".to_owned(), subnet.to_string()];
    if let Some(dev) = dev {
        spec.extend(["--in-interface".into(), dev.to_string()]);
    }
    spec.extend(["--out-interface".into(), bridge.to_string()]);
    if related_only {
        spec.extend(strings([
            "--match",
            "conntrack",
            "--ctstate",
            "ESTABLISHED,RELATED",
        ]));
    }
    spec.extend(strings(["--jump", "ACCEPT"]));
    Rule::new(family_of(&subnet), "filter", "LIBVIRT_FWI", spec)
}

/// `route` (and NAT for IPv6 without `nat ipv6='yes'`): plain forwarding.
pub(crate) fn routing(subnet: IpNet, bridge: &IfName, dev: Option<&IfName>) -> Vec<Rule> {
    vec![
        allow_out(subnet, bridge, dev),
        allow_in(subnet, bridge, dev, false),
    ]
}

/// MASQUERADE (or SNAT to the `<nat><address>` pool) for traffic leaving
/// the subnet; `proto` rules get the source port range.
fn masquerade(subnet: IpNet, dev: Option<&IfName>, nat: &Nat, proto: Option<&str>) -> Rule {
    let net = subnet.to_string();
    let mut spec = vec!["--source".to_owned(), net.clone()];
    if let Some(proto) = proto {
        spec.extend(["-p".into(), proto.to_owned()]);
    }
    spec.extend(["!".into(), "--destination".into(), net]);
    if let Some(dev) = dev {
        spec.extend(["--out-interface".into(), dev.to_string()]);
    }
    let ports = proto.map(|_| nat.effective_ports());
    // The SNAT pool is IPv4; an IPv6 subnet always masquerades.
    let pool = nat.address.filter(|_| subnet.addr().is_ipv4());
    match pool {
        Some(pool) => {
            // libvirt writes START-END even when both are equal.
            let mut target = format!("{}-{}", pool.start, pool.end);
            if let Some(p) = ports {
                target.push_str(&format!(":{}-{}", p.start, p.end));
            }
            spec.extend(["--jump".into(), "SNAT".into(), "--to-source".into(), target]);
        }
        None => {
            spec.extend(strings(["--jump", "MASQUERADE"]));
            if let Some(p) = ports {
                spec.extend(["--to-ports".into(), format!("{}-{}", p.start, p.end)]);
            }
        }
    }
    Rule::new(family_of(&subnet), "nat", "LIBVIRT_PRT", spec)
}

/// Traffic to `dest` (link-local multicast, broadcast) is never NATed.
fn dont_masquerade(subnet: IpNet, dev: Option<&IfName>, dest: &str) -> Rule {
    let mut spec = Vec::new();
    if let Some(dev) = dev {
        spec.extend(["--out-interface".to_owned(), dev.to_string()]);
    }
    spec.extend([
        "--source".to_owned(),
        subnet.to_string(),
        "--destination".to_owned(),
        dest.to_owned(),
    ]);
    spec.extend(strings(["--jump", "RETURN"]));
    Rule::new(family_of(&subnet), "nat", "LIBVIRT_PRT", spec)
}

/// `nat`: forwarding out, related traffic back in, three masquerade rules
/// (any, udp, tcp) and the exclusions. Inserted in this order, they end up
/// reversed in the chain: exclusions first, generic masquerade last.
pub(crate) fn masquerading(
    subnet: IpNet,
    bridge: &IfName,
    dev: Option<&IfName>,
    nat: &Nat,
) -> Vec<Rule> {
    let mut out = vec![
        allow_out(subnet, bridge, dev),
        allow_in(subnet, bridge, dev, true),
        masquerade(subnet, dev, nat, None),
        masquerade(subnet, dev, nat, Some("udp")),
        masquerade(subnet, dev, nat, Some("tcp")),
    ];
    match subnet.addr() {
        IpAddr::V4(_) => {
            // Strict DHCP clients refuse broadcast replies whose source
            // port was rewritten.
            out.push(dont_masquerade(subnet, dev, "255.255.255.255/32"));
            out.push(dont_masquerade(subnet, dev, "224.0.0.0/24"));
        }
        IpAddr::V6(_) => out.push(dont_masquerade(subnet, dev, "ff02::/16")),
    }
    out
}

/// Fill in the UDP checksum of DHCP replies (some guests drop replies with
/// a checksum left to offloading).
pub(crate) fn checksum(bridge: &IfName) -> Rule {
    Rule::new(
        IpFamily::V4,
        "mangle",
        "LIBVIRT_PRT",
        strings([
            "--out-interface",
            bridge.as_str(),
            "--protocol",
            "udp",
            "--destination-port",
            "68",
            "--jump",
            "CHECKSUM",
            "--checksum-fill",
        ]),
    )
}
