//! Follows one probe packet (a guest's DHCP request, DNS query or
//! forwarded connection) through one base chain of a listed ruleset, as
//! the kernel would: rule by rule, into jumped-to chains, to the first
//! verdict or the policy.
//!
//! A condition the probe cannot settle (a mark, a rate limit, an address
//! the probe leaves open, an iptables extension such as iptables-nft's
//! `xt conntrack`) makes the rule a "maybe" and the outcome uncertain: a
//! maybe-drop is taken (reported as "may drop"), a maybe-accept or jump
//! passed over, so a possible drop is reported rather than hidden.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::Value;

use crate::nft::listing::{Chain, Rule, Ruleset};

/// A packet as the hooks see it; `None` fields are unknown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packet {
    pub iif: Option<String>,
    pub oif: Option<String>,
    /// `udp` or `tcp`.
    pub proto: &'static str,
    pub dport: Option<u16>,
    pub saddr: Option<IpAddr>,
    pub daddr: Option<IpAddr>,
}

/// How a chain treats the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Decision {
    /// A rule accepts it.
    Accepted,
    /// No rule decides and the policy is accept.
    PassedByPolicy,
    /// A rule drops or rejects it.
    DroppedByRule,
    /// No rule decides and the policy is drop.
    DroppedByPolicy,
}

impl Decision {
    pub fn drops(self) -> bool {
        matches!(self, Decision::DroppedByRule | Decision::DroppedByPolicy)
    }
}

/// The deciding rule: its chain, handle and a short text of its
/// statements.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RuleRef {
    pub chain: String,
    pub handle: Option<u64>,
    pub text: String,
}

/// What a chain does with a packet, and how sure that is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Outcome {
    pub decision: Decision,
    /// False when a rule on the way matched only perhaps.
    pub certain: bool,
    pub rule: Option<RuleRef>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tri {
    Yes,
    No,
    Maybe,
}

impl Tri {
    fn and(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::No, _) | (_, Tri::No) => Tri::No,
            (Tri::Yes, Tri::Yes) => Tri::Yes,
            _ => Tri::Maybe,
        }
    }

    fn from(b: bool) -> Tri {
        if b {
            Tri::Yes
        } else {
            Tri::No
        }
    }
}

/// What following one chain ended in.
enum Flow {
    Verdict(Decision, RuleRef),
    /// Fell off the end or hit `return`: back to the caller.
    Return,
}

/// Jumps deeper than this are not followed (the kernel allows 16).
const MAX_DEPTH: usize = 16;

/// Follows `packet` through base chain `chain`.
pub fn follow(ruleset: &Ruleset, chain: &Chain, packet: &Packet) -> Outcome {
    let mut certain = true;
    match walk(ruleset, chain, packet, &mut certain, 0) {
        Flow::Verdict(decision, rule) => Outcome {
            decision,
            certain,
            rule: Some(rule),
        },
        Flow::Return => {
            let drop = chain.base.as_ref().is_some_and(|b| b.policy == "drop");
            Outcome {
                decision: if drop {
                    Decision::DroppedByPolicy
                } else {
                    Decision::PassedByPolicy
                },
                certain,
                rule: None,
            }
        }
    }
}

fn walk(ruleset: &Ruleset, chain: &Chain, p: &Packet, certain: &mut bool, depth: usize) -> Flow {
    if depth > MAX_DEPTH {
        *certain = false;
        return Flow::Return;
    }
    for rule in ruleset.rules_of(chain) {
        let mut fit = Tri::Yes;
        for expr in &rule.expr {
            let Some((kind, body)) = expr.as_object().and_then(|o| o.iter().next()) else {
                continue;
            };
            match kind.as_str() {
                "match" => fit = fit.and(condition(body, p)),
                "accept" | "drop" | "reject" | "jump" | "goto" | "return" => {
                    if fit == Tri::No {
                        break;
                    }
                    if fit == Tri::Maybe {
                        *certain = false;
                        // Looking for drops: a rule that may accept is
                        // passed over, one that may drop is taken.
                        if kind != "drop" && kind != "reject" {
                            break;
                        }
                    }
                    let reference = || rule_ref(rule);
                    match kind.as_str() {
                        "accept" => return Flow::Verdict(Decision::Accepted, reference()),
                        "drop" | "reject" => {
                            return Flow::Verdict(Decision::DroppedByRule, reference())
                        }
                        "return" => return Flow::Return,
                        _ => {
                            let target = body.get("target").and_then(Value::as_str);
                            let next =
                                target.and_then(|t| ruleset.chain(&chain.family, &chain.table, t));
                            let Some(next) = next else { break };
                            let flow = walk(ruleset, next, p, certain, depth + 1);
                            match (flow, kind.as_str()) {
                                (Flow::Verdict(d, r), _) => return Flow::Verdict(d, r),
                                (Flow::Return, "goto") => return Flow::Return,
                                (Flow::Return, _) => break,
                            }
                        }
                    }
                }
                // Statements that do not decide (and xt's comment match).
                "counter" | "log" | "mangle" | "notrack" | "meta" | "ct" => {}
                "xt" if body.get("name").and_then(Value::as_str) == Some("comment") => {}
                // Rate limits, quotas, sets of verdicts, iptables matches,
                // queueing: cannot be decided here.
                _ => fit = fit.and(Tri::Maybe),
            }
            if fit == Tri::No {
                break;
            }
        }
    }
    Flow::Return
}

fn rule_ref(rule: &Rule) -> RuleRef {
    RuleRef {
        chain: rule.chain.clone(),
        handle: rule.handle,
        text: super::text::rule_text(&rule.expr),
    }
}

/// Whether one `match` holds for `p`.
fn condition(body: &Value, p: &Packet) -> Tri {
    let op = body.get("op").and_then(Value::as_str).unwrap_or("==");
    let (Some(left), Some(right)) = (body.get("left"), body.get("right")) else {
        return Tri::Maybe;
    };
    let fit = field_fit(left, right, p);
    match op {
        "==" | "in" => fit,
        "!=" => match fit {
            Tri::Yes => Tri::No,
            Tri::No => Tri::Yes,
            Tri::Maybe => Tri::Maybe,
        },
        _ => Tri::Maybe,
    }
}

/// The probe's value of `left` compared with `right` (a value, a prefix,
/// a set or a range).
fn field_fit(left: &Value, right: &Value, p: &Packet) -> Tri {
    if let Some(key) = left.pointer("/meta/key").and_then(Value::as_str) {
        return match key {
            "iifname" => name_fit(p.iif.as_deref(), right),
            "oifname" => name_fit(p.oif.as_deref(), right),
            "l4proto" => values_fit(right, |v| Tri::from(v.as_str() == Some(p.proto))),
            "nfproto" => values_fit(right, |v| Tri::from(v.as_str() == Some("ipv4"))),
            _ => Tri::Maybe,
        };
    }
    if let Some(key) = left.pointer("/ct/key").and_then(Value::as_str) {
        // A guest's first packet: a new connection.
        return match key {
            "state" => values_fit(right, |v| Tri::from(v.as_str() == Some("new"))),
            _ => Tri::Maybe,
        };
    }
    let protocol = left.pointer("/payload/protocol").and_then(Value::as_str);
    let field = left.pointer("/payload/field").and_then(Value::as_str);
    match (protocol, field) {
        (Some("ip"), Some("protocol")) => {
            values_fit(right, |v| Tri::from(v.as_str() == Some(p.proto)))
        }
        (Some("ip"), Some("saddr")) => address_fit(p.saddr, right),
        (Some("ip"), Some("daddr")) => address_fit(p.daddr, right),
        (Some("ip6"), _) => Tri::No,
        (Some(proto), Some("dport")) if proto == "udp" || proto == "tcp" || proto == "th" => {
            if proto != "th" && proto != p.proto {
                return Tri::No;
            }
            match p.dport {
                Some(port) => values_fit(right, |v| port_fit(port, v)),
                None => Tri::Maybe,
            }
        }
        (Some("udp") | Some("tcp"), _) if protocol != Some(p.proto) => Tri::No,
        _ => Tri::Maybe,
    }
}

/// Applies `one` to each element of a set (any may hold), or to `right`.
fn values_fit(right: &Value, one: impl Fn(&Value) -> Tri) -> Tri {
    match right
        .get("set")
        .and_then(Value::as_array)
        .or(right.as_array())
    {
        Some(items) => items.iter().fold(Tri::No, |acc, v| match (acc, one(v)) {
            (Tri::Yes, _) | (_, Tri::Yes) => Tri::Yes,
            (Tri::Maybe, _) | (_, Tri::Maybe) => Tri::Maybe,
            _ => Tri::No,
        }),
        None => one(right),
    }
}

/// An interface name against a name, a `prefix*` wildcard or a set.
fn name_fit(name: Option<&str>, right: &Value) -> Tri {
    let Some(name) = name else {
        return Tri::Maybe;
    };
    values_fit(right, |v| match v.as_str() {
        Some(pattern) => match pattern.strip_suffix('*') {
            Some(prefix) => Tri::from(name.starts_with(prefix)),
            None => Tri::from(name == pattern),
        },
        None => Tri::Maybe,
    })
}

fn port_fit(port: u16, v: &Value) -> Tri {
    if let Some(n) = v.as_u64() {
        return Tri::from(u64::from(port) == n);
    }
    if let Some([lo, hi]) = v.get("range").and_then(Value::as_array).map(Vec::as_slice) {
        if let (Some(lo), Some(hi)) = (lo.as_u64(), hi.as_u64()) {
            return Tri::from((lo..=hi).contains(&u64::from(port)));
        }
    }
    Tri::Maybe
}

fn address_fit(addr: Option<IpAddr>, right: &Value) -> Tri {
    let Some(addr) = addr else {
        return Tri::Maybe;
    };
    values_fit(right, |v| {
        if let Some(text) = v.as_str() {
            return text
                .parse::<IpAddr>()
                .map_or(Tri::Maybe, |a| Tri::from(a == addr));
        }
        let prefix = v.get("prefix").and_then(|p| {
            let base = p.get("addr")?.as_str()?.parse::<IpAddr>().ok()?;
            IpNet::new(base, u8::try_from(p.get("len")?.as_u64()?).ok()?).ok()
        });
        match prefix {
            Some(net) => Tri::from(net.contains(&addr)),
            None => Tri::Maybe,
        }
    })
}
