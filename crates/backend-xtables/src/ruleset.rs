//! A port's rules after rendering, before applying.
//!
//! The renderer fills this from the chain IR using libvirt's *final* chain
//! names (`libvirt-I-vnet0`, `I-vnet0-ipv4`, `FI-vnet0`, ...). The applier
//! decides how they reach the kernel: temporary names while an update is
//! built, hooks into the built-in and shared chains, renames, removal.

use nwfilter_model::IfName;
use serde::Serialize;

/// The tool family (and so the table) a chain lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// ebtables, table `nat`.
    Bridge,
    /// iptables, table `filter`.
    Ipv4,
    /// ip6tables, table `filter`.
    Ipv6,
}

impl Family {
    /// The table libvirt's nwfilter rules live in for this family.
    pub fn table(self) -> &'static str {
        match self {
            Family::Bridge => "nat",
            Family::Ipv4 | Family::Ipv6 => "filter",
        }
    }
}

/// What a chain is for; decides how the applier hooks it in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChainRole {
    /// `libvirt-I-IF`: frames sent by the VM (hooked from PREROUTING `-i IF`).
    BridgeRootOut,
    /// `libvirt-O-IF`: frames delivered to the VM (hooked from POSTROUTING `-o IF`).
    BridgeRootIn,
    /// `I-IF-CHAIN` / `O-IF-CHAIN`: a protocol sub-chain, reached by a jump
    /// rule in the matching root chain.
    BridgeSub,
    /// `FI-IF`: forwarded packets from the VM (from `libvirt-in`).
    ForwardFromVm,
    /// `FO-IF`: forwarded packets to the VM (from `libvirt-out`).
    ForwardToVm,
    /// `HI-IF`: packets from the VM to the host (from `libvirt-host-in`).
    HostFromVm,
}

/// One chain with its rules, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RenderedChain {
    pub family: Family,
    pub role: ChainRole,
    /// The final chain name (within the tool's length limit).
    pub name: String,
    /// Each rule's arguments after `-A NAME` (matches, then target), in
    /// the order they must be appended. Jumps to sub-chains are rules here.
    pub rules: Vec<Vec<String>>,
}

/// Everything one port needs, ready for the applier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortRuleset {
    pub port: IfName,
    /// Sub-chains come before the chains that jump to them, so creating
    /// chains in this order never references a missing chain.
    pub chains: Vec<RenderedChain>,
}
