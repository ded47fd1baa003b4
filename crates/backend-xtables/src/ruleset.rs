//! A port's rules after rendering, before applying.
//!
//! The renderer fills this from the chain IR using libvirt's *final* chain
//! names (`libvirt-I-vnet0`, `I-vnet0-ipv4`, `FI-vnet0`, ...). The applier
//! decides how they reach the kernel: temporary names while an update is
//! built, hooks into the built-in and shared chains, renames, removal.

/// The IR's family: ebtables (`Bridge`), iptables (`Ipv4`) or ip6tables
/// (`Ipv6`), and so the tool and table a chain lives in.
pub use nwfilter_compile::ir::Family;
use nwfilter_model::IfName;
use serde::Serialize;

/// The table libvirt's nwfilter rules live in for `family`: `nat` for
/// ebtables, `filter` for iptables and ip6tables.
pub fn table(family: Family) -> &'static str {
    match family {
        Family::Bridge => "nat",
        Family::Ipv4 | Family::Ipv6 => "filter",
    }
}

/// The nf_tables family the tool for `family` keeps its table in.
pub fn kernel_family(family: Family) -> host_io::TableFamily {
    match family {
        Family::Bridge => host_io::TableFamily::Bridge,
        Family::Ipv4 => host_io::TableFamily::Ipv4,
        Family::Ipv6 => host_io::TableFamily::Ipv6,
    }
}

/// How the applier reaches a chain: which built-in or shared chain jumps
/// to it. This is what the kernel's tables show of a chain, so the applier
/// can recognise our chains when it reads them back; the IR's
/// `ChainRole`, which this projects, also carries a sub-chain's name and
/// priority, which a table listing cannot give back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Hook {
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
    /// How the applier hooks it in.
    pub role: Hook,
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
