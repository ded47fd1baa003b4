//! Putting [`PortRuleset`]s into the kernel, changing and removing them.
//!
//! One operation (for any number of ports) is ONE transaction (`nft -f
//! -`), which the kernel commits as a whole: a port moves from its old
//! rules to its new ones at one instant, and a refused transaction changes
//! nothing, so the old rules keep filtering.
//!
//! The plan needs to know what the kernel has. [`Applier::apply`] reads it
//! (`nft -j list ruleset`: its cost grows with the number of ports);
//! [`Applier::apply_tracked`] plans against the caller's [`KernelState`],
//! which it keeps up to date, so an operation costs only its own change;
//! should the state be stale (someone changed our tables), the kernel
//! refuses the transaction, and the applier reads and tries once more.

use std::collections::BTreeSet;

use host_io::{Command, RunError, Runner, Tool};
use nwfilter_model::IfName;

use crate::batch::Batch;
use crate::kernel::{KernelState, PortObjects, ReadError, TemplateObjects};
use crate::layout::{Part, Skeleton};
use crate::names::Table;
use crate::plan::desired;
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

/// One port to bring to a ruleset. `recorded` is not needed by this
/// backend (the kernel state it plans against is exact).
pub type Change<'a> = host_io::Change<'a, PortRuleset>;

/// What an operation did.
pub type Report = host_io::Report<IfName>;

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
        let mut state = None;
        self.apply_tracked(&mut state, changes)
    }

    /// Removes everything of ours for each port, in one transaction; with
    /// the last port, our tables go too.
    pub fn remove(&self, ports: &[IfName]) -> Result<Report, ApplyError> {
        let mut state = None;
        self.remove_tracked(&mut state, ports)
    }

    /// As [`Applier::apply`], planned against `state` (read first when
    /// `None`), which is left describing the kernel afterwards (`None`
    /// after an error: unknown).
    pub fn apply_tracked(
        &self,
        state: &mut Option<KernelState>,
        changes: &[Change<'_>],
    ) -> Result<Report, ApplyError> {
        self.tracked(state, |s| plan_apply(s, changes))
    }

    /// As [`Applier::remove`], planned against `state` (see
    /// [`Applier::apply_tracked`]).
    pub fn remove_tracked(
        &self,
        state: &mut Option<KernelState>,
        ports: &[IfName],
    ) -> Result<Report, ApplyError> {
        self.tracked(state, |s| Ok(plan_remove(s, ports)))
    }

    /// As [`Applier::apply_tracked`], planned against `read`, a reading
    /// of the kernel made just now for this operation (see
    /// [`Applier::start_read`]): as after a read of its own, a refused
    /// transaction is final, not blamed on a stale state and tried again.
    pub fn apply_on_read(
        &self,
        state: &mut Option<KernelState>,
        read: KernelState,
        changes: &[Change<'_>],
    ) -> Result<Report, ApplyError> {
        *state = None;
        self.attempt(state, read, false, |s| plan_apply(s, changes))
    }

    fn tracked(
        &self,
        state: &mut Option<KernelState>,
        plan: impl Fn(&mut KernelState) -> Result<(Batch, Report), ApplyError>,
    ) -> Result<Report, ApplyError> {
        match state.take() {
            Some(kept) => self.attempt(state, kept, true, plan),
            None => {
                let read = self.read()?;
                self.attempt(state, read, false, plan)
            }
        }
    }

    /// Plans on `start` and commits; `state` describes the kernel after
    /// a commit. With `may_be_stale` (a state kept from earlier
    /// operations), a refusal reads the kernel and plans once more.
    fn attempt(
        &self,
        state: &mut Option<KernelState>,
        mut start: KernelState,
        may_be_stale: bool,
        plan: impl Fn(&mut KernelState) -> Result<(Batch, Report), ApplyError>,
    ) -> Result<Report, ApplyError> {
        let (batch, report) = plan(&mut start)?;
        match self.commit(&batch) {
            Ok(()) => {
                *state = Some(start);
                Ok(report)
            }
            // The state we were given may be stale: plan once more
            // against what the kernel has now.
            Err(ApplyError::Refused(_)) if may_be_stale => {
                let mut fresh = self.read()?;
                fresh.layouts = std::mem::take(&mut start.layouts);
                let (batch, report) = plan(&mut fresh)?;
                self.commit(&batch)?;
                *state = Some(fresh);
                Ok(report)
            }
            Err(e) => Err(e),
        }
    }

    /// Reads what of ours the kernel holds.
    pub fn read(&self) -> Result<KernelState, ApplyError> {
        self.start_read().finish()
    }

    /// Starts reading what of ours the kernel holds, to run while the
    /// caller compiles (a reload at 1000 ports: the listing takes as long
    /// as compiling them all).
    pub fn start_read(&self) -> PendingRead {
        PendingRead(self.runner.start(&read_ruleset()))
    }

    fn commit(&self, batch: &Batch) -> Result<(), ApplyError> {
        if batch.is_empty() {
            return Ok(());
        }
        // Elements only (most creates and deletes beside other ports):
        // by the runner's own netlink socket when it has one; otherwise,
        // or when it did not commit, `nft` decides and reports.
        if let Some(change) = batch.element_change() {
            if self.runner.change_elements(&change) {
                return Ok(());
            }
        }
        self.runner
            .run(&transaction(batch))
            .map(drop)
            .map_err(|e| ApplyError::Refused(Box::new(e)))
    }
}

/// A read of the kernel's tables under way ([`Applier::start_read`]).
#[derive(Debug)]
pub struct PendingRead(host_io::Started);

impl PendingRead {
    /// Waits for the listing and parses it.
    pub fn finish(self) -> Result<KernelState, ApplyError> {
        let out = self.0.finish().map_err(|e| ApplyError::Read(Box::new(e)))?;
        Ok(KernelState::parse(&out.stdout)?)
    }
}

fn read_ruleset() -> Command {
    Command::new(Tool::Nft, ["-j", "list", "ruleset"])
}

/// The `nft -f -` run that commits `batch`. nft's text, not its JSON: a
/// JSON batch makes nft 1.0.6 read every chain of the ruleset first, even
/// for a batch of set elements only (at 1000 ports 4.7 ms against 2.8 ms per
/// binding-create), and only the text can declare a set by `typeof`.
pub fn transaction(batch: &Batch) -> Command {
    Command::new(Tool::Nft, ["-f", "-"])
        .with_stdin(batch.text())
        .one_transaction()
}

/// The transaction that brings each port of `changes` to its ruleset,
/// given what the kernel holds; `state` is updated to what the kernel
/// holds once it is committed (pure: the benchmark measures its size).
pub fn plan_apply(
    state: &mut KernelState,
    changes: &[Change<'_>],
) -> Result<(Batch, Report), ApplyError> {
    let mut report = Report::default();
    let mut ports = Batch::default();
    let mut left = BTreeSet::new();
    for change in changes {
        let rules = change.ruleset;
        let port = rules.port.as_str();
        state.layouts.learn(&rules.sets);
        let old = state.ports.get(port).cloned().unwrap_or_default();
        let tag = match (rules.needs_tag(), old.tag) {
            (false, _) => None,
            (true, Some(tag)) => Some(tag),
            (true, None) => Some(state.free_tag().ok_or(ApplyError::TagsExhausted)?),
        };
        let want = desired(rules, tag);
        let complete = template_complete(state, rules);
        if complete && old == want {
            report.unchanged.push(rules.port.clone());
            continue;
        }
        report.changed.push(rules.port.clone());
        if !complete {
            ports.add_template(rules);
            state
                .templates
                .insert(rules.template.clone(), template_objects(rules));
        }
        ports.change_port(port, &old, &want, &rules.own, &state.layouts);
        left.extend(old.templates().into_iter().map(str::to_owned));
        state.seen_tags.extend(tag);
        state.ports.insert(port.to_owned(), want);
    }
    if changes.len() > 1 {
        ports.merge_element_creates();
    }
    collect_unused(state, &mut ports, &left);
    Ok((around_layout(state, ports), report))
}

/// The transaction that removes `ports`; `state` as in [`plan_apply`].
pub fn plan_remove(state: &mut KernelState, ports: &[IfName]) -> (Batch, Report) {
    let mut report = Report::default();
    let mut batch = Batch::default();
    let mut left = BTreeSet::new();
    for port in ports {
        match state.ports.remove(port.as_str()) {
            Some(old) if !old.is_empty() => {
                report.changed.push(port.clone());
                batch.change_port(
                    port.as_str(),
                    &old,
                    &PortObjects::default(),
                    &[],
                    &state.layouts,
                );
                left.extend(old.templates().into_iter().map(str::to_owned));
            }
            _ => report.unchanged.push(port.clone()),
        }
    }
    if report.changed.is_empty() {
        return (Batch::default(), report);
    }
    if state.ports.is_empty() {
        // The last port: nothing of ours is left, tables included.
        let mut batch = Batch::default();
        for table in std::mem::take(&mut state.tables) {
            batch.delete_table(table);
        }
        *state = KernelState::default();
        return (batch, report);
    }
    collect_unused(state, &mut batch, &left);
    (around_layout(state, batch), report)
}

/// `ports` (the ports' part of a transaction) with the fixed layout
/// brought to what the ports in `state` need: missing parts added before
/// (the ports' rules refer to them), parts no port needs any more deleted
/// after (once nothing refers to them). `state` is updated to match.
fn around_layout(state: &mut KernelState, ports: Batch) -> Batch {
    if state.ports.is_empty() {
        return ports;
    }
    // A port has a tag exactly when it has IPv4/IPv6 chains.
    let ip_path = state.ports.values().any(|p| p.tag.is_some());
    let mut batch = Batch::default();
    for part in Part::wanted(ip_path) {
        // Only when missing or changed: re-adding the base chains' rules
        // makes the kernel re-validate every jump of the dispatch maps, a
        // cost that grows with the number of ports.
        if !part.intact(&state.tables, &state.skeleton) {
            batch.part(*part);
        }
    }
    batch.cmds.extend(ports.cmds);
    let (tables, skeleton) = (Skeleton::tables(ip_path), Skeleton::expected(ip_path));
    batch.remove_unwanted(&state.tables, &state.skeleton, &tables, &skeleton);
    if !tables.contains(&Table::Inet) && state.tables.contains(&Table::Inet) {
        // The inet elements that told which tags were taken are gone.
        state.seen_tags.clear();
    }
    state.tables = tables;
    state.skeleton = skeleton;
    batch
}

/// Deletes the templates of `candidates` that no port uses any more.
fn collect_unused(state: &mut KernelState, batch: &mut Batch, candidates: &BTreeSet<String>) {
    for template in candidates {
        if state.users(template) == 0 {
            if let Some(objects) = state.templates.remove(template) {
                state.layouts.forget(&objects.sets);
                batch.delete_template(&objects);
            }
        }
    }
}

/// Whether the kernel has `rules`' template exactly: every chain with its
/// number of rules, every set.
fn template_complete(state: &KernelState, rules: &PortRuleset) -> bool {
    state
        .templates
        .get(&rules.template)
        .is_some_and(|have| *have == template_objects(rules))
}

/// The objects `rules`' template consists of.
fn template_objects(rules: &PortRuleset) -> TemplateObjects {
    TemplateObjects {
        chains: rules
            .chains
            .iter()
            .map(|c| ((c.table, c.name.clone()), c.rules.len()))
            .collect(),
        sets: rules
            .sets
            .iter()
            .map(|s| (s.table, s.name.to_string()))
            .collect(),
        maps: rules
            .maps
            .iter()
            .map(|m| (m.table, m.name.to_string()))
            .collect(),
    }
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
