//! A network's firewall on nftables: the same decisions as libvirt 9.0's
//! iptables rules ([`crate::firewall`]), in base chains of our own table.
//!
//! Layout: table `inet nwfilter-net`; per network two base chains named
//! after its bridge, `fwd-BRIDGE` (filter, hook forward, priority 0) and,
//! in NAT mode, `nat-BRIDGE` (nat, hook postrouting, priority srcnat).
//! Every rule of a network's chain names its bridge or its subnets, so the
//! chains of different networks never decide about each other's traffic;
//! a packet is accepted only if every base chain accepts it, so a reject
//! in any network's chain is final, as in iptables. Base chains of their
//! own (rather than shared chains with per-network rules) make start and
//! stop one transaction each that never needs a rule handle: add (or
//! flush and refill) the network's chains, or delete them.
//!
//! Not rendered: the `LIBVIRT_INP`/`LIBVIRT_OUT` accepts for DHCP, DNS and
//! TFTP (our chains have policy accept and never drop traffic to the
//! host, so they would change nothing; a drop elsewhere is handled by
//! [`crate::coexist`]), and the DHCP checksum fill (nftables has no
//! checksum-fill; see [`CHECKSUM_NOTE`]).

use host_io::{Command, Tool};
use nwfilter_model::IfName;
use serde_json::{json, Value};

use super::expr::{Match, Rule, Verdict};
use crate::error::FirewallError;
use crate::firewall::IpFamily;
use crate::network::{ForwardMode, IpDef, Network};

/// Our table's family and name.
pub const FAMILY: &str = "inet";
pub const TABLE: &str = "nwfilter-net";

/// What [`CHECKSUM_NOTE`] is about: said once per start of a network with
/// IPv4 DHCP on nftables.
pub const CHECKSUM_NOTE: &str = "nftables has no CHECKSUM --checksum-fill: DHCP replies leave \
    with the checksum the bridge's offloading leaves (usually none filled in); current DHCP \
    clients accept them, very old ones (dhclient before 4.2, some PXE ROMs) may ignore them. \
    libvirt 11.3 fixes this with `tc … action csum`, which this kernel may lack, so we do not \
    depend on it";

/// A base chain of a network, with its rules in kernel order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    pub name: String,
    pub hook: Hook,
    pub(crate) rules: Vec<Rule>,
}

/// Which base chain a network chain is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hook {
    /// `type filter hook forward priority 0`.
    Forward,
    /// `type nat hook postrouting priority 100` (srcnat).
    Postrouting,
}

impl Hook {
    fn spec(self) -> (&'static str, &'static str, i32) {
        match self {
            Hook::Forward => ("filter", "forward", 0),
            Hook::Postrouting => ("nat", "postrouting", 100),
        }
    }
}

/// One command of a transaction, in both spellings.
#[derive(Debug, Clone, PartialEq)]
pub struct Cmd {
    /// As `nft -f` reads it.
    pub text: String,
    /// One element of the `nftables` array `nft -j -f` reads.
    pub json: Value,
}

/// Whether `bridge` can be part of a chain name in `nft -f` text (an nft
/// identifier); JSON, which is what is applied, takes any name.
pub fn printable(bridge: &IfName) -> bool {
    bridge
        .as_str()
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

/// The chain names a network with bridge `bridge` may own.
pub fn chain_names(bridge: &IfName) -> [String; 2] {
    [format!("fwd-{bridge}"), format!("nat-{bridge}")]
}

/// The chains of `net`, in creation order (none for `open` networks).
pub fn chains(net: &Network) -> Result<Vec<Chain>, FirewallError> {
    if !crate::firewall::has_rules(net) {
        return Ok(Vec::new());
    }
    let bridge = net
        .bridge
        .name
        .as_ref()
        .ok_or_else(|| FirewallError::NoBridgeName(net.name.to_string()))?;
    let [fwd, nat] = chain_names(bridge);
    let mut out = vec![Chain {
        name: fwd,
        hook: Hook::Forward,
        rules: forward_rules(net, bridge),
    }];
    let nat_rules: Vec<Rule> = net
        .ips
        .iter()
        .filter(|ip| masquerades(net, ip))
        .flat_map(|ip| nat_rules(net, ip))
        .collect();
    if !nat_rules.is_empty() {
        out.push(Chain {
            name: nat,
            hook: Hook::Postrouting,
            rules: nat_rules,
        });
    }
    Ok(out)
}

/// The families whose forwarding the network's isolation covers, as in
/// [`crate::firewall`]: IPv4 always, IPv6 with an IPv6 address or
/// `<network ipv6='yes'>`.
fn families(net: &Network) -> Vec<IpFamily> {
    let mut out = vec![IpFamily::V4];
    if net.ips_v6().next().is_some() || net.ipv6_without_gateway {
        out.push(IpFamily::V6);
    }
    out
}

fn masquerades(net: &Network, ip: &IpDef) -> bool {
    net.forward.mode == ForwardMode::Nat && (ip.is_ipv4() || net.forward.nat.ipv6 == Some(true))
}

/// iptables' `FORWARD` order: guest to guest (`LIBVIRT_FWX`), into the
/// bridge (`LIBVIRT_FWI`: accepts, then reject), out of it (`LIBVIRT_FWO`).
fn forward_rules(net: &Network, bridge: &IfName) -> Vec<Rule> {
    let dev = net.forward.dev.as_ref();
    let fams = families(net);
    let iif = || Match::InIface(bridge.clone());
    let oif = || Match::OutIface(bridge.clone());
    let mut rules: Vec<Rule> = fams
        .iter()
        .map(|f| Rule::new(vec![Match::Family(*f), iif(), oif()], Verdict::Accept))
        .collect();
    let forwarded = |ip: &&IpDef| {
        matches!(net.forward.mode, ForwardMode::Nat | ForwardMode::Route)
            && (ip.is_ipv4() || fams.contains(&IpFamily::V6))
    };
    // libvirt inserts each address's rules at the top: later ones first.
    for ip in net.ips.iter().rev().filter(forwarded) {
        let mut m: Vec<Match> = dev.map(|d| Match::InIface(d.clone())).into_iter().collect();
        m.extend([oif(), Match::Destination(ip.subnet())]);
        if masquerades(net, ip) {
            m.push(Match::Related);
        }
        rules.push(Rule::new(m, Verdict::Accept));
    }
    for f in &fams {
        rules.push(Rule::new(vec![Match::Family(*f), oif()], Verdict::Reject));
    }
    for ip in net.ips.iter().rev().filter(forwarded) {
        let mut m = vec![Match::Source(ip.subnet()), iif()];
        m.extend(dev.map(|d| Match::OutIface(d.clone())));
        rules.push(Rule::new(m, Verdict::Accept));
    }
    for f in &fams {
        rules.push(Rule::new(vec![Match::Family(*f), iif()], Verdict::Reject));
    }
    rules
}

/// `LIBVIRT_PRT` for one address, in the order the chain ends up in:
/// exclusions, then tcp and udp with the port range, then the rest.
fn nat_rules(net: &Network, ip: &IpDef) -> Vec<Rule> {
    let subnet = ip.subnet();
    let nat = &net.forward.nat;
    let out_dev = || net.forward.dev.iter().map(|d| Match::OutIface(d.clone()));
    let exclusions: &[&str] = if ip.is_ipv4() {
        &["224.0.0.0/24", "255.255.255.255/32"]
    } else {
        &["ff02::/16"]
    };
    let mut rules = Vec::new();
    for dest in exclusions {
        let mut m: Vec<Match> = out_dev().collect();
        m.push(Match::Source(subnet));
        m.push(Match::Destination(dest.parse().expect("a literal prefix")));
        rules.push(Rule::new(m, Verdict::Return));
    }
    for proto in [Some("tcp"), Some("udp"), None] {
        let mut m = vec![Match::Source(subnet), Match::NotDestination(subnet)];
        m.extend(out_dev());
        m.extend(proto.map(Match::Protocol));
        let ports = proto.map(|_| nat.effective_ports());
        let verdict = match nat.address.filter(|_| ip.is_ipv4()) {
            Some(pool) => Verdict::Snat {
                start: pool.start,
                end: pool.end,
                ports,
            },
            None => Verdict::Masquerade { ports },
        };
        rules.push(Rule::new(m, verdict));
    }
    rules
}

fn table_json() -> Value {
    json!({"family": FAMILY, "name": TABLE})
}

fn chain_json(name: &str) -> Value {
    json!({"family": FAMILY, "table": TABLE, "name": name})
}

/// `add table`: a no-op when it exists.
fn add_table() -> Cmd {
    Cmd {
        text: format!("add table {FAMILY} {TABLE}"),
        json: json!({"add": {"table": table_json()}}),
    }
}

/// The transaction that starts `net`'s firewall: the table, then each
/// chain created (a no-op if it exists), flushed and filled. Running it
/// again leaves the same chains (reload, repair).
pub fn start_batch(net: &Network) -> Result<Vec<Cmd>, FirewallError> {
    let chains = chains(net)?;
    if chains.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = vec![add_table()];
    for chain in &chains {
        let (kind, hook, prio) = chain.hook.spec();
        let mut spec = chain_json(&chain.name);
        spec["type"] = json!(kind);
        spec["hook"] = json!(hook);
        spec["prio"] = json!(prio);
        spec["policy"] = json!("accept");
        out.push(Cmd {
            text: format!(
                "add chain {FAMILY} {TABLE} {} {{ type {kind} hook {hook} priority {prio}; policy accept; }}",
                chain.name
            ),
            json: json!({"add": {"chain": spec}}),
        });
        out.push(flush(&chain.name));
        for rule in &chain.rules {
            let mut body = chain_json(&chain.name);
            body["chain"] = body["name"].take();
            body.as_object_mut().expect("an object").remove("name");
            body["expr"] = rule.json();
            out.push(Cmd {
                text: format!("add rule {FAMILY} {TABLE} {} {}", chain.name, rule.text()),
                json: json!({"add": {"rule": body}}),
            });
        }
    }
    Ok(out)
}

fn flush(chain: &str) -> Cmd {
    Cmd {
        text: format!("flush chain {FAMILY} {TABLE} {chain}"),
        json: json!({"flush": {"chain": chain_json(chain)}}),
    }
}

/// The transaction that removes the network with `bridge`, given the
/// chains our table has (`existing`; empty when the table is absent):
/// its chains that exist, and the table when nothing else is left in it.
/// Empty when there is nothing to remove.
pub fn stop_batch(bridge: &IfName, existing: &[String]) -> Vec<Cmd> {
    let ours = chain_names(bridge);
    let mut out = Vec::new();
    for name in ours.iter().filter(|n| existing.contains(n)) {
        out.push(flush(name));
        out.push(Cmd {
            text: format!("delete chain {FAMILY} {TABLE} {name}"),
            json: json!({"delete": {"chain": chain_json(name)}}),
        });
    }
    let others_left = existing.iter().any(|c| !ours.contains(c));
    if !others_left && !existing.is_empty() {
        out.push(Cmd {
            text: format!("delete table {FAMILY} {TABLE}"),
            json: json!({"delete": {"table": table_json()}}),
        });
    }
    out
}

/// `cmds` as one `nft -j -f -` run: the kernel commits it whole or not
/// at all.
pub fn transaction(cmds: &[Cmd]) -> Command {
    let body = json!({"nftables": cmds.iter().map(|c| c.json.clone()).collect::<Vec<_>>()});
    Command::new(Tool::Nft, ["-j", "-f", "-"])
        .with_stdin(body.to_string())
        .one_transaction()
}

/// `cmds` as an `nft -f` script.
pub fn script(cmds: &[Cmd]) -> String {
    cmds.iter().map(|c| format!("{}\n", c.text)).collect()
}

#[cfg(test)]
#[path = "render_tests.rs"]
mod tests;
