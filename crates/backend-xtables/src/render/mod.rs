//! Chain IR → libvirt 9.0's ebtables / iptables / ip6tables spelling.
//!
//! [`ruleset`] names each chain as libvirt does (final names: the applier
//! derives the temporary ones) and spells every rule as the arguments that
//! follow `-A NAME`. [`commands`] and [`restore_text`] turn a
//! [`PortRuleset`] into process invocations or `*-restore` input, with the
//! port's hook rules; [`command_lines`] prints commands for a shell.
//!
//! Everything that reaches an argument is checked here first: free text
//! (comments, ipset names) must not carry line breaks or control
//! characters, numbers must be in their field's range, chain names within
//! the tools' limits. A failure names the chain and rule.

mod bridge;
mod check;
mod ip;
mod nd;
mod text;

use nwfilter_compile::ir::{BridgeDir, ChainRole as IrRole, Program};
use nwfilter_model::IfName;

use crate::ruleset::{Family, Hook, PortRuleset, RenderedChain};

pub use text::{command_lines, commands, restore_text, Format};

/// Why a program or ruleset cannot be turned into commands.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    /// A value that no firewall tool can carry safely or correctly.
    #[error("chain {chain}, rule {rule}: {what}")]
    BadValue {
        chain: String,
        /// 1-based position in the chain.
        rule: usize,
        what: String,
    },
    /// A chain name over the tool's limit (ebtables 31, iptables 28).
    #[error("chain name {name:?} is longer than {limit} characters")]
    ChainNameTooLong { name: String, limit: usize },
    /// An argument no command or restore line can carry.
    #[error(transparent)]
    Argument(#[from] crate::apply::BadArgument),
}

/// What the applier puts in the kernel for `program`: [`ruleset`] plus
/// the empty iptables/ip6tables chains libvirt creates with every port.
///
/// Once a port has any rule of an IP family, libvirt 9.0 creates and hooks
/// all three of its chains of that family (`FO`, `FI`, `HI`), empty ones
/// included (lowering reference §2.8 group 2, §3.2). Tools and scripts
/// written for libvirt rely on them existing (libvirt-tck's
/// `ipt-no-macspoof-test` lists `FI-vnet0` and `HI-vnet0`). An empty chain
/// changes no verdict: running off its end returns, as if it were absent.
pub fn port_ruleset(program: &Program) -> Result<PortRuleset, RenderError> {
    let mut rs = ruleset(program)?;
    for family in [Family::Ipv4, Family::Ipv6] {
        add_empty_ip_chains(&rs.port, family, &mut rs.chains)?;
    }
    Ok(rs)
}

/// Names and spells every chain of `program` that holds rules: the
/// filter's own program, as libvirt's `nwfilterxml2firewall` test prints
/// it (that test strips the chain creations common to every port, which
/// [`port_ruleset`] adds).
pub fn ruleset(program: &Program) -> Result<PortRuleset, RenderError> {
    let port = &program.port;
    let mut chains = Vec::with_capacity(program.chains.len());
    for chain in &program.chains {
        let family = chain.family;
        let name = chain_name(port, family, &chain.role)?;
        let mut rules = Vec::with_capacity(chain.rules.len());
        for (i, rule) in chain.rules.iter().enumerate() {
            let at = check::At {
                chain: &name,
                rule: i + 1,
            };
            let args = match family {
                Family::Bridge => bridge::rule_args(port, &chain.role, rule, &at)?,
                Family::Ipv4 | Family::Ipv6 => ip::rule_args(family, rule, &at)?,
            };
            rules.push(args);
        }
        chains.push(RenderedChain {
            family,
            role: role(&chain.role),
            name,
            rules,
        });
    }
    Ok(PortRuleset {
        port: port.clone(),
        chains,
    })
}

/// libvirt's three iptables/ip6tables chains of a port, in the order it
/// creates them (`FP`, `FJ`, `HJ` under their temporary names).
const IP_PORT_CHAINS: [IrRole; 3] = [
    IrRole::ForwardToVm,
    IrRole::ForwardFromVm,
    IrRole::HostFromVm,
];

/// Adds the chains of libvirt's three that `family` lacks, empty, when it
/// has any.
fn add_empty_ip_chains(
    port: &IfName,
    family: Family,
    chains: &mut Vec<RenderedChain>,
) -> Result<(), RenderError> {
    if !chains.iter().any(|c| c.family == family) {
        return Ok(());
    }
    for ir_role in &IP_PORT_CHAINS {
        let role = role(ir_role);
        if chains.iter().any(|c| c.family == family && c.role == role) {
            continue;
        }
        chains.push(RenderedChain {
            family,
            role,
            name: chain_name(port, family, ir_role)?,
            rules: Vec::new(),
        });
    }
    Ok(())
}

fn role(r: &IrRole) -> Hook {
    match r {
        IrRole::BridgeRoot(BridgeDir::FromVm) => Hook::BridgeRootOut,
        IrRole::BridgeRoot(BridgeDir::ToVm) => Hook::BridgeRootIn,
        IrRole::BridgeSub { .. } => Hook::BridgeSub,
        IrRole::ForwardFromVm => Hook::ForwardFromVm,
        IrRole::ForwardToVm => Hook::ForwardToVm,
        IrRole::HostFromVm => Hook::HostFromVm,
    }
}

/// ebtables accepts 31 characters, iptables 28 (`XT_EXTENSION_MAXNAMELEN`
/// minus the terminating NUL and some slack libvirt also respects).
const EBTABLES_MAX: usize = 31;
const IPTABLES_MAX: usize = 28;

/// libvirt's final name of a port chain: "I"/"O" are the host's view
/// (frames coming In from the tap are the VM's outgoing ones).
pub fn chain_name(port: &IfName, family: Family, role: &IrRole) -> Result<String, RenderError> {
    let p = port.as_str();
    let name = match role {
        IrRole::BridgeRoot(BridgeDir::FromVm) => format!("libvirt-I-{p}"),
        IrRole::BridgeRoot(BridgeDir::ToVm) => format!("libvirt-O-{p}"),
        IrRole::BridgeSub { dir, name, .. } => sub_chain_name(port, *dir, name),
        IrRole::ForwardFromVm => format!("FI-{p}"),
        IrRole::ForwardToVm => format!("FO-{p}"),
        IrRole::HostFromVm => format!("HI-{p}"),
    };
    let limit = match family {
        Family::Bridge => EBTABLES_MAX,
        Family::Ipv4 | Family::Ipv6 => IPTABLES_MAX,
    };
    // Cannot happen with 15-byte devices and 12-character chain suffixes,
    // but a truncated name would silently merge two ports' chains.
    if name.len() > limit {
        return Err(RenderError::ChainNameTooLong { name, limit });
    }
    Ok(name)
}

fn sub_chain_name(port: &IfName, dir: BridgeDir, chain: &nwfilter_model::ChainName) -> String {
    let letter = match dir {
        BridgeDir::FromVm => 'I',
        BridgeDir::ToVm => 'O',
    };
    format!("{letter}-{}-{}", port.as_str(), chain.as_str())
}

#[cfg(test)]
mod tests;
