//! Sharing one filter's chains among every port that uses it.
//!
//! Two ports bound to the same filter get IR programs that differ only in
//! the addresses the IR marks as the binding's (`Rule::per_port`: `$MAC`,
//! `$IP`). Blank those out and the programs are equal: that blanked program
//! is the ports' *template*, rendered once into chains named by its id. A
//! blanked match becomes a lookup in a set keyed by port
//! (`iifname . ether saddr @s0/t…`), and each port adds its values as
//! elements.
//!
//! A list variable (`$IP` with two addresses) expands into consecutive
//! rules that differ only in the value: they become ONE rule, whose set
//! holds every value. That is exact because the merged rules are adjacent
//! and share their verdict: the first of them that matches decides, so
//! "any of them matches" is "the lookup matches". A negated lookup is not
//! "any of": `saddr != a` OR `saddr != b` is not `saddr ∉ {a, b}`; so a
//! negated per-port value must stay a single rule, and a port that has
//! several such values gets chains of its own (values written in), as does
//! a port whose values a set cannot hold (masks, RARP raw fields).

use std::hash::Hasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use nwfilter_compile::ir::{self, Match, Program};
use serde::Serialize;

/// Rules of one chain that become one nft rule: the first is rendered,
/// the others contribute only their per-port values.
#[derive(Debug, Clone)]
pub(crate) struct Group<'p> {
    pub rules: Vec<&'p ir::Rule>,
}

impl Group<'_> {
    pub fn first(&self) -> &ir::Rule {
        self.rules[0]
    }
}

/// The groups of each chain of `program`, in order: consecutive rules with
/// the same blanked form merged when `shared` (each rule alone otherwise).
pub(crate) fn groups(program: &Program, shared: bool) -> Vec<Vec<Group<'_>>> {
    program
        .chains
        .iter()
        .map(|chain| {
            let mut out: Vec<Group<'_>> = Vec::new();
            for rule in &chain.rules {
                match out.last_mut() {
                    Some(g) if shared && mergeable(g.first(), rule) => g.rules.push(rule),
                    _ => out.push(Group { rules: vec![rule] }),
                }
            }
            out
        })
        .collect()
}

fn mergeable(a: &ir::Rule, b: &ir::Rule) -> bool {
    !a.per_port.is_empty() && a.per_port == b.per_port && blank(a) == blank(b)
}

/// The template id, `t` and 16 hex digits: a hash of the blanked program,
/// of which groups (in order) jump to chains of the port's own, and of
/// whether its IP-layer rules run in the bridge table.
pub(crate) fn template_id(program: &Program, own_groups: &[bool], ip_in_bridge: bool) -> String {
    #[derive(Serialize)]
    struct Key<'a> {
        /// Bumped when the rendering of a template changes, so that new
        /// chains never take the name of differently rendered old ones.
        layout: u32,
        /// The IP-layer chains run in the bridge table: a differently
        /// rendered template (absent when not, so that other templates
        /// keep the ids they had).
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        ip_in_bridge: bool,
        own_groups: &'a [bool],
        chains: Vec<(&'a ir::Family, &'a ir::ChainRole, Vec<ir::Rule>)>,
    }
    let groups = groups(program, true);
    let key = Key {
        layout: 3,
        ip_in_bridge,
        own_groups,
        chains: program
            .chains
            .iter()
            .zip(&groups)
            .map(|(chain, groups)| {
                let rules = groups.iter().map(|g| blank(g.first())).collect();
                (&chain.family, &chain.role, rules)
            })
            .collect(),
    };
    let json = serde_json::to_vec(&key).expect("the IR serializes");
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(&json);
    format!("t{:016x}", hasher.finish())
}

/// `rule` with its per-port addresses replaced by a placeholder (the
/// address family kept: it decides the header field).
fn blank(rule: &ir::Rule) -> ir::Rule {
    let mut out = rule.clone();
    for &i in &rule.per_port {
        if let Some(m) = out.matches.get_mut(i) {
            blank_match(m);
        }
    }
    out
}

fn blank_match(m: &mut Match) {
    let zero = |a: IpAddr| match a {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    };
    match m {
        Match::MacSrc(x)
        | Match::MacDst(x)
        | Match::ArpMacSrc(x)
        | Match::ArpMacDst(x)
        | Match::StpRootAddr(x)
        | Match::StpSenderAddr(x) => x.addr = nwfilter_model::MacAddr6::nil(),
        Match::IpSrc(a) | Match::IpDst(a) | Match::ArpIpSrc(a) | Match::ArpIpDst(a) => {
            a.addr = zero(a.addr)
        }
        Match::Nd(nd) => match &mut nd.field {
            ir::NdField::Target(ip) => *ip = Ipv6Addr::UNSPECIFIED,
            ir::NdField::LinkLayer(mac) => *mac = nwfilter_model::MacAddr6::nil(),
            ir::NdField::Options(_) => {}
        },
        _ => {}
    }
}
