//! libvirt's private chains (`LIBVIRT_INP`, …), created once per host and
//! hooked into the built-in chains, never deleted.
//!
//! Like libvirt, we first list each table (`--list-rules`) and then create
//! only what is missing, so the set-up is idempotent: running it twice does
//! not add a second jump. The decision is a pure function of the listing.

use std::collections::BTreeSet;

use backend_xtables::{Command, Tool};
use serde::Serialize;

/// The IP family of a rule, which picks `iptables` or `ip6tables`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum IpFamily {
    V4,
    V6,
}

impl IpFamily {
    pub const BOTH: [IpFamily; 2] = [IpFamily::V4, IpFamily::V6];

    pub fn tool(self) -> Tool {
        match self {
            IpFamily::V4 => Tool::Iptables,
            IpFamily::V6 => Tool::Ip6tables,
        }
    }
}

/// The tables the private chains live in, in listing order.
pub const TABLES: [&str; 3] = ["filter", "nat", "mangle"];

/// `(table, built-in parent, private chain)`, in creation order. Each jump
/// is inserted at the top of its parent, so `FORWARD` ends up starting
/// with `LIBVIRT_FWX`, `LIBVIRT_FWI`, `LIBVIRT_FWO`.
pub const PRIVATE_CHAINS: [(&str, &str, &str); 7] = [
    ("filter", "INPUT", "LIBVIRT_INP"),
    ("filter", "OUTPUT", "LIBVIRT_OUT"),
    ("filter", "FORWARD", "LIBVIRT_FWO"),
    ("filter", "FORWARD", "LIBVIRT_FWI"),
    ("filter", "FORWARD", "LIBVIRT_FWX"),
    ("nat", "POSTROUTING", "LIBVIRT_PRT"),
    ("mangle", "POSTROUTING", "LIBVIRT_PRT"),
];

/// What the tables already hold, from `--list-rules` output.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExistingChains {
    /// `(family, table, chain)` seen as `-N chain`.
    chains: BTreeSet<(IpFamily, String, String)>,
    /// `(family, table, parent, child)` seen as `-A parent -j child`.
    jumps: BTreeSet<(IpFamily, String, String, String)>,
}

impl ExistingChains {
    /// A host where nothing of ours exists yet.
    pub fn none() -> ExistingChains {
        ExistingChains::default()
    }

    /// Records the output of `iptables --table TABLE --list-rules`.
    pub fn add_listing(&mut self, family: IpFamily, table: &str, listing: &str) {
        for line in listing.lines() {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["-N", chain] => {
                    self.chains
                        .insert((family, table.to_owned(), (*chain).to_owned()));
                }
                ["-A", parent, "-j", child] => {
                    self.jumps.insert((
                        family,
                        table.to_owned(),
                        (*parent).to_owned(),
                        (*child).to_owned(),
                    ));
                }
                _ => {}
            }
        }
    }

    fn has_chain(&self, family: IpFamily, table: &str, chain: &str) -> bool {
        self.chains
            .contains(&(family, table.to_owned(), chain.to_owned()))
    }

    fn has_jump(&self, family: IpFamily, table: &str, parent: &str, child: &str) -> bool {
        self.jumps.contains(&(
            family,
            table.to_owned(),
            parent.to_owned(),
            child.to_owned(),
        ))
    }
}

/// The commands whose output [`ExistingChains::add_listing`] reads: one
/// `--list-rules` per family and table.
pub fn listing_commands() -> Vec<(IpFamily, &'static str, Command)> {
    let mut out = Vec::new();
    for family in IpFamily::BOTH {
        for table in TABLES {
            let cmd = Command::new(family.tool(), ["-w", "--table", table, "--list-rules"]);
            out.push((family, table, cmd));
        }
    }
    out
}

/// The commands that create what `existing` lacks, IPv4 first, each chain
/// before its jump (libvirt's order).
pub fn setup_commands(existing: &ExistingChains) -> Vec<Command> {
    let mut out = Vec::new();
    for family in IpFamily::BOTH {
        for (table, parent, child) in PRIVATE_CHAINS {
            if !existing.has_chain(family, table, child) {
                out.push(Command::new(
                    family.tool(),
                    ["-w", "--table", table, "--new-chain", child],
                ));
            }
            if !existing.has_jump(family, table, parent, child) {
                out.push(Command::new(
                    family.tool(),
                    ["-w", "--table", table, "--insert", parent, "--jump", child],
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_host_gets_every_chain_and_jump() {
        let cmds = setup_commands(&ExistingChains::none());
        assert_eq!(cmds.len(), 28);
        assert_eq!(cmds[0].tool, Tool::Iptables);
        assert_eq!(
            cmds[0].args,
            ["-w", "--table", "filter", "--new-chain", "LIBVIRT_INP"]
        );
        assert_eq!(
            cmds[1].args,
            [
                "-w",
                "--table",
                "filter",
                "--insert",
                "INPUT",
                "--jump",
                "LIBVIRT_INP"
            ]
        );
        assert_eq!(cmds[14].tool, Tool::Ip6tables);
    }

    #[test]
    fn existing_chains_and_jumps_are_not_created_again() {
        let mut existing = ExistingChains::none();
        existing.add_listing(
            IpFamily::V4,
            "filter",
            "-P INPUT ACCEPT\n-N LIBVIRT_INP\n-A INPUT -j LIBVIRT_INP\n-N LIBVIRT_OUT\n",
        );
        let cmds = setup_commands(&existing);
        let v4: Vec<_> = cmds.iter().filter(|c| c.tool == Tool::Iptables).collect();
        assert_eq!(v4.len(), 11, "INP chain+jump and OUT chain exist");
        assert_eq!(
            v4[0].args,
            [
                "-w",
                "--table",
                "filter",
                "--insert",
                "OUTPUT",
                "--jump",
                "LIBVIRT_OUT"
            ]
        );
        // The IPv6 tables were not listed as holding anything.
        assert_eq!(cmds.len() - v4.len(), 14);
    }

    #[test]
    fn listing_covers_both_families_and_all_tables() {
        let cmds = listing_commands();
        assert_eq!(cmds.len(), 6);
        assert_eq!(cmds[5].2.args, ["-w", "--table", "mangle", "--list-rules"]);
        assert_eq!(cmds[5].2.tool, Tool::Ip6tables);
    }
}
