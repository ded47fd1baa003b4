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
    listing_commands, merge_created, setup, setup_commands, teardown, Created, ExistingChains,
    IpFamily, PRIVATE_CHAINS, TABLES,
};

use host_io::Command;
use nwfilter_model::IfName;
use serde::{Deserialize, Serialize};

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

/// Which firewall a network's rules go to: libvirt 9.0's iptables rules
/// (this module) or a table of our own in nftables ([`crate::nft`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    #[default]
    Iptables,
    Nftables,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Iptables => "iptables",
            Backend::Nftables => "nftables",
        }
    }
}

/// One accept of [`builtin_accepts`]: the family, the built-in chain it
/// goes into, and its insert and delete commands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltinAccept {
    pub family: IpFamily,
    pub chain: &'static str,
    pub insert: Command,
    pub delete: Command,
    /// `--check`: succeeds when the rule is there (errors not fatal).
    pub check: Command,
}

/// The `filter` table accepts of `net` (DHCP, DNS, TFTP to and from the
/// host, guest to guest, and the forwarding its mode allows) as rules of
/// the built-in `INPUT`, `OUTPUT` and `FORWARD` chains, without the
/// rejects: for an iptables `filter` table another program owns. In
/// libvirt's order.
pub fn builtin_accepts(net: &Network) -> Result<Vec<BuiltinAccept>, FirewallError> {
    let set = rule_set(net)?;
    Ok(set
        .general_v4
        .iter()
        .chain(&set.general_v6)
        .chain(set.per_ip.iter().flatten())
        .filter_map(Rule::builtin_accept)
        .map(|rule| BuiltinAccept {
            family: rule.family(),
            chain: rule.chain(),
            insert: rule.insert(),
            delete: rule.delete().ignoring_errors(),
            check: rule.check().ignoring_errors(),
        })
        .collect())
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

/// The same commands as restore batches: one `iptables-restore --noflush`
/// and one `ip6tables-restore --noflush` for the rules that must succeed,
/// then one for those whose failure is ignored; each batch holds its
/// rules per table, in command order. IPv4 and IPv6 rules never share a
/// chain, so regrouping them by family keeps every chain's order. One
/// process per family instead of one per rule, and each batch is
/// committed whole or not at all.
pub fn restore_batches(cmds: &[Command]) -> Vec<Command> {
    let mut cmds = cmds.to_vec();
    cmds.sort_by_key(|c| (c.on_error == host_io::OnError::Ignore, c.tool));
    let mut out = Vec::new();
    let mut start = 0;
    while start < cmds.len() {
        let (tool, policy) = (cmds[start].tool, cmds[start].on_error);
        let end = cmds[start..]
            .iter()
            .position(|c| c.tool != tool || c.on_error != policy)
            .map_or(cmds.len(), |n| start + n);
        let restore_tool = match tool {
            host_io::Tool::Ip6tables => host_io::Tool::Ip6tablesRestore,
            _ => host_io::Tool::IptablesRestore,
        };
        let mut cmd =
            Command::new(restore_tool, ["--noflush"]).with_stdin(restore_input(&cmds[start..end]));
        cmd.on_error = policy;
        out.push(cmd);
        start = end;
    }
    out
}

/// `*TABLE` blocks of rule lines (the command's arguments without `-w`
/// and `--table`), tables in first-use order, rules in command order.
fn restore_input(cmds: &[Command]) -> String {
    let mut tables: Vec<(String, Vec<String>)> = Vec::new();
    for cmd in cmds {
        let mut table = "filter".to_owned();
        let mut words = Vec::new();
        let mut args = cmd.args.iter();
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "-w" => {}
                "--table" | "-t" => table = args.next().cloned().unwrap_or_default(),
                // Validated names and addresses: never whitespace or quotes.
                _ => words.push(arg.clone()),
            }
        }
        match tables.iter_mut().find(|(t, _)| *t == table) {
            Some((_, lines)) => lines.push(words.join(" ")),
            None => tables.push((table, vec![words.join(" ")])),
        }
    }
    let mut text = String::new();
    for (table, lines) in tables {
        text.push_str(&format!("*{table}\n"));
        for line in lines {
            text.push_str(&line);
            text.push('\n');
        }
        text.push_str("COMMIT\n");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_group_by_tool_and_policy_and_tables_by_first_use() {
        let net = crate::parse_network(
            "<network><name>n</name><bridge name='br0'/><forward/>
               <ip address='10.0.0.1' prefix='24'><dhcp><range start='10.0.0.2' end='10.0.0.9'/></dhcp></ip>
               <ip family='ipv6' address='fd00::1' prefix='64'/></network>",
        )
        .unwrap();
        let batches = restore_batches(&add_commands(&net).unwrap());
        let tools: Vec<_> = batches.iter().map(|b| (b.tool, b.on_error)).collect();
        use host_io::{OnError, Tool};
        assert_eq!(
            tools,
            [
                (Tool::IptablesRestore, OnError::Fail),
                (Tool::Ip6tablesRestore, OnError::Fail),
                (Tool::IptablesRestore, OnError::Ignore),
            ]
        );
        let v4 = batches[0].stdin.as_deref().unwrap();
        assert!(v4.starts_with(
            "*filter\n--insert LIBVIRT_INP --in-interface br0 --protocol tcp --destination-port 67 --jump ACCEPT\n"
        ));
        assert!(v4.contains(
            "--jump ACCEPT\n--insert LIBVIRT_FWO --source 10.0.0.0/24 --in-interface br0 --jump ACCEPT\n"
        ));
        assert!(v4.contains("COMMIT\n*nat\n--insert LIBVIRT_PRT --source 10.0.0.0/24 ! --destination 10.0.0.0/24 --jump MASQUERADE\n"));
        assert_eq!(
            batches[2].stdin.as_deref().unwrap(),
            "*mangle\n--insert LIBVIRT_PRT --out-interface br0 --protocol udp --destination-port 68 --jump CHECKSUM --checksum-fill\nCOMMIT\n"
        );
    }
}
