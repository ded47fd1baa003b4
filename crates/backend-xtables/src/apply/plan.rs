//! From "what the kernel has" and "what each port should have" to the
//! restore batches of one family (lowering reference §2.8, done in batches).
//!
//! Per port, one of:
//! * **direct** (nothing of the port's in this family yet): create the final
//!   chains, fill them and hook them, in the switch batch;
//! * **update** (the port has live chains): the build batch creates the new
//!   chains under temporary names (J/P, FJ/FP/HJ) without hooking them, so
//!   the kernel checks every new rule while the old ones keep filtering;
//!   the switch batch then hooks the temporaries, unhooks and deletes the
//!   old chains and renames the temporaries to the final names — one
//!   commit, so the port is never unfiltered and never half-switched;
//! * **remove** (no chains wanted): unhook and delete, in the switch batch.
//!
//! Leftover temporaries (from an interrupted run) go in a cleanup batch
//! first. The shared iptables chains are created with the first port and
//! removed with the last.

use std::borrow::Cow;

use nwfilter_model::IfName;

use super::batch::{BadArgument, Batch};
use super::kernel::Table;
use super::layout::{
    hook_rule, hooks_into, in_post_of, in_post_rule, is_final, is_hooked, port_chains,
    temporary_name, Generation, Hooks, GLOBAL_CHAINS,
};
use super::rule::Rule;
use crate::ruleset::{Family, Hook, RenderedChain};

/// What one port should have in the kernel (no chains: nothing).
///
/// The chains are borrowed from the caller's rulesets where it has them:
/// a copy of every port's rules was a quarter of a 1000-port restart's
/// planning time (issue 22).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired<'a> {
    pub port: IfName,
    pub chains: Cow<'a, [RenderedChain]>,
    /// Nothing says what the live chains hold: after building, compare the
    /// new chains with them and skip the switch if they are equal.
    pub probe: bool,
}

/// A chain whose name is not the libvirt name for its role and port.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("port {port}: chain {chain:?} is not a libvirt name for a {role:?} chain of this port in the {family:?} family")]
pub struct BadChain {
    pub port: IfName,
    pub chain: String,
    pub role: Hook,
    pub family: Family,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    #[error(transparent)]
    Chain(#[from] BadChain),
    #[error(transparent)]
    Argument(#[from] BadArgument),
}

/// The batches for one family, run in this order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FamilyPlan {
    pub family: Family,
    /// Removes temporaries left by an interrupted run.
    pub cleanup: Batch,
    /// Builds new chains under temporary names, unhooked.
    pub build: Batch,
    /// Switches every port to its new state in one commit.
    pub switch: Batch,
    /// The temporaries `build` creates (to discard them if a later step fails).
    pub built: Vec<String>,
}

/// Plans one family for all `desired` ports against `table`.
pub fn plan_family(
    family: Family,
    table: &Table,
    desired: &[Desired<'_>],
) -> Result<FamilyPlan, PlanError> {
    let mut plan = FamilyPlan {
        family,
        cleanup: Batch::new(family),
        build: Batch::new(family),
        switch: Batch::new(family),
        built: Vec::new(),
    };
    let mut globals = GlobalUse::count(table);
    for want in desired {
        let new: Vec<&RenderedChain> = want.chains.iter().filter(|c| c.family == family).collect();
        check_names(family, &want.port, &new)?;
        let temps = port_chains(family, table, &want.port, Generation::Temporary);
        discard(&mut plan.cleanup, family, table, &temps)?;
        let mut finals = port_chains(family, table, &want.port, Generation::Final);
        finals.extend(orphans(table, &new, &finals));
        if new.is_empty() {
            remove_port(
                &mut plan.switch,
                family,
                table,
                &want.port,
                &finals,
                &mut globals,
            )?;
        } else if finals.is_empty() {
            create_direct(&mut plan.switch, &want.port, &new)?;
        } else {
            plan.built
                .extend(build_temporaries(&mut plan.build, &want.port, &new)?);
            switch_port(&mut plan.switch, family, table, &want.port, &new, &finals)?;
        }
        if family != Family::Bridge && !new.is_empty() {
            globals.in_use = true;
            if in_post_of(table, &want.port).is_none() {
                plan.switch
                    .append("libvirt-in-post", &in_post_rule(&want.port))?;
            }
        }
    }
    if family != Family::Bridge {
        globals.finish(&mut plan.switch, table)?;
    }
    if is_bare(table) && plan.switch.declared() >= MANY_CHAINS {
        plan.switch.ask_for_whole_table();
    }
    Ok(plan)
}

/// From this many new chains on, the restore tool's walk of its sorted
/// list of chain names costs more than fetching a whole (empty) table
/// (see [`Batch::ask_for_whole_table`]); below, the batch text stays as
/// it always was.
const MANY_CHAINS: usize = 64;

/// The table (ebtables `nat`, iptables `filter`) holds no user chain and
/// no rule: nothing but its built-in chains (or it does not exist yet).
fn is_bare(table: &Table) -> bool {
    const BUILT_IN: [&str; 5] = ["PREROUTING", "INPUT", "FORWARD", "OUTPUT", "POSTROUTING"];
    table.chains.iter().all(|c| BUILT_IN.contains(&&**c)) && table.rules.values().all(Vec::is_empty)
}

fn check_names(family: Family, port: &IfName, chains: &[&RenderedChain]) -> Result<(), BadChain> {
    for chain in chains {
        let right_family = chain.role.is_bridge() == (family == Family::Bridge);
        if !right_family || !is_final(chain.role, port, &chain.name) {
            return Err(BadChain {
                port: port.clone(),
                chain: chain.name.clone(),
                role: chain.role,
                family,
            });
        }
    }
    Ok(())
}

/// Chains that carry the final name of one of `new` but that no hook or
/// jump reaches, so `port_chains` did not find them: what is left when
/// someone flushes our root chains (`ebtables -t nat -F`) but not the
/// sub-chains. They are ours by name and must go before the new chains
/// take that name.
fn orphans(
    table: &Table,
    new: &[&RenderedChain],
    finals: &[(Hook, String)],
) -> Vec<(Hook, String)> {
    new.iter()
        .filter(|c| table.has_chain(&c.name) && !finals.iter().any(|(_, f)| *f == c.name))
        .map(|c| (c.role, c.name.clone()))
        .collect()
}

/// Unhooks and deletes `chains` (which exist in `table`).
fn discard(
    batch: &mut Batch,
    family: Family,
    table: &Table,
    chains: &[(Hook, String)],
) -> Result<usize, BadArgument> {
    let hooks = hooks_into(family, table, chains);
    for (holder, rule) in &hooks {
        batch.delete(holder, rule)?;
    }
    // Flush all first: a sub-chain cannot go while its root still jumps to it.
    for (_, chain) in chains {
        batch.flush_chain(chain)?;
    }
    for (_, chain) in chains {
        batch.delete_chain(chain)?;
    }
    Ok(hooks.len())
}

fn remove_port(
    batch: &mut Batch,
    family: Family,
    table: &Table,
    port: &IfName,
    finals: &[(Hook, String)],
    globals: &mut GlobalUse,
) -> Result<(), BadArgument> {
    globals.removed += discard(batch, family, table, finals)?;
    if family != Family::Bridge {
        if let Some(rule) = in_post_of(table, port) {
            batch.delete("libvirt-in-post", &rule)?;
            globals.removed += 1;
        }
    }
    Ok(())
}

fn create_direct(
    batch: &mut Batch,
    port: &IfName,
    new: &[&RenderedChain],
) -> Result<(), BadArgument> {
    for chain in new {
        batch.create_chain(&chain.name)?;
        for rule in &chain.rules {
            batch.append(&chain.name, rule)?;
        }
    }
    for chain in new {
        if let Some((holder, rule)) = hook_rule(chain.role, port, &chain.name) {
            batch.append(holder, &rule)?;
        }
    }
    Ok(())
}

/// Creates the new chains under their temporary names; returns those names.
fn build_temporaries(
    batch: &mut Batch,
    port: &IfName,
    new: &[&RenderedChain],
) -> Result<Vec<String>, BadArgument> {
    let temp_of = |name: &str| {
        new.iter()
            .find(|c| c.name == name)
            .and_then(|c| temporary_name(c.role, port, &c.name))
    };
    let mut built = Vec::new();
    for chain in new {
        let temp = temp_of(&chain.name).unwrap_or_else(|| chain.name.clone());
        batch.create_chain(&temp)?;
        for rule in &chain.rules {
            // Jumps to the port's own sub-chains go to their temporaries.
            let rule: Vec<String> = rule
                .iter()
                .map(|arg| temp_of(arg).unwrap_or_else(|| arg.clone()))
                .collect();
            batch.append(&temp, &rule)?;
        }
        built.push(temp);
    }
    Ok(built)
}

fn switch_port(
    batch: &mut Batch,
    family: Family,
    table: &Table,
    port: &IfName,
    new: &[&RenderedChain],
    finals: &[(Hook, String)],
) -> Result<(), BadArgument> {
    let temp =
        |c: &RenderedChain| temporary_name(c.role, port, &c.name).unwrap_or_else(|| c.name.clone());
    for chain in new {
        if let Some((holder, rule)) = hook_rule(chain.role, port, &temp(chain)) {
            batch.append(holder, &rule)?;
        }
    }
    discard(batch, family, table, finals)?;
    for chain in new {
        batch.rename_chain(&temp(chain), &chain.name)?;
    }
    Ok(())
}

/// Bookkeeping for the shared iptables chains of one family.
struct GlobalUse {
    /// Rules in the shared chains before this batch.
    existing: usize,
    /// Of those, how many this batch deletes.
    removed: usize,
    /// Some port has chains in this family after this batch.
    in_use: bool,
}

impl GlobalUse {
    fn count(table: &Table) -> GlobalUse {
        let existing = GLOBAL_CHAINS
            .iter()
            .map(|(c, _, _)| table.rules_of(c).len())
            .sum();
        GlobalUse {
            existing,
            removed: 0,
            in_use: false,
        }
    }

    /// Creates the shared chains and their hooks when a port needs them
    /// and they are missing; removes them when the last rule in them goes.
    fn finish(self, batch: &mut Batch, table: &Table) -> Result<(), BadArgument> {
        let jump = |chain: &str| vec!["-j".to_string(), chain.to_string()];
        if self.in_use {
            for (chain, _, _) in GLOBAL_CHAINS {
                if !table.has_chain(chain) {
                    batch.create_chain(chain)?;
                }
            }
            for (chain, holder, position) in GLOBAL_CHAINS {
                if !is_hooked(table, holder, chain) {
                    batch.insert(holder, position, &jump(chain))?;
                }
            }
        } else if self.existing == self.removed {
            for (chain, holder, _) in GLOBAL_CHAINS {
                for rule in table
                    .rules_of(holder)
                    .iter()
                    .filter(|r| r.target() == Some(chain))
                {
                    batch.delete(holder, &rule.to_words())?;
                }
            }
            for (chain, _, _) in GLOBAL_CHAINS {
                if table.has_chain(chain) {
                    batch.delete_chain(chain)?;
                }
            }
        }
        Ok(())
    }
}

/// The port's live chains in `table` as a ruleset fragment (kernel
/// spelling), to put back if an update has to be undone.
pub fn snapshot_port(family: Family, table: &Table, port: &IfName) -> Vec<RenderedChain> {
    port_chains(family, table, port, Generation::Final)
        .into_iter()
        .map(|(role, name)| RenderedChain {
            family,
            role,
            rules: table.rules_of(&name).iter().map(Rule::to_words).collect(),
            name,
        })
        .collect()
}

/// Whether the port's live chains in `table` are exactly `chains` (names,
/// roles, rule counts), hooked once each, with nothing temporary left.
/// Rule text is not compared: the kernel re-spells rules (`-p tcp -m tcp`);
/// callers compare against what they recorded as applied. `hooks` is
/// `table`'s, built once for all the ports an operation checks.
pub fn is_current(
    family: Family,
    table: &Table,
    hooks: &Hooks<'_>,
    port: &IfName,
    chains: &[RenderedChain],
) -> bool {
    let new: Vec<&RenderedChain> = chains.iter().filter(|c| c.family == family).collect();
    let finals = port_chains(family, table, port, Generation::Final);
    if !port_chains(family, table, port, Generation::Temporary).is_empty()
        || finals.len() != new.len()
    {
        return false;
    }
    let same_chains = new.iter().all(|c| {
        finals
            .iter()
            .any(|(role, name)| *role == c.role && *name == c.name)
            && table.rules_of(&c.name).len() == c.rules.len()
    });
    let hookable = new
        .iter()
        .filter(|c| hook_rule(c.role, port, &c.name).is_some())
        .count();
    let hooks_ok = hooks.count_into(&finals) == hookable;
    let shared_ok = family == Family::Bridge
        || new.is_empty() != hooks.has_in_post(port) && (new.is_empty() || hooks.shared_hooked());
    same_chains && hooks_ok && shared_ok
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
