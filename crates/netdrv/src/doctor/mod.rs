//! `nwfilter doctor`: which base chains of which tables could drop a
//! guest's DHCP, DNS or forwarded traffic, and what we do about it.
//!
//! In nftables a packet must be accepted by every base chain on its hook,
//! whoever's table it is in; an accept in our table cannot overrule a
//! drop in another. So the doctor lists every base chain on the hooks
//! networks and filters use (families ip, ip6, inet, bridge), follows a
//! probe packet per network through each (see [`eval`]) and names the
//! rule, or the policy, that would drop it. Pure: the listing and the
//! networks come in, a [`Report`] goes out.

pub mod eval;
pub mod text;

use std::net::{IpAddr, Ipv4Addr};

use nwfilter_model::IfName;
use serde::Serialize;

use crate::firewall::Backend;
use crate::network::Network;
use crate::nft::listing::{Chain, Ruleset};
use eval::{follow, Outcome, Packet};

/// A network the probes stand for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Subject {
    pub network: String,
    pub bridge: IfName,
    /// The backend holding its rules, when it runs.
    pub running: Option<Backend>,
    pub address: Option<Ipv4Addr>,
    /// An address a guest would have.
    pub guest: Option<Ipv4Addr>,
    /// `<forward dev>`.
    pub uplink: Option<IfName>,
    /// No forwarding wanted (isolated): the forward probe does not apply.
    pub isolated: bool,
}

impl Subject {
    /// `net` (with a bridge name), running on `running` if it runs.
    pub fn of(net: &Network, running: Option<Backend>) -> Option<Subject> {
        let bridge = net.bridge.name.clone()?;
        let ip = net.ips_v4().next();
        let address = ip.and_then(|ip| match ip.address {
            IpAddr::V4(a) => Some(a),
            IpAddr::V6(_) => None,
        });
        let guest = ip.and_then(|ip| {
            let first = ip.dhcp.ranges.first().map(|r| r.start);
            match (first, ip.subnet()) {
                (Some(IpAddr::V4(a)), _) => Some(a),
                (_, ipnet::IpNet::V4(net)) => net.hosts().find(|h| Some(*h) != address),
                _ => None,
            }
        });
        Some(Subject {
            network: net.name.to_string(),
            bridge,
            running,
            address,
            guest,
            uplink: net.forward.dev.clone(),
            isolated: net.forward.mode == crate::network::ForwardMode::Isolated,
        })
    }
}

/// The traffic a guest needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Probe {
    /// A DHCP request to the host (udp 67).
    Dhcp,
    /// A DNS query to the network's address (udp 53).
    Dns,
    /// A new connection from a guest to the outside.
    Forward,
}

impl Probe {
    pub fn name(self) -> &'static str {
        match self {
            Probe::Dhcp => "DHCP",
            Probe::Dns => "DNS",
            Probe::Forward => "forwarded traffic",
        }
    }

    fn packet(self, s: &Subject, on_bridge_layer: bool) -> Packet {
        // In bridge-family hooks the input device is the guest's port.
        let iif = (!on_bridge_layer).then(|| s.bridge.to_string());
        match self {
            Probe::Dhcp => Packet {
                iif,
                oif: None,
                proto: "udp",
                dport: Some(67),
                saddr: Some(Ipv4Addr::UNSPECIFIED.into()),
                daddr: Some(Ipv4Addr::BROADCAST.into()),
            },
            Probe::Dns => Packet {
                iif,
                oif: None,
                proto: "udp",
                dport: Some(53),
                saddr: s.guest.map(IpAddr::V4),
                daddr: s.address.map(IpAddr::V4),
            },
            Probe::Forward => Packet {
                iif,
                oif: s
                    .uplink
                    .as_ref()
                    .filter(|_| !on_bridge_layer)
                    .map(|u| u.to_string()),
                proto: "tcp",
                dport: None,
                saddr: s.guest.map(IpAddr::V4),
                daddr: None,
            },
        }
    }
}

/// One probe through one chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub network: String,
    pub bridge: String,
    pub probe: Probe,
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// One base chain and what it does to each network's probes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    pub family: String,
    pub table: String,
    pub chain: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub hook: String,
    pub prio: i64,
    pub policy: String,
    /// Who the table belongs to, as far as its name tells.
    pub owner: String,
    /// What our daemon does about a drop here.
    pub remedy: String,
    pub findings: Vec<Finding>,
}

/// Everything the doctor found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub networks: Vec<Subject>,
    pub chains: Vec<ChainReport>,
    /// One line per probe a chain drops (or may drop) that nothing of ours
    /// handles.
    pub problems: Vec<String>,
}

/// The hooks networks and filters use.
const HOOKS: [&str; 5] = ["prerouting", "input", "forward", "output", "postrouting"];

/// The probes a filter chain on `hook` of `family` sees.
fn probes(family: &str, hook: &str) -> &'static [Probe] {
    match (family, hook) {
        ("ip" | "inet", "prerouting") | ("bridge", "prerouting") => {
            &[Probe::Dhcp, Probe::Dns, Probe::Forward]
        }
        ("ip" | "inet", "input") | ("bridge", "input") => &[Probe::Dhcp, Probe::Dns],
        ("ip" | "inet", "forward" | "postrouting") => &[Probe::Forward],
        _ => &[],
    }
}

/// Examines `ruleset` for `subjects`.
pub fn examine(ruleset: &Ruleset, subjects: &[Subject]) -> Report {
    let mut chains = Vec::new();
    let mut problems = Vec::new();
    for chain in &ruleset.chains {
        let Some(base) = &chain.base else { continue };
        let family = chain.family.as_str();
        if !matches!(family, "ip" | "ip6" | "inet" | "bridge")
            || !HOOKS.contains(&base.hook.as_str())
        {
            continue;
        }
        let (owner, remedy) = owner(chain);
        let mut findings = Vec::new();
        if base.kind == "filter" {
            for subject in subjects {
                for probe in probes(family, &base.hook) {
                    if *probe == Probe::Forward && subject.isolated {
                        continue;
                    }
                    let packet = probe.packet(subject, family == "bridge");
                    let outcome = follow(ruleset, chain, &packet);
                    if outcome.decision.drops() && !handled(chain, subject) && !ours(chain) {
                        problems.push(problem(chain, subject, *probe, &outcome, &remedy));
                    }
                    findings.push(Finding {
                        network: subject.network.clone(),
                        bridge: subject.bridge.to_string(),
                        probe: *probe,
                        outcome,
                    });
                }
            }
        }
        chains.push(ChainReport {
            family: chain.family.clone(),
            table: chain.table.clone(),
            chain: chain.name.clone(),
            kind: base.kind.clone(),
            hook: base.hook.clone(),
            prio: base.prio,
            policy: base.policy.clone(),
            owner,
            remedy,
            findings,
        });
    }
    Report {
        networks: subjects.to_vec(),
        chains,
        problems,
    }
}

/// A drop in an iptables-nft `filter` chain is handled when the network
/// starts (our accepts, or libvirt's jumps, go to the top): a problem only
/// once it runs and is dropped all the same.
fn handled(chain: &Chain, subject: &Subject) -> bool {
    matches!(chain.family.as_str(), "ip" | "ip6")
        && chain.table == "filter"
        && subject.running.is_none()
}

/// Our own tables decide as the networks and filters say: their drops are
/// the point, not a problem.
fn ours(chain: &Chain) -> bool {
    matches!(
        (chain.family.as_str(), chain.table.as_str()),
        ("inet", crate::nft::TABLE) | ("bridge" | "inet", "nwfilter")
    )
}

fn is_iptables_table(chain: &Chain) -> bool {
    matches!(chain.family.as_str(), "ip" | "ip6")
        && matches!(
            chain.table.as_str(),
            "filter" | "nat" | "mangle" | "raw" | "security"
        )
}

/// Who a chain's table belongs to, and what we do about a drop in it.
fn owner(chain: &Chain) -> (String, String) {
    let other_table = "nothing from another table can overrule this chain (a packet must be \
        accepted by every base chain on its hook): add an accept for the network's bridge \
        (iifname/oifname) before the drop, or stop the program that owns the table";
    let (owner, remedy) = match (chain.family.as_str(), chain.table.as_str()) {
        ("inet", crate::nft::TABLE) => (
            "nwfilter: virtual networks (nftables backend)",
            "ours: rejects only what the network's forward mode forbids",
        ),
        ("bridge" | "inet", "nwfilter") => (
            "nwfilter: VM port filters (nftables backend)",
            "ours: filters each VM port by its binding",
        ),
        ("inet", "firewalld") => (
            "firewalld",
            "firewalld's own table cannot be overruled from ours: put the bridge in a zone \
             that accepts it (libvirt ships the 'libvirt' zone: firewall-cmd --zone=libvirt \
             --add-interface=BRIDGE)",
        ),
        _ if is_iptables_table(chain) => (
            "iptables (iptables-nft): Docker, ufw, firewalld's iptables backend, the admin",
            "on start, a network on nftables gets its accepts (DHCP, DNS, TFTP, guest to \
             guest, the forwarding of its mode) inserted at the top of INPUT, FORWARD and \
             OUTPUT here, removed with it; a network on iptables has libvirt's LIBVIRT_* \
             chains jumped to from the top of them",
        ),
        _ => ("another program", other_table),
    };
    (owner.to_owned(), remedy.to_owned())
}

fn problem(chain: &Chain, s: &Subject, probe: Probe, outcome: &Outcome, remedy: &str) -> String {
    let by = match &outcome.rule {
        Some(rule) => format!(
            "rule{} `{}` in chain {}",
            rule.handle.map(|h| format!(" {h}")).unwrap_or_default(),
            rule.text,
            rule.chain
        ),
        None => "its policy drop".to_owned(),
    };
    let may = if outcome.certain { "drops" } else { "may drop" };
    format!(
        "{} {} {} (hook {}) {may} network {}'s {} on {} by {by}; {remedy}",
        chain.family,
        chain.table,
        chain.name,
        chain.base.as_ref().map_or("", |b| b.hook.as_str()),
        s.network,
        probe.name(),
        s.bridge
    )
}

/// The report as text for a terminal.
pub fn render_text(report: &Report) -> String {
    let mut out = String::from("Networks examined:");
    if report.networks.is_empty() {
        out.push_str(" none defined");
    }
    for s in &report.networks {
        let state = s.running.map_or("not running".to_owned(), |b| {
            format!("running on {}", b.as_str())
        });
        out.push_str(&format!("\n  {} (bridge {}, {state})", s.network, s.bridge));
    }
    out.push_str("\n\nBase chains on the hooks of networks and filters:\n");
    for c in &report.chains {
        out.push_str(&format!(
            "  {} {} {}: type {} hook {} priority {} policy {} — {}\n",
            c.family, c.table, c.chain, c.kind, c.hook, c.prio, c.policy, c.owner
        ));
        for f in &c.findings {
            let how = match (&f.outcome.rule, f.outcome.decision) {
                (Some(rule), d) => format!(
                    "{} by `{}`{}",
                    if d.drops() { "DROPPED" } else { "accepted" },
                    rule.text,
                    rule.handle
                        .map(|h| format!(" (handle {h})"))
                        .unwrap_or_default()
                ),
                (None, d) if d.drops() => "DROPPED by the policy".to_owned(),
                (None, _) => "passes (policy accept)".to_owned(),
            };
            let unsure = if f.outcome.certain {
                ""
            } else {
                " (perhaps: a rule on the way cannot be decided)"
            };
            out.push_str(&format!(
                "      {} {}: {how}{unsure}\n",
                f.network,
                f.probe.name()
            ));
        }
    }
    if report.problems.is_empty() {
        out.push_str("\nNo chain drops a guest's DHCP, DNS or forwarded traffic.\n");
    } else {
        out.push_str(&format!("\n{} problem(s):\n", report.problems.len()));
        for p in &report.problems {
            out.push_str(&format!("  - {p}\n"));
        }
    }
    out
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
