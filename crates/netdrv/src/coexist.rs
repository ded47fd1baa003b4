//! Coexistence of nftables networks with an iptables `filter` table.
//!
//! In nftables a packet must be accepted by every base chain on its hook:
//! the accept in our table does not help when Docker set the iptables
//! `FORWARD` policy to DROP, or ufw drops in `INPUT`. iptables-nft keeps
//! those chains in ordinary nftables tables (`ip filter`, `ip6 filter`),
//! where an accept for our bridge's traffic does win: so, like libvirt's
//! iptables backend, we insert the accepts our network needs at the top
//! of the built-in chains that exist there — only the accepts (the
//! rejects stay in our table, which still decides), only for the
//! network's bridge and subnets, and only into chains that exist (we
//! never create an iptables table or chain, so removing our rules leaves
//! the table exactly as it was). Which chains got rules is recorded in
//! the run state; destroy deletes exactly those rules.
//!
//! Another nftables table that drops (a firewall written for nft, such as
//! NixOS's) cannot be overridden from our table; `nwfilter doctor`
//! ([`crate::doctor`]) finds and names such chains.

use host_io::Command;
use serde::{Deserialize, Serialize};

use crate::error::FirewallError;
use crate::firewall::{self, IpFamily};
use crate::network::Network;
use crate::nft::Ruleset;

/// A built-in chain of an iptables-nft `filter` table that got our
/// accepts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Target {
    pub family: IpFamily,
    pub chain: String,
}

/// The nftables family of iptables' (or ip6tables') tables.
pub fn nft_family(family: IpFamily) -> &'static str {
    match family {
        IpFamily::V4 => "ip",
        IpFamily::V6 => "ip6",
    }
}

/// The built-in chains of iptables-nft `filter` tables that exist in
/// `ruleset` (and so may drop a network's traffic).
pub fn targets(ruleset: &Ruleset) -> Vec<Target> {
    let mut out = Vec::new();
    for family in IpFamily::BOTH {
        for chain in ["INPUT", "FORWARD", "OUTPUT"] {
            if ruleset.has_base_chain(nft_family(family), "filter", chain) {
                out.push(Target {
                    family,
                    chain: chain.to_owned(),
                });
            }
        }
    }
    out
}

/// The `iptables-restore --noflush` batches that insert `net`'s accepts
/// into the chains of `targets`, and which of `targets` get any.
pub fn add_commands(
    net: &Network,
    targets: &[Target],
) -> Result<(Vec<Command>, Vec<Target>), FirewallError> {
    add_missing_commands(net, targets, &mut |_| false)
}

/// As [`add_commands`], leaving out the accepts `present` says are there
/// (a reload: inserting only what is missing keeps one copy of each and
/// never a moment without them).
pub fn add_missing_commands(
    net: &Network,
    targets: &[Target],
    present: &mut dyn FnMut(&firewall::BuiltinAccept) -> bool,
) -> Result<(Vec<Command>, Vec<Target>), FirewallError> {
    let accepts = firewall::builtin_accepts(net)?;
    let mut used: Vec<Target> = Vec::new();
    let mut inserts = Vec::new();
    for accept in &accepts {
        let target = Target {
            family: accept.family,
            chain: accept.chain.to_owned(),
        };
        if targets.contains(&target) {
            if !present(accept) {
                inserts.push(accept.insert.clone());
            }
            if !used.contains(&target) {
                used.push(target);
            }
        }
    }
    Ok((firewall::restore_batches(&inserts), used))
}

/// The commands that delete `net`'s accepts from the chains of `applied`
/// (errors ignored: the table may have been flushed since).
pub fn remove_commands(net: &Network, applied: &[Target]) -> Result<Vec<Command>, FirewallError> {
    Ok(firewall::builtin_accepts(net)?
        .into_iter()
        .filter(|a| {
            applied
                .iter()
                .any(|t| t.family == a.family && t.chain == a.chain)
        })
        .map(|a| a.delete)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const NAT: &str = "<network><name>n</name><bridge name='virbr3'/><forward dev='eth0'/>
        <ip address='10.3.0.1' prefix='24'/></network>";

    #[test]
    fn only_existing_chains_get_accepts_and_no_rejects() {
        let net = crate::parse_network(NAT).unwrap();
        let json = r#"{"nftables": [
          {"table": {"family": "ip", "name": "filter"}},
          {"chain": {"family": "ip", "table": "filter", "name": "FORWARD",
                     "type": "filter", "hook": "forward", "prio": 0, "policy": "drop"}}]}"#;
        let found = targets(&Ruleset::parse(json).unwrap());
        assert_eq!(
            found,
            [Target {
                family: IpFamily::V4,
                chain: "FORWARD".into()
            }]
        );
        let (batches, used) = add_commands(&net, &found).unwrap();
        assert_eq!(used, found);
        assert_eq!(batches.len(), 1);
        assert_eq!(
            batches[0].stdin.as_deref().unwrap(),
            "*filter\n\
             --insert FORWARD --in-interface virbr3 --out-interface virbr3 --jump ACCEPT\n\
             --insert FORWARD --source 10.3.0.0/24 --in-interface virbr3 --out-interface eth0 --jump ACCEPT\n\
             --insert FORWARD --destination 10.3.0.0/24 --in-interface eth0 --out-interface virbr3 \
             --match conntrack --ctstate ESTABLISHED,RELATED --jump ACCEPT\nCOMMIT\n"
        );
        // On a reload only what `--check` misses goes in.
        let mut present =
            |a: &firewall::BuiltinAccept| a.insert.args.contains(&"conntrack".to_owned());
        let (again, used_again) = add_missing_commands(&net, &found, &mut present).unwrap();
        assert_eq!(used_again, found, "still recorded");
        let text = again[0].stdin.as_deref().unwrap();
        assert_eq!(text.lines().count(), 4, "two of three accepts: {text}");
        assert!(!text.contains("conntrack"), "{text}");
        let removal = remove_commands(&net, &used).unwrap();
        assert_eq!(removal.len(), 3);
        assert!(removal
            .iter()
            .all(|c| c.args.contains(&"--delete".to_owned())
                && c.on_error == host_io::OnError::Ignore));
        assert!(remove_commands(&net, &[]).unwrap().is_empty());
    }
}
