//! Rule attribute names and the kinds of value each one holds.

use serde::{Deserialize, Serialize};

/// An attribute of a protocol element, named as in the XML.
///
/// The same XML name can carry different kinds of value on different
/// elements (`flags` is a byte on `stp` and a MASK/SET pair on `tcp`);
/// [`crate::Protocol::kind_of`] gives the kind for a given element.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Attr {
    SrcMacAddr,
    SrcMacMask,
    DstMacAddr,
    DstMacMask,
    ProtocolId,
    VlanId,
    EncapProtocol,
    Type,
    Flags,
    RootPriority,
    RootPriorityHi,
    RootAddress,
    RootAddressMask,
    RootCost,
    RootCostHi,
    SenderPriority,
    SenderPriorityHi,
    SenderAddress,
    SenderAddressMask,
    Port,
    PortHi,
    Age,
    AgeHi,
    MaxAge,
    MaxAgeHi,
    HelloTime,
    HelloTimeHi,
    ForwardDelay,
    ForwardDelayHi,
    HwType,
    ProtocolType,
    Opcode,
    ArpSrcMacAddr,
    ArpDstMacAddr,
    ArpSrcIpAddr,
    ArpSrcIpMask,
    ArpDstIpAddr,
    ArpDstIpMask,
    Gratuitous,
    SrcIpAddr,
    SrcIpMask,
    DstIpAddr,
    DstIpMask,
    SrcIpFrom,
    SrcIpTo,
    DstIpFrom,
    DstIpTo,
    Protocol,
    SrcPortStart,
    SrcPortEnd,
    DstPortStart,
    DstPortEnd,
    Dscp,
    ConnlimitAbove,
    State,
    Ipset,
    IpsetFlags,
    Option,
    TypeEnd,
    Code,
    CodeEnd,
    Comment,
    /// Ours (issue 16, not libvirt's): the target address of a neighbour
    /// solicitation or advertisement (`icmpv6` rules; docs/ipv6.md).
    NdTarget,
    /// Ours: the one option of a neighbour solicitation or advertisement is
    /// a link-layer address option with this address.
    NdLlAddr,
    /// Ours: whether a neighbour solicitation or advertisement carries options.
    NdOptions,
}

impl Attr {
    /// The XML attribute name.
    pub fn name(self) -> &'static str {
        match self {
            Attr::SrcMacAddr => "srcmacaddr",
            Attr::SrcMacMask => "srcmacmask",
            Attr::DstMacAddr => "dstmacaddr",
            Attr::DstMacMask => "dstmacmask",
            Attr::ProtocolId => "protocolid",
            Attr::VlanId => "vlanid",
            Attr::EncapProtocol => "encap-protocol",
            Attr::Type => "type",
            Attr::Flags => "flags",
            Attr::RootPriority => "root-priority",
            Attr::RootPriorityHi => "root-priority-hi",
            Attr::RootAddress => "root-address",
            Attr::RootAddressMask => "root-address-mask",
            Attr::RootCost => "root-cost",
            Attr::RootCostHi => "root-cost-hi",
            Attr::SenderPriority => "sender-priority",
            Attr::SenderPriorityHi => "sender-priority-hi",
            Attr::SenderAddress => "sender-address",
            Attr::SenderAddressMask => "sender-address-mask",
            Attr::Port => "port",
            Attr::PortHi => "port-hi",
            Attr::Age => "age",
            Attr::AgeHi => "age-hi",
            Attr::MaxAge => "max-age",
            Attr::MaxAgeHi => "max-age-hi",
            Attr::HelloTime => "hello-time",
            Attr::HelloTimeHi => "hello-time-hi",
            Attr::ForwardDelay => "forward-delay",
            Attr::ForwardDelayHi => "forward-delay-hi",
            Attr::HwType => "hwtype",
            Attr::ProtocolType => "protocoltype",
            Attr::Opcode => "opcode",
            Attr::ArpSrcMacAddr => "arpsrcmacaddr",
            Attr::ArpDstMacAddr => "arpdstmacaddr",
            Attr::ArpSrcIpAddr => "arpsrcipaddr",
            Attr::ArpSrcIpMask => "arpsrcipmask",
            Attr::ArpDstIpAddr => "arpdstipaddr",
            Attr::ArpDstIpMask => "arpdstipmask",
            Attr::Gratuitous => "gratuitous",
            Attr::SrcIpAddr => "srcipaddr",
            Attr::SrcIpMask => "srcipmask",
            Attr::DstIpAddr => "dstipaddr",
            Attr::DstIpMask => "dstipmask",
            Attr::SrcIpFrom => "srcipfrom",
            Attr::SrcIpTo => "srcipto",
            Attr::DstIpFrom => "dstipfrom",
            Attr::DstIpTo => "dstipto",
            Attr::Protocol => "protocol",
            Attr::SrcPortStart => "srcportstart",
            Attr::SrcPortEnd => "srcportend",
            Attr::DstPortStart => "dstportstart",
            Attr::DstPortEnd => "dstportend",
            Attr::Dscp => "dscp",
            Attr::ConnlimitAbove => "connlimit-above",
            Attr::State => "state",
            Attr::Ipset => "ipset",
            Attr::IpsetFlags => "ipsetflags",
            Attr::Option => "option",
            Attr::TypeEnd => "typeend",
            Attr::Code => "code",
            Attr::CodeEnd => "codeend",
            Attr::Comment => "comment",
            Attr::NdTarget => "ndtarget",
            Attr::NdLlAddr => "ndlladdr",
            Attr::NdOptions => "ndoptions",
        }
    }
}

/// How an attribute's text is parsed, checked and printed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ValueKind {
    /// Unsigned 8-bit, decimal or hex (form remembered).
    U8,
    /// Unsigned 16-bit, decimal or hex (form remembered).
    U16,
    /// Unsigned 32-bit, decimal or hex (form remembered).
    U32,
    /// Unsigned 16-bit, decimal only (`connlimit-above`).
    U16Dec,
    /// DSCP: U8 at most 63.
    Dscp,
    /// VLAN id: U16 at most 4095.
    VlanId,
    /// EtherType (`protocolid`): name or number >= 0x600.
    EtherType,
    /// Encapsulated EtherType (`encap-protocol`): name or number >= 0x3c.
    EncapEtherType,
    /// ARP opcode: name (1..=9) or any U16.
    ArpOpcode,
    /// IP protocol number (`protocol` on `ip`/`ipv6`): name or U8.
    IpProtocol,
    Mac,
    /// MAC-shaped mask with contiguous one bits.
    MacMask,
    Ipv4,
    /// Prefix length 0..=32 or contiguous dotted netmask.
    Ipv4Mask,
    Ipv6,
    /// Prefix length 0..=128 or contiguous IPv6 netmask.
    Ipv6Mask,
    Bool,
    /// Free text, at most 256 bytes.
    Comment,
    /// Conntrack state list (`state`).
    StateSet,
    /// TCP `MASK/SET` flags.
    TcpFlags,
    /// ipset name: 1..=31 of `[A-Za-z0-9_.:+ -]`.
    IpsetName,
    /// ipset selectors: 1..=6 of `src`/`dst`.
    IpsetFlags,
}

/// One row of a protocol's attribute table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttrSpec {
    pub attr: Attr,
    pub kind: ValueKind,
}

const fn a(attr: Attr, kind: ValueKind) -> AttrSpec {
    AttrSpec { attr, kind }
}

/// Per-protocol attribute tables in libvirt's canonical order
/// (reference `nwfilter-xml.md` §5).
pub(crate) mod tables {
    use super::Attr::*;
    use super::ValueKind as K;
    use super::{a, AttrSpec};

    macro_rules! table {
        ($($part:expr),* $(,)?) => {{
            const PARTS: &[&[AttrSpec]] = &[$($part),*];
            const LEN: usize = {
                let mut n = 0;
                let mut i = 0;
                while i < PARTS.len() {
                    n += PARTS[i].len();
                    i += 1;
                }
                n
            };
            const OUT: [AttrSpec; LEN] = {
                let mut out = [a(Comment, K::Comment); LEN];
                let mut n = 0;
                let mut i = 0;
                while i < PARTS.len() {
                    let mut j = 0;
                    while j < PARTS[i].len() {
                        out[n] = PARTS[i][j];
                        n += 1;
                        j += 1;
                    }
                    i += 1;
                }
                out
            };
            &OUT
        }};
    }

    const ETH4: &[AttrSpec] = &[
        a(SrcMacAddr, K::Mac),
        a(SrcMacMask, K::MacMask),
        a(DstMacAddr, K::Mac),
        a(DstMacMask, K::MacMask),
    ];
    const COMMENT: &[AttrSpec] = &[a(Comment, K::Comment)];
    const PORTS: &[AttrSpec] = &[
        a(SrcPortStart, K::U16),
        a(SrcPortEnd, K::U16),
        a(DstPortStart, K::U16),
        a(DstPortEnd, K::U16),
    ];
    const L4_TAIL: &[AttrSpec] = &[
        a(Dscp, K::Dscp),
        a(ConnlimitAbove, K::U16Dec),
        a(State, K::StateSet),
        a(Ipset, K::IpsetName),
        a(IpsetFlags, K::IpsetFlags),
    ];
    const L4_IP4: &[AttrSpec] = &[
        a(SrcMacAddr, K::Mac),
        a(SrcIpAddr, K::Ipv4),
        a(SrcIpMask, K::Ipv4Mask),
        a(DstIpAddr, K::Ipv4),
        a(DstIpMask, K::Ipv4Mask),
        a(SrcIpFrom, K::Ipv4),
        a(SrcIpTo, K::Ipv4),
        a(DstIpFrom, K::Ipv4),
        a(DstIpTo, K::Ipv4),
    ];
    // `dstipto` is IPv6 here: libvirt 9.0 types it IPv4 on IPv6 elements,
    // a bug recorded in docs/compatibility.md.
    const L4_IP6: &[AttrSpec] = &[
        a(SrcMacAddr, K::Mac),
        a(SrcIpAddr, K::Ipv6),
        a(SrcIpMask, K::Ipv6Mask),
        a(DstIpAddr, K::Ipv6),
        a(DstIpMask, K::Ipv6Mask),
        a(SrcIpFrom, K::Ipv6),
        a(SrcIpTo, K::Ipv6),
        a(DstIpFrom, K::Ipv6),
        a(DstIpTo, K::Ipv6),
    ];
    const ICMP_TYPE_CODE: &[AttrSpec] = &[a(Type, K::U8), a(Code, K::U8)];

    pub(crate) const MAC: &[AttrSpec] = table!(ETH4, &[a(ProtocolId, K::EtherType)], COMMENT);
    pub(crate) const VLAN: &[AttrSpec] = table!(
        ETH4,
        &[a(VlanId, K::VlanId), a(EncapProtocol, K::EncapEtherType)],
        COMMENT
    );
    pub(crate) const STP: &[AttrSpec] = table!(
        &[
            a(SrcMacAddr, K::Mac),
            a(SrcMacMask, K::MacMask),
            a(Type, K::U8),
            a(Flags, K::U8),
            a(RootPriority, K::U16),
            a(RootPriorityHi, K::U16),
            a(RootAddress, K::Mac),
            a(RootAddressMask, K::MacMask),
            a(RootCost, K::U32),
            a(RootCostHi, K::U32),
            a(SenderPriority, K::U16),
            a(SenderPriorityHi, K::U16),
            a(SenderAddress, K::Mac),
            a(SenderAddressMask, K::MacMask),
            a(Port, K::U16),
            a(PortHi, K::U16),
            a(Age, K::U16),
            a(AgeHi, K::U16),
            a(MaxAge, K::U16),
            a(MaxAgeHi, K::U16),
            a(HelloTime, K::U16),
            a(HelloTimeHi, K::U16),
            a(ForwardDelay, K::U16),
            a(ForwardDelayHi, K::U16),
        ],
        COMMENT
    );
    pub(crate) const ARP: &[AttrSpec] = table!(
        ETH4,
        &[
            a(HwType, K::U16),
            a(ProtocolType, K::U16),
            a(Opcode, K::ArpOpcode),
            a(ArpSrcMacAddr, K::Mac),
            a(ArpDstMacAddr, K::Mac),
            a(ArpSrcIpAddr, K::Ipv4),
            a(ArpSrcIpMask, K::Ipv4Mask),
            a(ArpDstIpAddr, K::Ipv4),
            a(ArpDstIpMask, K::Ipv4Mask),
            a(Gratuitous, K::Bool),
        ],
        COMMENT
    );
    pub(crate) const IP: &[AttrSpec] = table!(
        ETH4,
        &[
            a(SrcIpAddr, K::Ipv4),
            a(SrcIpMask, K::Ipv4Mask),
            a(DstIpAddr, K::Ipv4),
            a(DstIpMask, K::Ipv4Mask),
            a(Protocol, K::IpProtocol),
        ],
        PORTS,
        &[a(Dscp, K::Dscp)],
        COMMENT
    );
    pub(crate) const IPV6: &[AttrSpec] = table!(
        ETH4,
        &[
            a(SrcIpAddr, K::Ipv6),
            a(SrcIpMask, K::Ipv6Mask),
            a(DstIpAddr, K::Ipv6),
            a(DstIpMask, K::Ipv6Mask),
            a(Protocol, K::IpProtocol),
        ],
        PORTS,
        &[
            a(Type, K::U8),
            a(TypeEnd, K::U8),
            a(Code, K::U8),
            a(CodeEnd, K::U8),
        ],
        COMMENT
    );
    pub(crate) const TCP: &[AttrSpec] = table!(
        L4_IP4,
        L4_TAIL,
        PORTS,
        &[a(Option, K::U8), a(Flags, K::TcpFlags)],
        COMMENT
    );
    pub(crate) const UDP: &[AttrSpec] = table!(L4_IP4, L4_TAIL, PORTS, COMMENT);
    pub(crate) const ICMP: &[AttrSpec] = table!(L4_IP4, L4_TAIL, ICMP_TYPE_CODE, COMMENT);
    pub(crate) const L4_V4: &[AttrSpec] = table!(L4_IP4, L4_TAIL, COMMENT);
    pub(crate) const TCP_V6: &[AttrSpec] =
        table!(L4_IP6, L4_TAIL, PORTS, &[a(Option, K::U8)], COMMENT);
    pub(crate) const UDP_V6: &[AttrSpec] = table!(L4_IP6, L4_TAIL, PORTS, COMMENT);
    // Ours, not libvirt's (issue 16): neighbour-discovery fields. Printed
    // only when given, so libvirt's documents format as before.
    const ND: &[AttrSpec] = &[
        a(NdTarget, K::Ipv6),
        a(NdLlAddr, K::Mac),
        a(NdOptions, K::Bool),
    ];
    pub(crate) const ICMP_V6: &[AttrSpec] = table!(L4_IP6, L4_TAIL, ICMP_TYPE_CODE, ND, COMMENT);
    pub(crate) const L4_V6: &[AttrSpec] = table!(L4_IP6, L4_TAIL, COMMENT);
}
