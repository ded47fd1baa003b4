//! The few nftables rule parts a network needs, as plain data, each with
//! its `nft -f` text (printed by `net-render`) and its libnftables JSON
//! (what is applied). Values are validated before they get here (interface
//! names, addresses, port ranges), so neither spelling needs escaping
//! beyond quoting the names.

use std::net::Ipv4Addr;

use ipnet::IpNet;
use nwfilter_model::IfName;
use serde_json::{json, Value};

use crate::firewall::IpFamily;
use crate::network::PortRange;

/// One condition of a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Match {
    /// `meta nfproto ipv4`: the inet table sees both families.
    Family(IpFamily),
    InIface(IfName),
    OutIface(IfName),
    Source(IpNet),
    Destination(IpNet),
    NotDestination(IpNet),
    /// `meta l4proto tcp`.
    Protocol(&'static str),
    /// `ct state established,related`.
    Related,
}

/// What a rule does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    Accept,
    Reject,
    Return,
    Masquerade {
        ports: Option<PortRange>,
    },
    Snat {
        start: Ipv4Addr,
        end: Ipv4Addr,
        ports: Option<PortRange>,
    },
}

/// Conditions (all must hold), then a verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Rule {
    pub(crate) matches: Vec<Match>,
    pub(crate) verdict: Verdict,
}

fn family_name(family: IpFamily) -> &'static str {
    match family {
        IpFamily::V4 => "ipv4",
        IpFamily::V6 => "ipv6",
    }
}

/// `ip` or `ip6`: the payload protocol of an address match.
fn address_protocol(net: &IpNet) -> &'static str {
    match net {
        IpNet::V4(_) => "ip",
        IpNet::V6(_) => "ip6",
    }
}

fn port_text(ports: Option<PortRange>) -> String {
    ports.map_or(String::new(), |p| format!(":{}-{}", p.start, p.end))
}

impl Match {
    fn text(&self) -> String {
        match self {
            Match::Family(f) => format!("meta nfproto {}", family_name(*f)),
            Match::InIface(i) => format!("iifname \"{i}\""),
            Match::OutIface(i) => format!("oifname \"{i}\""),
            Match::Source(n) => format!("{} saddr {n}", address_protocol(n)),
            Match::Destination(n) => format!("{} daddr {n}", address_protocol(n)),
            Match::NotDestination(n) => format!("{} daddr != {n}", address_protocol(n)),
            Match::Protocol(p) => format!("meta l4proto {p}"),
            Match::Related => "ct state established,related".to_owned(),
        }
    }

    fn json(&self) -> Value {
        let (op, left, right) = match self {
            Match::Family(f) => ("==", meta("nfproto"), json!(family_name(*f))),
            Match::InIface(i) => ("==", meta("iifname"), json!(i.as_str())),
            Match::OutIface(i) => ("==", meta("oifname"), json!(i.as_str())),
            Match::Source(n) => ("==", address(n, "saddr"), prefix(n)),
            Match::Destination(n) => ("==", address(n, "daddr"), prefix(n)),
            Match::NotDestination(n) => ("!=", address(n, "daddr"), prefix(n)),
            Match::Protocol(p) => ("==", meta("l4proto"), json!(p)),
            Match::Related => (
                "in",
                json!({"ct": {"key": "state"}}),
                json!(["established", "related"]),
            ),
        };
        json!({"match": {"op": op, "left": left, "right": right}})
    }
}

fn meta(key: &str) -> Value {
    json!({"meta": {"key": key}})
}

fn address(net: &IpNet, field: &str) -> Value {
    json!({"payload": {"protocol": address_protocol(net), "field": field}})
}

/// A whole-length prefix is written as the plain address.
fn prefix(net: &IpNet) -> Value {
    if net.prefix_len() == net.max_prefix_len() {
        json!(net.addr().to_string())
    } else {
        json!({"prefix": {"addr": net.network().to_string(), "len": net.prefix_len()}})
    }
}

fn port_range(ports: PortRange) -> Value {
    json!({"range": [ports.start, ports.end]})
}

impl Verdict {
    fn text(&self) -> String {
        match self {
            Verdict::Accept => "accept".to_owned(),
            Verdict::Reject => "reject".to_owned(),
            Verdict::Return => "return".to_owned(),
            Verdict::Masquerade { ports: None } => "masquerade".to_owned(),
            Verdict::Masquerade { ports } => format!("masquerade to {}", port_text(*ports)),
            Verdict::Snat { start, end, ports } => {
                let pool = if start == end {
                    start.to_string()
                } else {
                    format!("{start}-{end}")
                };
                format!("snat ip to {pool}{}", port_text(*ports))
            }
        }
    }

    fn json(&self) -> Value {
        match self {
            Verdict::Accept => json!({"accept": null}),
            Verdict::Reject => json!({"reject": null}),
            Verdict::Return => json!({"return": null}),
            Verdict::Masquerade { ports: None } => json!({"masquerade": null}),
            Verdict::Masquerade { ports: Some(p) } => {
                json!({"masquerade": {"port": port_range(*p)}})
            }
            Verdict::Snat { start, end, ports } => {
                let addr = if start == end {
                    json!(start.to_string())
                } else {
                    json!({"range": [start.to_string(), end.to_string()]})
                };
                let mut snat = json!({"family": "ip", "addr": addr});
                if let Some(p) = ports {
                    snat["port"] = port_range(*p);
                }
                json!({ "snat": snat })
            }
        }
    }
}

impl Rule {
    pub(crate) fn new(matches: Vec<Match>, verdict: Verdict) -> Rule {
        Rule { matches, verdict }
    }

    /// The rule's statements as `nft -f` reads them after `add rule … CHAIN`.
    pub(crate) fn text(&self) -> String {
        let mut parts: Vec<String> = self.matches.iter().map(Match::text).collect();
        parts.push(self.verdict.text());
        parts.join(" ")
    }

    /// The rule's `expr` array.
    pub(crate) fn json(&self) -> Value {
        let mut exprs: Vec<Value> = self.matches.iter().map(Match::json).collect();
        exprs.push(self.verdict.json());
        Value::Array(exprs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn br() -> IfName {
        IfName::new("virbr0").unwrap()
    }

    #[test]
    fn text_and_json_say_the_same() {
        let net: IpNet = "10.0.0.0/24".parse().unwrap();
        let rule = Rule::new(
            vec![
                Match::OutIface(br()),
                Match::Destination(net),
                Match::Related,
            ],
            Verdict::Accept,
        );
        assert_eq!(
            rule.text(),
            "oifname \"virbr0\" ip daddr 10.0.0.0/24 ct state established,related accept"
        );
        assert_eq!(
            rule.json(),
            json!([
                {"match": {"op": "==", "left": {"meta": {"key": "oifname"}}, "right": "virbr0"}},
                {"match": {"op": "==", "left": {"payload": {"protocol": "ip", "field": "daddr"}},
                           "right": {"prefix": {"addr": "10.0.0.0", "len": 24}}}},
                {"match": {"op": "in", "left": {"ct": {"key": "state"}},
                           "right": ["established", "related"]}},
                {"accept": null}
            ])
        );
    }

    #[test]
    fn nat_verdicts_carry_pool_and_ports() {
        let ports = Some(PortRange {
            start: 1024,
            end: 65535,
        });
        let snat = Verdict::Snat {
            start: "192.0.2.10".parse().unwrap(),
            end: "192.0.2.20".parse().unwrap(),
            ports,
        };
        assert_eq!(snat.text(), "snat ip to 192.0.2.10-192.0.2.20:1024-65535");
        assert_eq!(
            snat.json(),
            json!({"snat": {"family": "ip", "addr": {"range": ["192.0.2.10", "192.0.2.20"]},
                            "port": {"range": [1024, 65535]}}})
        );
        let masq = Verdict::Masquerade { ports };
        assert_eq!(masq.text(), "masquerade to :1024-65535");
        let host: IpNet = "255.255.255.255/32".parse().unwrap();
        assert_eq!(prefix(&host), json!("255.255.255.255"));
        let v6: IpNet = "ff02::/16".parse().unwrap();
        assert_eq!(Match::Destination(v6).text(), "ip6 daddr ff02::/16");
    }
}
