//! IPv4/IPv6 rules as iptables/ip6tables arguments (lowering reference
//! §3.5). `!` goes before an option, and after the `-m MODULE` words of a
//! module match.

use nwfilter_compile::ir::{AddrRange, ConnDir, ConnStates, L4Proto, Match, Rule, Verdict};
use nwfilter_model::{IpsetDir, TcpFlags};

use super::bridge::{addr, ip_text, mac, range};
use super::check::At;
use super::RenderError;
use crate::ruleset::Family;

/// The arguments after `-A CHAIN` for one IPv4/IPv6 rule.
pub(crate) fn rule_args(family: Family, rule: &Rule, at: &At) -> Result<Vec<String>, RenderError> {
    let mut out: Vec<String> = Vec::with_capacity(4 * rule.matches.len() + 6);
    let mut nd_pinned = false;
    for m in &rule.matches {
        match m {
            // Ours (issue 16): the first ND match pins the ICMPv6 header.
            Match::Nd(nd) if family == Family::Ipv6 => {
                out.extend(super::nd::args(nd, !nd_pinned, at)?);
                nd_pinned = true;
            }
            m => out.extend(matched(family, m, at)?),
        }
    }
    if let Some(comment) = &rule.comment {
        at.text("comment", comment)?;
        out.extend(["-m", "comment", "--comment"].map(String::from));
        out.push(comment.clone());
    }
    if let Some(t) = target(&rule.verdict, at)? {
        out.push("-j".to_owned());
        out.push(t.to_owned());
    }
    Ok(out)
}

/// `[!] OPTION VALUE`, or with a module: `-m MODULE [!] OPTION VALUE`.
fn opt(module: Option<&str>, negated: bool, option: &str, value: String) -> Vec<String> {
    let mut w = Vec::new();
    if let Some(m) = module {
        w.extend(["-m".to_owned(), m.to_owned()]);
    }
    if negated {
        w.push("!".to_owned());
    }
    w.extend([option.to_owned(), value]);
    w
}

fn matched(family: Family, m: &Match, at: &At) -> Result<Vec<String>, RenderError> {
    Ok(match m {
        Match::L4(p) => vec!["-p".to_owned(), proto(*p).to_owned()],
        Match::MacSrc(mm) => {
            if mm.mask.is_some() {
                return Err(at.bad("a masked source MAC cannot be matched by iptables"));
            }
            opt(Some("mac"), mm.negated, "--mac-source", mac(&mm.addr))
        }
        Match::IpSrc(a) => opt(None, a.negated, "--source", addr(a, at)?),
        Match::IpDst(a) => opt(None, a.negated, "--destination", addr(a, at)?),
        Match::IpSrcRange(r) => opt(Some("iprange"), r.negated, "--src-range", addr_range(r)),
        Match::IpDstRange(r) => opt(Some("iprange"), r.negated, "--dst-range", addr_range(r)),
        Match::Dscp(d) => {
            at.at_most("DSCP", d.value.into(), 63)?;
            opt(Some("dscp"), d.negated, "--dscp", d.value.to_string())
        }
        Match::TcpFlags { mask, set, negated } => {
            at.at_most("TCP flag mask", (*mask).into(), TcpFlags::ALL.into())?;
            at.at_most("TCP flag set", (*set).into(), TcpFlags::ALL.into())?;
            let mut w = opt(None, *negated, "--tcp-flags", tcp_flags(*mask));
            w.push(tcp_flags(*set));
            w
        }
        Match::SrcPort(r) => opt(None, r.negated, "--sport", range(r)),
        Match::DstPort(r) => opt(None, r.negated, "--dport", range(r)),
        Match::TcpOption(o) => opt(None, o.negated, "--tcp-option", o.value.to_string()),
        Match::IcmpType {
            icmp_type,
            code,
            negated,
        } => {
            let option = if family == Family::Ipv6 {
                "--icmpv6-type"
            } else {
                "--icmp-type"
            };
            let value = match code {
                Some(c) => format!("{icmp_type}/{c}"),
                None => icmp_type.to_string(),
            };
            opt(None, *negated, option, value)
        }
        Match::ConnState(s) => {
            let list = states(s);
            if list.is_empty() {
                return Err(at.bad("a conntrack state match needs at least one state"));
            }
            opt(Some("conntrack"), false, "--ctstate", list)
        }
        Match::ConnDir(d) => {
            let dir = match d {
                ConnDir::Original => "Original",
                ConnDir::Reply => "Reply",
            };
            opt(Some("conntrack"), false, "--ctdir", dir.to_owned())
        }
        Match::IpSet { name, flags } => {
            at.ipset_name(name)?;
            if flags.is_empty() || flags.len() > 6 {
                return Err(at.bad(format!("ipset {name:?} needs 1 to 6 src/dst selectors")));
            }
            let flags: Vec<&str> = flags.iter().map(|f| IpsetDir::name(*f)).collect();
            let mut w = opt(Some("set"), false, "--match-set", name.clone());
            w.push(flags.join(","));
            w
        }
        Match::ConnlimitAbove(n) => opt(
            Some("connlimit"),
            n.negated,
            "--connlimit-above",
            n.value.to_string(),
        ),
        other => return Err(at.bad(format!("{other:?} cannot be matched by iptables"))),
    })
}

/// `None`: no `-j` at all, which is what `continue` means (count, go on).
/// libvirt writes `-j CONTINUE`, a target iptables does not have.
fn target(verdict: &Verdict, at: &At) -> Result<Option<&'static str>, RenderError> {
    Ok(Some(match verdict {
        Verdict::Accept => "ACCEPT",
        Verdict::AcceptByReturn | Verdict::Return => "RETURN",
        Verdict::Drop => "DROP",
        // No --reject-with: the tools' default (ICMP port unreachable).
        Verdict::Reject => "REJECT",
        Verdict::Continue => return Ok(None),
        Verdict::Jump(name) => {
            return Err(at.bad(format!("iptables chains have no sub-chain {name}")));
        }
    }))
}

fn proto(p: L4Proto) -> &'static str {
    match p {
        L4Proto::Tcp => "tcp",
        L4Proto::Udp => "udp",
        L4Proto::Udplite => "udplite",
        L4Proto::Sctp => "sctp",
        L4Proto::Icmp => "icmp",
        L4Proto::Icmpv6 => "icmpv6",
        L4Proto::Igmp => "igmp",
        L4Proto::Esp => "esp",
        L4Proto::Ah => "ah",
        L4Proto::All => "all",
    }
}

fn addr_range(r: &AddrRange) -> String {
    match &r.to {
        Some(to) => format!("{}-{}", ip_text(&r.from), ip_text(to)),
        None => ip_text(&r.from),
    }
}

/// Flag names in bit order, or `ALL` / `NONE`.
fn tcp_flags(bits: u8) -> String {
    if bits == TcpFlags::ALL {
        return "ALL".to_owned();
    }
    if bits == 0 {
        return "NONE".to_owned();
    }
    TcpFlags::NAMES
        .iter()
        .filter(|(bit, _)| bits & bit != 0)
        .map(|(_, name)| *name)
        .collect::<Vec<_>>()
        .join(",")
}

/// In libvirt's fixed order NEW,ESTABLISHED,RELATED,INVALID.
fn states(s: &ConnStates) -> String {
    [
        (s.new, "NEW"),
        (s.established, "ESTABLISHED"),
        (s.related, "RELATED"),
        (s.invalid, "INVALID"),
    ]
    .iter()
    .filter(|(on, _)| *on)
    .map(|(_, name)| *name)
    .collect::<Vec<_>>()
    .join(",")
}
