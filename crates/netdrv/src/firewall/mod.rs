//! A network's firewall rules, exactly as libvirt 9.0's network driver
//! writes them (`bridge_driver_linux.c`, `viriptables.c`).
//!
//! Every rule is `--insert`ed at the top of a private chain, so each
//! chain ends up in reverse insertion order and a newer network's rules
//! precede older ones. Removal deletes the identical specifications.
//! Pure functions: [`Command`]s out, nothing run.

mod chains;
mod rules;

pub use chains::{
    listing_commands, setup_commands, ExistingChains, IpFamily, PRIVATE_CHAINS, TABLES,
};

use backend_xtables::Command;
use nwfilter_model::IfName;

use crate::error::FirewallError;
use crate::network::{ForwardMode, IpDef, Network};
use rules::{Rule, RuleSet};

/// The commands that add `net`'s rules, in libvirt's order: general IPv4
/// rules, general IPv6 rules, per-address rules, then the DHCP checksum
/// rule (whose failure is ignored: not every kernel has `CHECKSUM`).
/// Empty for `open` networks. Run [`setup_commands`] first.
pub fn add_commands(net: &Network) -> Result<Vec<Command>, FirewallError> {
    let set = rule_set(net)?;
    let mut out: Vec<Command> = set
        .general_v4
        .iter()
        .chain(&set.general_v6)
        .chain(set.per_ip.iter().flatten())
        .map(Rule::insert)
        .collect();
    out.extend(set.checksum.iter().map(|r| r.insert().ignoring_errors()));
    Ok(out)
}

/// The commands that remove `net`'s rules, errors ignored (a rule may be
/// gone already), in libvirt's order: checksum rule, each address's rules
/// reversed, general IPv4 rules reversed, general IPv6 rules reversed.
pub fn remove_commands(net: &Network) -> Result<Vec<Command>, FirewallError> {
    let set = rule_set(net)?;
    let mut out: Vec<Command> = set.checksum.iter().map(Rule::delete).collect();
    for ip_rules in &set.per_ip {
        out.extend(ip_rules.iter().rev().map(Rule::delete));
    }
    out.extend(set.general_v4.iter().rev().map(Rule::delete));
    out.extend(set.general_v6.iter().rev().map(Rule::delete));
    Ok(out.into_iter().map(Command::ignoring_errors).collect())
}

/// Whether starting `net` touches the firewall at all.
pub fn has_rules(net: &Network) -> bool {
    net.forward.mode != ForwardMode::Open
}

fn rule_set(net: &Network) -> Result<RuleSet, FirewallError> {
    if !has_rules(net) {
        return Ok(RuleSet::default());
    }
    let bridge = net
        .bridge
        .name
        .as_ref()
        .ok_or_else(|| FirewallError::NoBridgeName(net.name.to_string()))?;
    Ok(RuleSet {
        general_v4: rules::general_v4(bridge, first_ipv4_with_service(net)),
        general_v6: general_v6(net, bridge),
        per_ip: net.ips.iter().map(|ip| per_ip(net, bridge, ip)).collect(),
        checksum: net
            .ips_v4()
            .any(IpDef::has_dhcp)
            .then(|| rules::checksum(bridge)),
    })
}

/// libvirt looks at the first IPv4 `<ip>` with DHCP or TFTP to decide
/// whether to open the TFTP port.
fn first_ipv4_with_service(net: &Network) -> Option<&IpDef> {
    net.ips_v4()
        .find(|ip| ip.has_dhcp() || ip.tftp_root.is_some())
}

fn general_v6(net: &Network, bridge: &IfName) -> Vec<Rule> {
    let has_v6 = net.ips_v6().next().is_some();
    if !has_v6 && !net.ipv6_without_gateway {
        return Vec::new();
    }
    rules::general_v6(bridge, has_v6)
}

fn per_ip(net: &Network, bridge: &IfName, ip: &IpDef) -> Vec<Rule> {
    let dev = net.forward.dev.as_ref();
    match net.forward.mode {
        ForwardMode::Nat if ip.is_ipv4() || net.forward.nat.ipv6 == Some(true) => {
            rules::masquerading(ip.subnet(), bridge, dev, &net.forward.nat)
        }
        ForwardMode::Nat | ForwardMode::Route => rules::routing(ip.subnet(), bridge, dev),
        ForwardMode::Isolated | ForwardMode::Open => Vec::new(),
    }
}
