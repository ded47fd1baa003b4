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
//! a port whose values a set cannot hold (masks, prefixes; raw header
//! fields go into sets declared by `typeof`).

use std::collections::HashMap;
use std::hash::Hasher;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, Mutex};

use nwfilter_compile::ir::{self, Match, Program};

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

/// What names a program's template apart from which of its groups get a
/// chain of the port's own: the blanked program (as JSON, the costly part,
/// made once per render) and whether its IP-layer rules run in the bridge
/// table.
pub(crate) struct Shape {
    chains: Vec<u8>,
    ip_in_bridge: bool,
}

/// Bumped when the rendering of a template changes, so that new chains
/// never take the name of differently rendered old ones.
const LAYOUT: u32 = 4;

impl Shape {
    pub fn of(program: &Program, ip_in_bridge: bool) -> Shape {
        let groups = groups(program, true);
        let chains: Vec<(&ir::Family, &ir::ChainRole, Vec<ir::Rule>)> = program
            .chains
            .iter()
            .zip(&groups)
            .map(|(chain, groups)| {
                let rules = groups.iter().map(|g| blank(g.first())).collect();
                (&chain.family, &chain.role, rules)
            })
            .collect();
        Shape {
            chains: serde_json::to_vec(&chains).expect("the IR serializes"),
            ip_in_bridge,
        }
    }

    /// A key for [`OwnGroupsMemo`]: the shape's hash.
    pub fn key(&self) -> u64 {
        let mut hasher = fnv::FnvHasher::default();
        hasher.write(&self.chains);
        hasher.write_u8(u8::from(self.ip_in_bridge));
        hasher.finish()
    }

    /// The template id, `t` and 16 hex digits: a hash of the blanked
    /// program, of which groups (in order) jump to chains of the port's
    /// own, and of whether its IP-layer rules run in the bridge table.
    /// The hashed text is the JSON object `{"layout", "ip_in_bridge" (only
    /// when true, so that other templates keep the ids they had),
    /// "own_groups", "chains"}`, written from the parts.
    pub fn template_id(&self, own_groups: &[bool]) -> String {
        let mut text = format!("{{\"layout\":{LAYOUT},");
        if self.ip_in_bridge {
            text.push_str("\"ip_in_bridge\":true,");
        }
        let groups: Vec<&str> = (own_groups.iter())
            .map(|&own| if own { "true" } else { "false" })
            .collect();
        text.push_str(&format!(
            "\"own_groups\":[{}],\"chains\":",
            groups.join(",")
        ));
        let mut hasher = fnv::FnvHasher::default();
        hasher.write(text.as_bytes());
        hasher.write(&self.chains);
        hasher.write(b"}");
        format!("t{:016x}", hasher.finish())
    }
}

/// Which groups got a chain of the port's own, by [`Shape::key`] (and
/// whether raw fields may go into sets): ports of one filter almost always
/// decide alike, and knowing it spares the renderer its first pass. Only a
/// guess: a list's length can change the decision (a negated lookup of two
/// values is no lookup), so the renderer checks it against what it did.
#[derive(Default)]
pub(crate) struct OwnGroupsMemo(Mutex<Remembered>);

/// Own-chain decisions by shape key and whether raw fields go into sets.
type Remembered = HashMap<(u64, bool), Arc<[bool]>>;

impl OwnGroupsMemo {
    /// Shapes remembered at most (a host has a few filters; a reload with
    /// many distinct filters just starts over).
    const MAX: usize = 256;

    pub fn get(&self, key: (u64, bool)) -> Option<Arc<[bool]>> {
        self.lock().get(&key).cloned()
    }

    pub fn put(&self, key: (u64, bool), own_groups: &[bool]) {
        let mut memo = self.lock();
        if memo.len() >= Self::MAX {
            memo.clear();
        }
        memo.insert(key, own_groups.into());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Remembered> {
        // A guess cache: a panic elsewhere cannot leave it wrong, only
        // stale, and every guess is checked.
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
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
