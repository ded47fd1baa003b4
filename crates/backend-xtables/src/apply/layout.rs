//! libvirt's kernel layout (lowering reference §2.1–2.2, §2.8, §3.1–3.2):
//! where each per-port chain is hooked, the temporary name it is built
//! under during an update, the shared iptables chains, and which chains
//! in a table belong to a port.

use std::collections::{HashMap, HashSet};

use nwfilter_model::IfName;

use super::kernel::Table;
use super::rule::Rule;
use crate::ruleset::{Family, Hook};

/// The shared iptables/ip6tables chains, with their hook into a built-in
/// chain and the 1-based position libvirt inserts it at.
pub const GLOBAL_CHAINS: [(&str, &str, usize); 4] = [
    ("libvirt-in", "FORWARD", 1),
    ("libvirt-out", "FORWARD", 2),
    ("libvirt-in-post", "FORWARD", 3),
    ("libvirt-host-in", "INPUT", 1),
];

/// The chains that hold the per-port hook rules of a family.
pub fn hook_chains(family: Family) -> &'static [&'static str] {
    match family {
        Family::Bridge => &["PREROUTING", "POSTROUTING"],
        Family::Ipv4 | Family::Ipv6 => &["libvirt-in", "libvirt-out", "libvirt-host-in"],
    }
}

/// The chain declaration line of a new user chain in restore input.
pub fn declaration(family: Family, chain: &str) -> String {
    match family {
        // ebtables user chains have a policy; libvirt never changes ACCEPT.
        Family::Bridge => format!(":{chain} ACCEPT"),
        Family::Ipv4 | Family::Ipv6 => format!(":{chain} - [0:0]"),
    }
}

/// The rule (after `-A`) that sends the port's traffic into `chain`, or
/// `None` for sub-chains, which only their root jumps to.
pub fn hook_rule(role: Hook, port: &IfName, chain: &str) -> Option<(&'static str, Vec<String>)> {
    let dev = port.as_str().to_string();
    let (holder, mut args): (&str, Vec<String>) = match role {
        Hook::BridgeRootOut => ("PREROUTING", vec!["-i".into(), dev]),
        Hook::BridgeRootIn => ("POSTROUTING", vec!["-o".into(), dev]),
        Hook::BridgeSub => return None,
        Hook::ForwardFromVm => ("libvirt-in", physdev_in(dev)),
        Hook::ForwardToVm => (
            "libvirt-out",
            ["-m", "physdev", "--physdev-is-bridged", "--physdev-out"]
                .into_iter()
                .map(String::from)
                .chain([dev])
                .collect(),
        ),
        Hook::HostFromVm => ("libvirt-host-in", physdev_in(dev)),
    };
    // libvirt enters FI/FO/HI with goto, so their RETURN resumes in the
    // built-in chain (lowering reference §3.2).
    let verb = if role.is_bridge() { "-j" } else { "-g" };
    args.extend([verb.to_string(), chain.to_string()]);
    Some((holder, args))
}

/// `libvirt-in-post`'s rule for the port: accept what its FI chain passed.
pub fn in_post_rule(port: &IfName) -> Vec<String> {
    let mut args = physdev_in(port.as_str().to_string());
    args.extend(["-j".to_string(), "ACCEPT".to_string()]);
    args
}

fn physdev_in(dev: String) -> Vec<String> {
    vec!["-m".into(), "physdev".into(), "--physdev-in".into(), dev]
}

impl Hook {
    /// Whether the role's chains are ebtables chains.
    pub fn is_bridge(self) -> bool {
        matches!(
            self,
            Hook::BridgeRootOut | Hook::BridgeRootIn | Hook::BridgeSub
        )
    }
}

/// A chain name prefix: `head`, the port's name, then `tail` (`I-`,
/// `vnet0`, `-`). Kept in parts so that names are matched without
/// writing the prefix out: planning checks every chain of every port (9
/// per clean-traffic port), and a `format!` per check was a tenth of a
/// 1000-port restart's planning (issue 22).
#[derive(Debug, Clone, Copy)]
struct Prefix {
    head: &'static str,
    tail: &'static str,
}

impl Prefix {
    /// What follows the prefix in `name`, if `name` starts with it.
    fn strip<'n>(self, port: &IfName, name: &'n str) -> Option<&'n str> {
        (name.strip_prefix(self.head)?)
            .strip_prefix(port.as_str())?
            .strip_prefix(self.tail)
    }

    /// The prefix followed by `rest`.
    fn with(self, port: &IfName, rest: &str) -> String {
        [self.head, port.as_str(), self.tail, rest].concat()
    }
}

/// The final and temporary name prefixes of a role's chains.
fn prefixes(role: Hook) -> [(Prefix, Prefix); 2] {
    let prefix = |head, tail| Prefix { head, tail };
    let root = |fin, tmp| [(prefix(fin, ""), prefix(tmp, "")); 2];
    match role {
        Hook::BridgeRootOut => root("libvirt-I-", "libvirt-J-"),
        Hook::BridgeRootIn => root("libvirt-O-", "libvirt-P-"),
        Hook::BridgeSub => [
            (prefix("I-", "-"), prefix("J-", "-")),
            (prefix("O-", "-"), prefix("P-", "-")),
        ],
        Hook::ForwardFromVm => root("FI-", "FJ-"),
        Hook::ForwardToVm => root("FO-", "FP-"),
        Hook::HostFromVm => root("HI-", "HJ-"),
    }
}

/// The temporary name (libvirt's J/P, FJ/FP/HJ) of a final chain name, or
/// `None` when `name` is not a final name of that role for this port.
pub fn temporary_name(role: Hook, port: &IfName, name: &str) -> Option<String> {
    final_parts(role, port, name).map(|(tmp, rest)| tmp.with(port, rest))
}

/// Whether `name` is a final name of `role` for `port`:
/// [`temporary_name`] without writing the temporary name.
pub fn is_final(role: Hook, port: &IfName, name: &str) -> bool {
    final_parts(role, port, name).is_some()
}

/// The temporary prefix and the rest of `name`, when `name` is a final
/// name of `role` for `port`.
fn final_parts<'n>(role: Hook, port: &IfName, name: &'n str) -> Option<(Prefix, &'n str)> {
    let sub = role == Hook::BridgeSub;
    prefixes(role).into_iter().find_map(|(fin, tmp)| {
        let rest = fin.strip(port, name)?;
        // Roots are exactly the prefix; sub-chains need a non-empty suffix.
        (rest.is_empty() != sub).then_some((tmp, rest))
    })
}

/// Which name generation of a port's chains to look for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Generation {
    /// The live names (`libvirt-I-vnet0`, `FI-vnet0`).
    Final,
    /// The names an update builds under (`libvirt-J-vnet0`, `FJ-vnet0`).
    Temporary,
}

/// A port's chains of one generation found in a table, sub-chains before
/// the chains jumping to them, each with its role.
pub fn port_chains(
    family: Family,
    table: &Table,
    port: &IfName,
    generation: Generation,
) -> Vec<(Hook, String)> {
    let pick = |role| {
        let [(fin, tmp), _] = prefixes(role);
        match generation {
            Generation::Final => fin,
            Generation::Temporary => tmp,
        }
    };
    let roots: &[Hook] = match family {
        Family::Bridge => &[Hook::BridgeRootOut, Hook::BridgeRootIn],
        Family::Ipv4 | Family::Ipv6 => &[Hook::ForwardFromVm, Hook::ForwardToVm, Hook::HostFromVm],
    };
    let sub_prefixes = prefixes(Hook::BridgeSub).map(|(fin, tmp)| match generation {
        Generation::Final => fin,
        Generation::Temporary => tmp,
    });
    let mut found = Vec::new();
    for &role in roots {
        let root = pick(role).with(port, "");
        if !table.has_chain(&root) {
            continue;
        }
        // Sub-chains are what the root jumps to (as libvirt discovers
        // them), not every name with a matching prefix: `I-a-b-c` may be
        // port `a`'s chain `b-c` or port `a-b`'s chain `c`.
        for rule in table.rules_of(&root) {
            let Some(sub) = rule.target() else { continue };
            let is_ours = family == Family::Bridge
                && sub_prefixes.iter().any(|p| p.strip(port, sub).is_some())
                && table.has_chain(sub);
            if is_ours && !found.iter().any(|(_, n)| n == sub) {
                found.push((Hook::BridgeSub, sub.to_string()));
            }
        }
        found.push((role, root));
    }
    found
}

/// Rules in the hook-holding chains that send traffic into one of `chains`:
/// `(holder chain, rule args as the kernel lists them)`.
pub fn hooks_into(
    family: Family,
    table: &Table,
    chains: &[(Hook, String)],
) -> Vec<(String, Vec<String>)> {
    if chains.is_empty() {
        // Nothing to look for (a port with no temporaries): no walk.
        return Vec::new();
    }
    hook_rules(family, table)
        .filter(|(_, _, target)| chains.iter().any(|(_, c)| c == target))
        .map(|(holder, rule, _)| (holder.to_string(), rule.to_words()))
        .collect()
}

/// Every rule of the hook-holding chains that sends somewhere: `(holder,
/// rule, the chain it sends to)`.
fn hook_rules(family: Family, table: &Table) -> impl Iterator<Item = (&'static str, &Rule, &str)> {
    hook_chains(family).iter().flat_map(move |&holder| {
        (table.rules_of(holder).iter()).filter_map(move |rule| Some((holder, rule, rule.target()?)))
    })
}

/// Whether `holder` has a rule sending to `chain` (a shared chain's hook).
pub fn is_hooked(table: &Table, holder: &str, chain: &str) -> bool {
    table
        .rules_of(holder)
        .iter()
        .any(|r| r.target() == Some(chain))
}

/// A table's hook rules indexed once, for checks over many ports: a
/// reload asks each of 1000 ports whether it is hooked, and scanning
/// every hook rule for each port was 2 million rule reads (a third of a
/// reload's time at 1000 ports). Answers exactly as [`hooks_into`],
/// [`in_post_of`] and a scan of the shared chains' hooks would.
#[derive(Debug)]
pub struct Hooks<'t> {
    /// Hook rules per chain they send to.
    into: HashMap<&'t str, usize>,
    /// Ports with their `libvirt-in-post` rule.
    in_post: HashSet<&'t str>,
    /// Every shared chain is hooked into its built-in chain.
    shared_hooked: bool,
}

impl<'t> Hooks<'t> {
    pub fn of(family: Family, table: &'t Table) -> Hooks<'t> {
        let mut into = HashMap::new();
        for (_, _, target) in hook_rules(family, table) {
            *into.entry(target).or_insert(0) += 1;
        }
        let in_post = (table.rules_of("libvirt-in-post").iter())
            .flat_map(in_post_ports)
            .collect();
        let shared_hooked = GLOBAL_CHAINS
            .iter()
            .all(|(chain, holder, _)| is_hooked(table, holder, chain));
        Hooks {
            into,
            in_post,
            shared_hooked,
        }
    }

    /// `hooks_into(family, table, chains).len()`.
    pub fn count_into(&self, chains: &[(Hook, String)]) -> usize {
        let mut names: Vec<&str> = chains.iter().map(|(_, c)| c.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        names.iter().filter_map(|c| self.into.get(c)).sum()
    }

    /// `in_post_of(table, port).is_some()`.
    pub fn has_in_post(&self, port: &IfName) -> bool {
        self.in_post.contains(port.as_str())
    }

    /// Every shared chain is hooked into its built-in chain.
    pub fn shared_hooked(&self) -> bool {
        self.shared_hooked
    }
}

/// The port's rule in `libvirt-in-post`, as the kernel lists it.
pub fn in_post_of(table: &Table, port: &IfName) -> Option<Vec<String>> {
    table
        .rules_of("libvirt-in-post")
        .iter()
        .find(|rule| in_post_ports(rule).contains(&port.as_str()))
        .map(Rule::to_words)
}

/// The ports a `libvirt-in-post` rule lets through: its `--physdev-in`
/// when it accepts.
fn in_post_ports(rule: &Rule) -> Vec<&str> {
    if rule.target() != Some("ACCEPT") {
        return Vec::new();
    }
    let words: Vec<&str> = rule.words().collect();
    words
        .windows(2)
        .filter(|w| w[0] == "--physdev-in")
        .map(|w| w[1])
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::kernel::parse_save;

    fn port(name: &str) -> IfName {
        IfName::new(name).unwrap()
    }

    #[test]
    fn temporary_names_are_libvirts() {
        let p = port("vnet0");
        let cases = [
            (
                Hook::BridgeRootOut,
                "libvirt-I-vnet0",
                Some("libvirt-J-vnet0"),
            ),
            (
                Hook::BridgeRootIn,
                "libvirt-O-vnet0",
                Some("libvirt-P-vnet0"),
            ),
            (Hook::BridgeSub, "I-vnet0-ipv4", Some("J-vnet0-ipv4")),
            (Hook::BridgeSub, "O-vnet0-arp-mac", Some("P-vnet0-arp-mac")),
            (Hook::ForwardFromVm, "FI-vnet0", Some("FJ-vnet0")),
            (Hook::ForwardToVm, "FO-vnet0", Some("FP-vnet0")),
            (Hook::HostFromVm, "HI-vnet0", Some("HJ-vnet0")),
            (Hook::BridgeSub, "I-vnet0-", None),
            (Hook::BridgeRootOut, "libvirt-I-vnet01", None),
            (Hook::ForwardFromVm, "FI-vnet1", None),
        ];
        for (role, name, want) in cases {
            assert_eq!(temporary_name(role, &p, name).as_deref(), want, "{name}");
            assert_eq!(is_final(role, &p, name), want.is_some(), "{name}");
        }
    }

    #[test]
    fn hooks_are_libvirts() {
        let p = port("vnet0");
        let join =
            |r: Option<(&str, Vec<String>)>| r.map(|(h, a)| format!("-A {h} {}", a.join(" ")));
        assert_eq!(
            join(hook_rule(Hook::BridgeRootOut, &p, "libvirt-J-vnet0")).unwrap(),
            "-A PREROUTING -i vnet0 -j libvirt-J-vnet0"
        );
        assert_eq!(
            join(hook_rule(Hook::BridgeRootIn, &p, "libvirt-O-vnet0")).unwrap(),
            "-A POSTROUTING -o vnet0 -j libvirt-O-vnet0"
        );
        assert_eq!(
            join(hook_rule(Hook::ForwardToVm, &p, "FP-vnet0")).unwrap(),
            "-A libvirt-out -m physdev --physdev-is-bridged --physdev-out vnet0 -g FP-vnet0"
        );
        assert_eq!(
            join(hook_rule(Hook::HostFromVm, &p, "HI-vnet0")).unwrap(),
            "-A libvirt-host-in -m physdev --physdev-in vnet0 -g HI-vnet0"
        );
        assert_eq!(join(hook_rule(Hook::BridgeSub, &p, "I-vnet0-ipv4")), None);
        assert_eq!(
            in_post_rule(&p).join(" "),
            "-m physdev --physdev-in vnet0 -j ACCEPT"
        );
    }

    #[test]
    fn port_chains_follow_jumps_not_prefixes() {
        let save = "*nat
:PREROUTING ACCEPT
:libvirt-I-a ACCEPT
:I-a-b-c ACCEPT
:libvirt-I-a-b ACCEPT
:I-a-b-d ACCEPT
:libvirt-J-a ACCEPT
-A PREROUTING -i a -j libvirt-I-a
-A PREROUTING -i a-b -j libvirt-I-a-b
-A libvirt-I-a -p IPv4 -j I-a-b-c
-A libvirt-I-a-b -p IPv4 -j I-a-b-d
";
        let table = parse_save(Family::Bridge, save).unwrap();
        let a = port("a");
        let finals = port_chains(Family::Bridge, &table, &a, Generation::Final);
        assert_eq!(
            finals,
            [
                (Hook::BridgeSub, "I-a-b-c".to_string()),
                (Hook::BridgeRootOut, "libvirt-I-a".to_string())
            ]
        );
        let temps = port_chains(Family::Bridge, &table, &a, Generation::Temporary);
        assert_eq!(temps, [(Hook::BridgeRootOut, "libvirt-J-a".to_string())]);
        let hooks = hooks_into(Family::Bridge, &table, &finals);
        assert_eq!(
            hooks,
            [(
                "PREROUTING".to_string(),
                vec!["-i".into(), "a".into(), "-j".into(), "libvirt-I-a".into()]
            )]
        );
    }
}
