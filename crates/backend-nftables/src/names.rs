//! Names of our tables, maps and chains.
//!
//! Every per-port chain is named `ROLE/PORT`: interface names cannot contain
//! `/`, so the port is what follows the last `/` and two ports' chains
//! never collide (libvirt's `I-vnet0-arp` could belong to port `vnet0-arp`).
//! `/` is also one of the few punctuation characters `nft -f` accepts in an
//! unquoted chain name.

use nwfilter_compile::ir::BridgeDir;
use nwfilter_model::{ChainName, IfName};
use serde::Serialize;

/// Both tables are called this; they differ by family.
pub const TABLE: &str = "nwfilter";

/// Which of our two tables a chain lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Table {
    /// `table bridge nwfilter`: Ethernet-layer rules, port tagging.
    Bridge,
    /// `table inet nwfilter`: IPv4 and IPv6 rules (seen through
    /// br_netfilter), dispatched by the port tag.
    Inet,
}

impl Table {
    pub fn family(self) -> &'static str {
        match self {
            Table::Bridge => "bridge",
            Table::Inet => "inet",
        }
    }

    pub fn nf_family(self) -> nftables::types::NfFamily {
        match self {
            Table::Bridge => nftables::types::NfFamily::Bridge,
            Table::Inet => nftables::types::NfFamily::INet,
        }
    }
}

/// What a per-port chain is for (and so which map leads to it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Bridge root chain, frames from the VM (`iifname` map).
    FromVmL2,
    /// Bridge root chain, frames to the VM (`oifname` map).
    ToVmL2,
    /// A bridge protocol sub-chain, entered by a jump from a root.
    Sub,
    /// IPv4/IPv6 forwarded from the VM (`from-vm` map, by in-port tag).
    FromVm,
    /// IPv4/IPv6 forwarded to the VM (`to-vm` map, by out-port tag).
    ToVm,
    /// IPv4/IPv6 from the VM to the host (`host-from-vm` map).
    HostFromVm,
}

/// The chain name of `role` for `port`.
pub fn chain(role: &Role, port: &IfName) -> String {
    let prefix = match role {
        Role::FromVmL2 => "I",
        Role::ToVmL2 => "O",
        Role::FromVm => "FI",
        Role::ToVm => "FO",
        Role::HostFromVm => "HI",
        Role::Sub => unreachable!("sub-chains are named by sub_chain()"),
    };
    format!("{prefix}/{port}")
}

/// A bridge sub-chain: `I-arp/vnet0`. `:` (allowed in filter chain names)
/// is not an nft identifier character and becomes `_`.
pub fn sub_chain(dir: BridgeDir, name: &ChainName, port: &IfName) -> String {
    let prefix = match dir {
        BridgeDir::FromVm => "I",
        BridgeDir::ToVm => "O",
    };
    format!("{prefix}-{}/{port}", name.as_str().replace(':', "_"))
}

/// The per-port chain that writes the out-port tag into the mark.
pub fn tag_chain(port: &IfName) -> String {
    format!("tag/{port}")
}

/// The port a per-port chain belongs to (`None` for base chains).
pub fn port_of(chain: &str) -> Option<&str> {
    chain.rsplit_once('/').map(|(_, port)| port)
}

/// Whether `nft -f` text can name this without quoting (it cannot quote
/// chain names): `[A-Za-z_.][A-Za-z0-9/\-_.]*`.
pub fn is_nft_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '.')
        && chars.all(|c| c.is_ascii_alphanumeric() || "/-_.".contains(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_names_end_with_the_port() {
        let port = IfName::new("vnet0-arp").unwrap();
        let name = sub_chain(BridgeDir::FromVm, &ChainName::new("arp:x").unwrap(), &port);
        assert_eq!(name, "I-arp_x/vnet0-arp");
        assert_eq!(port_of(&name), Some("vnet0-arp"));
        assert_eq!(chain(&Role::FromVm, &port), "FI/vnet0-arp");
        assert_eq!(port_of("prerouting"), None);
    }

    #[test]
    fn identifiers_follow_nft_syntax() {
        assert!(is_nft_identifier("I-arp/vnet0"));
        assert!(!is_nft_identifier("I/vnet@0"));
        assert!(!is_nft_identifier(""));
    }
}
