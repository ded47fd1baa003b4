//! Bridge rules as ebtables arguments (lowering reference §2.4, §2.7, §4).
//!
//! libvirt's old ebtables syntax is kept: `!` follows the option name
//! (`-s ! MAC`), except for the flag `--arp-gratuitous`.

use std::net::IpAddr;

use nwfilter_compile::ir::{
    AddrMatch, BridgeDir, ChainRole, IpVersion, MacMatch, Match, PortRange, Rule, StpField, Verdict,
};
use nwfilter_model::IfName;

use super::check::At;
use super::RenderError;

/// The STP bridge-group address BPDUs are sent to.
const STP_BPDU_DST: &str = "01:80:c2:00:00:00";

/// The arguments after `-A CHAIN` for one bridge rule.
pub(crate) fn rule_args(
    port: &IfName,
    role: &ChainRole,
    rule: &Rule,
    at: &At,
) -> Result<Vec<String>, RenderError> {
    let mut out = Args::default();
    // The IP version selected by an earlier `-p ipv4`/`-p ipv6`.
    let mut version = IpVersion::V4;
    // libvirt writes the EtherType of a dispatch jump zero-padded.
    let is_jump = matches!(rule.verdict, Verdict::Jump(_));
    for m in &rule.matches {
        match m {
            Match::EtherIp(v) => {
                version = *v;
                out.plain(&["-p", if *v == IpVersion::V4 { "ipv4" } else { "ipv6" }]);
            }
            other => matched(other, version, is_jump, &mut out, at)?,
        }
    }
    // ebtables has no comment match: comments are dropped, as in libvirt.
    out.plain(&["-j"]);
    out.0.push(target(port, role, &rule.verdict));
    Ok(out.0)
}

#[derive(Debug, Default)]
struct Args(Vec<String>);

impl Args {
    fn plain(&mut self, words: &[&str]) {
        self.0.extend(words.iter().map(|w| (*w).to_owned()));
    }

    /// `OPTION [!] VALUE`.
    fn opt(&mut self, option: &str, negated: bool, value: String) {
        self.0.push(option.to_owned());
        if negated {
            self.0.push("!".to_owned());
        }
        self.0.push(value);
    }
}

fn matched(
    m: &Match,
    version: IpVersion,
    is_jump: bool,
    out: &mut Args,
    at: &At,
) -> Result<(), RenderError> {
    let v6 = version == IpVersion::V6;
    let ip_opt = |v4: &'static str, v6opt: &'static str| if v6 { v6opt } else { v4 };
    match m {
        Match::MacSrc(mm) => out.opt("-s", mm.negated, mac_value(mm)),
        Match::MacDst(mm) => out.opt("-d", mm.negated, mac_value(mm)),
        Match::EtherType(t) => {
            let text = if is_jump {
                format!("{:#06x}", t.value)
            } else {
                format!("{:#x}", t.value)
            };
            out.opt("-p", t.negated, text);
        }
        Match::StpBpdu => out.plain(&["-d", STP_BPDU_DST]),
        Match::VlanId(v) => {
            at.at_most("VLAN id", v.value.into(), 4095)?;
            out.opt("--vlan-id", v.negated, v.value.to_string());
        }
        Match::VlanEncap(v) => out.opt("--vlan-encap", v.negated, v.value.to_string()),
        Match::StpType(v) => out.opt("--stp-type", v.negated, v.value.to_string()),
        Match::StpFlags(v) => out.opt("--stp-flags", v.negated, v.value.to_string()),
        Match::StpRange(field, r) => out.opt(stp_option(*field), r.negated, range(r)),
        Match::StpRootAddr(mm) => out.opt("--stp-root-addr", mm.negated, mac_value(mm)),
        Match::StpSenderAddr(mm) => out.opt("--stp-sender-addr", mm.negated, mac_value(mm)),
        Match::ArpHwType(v) => out.opt("--arp-htype", v.negated, v.value.to_string()),
        Match::ArpOpcode(v) => out.opt("--arp-opcode", v.negated, v.value.to_string()),
        Match::ArpProtoType(v) => out.opt("--arp-ptype", v.negated, format!("{:#x}", v.value)),
        Match::ArpIpSrc(a) => out.opt("--arp-ip-src", a.negated, addr(a, at)?),
        Match::ArpIpDst(a) => out.opt("--arp-ip-dst", a.negated, addr(a, at)?),
        Match::ArpMacSrc(mm) => out.opt("--arp-mac-src", mm.negated, mac_value(mm)),
        Match::ArpMacDst(mm) => out.opt("--arp-mac-dst", mm.negated, mac_value(mm)),
        Match::ArpGratuitous { negated } => {
            if *negated {
                out.plain(&["!"]);
            }
            out.plain(&["--arp-gratuitous"]);
        }
        Match::IpSrc(a) => out.opt(
            ip_opt("--ip-source", "--ip6-source"),
            a.negated,
            addr(a, at)?,
        ),
        Match::IpDst(a) => out.opt(
            ip_opt("--ip-destination", "--ip6-destination"),
            a.negated,
            addr(a, at)?,
        ),
        Match::IpProtocol(p) => out.opt(
            ip_opt("--ip-protocol", "--ip6-protocol"),
            p.negated,
            p.value.to_string(),
        ),
        Match::SrcPort(r) => out.opt(
            ip_opt("--ip-source-port", "--ip6-source-port"),
            r.negated,
            range(r),
        ),
        Match::DstPort(r) => out.opt(
            ip_opt("--ip-destination-port", "--ip6-destination-port"),
            r.negated,
            range(r),
        ),
        Match::IpTos(t) => out.opt("--ip-tos", t.negated, format!("{:#x}", t.value)),
        Match::Icmpv6Ranges {
            types,
            codes,
            negated,
        } => out.opt(
            "--ip6-icmp-type",
            *negated,
            format!("{}:{}/{}:{}", types.0, types.1, codes.0, codes.1),
        ),
        other => return Err(at.bad(format!("{other:?} cannot be matched by ebtables"))),
    }
    Ok(())
}

fn target(port: &IfName, role: &ChainRole, verdict: &Verdict) -> String {
    match verdict {
        Verdict::Accept => "ACCEPT".to_owned(),
        // ebtables has no REJECT; lowering already turned it into a drop.
        Verdict::Drop | Verdict::Reject => "DROP".to_owned(),
        Verdict::AcceptByReturn | Verdict::Return => "RETURN".to_owned(),
        Verdict::Continue => "CONTINUE".to_owned(),
        Verdict::Jump(name) => {
            let dir = match role {
                ChainRole::BridgeRoot(dir) | ChainRole::BridgeSub { dir, .. } => *dir,
                _ => BridgeDir::FromVm,
            };
            super::sub_chain_name(port, dir, name)
        }
    }
}

fn stp_option(field: StpField) -> &'static str {
    match field {
        StpField::RootPriority => "--stp-root-pri",
        StpField::RootCost => "--stp-root-cost",
        StpField::SenderPriority => "--stp-sender-prio",
        StpField::Port => "--stp-port",
        StpField::MessageAge => "--stp-msg-age",
        StpField::MaxAge => "--stp-max-age",
        StpField::HelloTime => "--stp-hello-time",
        StpField::ForwardDelay => "--stp-forward-delay",
    }
}

/// `LO` or `LO:HI`, decimal.
pub(crate) fn range<T: std::fmt::Display>(r: &PortRange<T>) -> String {
    match &r.end {
        Some(end) => format!("{}:{}", r.start, end),
        None => r.start.to_string(),
    }
}

/// Lower-case, zero-padded, with `/MASK` when masked.
fn mac_value(m: &MacMatch) -> String {
    match &m.mask {
        Some(mask) => format!("{}/{}", mac(&m.addr), mac(mask)),
        None => mac(&m.addr),
    }
}

pub(crate) fn mac(m: &nwfilter_model::MacAddr6) -> String {
    let b = m.as_bytes();
    format!(
        "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
        b[0], b[1], b[2], b[3], b[4], b[5]
    )
}

/// `A` or `A/P`, addresses as `inet_ntop` writes them.
pub(crate) fn addr(a: &AddrMatch, at: &At) -> Result<String, RenderError> {
    let text = ip_text(&a.addr);
    match a.prefix {
        None => Ok(text),
        Some(p) => {
            let max = if a.addr.is_ipv4() { 32 } else { 128 };
            at.at_most("prefix length", p.into(), max)?;
            Ok(format!("{text}/{p}"))
        }
    }
}

pub(crate) fn ip_text(a: &IpAddr) -> String {
    match a {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => nwfilter_model::format_kind(None, &nwfilter_model::Value::Ipv6(*v6)),
    }
}
