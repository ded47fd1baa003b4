//! libvirt's private chains (`LIBVIRT_INP`, …), created once per host and
//! hooked into the built-in chains.
//!
//! Like libvirt, we first list each table (`--list-rules`) and then create
//! only what is missing, so the set-up is idempotent: running it twice does
//! not add a second jump. The decision is a pure function of the listing.
//!
//! libvirt never removes them. We do, once no running network needs them,
//! but only what we created ([`Created`]) and only chains that are empty
//! again: chains another program (libvirt itself) made or still fills stay.

use std::collections::{BTreeMap, BTreeSet};

use host_io::{Command, Tool};
use serde::{Deserialize, Serialize};

/// The IP family of a rule, which picks `iptables` or `ip6tables`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
    /// `(family, table, chain)` → how many rules (`-A chain ...`) it holds.
    rules: BTreeMap<(IpFamily, String, String), usize>,
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
            if let ["-A", chain, ..] = words.as_slice() {
                *self
                    .rules
                    .entry((family, table.to_owned(), (*chain).to_owned()))
                    .or_default() += 1;
            }
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

    fn is_empty(&self, family: IpFamily, table: &str, chain: &str) -> bool {
        !self
            .rules
            .contains_key(&(family, table.to_owned(), chain.to_owned()))
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

/// One private chain and its jump, and which of the two a set-up created.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Created {
    pub family: IpFamily,
    pub table: String,
    pub parent: String,
    pub chain: String,
    /// `--new-chain` was run for it.
    pub new_chain: bool,
    /// `--insert PARENT --jump CHAIN` was run for it.
    pub jump: bool,
}

/// The commands that create what `existing` lacks, IPv4 first, each chain
/// before its jump (libvirt's order).
pub fn setup_commands(existing: &ExistingChains) -> Vec<Command> {
    setup(existing).0
}

/// [`setup_commands`], and what each of them creates.
pub fn setup(existing: &ExistingChains) -> (Vec<Command>, Vec<Created>) {
    let mut out = Vec::new();
    let mut created = Vec::new();
    for family in IpFamily::BOTH {
        for (table, parent, child) in PRIVATE_CHAINS {
            let new_chain = !existing.has_chain(family, table, child);
            if new_chain {
                out.push(Command::new(
                    family.tool(),
                    ["-w", "--table", table, "--new-chain", child],
                ));
            }
            let jump = !existing.has_jump(family, table, parent, child);
            if jump {
                out.push(Command::new(
                    family.tool(),
                    ["-w", "--table", table, "--insert", parent, "--jump", child],
                ));
            }
            if new_chain || jump {
                created.push(Created {
                    family,
                    table: table.to_owned(),
                    parent: parent.to_owned(),
                    chain: child.to_owned(),
                    new_chain,
                    jump,
                });
            }
        }
    }
    (out, created)
}

/// Adds `created` to `record`, one entry per chain and jump: a chain made
/// again (after someone flushed the tables) is recorded once.
pub fn merge_created(record: &mut Vec<Created>, created: Vec<Created>) {
    for c in created {
        let same = record.iter_mut().find(|r| {
            (r.family, &r.table, &r.parent, &r.chain) == (c.family, &c.table, &c.parent, &c.chain)
        });
        match same {
            Some(r) => {
                r.new_chain |= c.new_chain;
                r.jump |= c.jump;
            }
            None => record.push(c),
        }
    }
}

/// The commands that take back what a set-up `created`, for the chains
/// that are empty in `existing` (a chain something else filled stays, with
/// its jump), in reverse order: jump, then chain. Returns them with what
/// they remove; the rest of `created` is still there.
pub fn teardown(existing: &ExistingChains, created: &[Created]) -> (Vec<Command>, Vec<Created>) {
    let mut out = Vec::new();
    let mut removed = Vec::new();
    for c in created.iter().rev() {
        let (family, table) = (c.family, c.table.as_str());
        if !existing.is_empty(family, table, &c.chain) {
            continue;
        }
        if c.jump && existing.has_jump(family, table, &c.parent, &c.chain) {
            out.push(Command::new(
                family.tool(),
                [
                    "-w", "--table", table, "--delete", &c.parent, "--jump", &c.chain,
                ],
            ));
        }
        if c.new_chain && existing.has_chain(family, table, &c.chain) {
            out.push(Command::new(
                family.tool(),
                ["-w", "--table", table, "--delete-chain", &c.chain],
            ));
        }
        removed.push(c.clone());
    }
    (out, removed)
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
    fn teardown_takes_back_only_what_was_created_and_is_empty_again() {
        let mut before = ExistingChains::none();
        // Someone else's LIBVIRT_INP, hooked: ours are only the others.
        before.add_listing(
            IpFamily::V4,
            "filter",
            "-N LIBVIRT_INP\n-A INPUT -j LIBVIRT_INP\n",
        );
        let (_, created) = setup(&before);
        assert_eq!(created.len(), 13, "all but the existing INP chain and jump");
        let mut now = ExistingChains::none();
        for (family, table, _) in listing_commands() {
            let listing: String = PRIVATE_CHAINS
                .iter()
                .filter(|(t, ..)| *t == table)
                .map(|(_, parent, chain)| format!("-N {chain}\n-A {parent} -j {chain}\n"))
                .collect();
            now.add_listing(family, table, &listing);
        }
        // A rule someone else added to LIBVIRT_FWX keeps it.
        now.add_listing(IpFamily::V4, "filter", "-A LIBVIRT_FWX -i x -j ACCEPT\n");
        let (cmds, removed) = teardown(&now, &created);
        assert_eq!(removed.len(), 12);
        assert!(!removed
            .iter()
            .any(|c| c.chain == "LIBVIRT_FWX" && c.family == IpFamily::V4));
        assert_eq!(cmds.len(), 24);
        assert_eq!(
            cmds[0].args,
            [
                "-w",
                "--table",
                "mangle",
                "--delete",
                "POSTROUTING",
                "--jump",
                "LIBVIRT_PRT"
            ]
        );
        assert_eq!(cmds[0].tool, Tool::Ip6tables);
        assert_eq!(
            cmds[1].args,
            ["-w", "--table", "mangle", "--delete-chain", "LIBVIRT_PRT"]
        );
        assert!(!cmds
            .iter()
            .any(|c| c.args.contains(&"LIBVIRT_INP".to_owned()) && c.tool == Tool::Iptables));
    }

    #[test]
    fn listing_covers_both_families_and_all_tables() {
        let cmds = listing_commands();
        assert_eq!(cmds.len(), 6);
        assert_eq!(cmds[5].2.args, ["-w", "--table", "mangle", "--list-rules"]);
        assert_eq!(cmds[5].2.tool, Tool::Ip6tables);
    }
}
