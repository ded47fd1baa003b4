//! Is an update a no-op? Ask the kernel.
//!
//! Without a record of what was applied, our rule arguments cannot be
//! compared with the live rules: the tools re-spell them (`-p tcp` gains
//! `-m tcp`, MACs lose leading zeros, options are reordered). But once the
//! new rules are built under temporary names, the kernel has spelled both
//! generations the same way. If every temporary chain lists exactly like
//! its live counterpart (jumps to temporaries read as jumps to the live
//! chains), the switch would change nothing, so it is skipped and the
//! temporaries are dropped: live chains, hooks and counters stay as they
//! were.

use nwfilter_model::IfName;

use super::kernel::Tables;
use super::layout::{temporary_name, Hooks};
use super::plan::{is_current, Desired};
use super::FAMILIES;

/// The ports among `candidates` whose built temporaries (in `after`) equal
/// their live chains (in `before`) in every family.
pub fn unchanged_ports(
    before: &Tables,
    after: &Tables,
    candidates: &[&Desired<'_>],
) -> Vec<IfName> {
    let hooks = FAMILIES.map(|f| Hooks::of(f, before.get(f)));
    candidates
        .iter()
        .filter(|want| {
            FAMILIES
                .iter()
                .zip(&hooks)
                .all(|(&f, hooks)| family_unchanged(f, before, hooks, after, want))
        })
        .map(|want| want.port.clone())
        .collect()
}

fn family_unchanged(
    family: crate::ruleset::Family,
    before: &Tables,
    hooks: &Hooks<'_>,
    after: &Tables,
    want: &Desired<'_>,
) -> bool {
    // Same chain names, roles, rule counts and hooks, nothing temporary.
    if !is_current(family, before.get(family), hooks, &want.port, &want.chains) {
        return false;
    }
    let new: Vec<_> = want.chains.iter().filter(|c| c.family == family).collect();
    let temp_to_final: Vec<(String, &str)> = new
        .iter()
        .filter_map(|c| {
            Some((
                temporary_name(c.role, &want.port, &c.name)?,
                c.name.as_str(),
            ))
        })
        .collect();
    fn to_final<'a>(temp_to_final: &'a [(String, &'a str)], arg: &'a str) -> &'a str {
        temp_to_final
            .iter()
            .find(|(temp, _)| temp == arg)
            .map_or(arg, |(_, fin)| fin)
    }
    temp_to_final.iter().all(|(temp, fin)| {
        let built = after.get(family).rules_of(temp);
        let live = before.get(family).rules_of(fin);
        after.get(family).has_chain(temp)
            && built.len() == live.len()
            && built
                .iter()
                .zip(live)
                .all(|(b, l)| b.words().map(|w| to_final(&temp_to_final, w)).eq(l.words()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::kernel::parse_save;
    use crate::ruleset::{Family, Hook, RenderedChain};
    use std::borrow::Cow;

    fn want(rule: &str) -> Desired<'static> {
        Desired {
            port: IfName::new("vnet0").unwrap(),
            chains: Cow::Owned(vec![
                RenderedChain {
                    family: Family::Bridge,
                    role: Hook::BridgeSub,
                    name: "I-vnet0-ipv4".into(),
                    rules: vec![rule.split(' ').map(String::from).collect()],
                },
                RenderedChain {
                    family: Family::Bridge,
                    role: Hook::BridgeRootOut,
                    name: "libvirt-I-vnet0".into(),
                    rules: vec!["-p IPv4 -j I-vnet0-ipv4"
                        .split(' ')
                        .map(String::from)
                        .collect()],
                },
            ]),
            probe: true,
        }
    }

    const LIVE: &str = "*nat\n:PREROUTING ACCEPT\n:I-vnet0-ipv4 ACCEPT\n:libvirt-I-vnet0 ACCEPT\n\
        -A PREROUTING -i vnet0 -j libvirt-I-vnet0\n-A I-vnet0-ipv4 -s 52:54:0:0:0:a -j RETURN\n\
        -A libvirt-I-vnet0 -p IPv4 -j I-vnet0-ipv4\n";

    fn tables(bridge: &str) -> Tables {
        Tables {
            bridge: parse_save(Family::Bridge, bridge).unwrap(),
            ..Tables::default()
        }
    }

    #[test]
    fn equal_kernel_spelling_means_unchanged_whatever_we_wrote() {
        let before = tables(LIVE);
        // We wrote the MAC with zeros; the kernel lists it without.
        let d = want("-s 52:54:00:00:00:0a -j RETURN");
        let after = tables(&format!(
            "{LIVE}:J-vnet0-ipv4 ACCEPT\n:libvirt-J-vnet0 ACCEPT\n-A J-vnet0-ipv4 -s 52:54:0:0:0:a -j RETURN\n\
             -A libvirt-J-vnet0 -p IPv4 -j J-vnet0-ipv4\n"
        ));
        assert_eq!(
            unchanged_ports(&before, &after, &[&d]),
            std::slice::from_ref(&d.port)
        );
    }

    #[test]
    fn a_different_rule_or_a_missing_temporary_means_changed() {
        let before = tables(LIVE);
        let d = want("-s 52:54:00:00:00:0b -j RETURN");
        let after = tables(&format!(
            "{LIVE}:J-vnet0-ipv4 ACCEPT\n:libvirt-J-vnet0 ACCEPT\n-A J-vnet0-ipv4 -s 52:54:0:0:0:b -j RETURN\n\
             -A libvirt-J-vnet0 -p IPv4 -j J-vnet0-ipv4\n"
        ));
        assert!(unchanged_ports(&before, &after, &[&d]).is_empty());
        assert!(unchanged_ports(&before, &before, &[&d]).is_empty());
    }
}
