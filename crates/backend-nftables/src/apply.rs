//! Putting [`PortRuleset`]s into the kernel, changing and removing them.
//!
//! One operation (for any number of ports) costs one read (`nft -j list
//! maps`; plus `nft -j list chains` when a port's sub-chains must be known
//! and the caller has no record of them) and ONE transaction (`nft -j -f
//! -`). The
//! kernel commits a transaction as a whole: a port's old chains are
//! replaced by its new ones at one instant, and a refused transaction
//! changes nothing at all, so the old rules keep filtering.

use std::collections::BTreeSet;

use backend_xtables::{Command, RunError, Runner, Tool};
use nwfilter_model::IfName;

use crate::batch::Batch;
use crate::kernel::{KernelState, ReadError};
use crate::names::{Role, Table};
use crate::render::PortRuleset;

/// Why an operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("cannot read our nftables tables: {0}")]
    Read(#[source] Box<RunError>),
    #[error(transparent)]
    Parse(#[from] ReadError),
    #[error("more than 65535 ports with IPv4/IPv6 rules: no port tag is free")]
    TagsExhausted,
    /// The transaction was refused; nothing changed.
    #[error("{0}\n  nothing was changed: the previous rules are still in place")]
    Refused(#[source] Box<RunError>),
}

/// One port to bring to a ruleset.
#[derive(Debug, Clone, Copy)]
pub struct Change<'a> {
    pub ruleset: &'a PortRuleset,
    /// The ruleset last applied to this port, if the caller recorded it.
    /// When it equals `ruleset` and the kernel still has the port's chains,
    /// the port is left untouched.
    pub recorded: Option<&'a PortRuleset>,
}

/// What an operation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub changed: Vec<IfName>,
    pub unchanged: Vec<IfName>,
}

/// Applies rulesets through a [`Runner`].
#[derive(Debug, Clone, Copy)]
pub struct Applier<'r, R: Runner + ?Sized> {
    runner: &'r R,
}

impl<'r, R: Runner + ?Sized> Applier<'r, R> {
    pub fn new(runner: &'r R) -> Self {
        Applier { runner }
    }

    /// Instantiates or updates each port's rules, all in one transaction.
    pub fn apply(&self, changes: &[Change<'_>]) -> Result<Report, ApplyError> {
        let mut state = self.read()?;
        let unknown_subs = changes
            .iter()
            .any(|c| c.recorded.is_none() && state.chains.contains_key(c.ruleset.port.as_str()));
        if unknown_subs {
            state = self.read_all(state)?;
        }
        let (batch, report) = plan_apply(&state, changes)?;
        self.commit(&batch)?;
        Ok(report)
    }

    /// Removes everything of ours for each port, in one transaction; with
    /// the last port, our tables go too.
    pub fn remove(&self, ports: &[IfName]) -> Result<Report, ApplyError> {
        let mut state = self.read()?;
        if ports.iter().any(|p| state.chains.contains_key(p.as_str())) {
            state = self.read_all(state)?;
        }
        let (batch, report) = plan_remove(&state, ports);
        self.commit(&batch)?;
        Ok(report)
    }

    /// Reads our ports, tags and the chains our maps lead to.
    pub fn read(&self) -> Result<KernelState, ApplyError> {
        let maps = self.list(&["-j", "list", "maps"])?;
        Ok(KernelState::parse_maps(&maps)?)
    }

    /// Adds every chain (sub-chains included) to a map-based `state`.
    fn read_all(&self, state: KernelState) -> Result<KernelState, ApplyError> {
        let chains = self.list(&["-j", "list", "chains"])?;
        let mut all = KernelState::parse_chains(&chains)?;
        all.tags = state.tags;
        all.tables.extend(state.tables);
        Ok(all)
    }

    fn list(&self, args: &[&str]) -> Result<String, ApplyError> {
        let cmd = Command::new(Tool::Nft, args.iter().copied());
        let out = self
            .runner
            .run(&cmd)
            .map_err(|e| ApplyError::Read(Box::new(e)))?;
        Ok(out.stdout)
    }

    fn commit(&self, batch: &Batch) -> Result<(), ApplyError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.runner
            .run(&transaction(batch))
            .map(drop)
            .map_err(|e| ApplyError::Refused(Box::new(e)))
    }
}

/// The `nft -j -f -` run that commits `batch`.
pub fn transaction(batch: &Batch) -> Command {
    Command::new(Tool::Nft, ["-j", "-f", "-"]).with_stdin(batch.json().to_string())
}

/// The transaction that brings each port of `changes` to its ruleset, given
/// what the kernel holds (pure: the benchmark measures its size).
pub fn plan_apply(
    state: &KernelState,
    changes: &[Change<'_>],
) -> Result<(Batch, Report), ApplyError> {
    let mut report = Report::default();
    let mut batch = Batch::default();
    let mut taken = BTreeSet::new();
    for change in changes {
        let rules = change.ruleset;
        let port = rules.port.as_str();
        let have = known_chains(state, port, change.recorded);
        if change.recorded == Some(rules) && has_exactly(&have, rules, state) {
            report.unchanged.push(rules.port.clone());
            continue;
        }
        if batch.is_empty() {
            batch.skeleton();
        }
        report.changed.push(rules.port.clone());
        let old_tag = state.tags.get(port).copied();
        batch.remove_port(port, &have, old_tag);
        let tag = match (rules.needs_tag(), old_tag) {
            (false, _) => None,
            (true, Some(tag)) => Some(tag),
            (true, None) => {
                let tag = state.free_tag(&taken).ok_or(ApplyError::TagsExhausted)?;
                taken.insert(tag);
                Some(tag)
            }
        };
        batch.add_port(rules, tag);
    }
    Ok((batch, report))
}

/// The transaction that removes `ports`.
pub fn plan_remove(state: &KernelState, ports: &[IfName]) -> (Batch, Report) {
    let mut report = Report::default();
    let mut batch = Batch::default();
    let remaining = state
        .chains
        .keys()
        .any(|p| !ports.iter().any(|q| q.as_str() == p));
    for port in ports {
        match state.chains.get(port.as_str()) {
            Some(chains) => {
                report.changed.push(port.clone());
                if remaining {
                    batch.remove_port(
                        port.as_str(),
                        chains,
                        state.tags.get(port.as_str()).copied(),
                    );
                }
            }
            None => report.unchanged.push(port.clone()),
        }
    }
    if !remaining && !report.changed.is_empty() {
        // The last port: nothing of ours is left, tables included.
        for table in &state.tables {
            batch.delete_table(*table);
        }
    }
    (batch, report)
}

/// The port's chains: from the kernel when the listing was complete,
/// otherwise the map-reachable ones plus the sub-chains the caller's record
/// names (the port's chains exist only together, committed as one).
fn known_chains(
    state: &KernelState,
    port: &str,
    recorded: Option<&PortRuleset>,
) -> Vec<(Table, String)> {
    let mut have = state.chains.get(port).cloned().unwrap_or_default();
    if let (false, true, Some(record)) = (state.complete, !have.is_empty(), recorded) {
        for chain in &record.chains {
            let entry = (chain.table, chain.name.clone());
            if chain.role == Role::Sub && !have.contains(&entry) {
                // Sub-chains first: removal flushes all, then deletes.
                have.insert(0, entry);
            }
        }
    }
    have
}

/// Whether the kernel has exactly `rules`' chains (and a tag if needed);
/// only the map-reachable ones when the listing did not show sub-chains.
fn has_exactly(have: &[(Table, String)], rules: &PortRuleset, state: &KernelState) -> bool {
    let mut want: BTreeSet<(Table, String)> = rules
        .chains
        .iter()
        .filter(|c| state.complete || c.role != Role::Sub)
        .map(|c| (c.table, c.name.clone()))
        .collect();
    let have: Vec<(Table, String)> = have
        .iter()
        .filter(|(_, name)| state.complete || !is_sub(name))
        .cloned()
        .collect();
    if rules.needs_tag() {
        if !state.tags.contains_key(rules.port.as_str()) {
            return false;
        }
        want.insert((Table::Bridge, crate::names::tag_chain(&rules.port)));
    }
    let have: BTreeSet<(Table, String)> = have.iter().cloned().collect();
    have == want
}

/// Sub-chains are the per-port chains no map leads to.
fn is_sub(name: &str) -> bool {
    !matches!(
        name.split_once('/').map(|(role, _)| role),
        Some("I" | "O" | "FI" | "FO" | "HI" | "tag")
    )
}
