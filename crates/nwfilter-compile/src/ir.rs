//! The chain IR: what a port's firewall does, with no command-line spelling.
//!
//! Lowering ([`crate::lower()`]) produces a [`Program`] per port; a backend
//! (ebtables/iptables today, nftables later) turns it into text. Everything
//! here is plain data: addresses and numbers are typed, negation is per
//! match, and the order of [`Rule::matches`] is the order libvirt 9.0 emits
//! the corresponding options (a backend that does not care about option
//! order may ignore it: matches are ANDed).

use std::net::IpAddr;

use nwfilter_model::{ChainName, FilterName, IfName, IpsetDir, MacAddr6};
use serde::Serialize;

/// Everything one port's filter turns into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Program {
    pub port: IfName,
    /// Invariants: every chain has at least one rule (an empty chain would
    /// behave exactly like an absent one, so none is created); a bridge
    /// sub-chain comes before the root chain that jumps to it; each
    /// (family, role) appears at most once; order is bridge sub-chains (in
    /// creation order), bridge roots (from VM, to VM), then IPv4 and IPv6
    /// chains (forward-from-VM, forward-to-VM, host-from-VM).
    pub chains: Vec<Chain>,
}

impl Program {
    /// The chain with this family and role, if the port has it.
    pub fn chain(&self, family: Family, role: &ChainRole) -> Option<&Chain> {
        self.chains
            .iter()
            .find(|c| c.family == family && &c.role == role)
    }
}

/// A [`Program`] with, for every rule, the filter rule it was lowered
/// from: what `nwfilter explain` reports as a verdict's cause. Kept beside
/// the program, never in it, so that rendering, sharing and snapshots see
/// exactly the rules they always saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TracedProgram {
    pub program: Program,
    /// `origins[c][r]` is the origin of `program.chains[c].rules[r]`:
    /// `None` for the jumps lowering adds into the sub-chains.
    pub origins: Vec<Vec<Option<RuleOrigin>>>,
}

impl TracedProgram {
    /// The origin of rule `rule` of chain `chain` (indexes into the program).
    pub fn origin(&self, chain: usize, rule: usize) -> Option<&RuleOrigin> {
        self.origins.get(chain)?.get(rule)?.as_ref()
    }
}

/// Where a lowered rule comes from: one `<rule>` of one filter document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleOrigin {
    pub filter: FilterName,
    /// The rule's 0-based position among its filter's `<rule>` elements.
    pub rule_index: usize,
    /// The rule's priority (which placed it in its chain).
    pub priority: i32,
    /// The `chain` of the filter the rule is written in.
    pub chain: ChainName,
}

/// One chain of a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Chain {
    pub family: Family,
    pub role: ChainRole,
    /// Evaluated in order; never empty.
    pub rules: Vec<Rule>,
}

/// The packet layer (and so the tool) a chain belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// Ethernet frames on the bridge port.
    Bridge,
    Ipv4,
    Ipv6,
}

/// Which way a bridge chain's frames travel, seen from the VM.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum BridgeDir {
    /// Frames the VM sends (rule direction `out`; libvirt's "I" chains).
    FromVm,
    /// Frames delivered to the VM (rule direction `in`; "O" chains).
    ToVm,
}

/// What a chain is for; the backend derives its name and hook from this.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChainRole {
    /// The port's root chain for one direction (bridge family only).
    BridgeRoot(BridgeDir),
    /// A protocol sub-chain named after the filters' `chain` attribute,
    /// entered only through a [`Verdict::Jump`] from the root of `dir`.
    BridgeSub {
        dir: BridgeDir,
        name: ChainName,
        /// The chain priority that placed its jump in the root chain.
        priority: i32,
    },
    /// Forwarded packets sent by the VM (entered by goto: a `Return`
    /// resumes after the dispatch, where the packet is accepted).
    ForwardFromVm,
    /// Forwarded packets delivered to the VM.
    ForwardToVm,
    /// Packets from the VM to the host itself (entered by goto; a
    /// `Return` hands the packet to the host's own INPUT rules).
    HostFromVm,
}

/// One rule: all matches must hold, then the verdict applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// In emission order (see the module comment).
    pub matches: Vec<Match>,
    /// Free text from the filter's `comment` (at most 256 bytes, no
    /// control characters once validated by the backend).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    pub verdict: Verdict,
    /// Positions in `matches` of the addresses that are the binding's
    /// (a variable's value such as `$MAC` or `$IP`), not the filter's. A
    /// backend that shares one chain among many ports looks these up per
    /// port instead of writing them into the rule. It never changes what
    /// the rule matches: a backend may ignore it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub per_port: Vec<usize>,
}

/// What happens to a packet that matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// Final accept for this layer.
    Accept,
    /// The filter's `accept` in a chain entered by goto: leave the chain;
    /// the caller then accepts (forward) or goes on with the host's rules.
    AcceptByReturn,
    Drop,
    /// Refuse with an error reply (IPv4/IPv6 only; bridge rules lower
    /// `reject` to [`Verdict::Drop`]).
    Reject,
    /// Leave this chain and continue in the caller.
    Return,
    /// Match, count, and go on with the next rule.
    Continue,
    /// Enter the bridge sub-chain of this name (same direction).
    Jump(ChainName),
}

/// A field test. `negated` inverts the test of that match alone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Match {
    /// Ethernet source address (bridge), or the `mac` match of IP rules.
    MacSrc(MacMatch),
    /// Ethernet destination address.
    MacDst(MacMatch),
    /// Ethernet type field (explicit `protocolid`, or implied by the
    /// protocol element or a sub-chain dispatch).
    EtherType(Negatable<u16>),
    /// The frame carries IPv4 / IPv6 (the `ip`/`ipv6` elements' header
    /// matches follow).
    EtherIp(IpVersion),
    /// Destination is the STP bridge-group address 01:80:c2:00:00:00.
    StpBpdu,
    VlanId(Negatable<u16>),
    VlanEncap(Negatable<u16>),
    StpType(Negatable<u8>),
    StpFlags(Negatable<u8>),
    StpRange(StpField, PortRange<u32>),
    StpRootAddr(MacMatch),
    StpSenderAddr(MacMatch),
    ArpHwType(Negatable<u16>),
    ArpOpcode(Negatable<u16>),
    ArpProtoType(Negatable<u16>),
    ArpIpSrc(AddrMatch),
    ArpIpDst(AddrMatch),
    ArpMacSrc(MacMatch),
    ArpMacDst(MacMatch),
    ArpGratuitous {
        #[serde(skip_serializing_if = "is_false")]
        negated: bool,
    },
    /// IP source address (with prefix if given).
    IpSrc(AddrMatch),
    IpDst(AddrMatch),
    IpSrcRange(AddrRange),
    IpDstRange(AddrRange),
    /// IP protocol number in the IP header (bridge `ip`/`ipv6` rules).
    IpProtocol(Negatable<u8>),
    /// The whole TOS / traffic-class byte equals the value (libvirt's
    /// rendering of `dscp` on the `ip` element: see docs/compatibility.md).
    IpTos(Negatable<u8>),
    /// The 6-bit DSCP field equals the value.
    Dscp(Negatable<u8>),
    /// The layer-4 protocol of an IPv4/IPv6 rule (`all` matches any).
    L4(L4Proto),
    SrcPort(PortRange<u16>),
    DstPort(PortRange<u16>),
    TcpFlags {
        mask: u8,
        set: u8,
        #[serde(skip_serializing_if = "is_false")]
        negated: bool,
    },
    TcpOption(Negatable<u8>),
    /// ICMP / ICMPv6 type, optionally with code (L4 rules).
    IcmpType {
        icmp_type: u8,
        #[serde(skip_serializing_if = "Option::is_none")]
        code: Option<u8>,
        #[serde(skip_serializing_if = "is_false")]
        negated: bool,
    },
    /// ICMPv6 type and code ranges in a bridge `ipv6` rule (inclusive).
    Icmpv6Ranges {
        types: (u8, u8),
        codes: (u8, u8),
        #[serde(skip_serializing_if = "is_false")]
        negated: bool,
    },
    /// The connection's conntrack state is one of these.
    ConnState(ConnStates),
    ConnDir(ConnDir),
    /// Packet matches an ipset, selectors in order.
    IpSet {
        name: String,
        flags: Vec<IpsetDir>,
    },
    /// More than `limit` connections from this source.
    ConnlimitAbove(Negatable<u16>),
    /// A field of a neighbour solicitation or advertisement (ours, issue
    /// 16; see [`NdMatch`]).
    Nd(NdMatch),
}

/// A field of a neighbour solicitation or advertisement (ICMPv6 135/136)
/// at its fixed place (RFC 4861 §4.3, §4.4): the ICMPv6 header must follow
/// the IPv6 header directly (no extension header), whether or not the
/// field test is negated, so a filter that accepts only well-formed
/// messages (and drops the rest by type) cannot be evaded with an
/// extension header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct NdMatch {
    pub field: NdField,
    #[serde(skip_serializing_if = "is_false")]
    pub negated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NdField {
    /// The target address (ICMPv6 bytes 8..24).
    Target(std::net::Ipv6Addr),
    /// The message is 32 bytes long and its one option (bytes 24..32) is
    /// a source or target link-layer address option (type 1 or 2, length
    /// 1) holding this address.
    LinkLayer(#[serde(serialize_with = "mac_text")] MacAddr6),
    /// `true`: the message carries options (longer than 24 bytes);
    /// `false`: it carries none (exactly 24 bytes).
    Options(bool),
}

/// A value with its negation flag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Negatable<T> {
    pub value: T,
    #[serde(skip_serializing_if = "is_false")]
    pub negated: bool,
}

/// An Ethernet address, optionally masked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MacMatch {
    #[serde(serialize_with = "mac_text")]
    pub addr: MacAddr6,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "optional_mac_text"
    )]
    pub mask: Option<MacAddr6>,
    #[serde(skip_serializing_if = "is_false")]
    pub negated: bool,
}

/// An IP address, optionally with a prefix length (absent: as written,
/// which the tools read as a host address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AddrMatch {
    pub addr: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<u8>,
    #[serde(skip_serializing_if = "is_false")]
    pub negated: bool,
}

/// An inclusive IP address range (`to` absent: the single address).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct AddrRange {
    pub from: IpAddr,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<IpAddr>,
    #[serde(skip_serializing_if = "is_false")]
    pub negated: bool,
}

/// An inclusive numeric range (`end` absent: the single value).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PortRange<T> {
    pub start: T,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<T>,
    #[serde(skip_serializing_if = "is_false")]
    pub negated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IpVersion {
    V4,
    V6,
}

/// The ranged fields of an STP BPDU, in libvirt's emission order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StpField {
    RootPriority,
    RootCost,
    SenderPriority,
    Port,
    MessageAge,
    MaxAge,
    HelloTime,
    ForwardDelay,
}

/// Layer-4 protocols of IPv4/IPv6 rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum L4Proto {
    Tcp,
    Udp,
    Udplite,
    Sctp,
    Icmp,
    Icmpv6,
    Igmp,
    Esp,
    Ah,
    All,
}

/// A set of conntrack states. Invariant: at least one is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ConnStates {
    pub new: bool,
    pub established: bool,
    pub related: bool,
    pub invalid: bool,
}

/// Which way the packet travels relative to the connection's first packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnDir {
    Original,
    Reply,
}

/// Serde helper: leave `negated: false` out of snapshots and JSON.
fn is_false(b: &bool) -> bool {
    !*b
}

/// Serde helper: a MAC as `52:54:00:ab:cd:ef`, not as six numbers.
fn mac_text<S: serde::Serializer>(mac: &MacAddr6, s: S) -> Result<S::Ok, S::Error> {
    let b = mac.as_bytes();
    s.collect_str(&format_args!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[0], b[1], b[2], b[3], b[4], b[5]
    ))
}

fn optional_mac_text<S: serde::Serializer>(
    mac: &Option<MacAddr6>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match mac {
        Some(mac) => mac_text(mac, s),
        None => s.serialize_none(),
    }
}
