//! Putting [`PortRuleset`]s into the kernel, changing and removing them.
//!
//! One operation (for any number of ports) costs three table reads
//! (`*-save`) — none when the caller kept the tables from its last
//! operation (`apply_kept`, see `kept`) — and at most one cleanup, one
//! build and one switch batch per family (`*-restore --noflush`), each
//! batch one kernel commit. The old
//! rules filter until a family's switch commits; a failure before that
//! discards what was built, a failure of a later family's switch puts the
//! earlier families' old rules back. Either way the error is reported and
//! the ports keep filtering with their previous rules.

pub(crate) mod batch;
mod kept;
mod kernel;
pub(crate) mod layout;
mod plan;
mod probe;
mod rule;

use host_io::{Command, RunError, Runner, TableSeen, Tool};
use nwfilter_model::IfName;

pub use batch::BadArgument;
pub use kernel::{parse_save, SaveParseError, Table, Tables};
pub use plan::{BadChain, Desired, PlanError};
pub use rule::{NulInArgument, Rule};

use crate::ruleset::{kernel_family, table, Family, PortRuleset};
use batch::Batch;
use kept::Executed;
use layout::{port_chains, Generation, Hooks};
use plan::{is_current, plan_family, snapshot_port, FamilyPlan};

/// The families in the order their switches commit.
pub const FAMILIES: [Family; 3] = [Family::Bridge, Family::Ipv4, Family::Ipv6];

/// Why an operation did not happen.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("cannot read the current firewall tables: {0}")]
    Read(#[source] Box<RunError>),
    #[error(transparent)]
    Parse(#[from] SaveParseError),
    #[error(transparent)]
    Plan(#[from] PlanError),
    /// A batch failed; the previous rules are in place unless
    /// `restore_errors` says otherwise.
    #[error("{source}{}", restore_failures(.restore_errors))]
    Refused {
        #[source]
        source: Box<RunError>,
        /// Failures while putting the previous state back (empty when the
        /// previous rules are fully in place).
        restore_errors: Vec<ApplyError>,
    },
    /// A command failed while undoing a failed operation.
    #[error(transparent)]
    Run(Box<RunError>),
    /// Checking whether an update was needed failed; what was built for it
    /// was discarded (the live rules were never touched) unless the list
    /// says so.
    #[error("checking the rules just built failed: {}", list(.0))]
    Undone(Vec<ApplyError>),
}

fn list(errors: &[ApplyError]) -> String {
    let texts: Vec<String> = errors.iter().map(ToString::to_string).collect();
    texts.join("; ")
}

fn restore_failures(errors: &[ApplyError]) -> String {
    if errors.is_empty() {
        "\n  the previous rules are still in place".to_string()
    } else {
        let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
        format!(
            "\n  putting the previous rules back also failed: {}",
            list.join("; ")
        )
    }
}

/// One port to bring to a ruleset. When `recorded` equals `ruleset` and
/// the kernel still has those chains, hooked, the port is left untouched.
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

    /// Instantiates or updates each port's rules (all ports in the same
    /// batches).
    pub fn apply(&self, changes: &[Change<'_>]) -> Result<Report, ApplyError> {
        let tables = self.read_tables()?;
        self.apply_on(tables, changes).map(|(report, _)| report)
    }

    /// As [`Applier::apply`], planned against `tables` (what the kernel
    /// holds); also returns what it holds afterwards, when that is known
    /// without reading it again.
    fn apply_on(
        &self,
        tables: Tables,
        changes: &[Change<'_>],
    ) -> Result<(Report, Option<Tables>), ApplyError> {
        let mut report = Report::default();
        let mut desired = Vec::new();
        // Indexed only if some change may be current already (a reload):
        // a new port's create never asks.
        let hooks = std::cell::OnceCell::new();
        for change in changes {
            let port = &change.ruleset.port;
            let chains = &change.ruleset.chains;
            let current = change.recorded == Some(change.ruleset)
                && FAMILIES
                    .iter()
                    .zip(hooks.get_or_init(|| FAMILIES.map(|f| Hooks::of(f, tables.get(f)))))
                    .all(|(&f, hooks)| is_current(f, tables.get(f), hooks, port, chains));
            if current {
                report.unchanged.push(port.clone());
            } else {
                desired.push(Desired {
                    port: port.clone(),
                    chains: chains.into(),
                    probe: change.recorded.is_none(),
                });
            }
        }
        drop(hooks);
        let (same, after) = self.execute(tables, &desired)?;
        for want in desired {
            if same.contains(&want.port) {
                report.unchanged.push(want.port);
            } else {
                report.changed.push(want.port);
            }
        }
        Ok((report, after))
    }

    /// Removes everything of ours for each port (the shared chains go with
    /// the last port that used them).
    pub fn remove(&self, ports: &[IfName]) -> Result<Report, ApplyError> {
        let tables = self.read_tables()?;
        self.remove_on(tables, ports).map(|(report, _)| report)
    }

    fn remove_on(
        &self,
        tables: Tables,
        ports: &[IfName],
    ) -> Result<(Report, Option<Tables>), ApplyError> {
        let mut report = Report::default();
        let mut desired = Vec::new();
        // Indexed only if some port has no chains (a second delete): a
        // port's chains are found by name, its hooks need every hook rule.
        let hooks = std::cell::OnceCell::new();
        for port in ports {
            let has_chains = FAMILIES
                .iter()
                .any(|&f| !port_chains(f, tables.get(f), port, Generation::Final).is_empty());
            let absent = !has_chains
                && FAMILIES
                    .iter()
                    .zip(hooks.get_or_init(|| FAMILIES.map(|f| Hooks::of(f, tables.get(f)))))
                    .all(|(&f, hooks)| is_current(f, tables.get(f), hooks, port, &[]));
            if absent {
                report.unchanged.push(port.clone());
            } else {
                report.changed.push(port.clone());
                desired.push(Desired {
                    port: port.clone(),
                    chains: Default::default(),
                    probe: false,
                });
            }
        }
        drop(hooks);
        let (_, after) = self.execute(tables, &desired)?;
        Ok((report, after))
    }

    /// Reads the three tables (`ebtables-save -t nat`, `iptables-save -t
    /// filter`, `ip6tables-save -t filter`).
    pub fn read_tables(&self) -> Result<Tables, ApplyError> {
        self.start_read_tables().finish()
    }

    /// Starts the three reads of [`Applier::read_tables`] at once, to run
    /// while the caller compiles (a reload of every port).
    pub fn start_read_tables(&self) -> PendingTables {
        PendingTables(FAMILIES.map(|family| (family, self.runner.start(&save(family)))))
    }
}

/// The reads of [`Applier::start_read_tables`] under way.
#[derive(Debug)]
pub struct PendingTables([(Family, host_io::Started); 3]);

impl PendingTables {
    /// Waits for the three listings and parses them.
    pub fn finish(self) -> Result<Tables, ApplyError> {
        let mut tables = Tables {
            through_nf_tables: true,
            ..Tables::default()
        };
        for (family, started) in self.0 {
            let output = started
                .finish()
                .map_err(|e| ApplyError::Read(Box::new(e)))?;
            tables.through_nf_tables &= kernel::listed_through_nf_tables(&output.stdout);
            *tables.get_mut(family) = parse_save(family, &output.stdout)?;
        }
        Ok(tables)
    }
}

/// The `*-save` tool that lists `family`'s table of ours.
fn save_tool(family: Family) -> Tool {
    match family {
        Family::Bridge => Tool::EbtablesSave,
        Family::Ipv4 => Tool::IptablesSave,
        Family::Ipv6 => Tool::Ip6tablesSave,
    }
}

/// The `*-save` command that lists `family`'s table of ours.
fn save(family: Family) -> Command {
    Command::new(save_tool(family), ["-t", table(family)])
}

/// The nf_tables tables the three tools keep ours in (bridge `nat`, ip
/// and ip6 `filter`), as the kernel names them now, in [`FAMILIES`]'
/// order; `None` when the runner cannot ask the kernel.
pub fn tables_seen<R: Runner + ?Sized>(runner: &R) -> Option<[TableSeen; 3]> {
    let [bridge, ipv4, ipv6] =
        FAMILIES.map(|family| runner.nft_table(kernel_family(family), table(family)));
    Some([bridge?, ipv4?, ipv6?])
}

/// Whether the three `*-save` tools the runner starts work through
/// nf_tables now (their `-V` says `(nf_tables)`): the alternatives may
/// have moved to the legacy tools, whose tables are other tables.
pub fn tools_through_nf_tables<R: Runner + ?Sized>(runner: &R) -> bool {
    FAMILIES.into_iter().all(|family| {
        runner
            .run(&Command::new(save_tool(family), ["-V"]))
            .is_ok_and(|output| output.stdout.contains("(nf_tables)"))
    })
}

impl<R: Runner + ?Sized> Applier<'_, R> {
    fn read_table(&self, family: Family) -> Result<Table, ApplyError> {
        let output = self
            .runner
            .run(&save(family))
            .map_err(|e| ApplyError::Read(Box::new(e)))?;
        Ok(parse_save(family, &output.stdout)?)
    }

    /// Runs the plans for `desired`; returns the probed ports found
    /// already current (nothing was switched for them), and the tables as
    /// the committed batches left them when that is known (no probe
    /// dropped a port).
    fn execute(
        &self,
        mut tables: Tables,
        desired: &[Desired<'_>],
    ) -> Result<(Vec<IfName>, Option<Tables>), ApplyError> {
        if desired.is_empty() {
            return Ok((Vec::new(), Some(tables)));
        }
        Ok(match self.execute_plans(&tables, desired)? {
            Executed::AsPlanned(plans) => {
                let known = kept::after(&mut tables, plans);
                (Vec::new(), known.then_some(tables))
            }
            Executed::Probed(same) => (same, None),
        })
    }

    fn execute_plans(
        &self,
        tables: &Tables,
        desired: &[Desired<'_>],
    ) -> Result<Executed, ApplyError> {
        let mut plans = plan_all(tables, desired)?;
        // Leftover temporaries are never hooked: removing them changes no
        // port's filtering, so a failure here needs no undo.
        for plan in &plans {
            self.commit(&plan.cleanup).map_err(refused)?;
        }
        for (i, plan) in plans.iter().enumerate() {
            if let Err(source) = self.commit(&plan.build) {
                let restore_errors = self.discard_built(&plans[..i]);
                return Err(ApplyError::Refused {
                    source: Box::new(source),
                    restore_errors,
                });
            }
        }
        let same = self.probe(tables, desired, &plans)?;
        let rest: Vec<Desired<'_>>;
        let desired = if same.is_empty() {
            desired
        } else {
            rest = desired
                .iter()
                .filter(|d| !same.contains(&d.port))
                .cloned()
                .collect();
            // The same plan for fewer ports: its build part already ran.
            plans = plan_all(tables, &rest)?;
            &rest[..]
        };
        for (i, plan) in plans.iter().enumerate() {
            if let Err(source) = self.commit(&plan.switch) {
                let mut restore_errors = self.discard_built(&plans[i..]);
                restore_errors.extend(self.restore(tables, desired, &plans[..i]));
                return Err(ApplyError::Refused {
                    source: Box::new(source),
                    restore_errors,
                });
            }
        }
        Ok(if same.is_empty() {
            Executed::AsPlanned(plans)
        } else {
            Executed::Probed(same)
        })
    }

    /// For the probed ports, re-reads the families that built something and
    /// finds the ports whose new chains equal their live ones; drops their
    /// temporaries. A failure discards everything built.
    fn probe(
        &self,
        before: &Tables,
        desired: &[Desired<'_>],
        plans: &[FamilyPlan],
    ) -> Result<Vec<IfName>, ApplyError> {
        let candidates: Vec<&Desired<'_>> = desired.iter().filter(|d| d.probe).collect();
        let built: Vec<&FamilyPlan> = plans.iter().filter(|p| !p.built.is_empty()).collect();
        if candidates.is_empty() || built.is_empty() {
            return Ok(Vec::new());
        }
        let mut after = before.clone();
        for plan in &built {
            match self.read_table(plan.family) {
                Ok(table) => *after.get_mut(plan.family) = table,
                Err(e) => {
                    let mut errors = self.discard_built(plans);
                    errors.insert(0, e);
                    return Err(ApplyError::Undone(errors));
                }
            }
        }
        let same = probe::unchanged_ports(before, &after, &candidates);
        let drop: Vec<Desired<'_>> = desired
            .iter()
            .filter(|d| same.contains(&d.port))
            .cloned()
            .collect();
        let dropped = plan_all(before, &drop)?;
        let errors = self.discard_built(&dropped);
        if !errors.is_empty() {
            let mut errors = errors;
            errors.extend(self.discard_built(plans));
            return Err(ApplyError::Undone(errors));
        }
        Ok(same)
    }

    fn commit(&self, batch: &Batch) -> Result<(), RunError> {
        if batch.is_empty() {
            return Ok(());
        }
        if batch
            .removal()
            .is_some_and(|removal| self.runner.remove_by_handle(&removal))
        {
            return Ok(());
        }
        self.runner.run(&batch.command()).map(drop)
    }

    /// Deletes the (never hooked) temporaries the given plans built.
    fn discard_built(&self, plans: &[FamilyPlan]) -> Vec<ApplyError> {
        let mut errors = Vec::new();
        for plan in plans {
            let mut batch = Batch::new(plan.family);
            for chain in &plan.built {
                // Names were accepted when the build batch was written.
                let _ = batch.flush_chain(chain);
            }
            for chain in &plan.built {
                let _ = batch.delete_chain(chain);
            }
            errors.extend(self.commit(&batch).err().map(run_error));
        }
        errors
    }

    /// Puts back, for the families of `switched`, the ports' chains as
    /// they were in `before` (kernel spelling), through a fresh read and
    /// the same build-and-switch path.
    fn restore(
        &self,
        before: &Tables,
        desired: &[Desired<'_>],
        switched: &[FamilyPlan],
    ) -> Vec<ApplyError> {
        let mut errors = Vec::new();
        for plan in switched {
            let family = plan.family;
            let old: Vec<Desired<'_>> = desired
                .iter()
                .map(|d| Desired {
                    port: d.port.clone(),
                    chains: snapshot_port(family, before.get(family), &d.port).into(),
                    probe: false,
                })
                .collect();
            let back = self
                .read_table(family)
                .and_then(|now| Ok(plan_family(family, &now, &old)?));
            let back = match back {
                Ok(back) => back,
                Err(e) => {
                    errors.push(e);
                    continue;
                }
            };
            for batch in [&back.cleanup, &back.build, &back.switch] {
                if let Err(e) = self.commit(batch) {
                    errors.push(run_error(e));
                    break;
                }
            }
        }
        errors
    }
}

fn plan_all(tables: &Tables, desired: &[Desired<'_>]) -> Result<Vec<FamilyPlan>, ApplyError> {
    let plans = FAMILIES
        .iter()
        .map(|&f| plan_family(f, tables.get(f), desired))
        .collect::<Result<Vec<FamilyPlan>, PlanError>>()?;
    Ok(plans)
}

fn run_error(e: RunError) -> ApplyError {
    ApplyError::Run(Box::new(e))
}

fn refused(source: RunError) -> ApplyError {
    ApplyError::Refused {
        source: Box::new(source),
        restore_errors: Vec::new(),
    }
}

#[cfg(test)]
#[path = "apply_tests.rs"]
mod tests;
