//! Planning against kept tables: the caller keeps what the tables hold
//! after each operation (the batches we committed, played on the tables
//! we planned against), so that the next operation costs its own change
//! instead of three whole-table reads (`*-save`) that grow with every
//! other port.
//!
//! The kept tables are dropped (and the next operation reads) whenever
//! they cannot be trusted: unknown (`None`: start, after a reload or a
//! repair, which read the kernel), a probe that re-planned, a batch whose
//! effect the model cannot play, or a refused restore — then the kernel
//! is read and the operation planned once more, since another process may
//! have changed the tables meanwhile.
//!
//! Rules we appended are kept in our spelling, not the kernel's (`-p tcp
//! -m tcp`); planning compares chains by name and rule count, and deletes
//! hooks by the exact text it kept, which the tools accept either way.

use std::sync::Arc;

use nwfilter_model::IfName;

use super::batch::{Batch, Step};
use super::kernel::{Table, Tables};
use super::plan::FamilyPlan;
use super::rule::Rule;
use super::{Applier, ApplyError, Change, Report};
use host_io::Runner;

/// How the batches of an operation went.
#[derive(Debug)]
pub(super) enum Executed {
    /// As planned: these plans' batches were committed.
    AsPlanned(Vec<FamilyPlan>),
    /// A probe found these ports current and re-planned without them.
    Probed(Vec<IfName>),
}

/// Plays the committed `plans` on `tables`; false if a batch does
/// something the model cannot follow (then `tables` is not to be kept).
///
/// The plans are used up: their rules move into the tables as they are,
/// the words the batches were given (not the restore text, which spells
/// some words for the tool: see `batch::tool_ethertype`).
pub(super) fn after(tables: &mut Tables, plans: Vec<FamilyPlan>) -> bool {
    plans.into_iter().all(|plan| {
        let table = tables.get_mut(plan.family);
        [plan.cleanup, plan.build, plan.switch]
            .into_iter()
            .all(|batch| play(table, batch).is_some())
    })
}

/// Plays one committed batch on `table`, step by step as the restore
/// tool does.
fn play(table: &mut Table, batch: Batch) -> Option<()> {
    // `-Z` zeroes counters, which the model does not keep.
    let (declared, steps) = batch.into_steps();
    for name in declared {
        if table.has_chain(&name) {
            return None;
        }
        table.add_chain(&name);
    }
    // The chains given rules: their vectors, grown one rule at a time,
    // keep room for up to as many again, in every port's chains between
    // operations; shrunk once the batch is played (only these: the
    // operation stays the cost of its change).
    let mut grown: Vec<String> = Vec::new();
    // Deleted chains leave the list of names together: one pass over the
    // table's names (9 000 at 1000 ports) per batch, not per chain.
    let mut deleted: Vec<Arc<str>> = Vec::new();
    let mut steps = steps.into_iter().peekable();
    while let Some(step) = steps.next() {
        let Step::Append(chain, rule) = step else {
            if let Step::Insert(chain, _, _) = &step {
                grown.push(chain.clone());
            }
            play_step(table, step, &mut deleted)?;
            continue;
        };
        // A chain's rules are appended one after the other: one look-up
        // of the chain for them all.
        let rules = rules_or_builtin(table, &chain);
        rules.push(rule);
        let same_chain = |next: &Step| matches!(next, Step::Append(c, _) if *c == chain);
        while let Some(Step::Append(_, rule)) = steps.next_if(same_chain) {
            rules.push(rule);
        }
        grown.push(chain);
    }
    forget_names(table, &mut deleted);
    for chain in grown {
        if let Some(rules) = table.rules.get_mut(chain.as_str()) {
            rules.shrink_to_fit();
        }
    }
    Some(())
}

/// Drops the `deleted` chains' names from the table's list of names
/// (found by identity: the list and the rules share each name).
fn forget_names(table: &mut Table, deleted: &mut Vec<Arc<str>>) {
    if !deleted.is_empty() {
        (table.chains).retain(|name| !deleted.iter().any(|gone| Arc::ptr_eq(name, gone)));
        deleted.clear();
    }
}

/// Plays one step; a deleted chain's name joins `deleted`, to leave the
/// list of names with the others (see [`forget_names`]).
fn play_step(table: &mut Table, step: Step, deleted: &mut Vec<Arc<str>>) -> Option<()> {
    match step {
        Step::Append(chain, rule) => rules_or_builtin(table, &chain).push(rule),
        Step::Insert(chain, position, rule) => {
            let rules = rules_or_builtin(table, &chain);
            rules.insert(position.checked_sub(1)?.min(rules.len()), rule);
        }
        Step::Delete(chain, rule) => {
            let rules = table.rules.get_mut(chain.as_str())?;
            let at = rules.iter().position(|r| *r == rule)?;
            rules.remove(at);
        }
        Step::Flush(chain) => table.rules.get_mut(chain.as_str())?.clear(),
        Step::DeleteChain(chain) => {
            let (name, _) = table.rules.remove_entry(chain.as_str())?;
            deleted.push(name);
        }
        // A rename looks the name up in the list: bring it up to date.
        Step::Rename(from, to) => {
            forget_names(table, deleted);
            rename(table, &from, &to)?
        }
    }
    Some(())
}

/// A built-in chain of a table never read (first port) appears on first
/// use, as the kernel creates the table with its chains.
fn rules_or_builtin<'t>(table: &'t mut Table, chain: &str) -> &'t mut Vec<Rule> {
    if table.has_chain(chain) {
        table.rules.get_mut(chain).expect("the chain is there")
    } else {
        table.add_chain(chain)
    }
}

/// Renames a chain; jumps to it follow (the kernel links them by chain).
fn rename(table: &mut Table, from: &str, to: &str) -> Option<()> {
    if table.has_chain(to) {
        return None;
    }
    let rules = table.rules.remove(from)?;
    let to_name: Arc<str> = Arc::from(to);
    table.rules.insert(Arc::clone(&to_name), rules);
    for name in &mut table.chains {
        if &**name == from {
            *name = Arc::clone(&to_name);
        }
    }
    for rule in table.rules.values_mut().flatten() {
        if rule.words().any(|word| word == from) {
            *rule = rule.retargeted(from, to);
        }
    }
    Some(())
}

impl<R: Runner + ?Sized> Applier<'_, R> {
    /// As [`Applier::apply`], planned against `kept` (read first when
    /// `None`), which is left holding the tables afterwards (or `None`
    /// when unknown).
    pub fn apply_kept(
        &self,
        kept: &mut Option<Tables>,
        changes: &[Change<'_>],
    ) -> Result<Report, ApplyError> {
        self.with_kept(kept, |tables| self.apply_on(tables, changes))
    }

    /// As [`Applier::remove`], with kept tables as in
    /// [`Applier::apply_kept`].
    pub fn remove_kept(
        &self,
        kept: &mut Option<Tables>,
        ports: &[IfName],
    ) -> Result<Report, ApplyError> {
        self.with_kept(kept, |tables| self.remove_on(tables, ports))
    }

    /// As [`Applier::apply_kept`], planned against `read`, tables read
    /// just now for this operation (see [`Applier::start_read_tables`]):
    /// as after a read of its own, a refusal is final.
    pub fn apply_on_read(
        &self,
        kept: &mut Option<Tables>,
        read: Tables,
        changes: &[Change<'_>],
    ) -> Result<Report, ApplyError> {
        *kept = None;
        self.with_tables(kept, read, true, |tables| self.apply_on(tables, changes))
    }

    fn with_kept(
        &self,
        kept: &mut Option<Tables>,
        operation: impl Fn(Tables) -> Result<(Report, Option<Tables>), ApplyError>,
    ) -> Result<Report, ApplyError> {
        match kept.take() {
            Some(tables) => self.with_tables(kept, tables, false, operation),
            None => {
                let tables = self.read_tables()?;
                self.with_tables(kept, tables, true, operation)
            }
        }
    }

    /// Runs `operation` on `tables` (`read`: read just now, not kept
    /// from earlier operations); `kept` is what it left known.
    fn with_tables(
        &self,
        kept: &mut Option<Tables>,
        tables: Tables,
        read: bool,
        operation: impl Fn(Tables) -> Result<(Report, Option<Tables>), ApplyError>,
    ) -> Result<Report, ApplyError> {
        let result = match operation(tables) {
            // Planned against kept tables and refused with nothing
            // changed: they may be stale. Read and plan once more.
            Err(ApplyError::Refused { restore_errors, .. })
                if !read && restore_errors.is_empty() =>
            {
                operation(self.read_tables()?)
            }
            other => other,
        };
        let (report, after) = result?;
        *kept = after;
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::kernel::{parse_save, split_words};
    use crate::apply::plan::Desired;
    use crate::apply::plan_all;
    use crate::ruleset::{Family, Hook, RenderedChain};
    use nwfilter_compile::{compile, Compiled, MemorySource};
    use nwfilter_model::{builtin_filters, FilterName, FilterRef, Params};

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    /// The table as the restore text of a batch leaves it, read line by
    /// line as the restore tool reads it: how the kept tables were
    /// played until they took the batches' steps (issue 22), kept as the
    /// reference the steps must agree with.
    fn play_text(table: &mut Table, text: &str) -> Option<()> {
        let mut grown = Vec::new();
        for line in text.lines() {
            if line.starts_with('*') || line == "COMMIT" || line == "-Z" {
                continue;
            }
            if let Some(decl) = line.strip_prefix(':') {
                let name = decl.split_whitespace().next()?;
                if table.has_chain(name) {
                    return None;
                }
                table.add_chain(name);
                continue;
            }
            let words = split_words(line).ok()?;
            let (verb, chain, rest) = (words.first()?, words.get(1)?, words.get(2..)?);
            match verb.as_str() {
                "-A" => rules_or_builtin(table, chain).push(Rule::new(rest).ok()?),
                "-I" => {
                    let position: usize = rest.first()?.parse().ok()?;
                    let rule = Rule::new(&rest[1..]).ok()?;
                    let rules = rules_or_builtin(table, chain);
                    rules.insert(position.checked_sub(1)?.min(rules.len()), rule);
                }
                "-D" => {
                    let rules = table.rules.get_mut(chain.as_str())?;
                    let at = rules.iter().position(|r| r.is(rest))?;
                    rules.remove(at);
                }
                "-F" => table.rules.get_mut(chain.as_str())?.clear(),
                "-X" => {
                    table.rules.remove(chain.as_str())?;
                    table.chains.retain(|c| **c != **chain);
                }
                "-E" => rename(table, chain, rest.first()?)?,
                _ => return None,
            }
            if matches!(verb.as_str(), "-A" | "-I") {
                grown.push(chain.clone());
            }
        }
        for chain in grown {
            if let Some(rules) = table.rules.get_mut(chain.as_str()) {
                rules.shrink_to_fit();
            }
        }
        Some(())
    }

    /// clean-traffic on port `vnet{i}` at `ip`, with an IPv4 chain
    /// besides (so the shared iptables chains come and go too).
    fn clean_traffic(i: usize, ip: &str) -> Desired<'static> {
        let source = MemorySource::from_iter(builtin_filters());
        let mut params = Params::default();
        params.push("IP", ip.to_string());
        let top = FilterRef {
            filter: FilterName::new("clean-traffic").unwrap(),
            params,
        };
        let mac = format!("52:54:00:00:00:{i:02x}").parse().unwrap();
        let port = IfName::new(format!("vnet{i}")).unwrap();
        let Compiled::Program(program) = compile(&source, &top, mac, &port).unwrap() else {
            panic!("IP is bound");
        };
        let mut chains = crate::render::ruleset(&program).unwrap().chains;
        chains.push(RenderedChain {
            family: Family::Ipv4,
            role: Hook::ForwardFromVm,
            name: format!("FI-vnet{i}"),
            rules: vec![words(&["-p", "tcp", "--dport", "25", "-j", "DROP"])],
        });
        Desired {
            port,
            chains: chains.into(),
            probe: false,
        }
    }

    /// A copy whose rule vectors have the room the originals have (a
    /// clone's have none to spare).
    fn with_the_same_room(tables: &Tables) -> Tables {
        let mut copy = tables.clone();
        for family in crate::apply::FAMILIES {
            for (chain, rules) in &mut copy.get_mut(family).rules {
                rules.reserve_exact(tables.get(family).rules[chain].capacity() - rules.len());
            }
        }
        copy
    }

    /// Plays `desired`'s plans on `tables` both ways and checks they agree.
    fn played_both_ways(tables: &mut Tables, desired: &[Desired]) -> Vec<String> {
        let plans = plan_all(tables, desired).unwrap();
        let mut expected = with_the_same_room(tables);
        let mut texts = Vec::new();
        for plan in &plans {
            for batch in [&plan.cleanup, &plan.build, &plan.switch] {
                if !batch.is_empty() {
                    texts.push(batch.text());
                    play_text(expected.get_mut(plan.family), &batch.text()).unwrap();
                }
            }
        }
        assert!(after(tables, plans));
        assert_eq!(*tables, expected);
        for family in crate::apply::FAMILIES {
            for (chain, rules) in &tables.get(family).rules {
                let reference = &expected.get(family).rules[chain];
                assert_eq!(rules.capacity(), reference.capacity(), "{chain}: room kept");
            }
        }
        texts
    }

    #[test]
    fn the_steps_keep_the_tables_the_restore_text_would() {
        let mut tables = Tables::default();
        // 10 ports: 90 new bridge chains, a bare table: led by `-Z`.
        let first: Vec<Desired> = (0..10)
            .map(|i| clean_traffic(i, &format!("10.0.0.{i}")))
            .collect();
        let texts = played_both_ways(&mut tables, &first);
        assert!(texts[0].starts_with("*nat\n-Z\n"), "{}", texts[0]);
        // An update of two ports (built beside, switched by renames and
        // deletes of hooks by text), with a leftover temporary to clean.
        tables.bridge.add_chain("libvirt-J-vnet3");
        let update = [clean_traffic(2, "10.0.1.2"), clean_traffic(3, "10.0.1.3")];
        let texts = played_both_ways(&mut tables, &update);
        assert!(texts.iter().any(|t| t.contains("\n-E ")), "{texts:?}");
        // One port removed, one added.
        let mut gone = clean_traffic(4, "10.0.0.4");
        gone.chains = Vec::new().into();
        played_both_ways(&mut tables, &[gone, clean_traffic(11, "10.0.0.11")]);
        // Every port removed: the shared chains go too.
        let all: Vec<Desired> = [0, 1, 2, 3, 5, 6, 7, 8, 9, 11]
            .into_iter()
            .map(|i| Desired {
                chains: Vec::new().into(),
                ..clean_traffic(i, "10.0.0.1")
            })
            .collect();
        played_both_ways(&mut tables, &all);
        assert!(tables.ipv4.chains.is_empty() || tables.ipv4.rules.values().all(Vec::is_empty));
    }

    #[test]
    fn the_kept_rules_have_our_spelling_whatever_the_tool_was_given() {
        let mut tables = Tables::default();
        let mut batch = Batch::new(Family::Bridge);
        batch.create_chain("I-vnet0-ipv4").unwrap();
        let rule = words(&["-p", "ipv4", "--ip-source", "10.0.0.1", "-j", "RETURN"]);
        batch.append("I-vnet0-ipv4", &rule).unwrap();
        let stdin = batch.command().stdin.unwrap();
        assert!(stdin.contains(" -p 0x0800 "), "{stdin}");
        assert!(play(tables.get_mut(Family::Bridge), batch).is_some());
        assert!(tables.bridge.rules_of("I-vnet0-ipv4")[0].is(&rule));
    }

    #[test]
    fn a_played_batch_gives_what_the_save_tool_would_list() {
        let mut table = parse_save(
            Family::Ipv4,
            "*filter\n:FORWARD ACCEPT [0:0]\n:FJ-vnet0 - [0:0]\n:FI-vnet0 - [0:0]\n\
             -A FORWARD -j libvirt-in\n-A FI-vnet0 -j DROP\nCOMMIT\n",
        )
        .unwrap();
        let mut batch = Batch::new(Family::Ipv4);
        batch.create_chain("HI-vnet0").unwrap();
        batch.append("HI-vnet0", &words(&["-j", "RETURN"])).unwrap();
        batch
            .insert("FORWARD", 1, &words(&["-j", "FJ-vnet0"]))
            .unwrap();
        batch.flush_chain("FI-vnet0").unwrap();
        batch.delete_chain("FI-vnet0").unwrap();
        batch.rename_chain("FJ-vnet0", "FI-vnet0").unwrap();
        batch
            .delete("FORWARD", &words(&["-j", "libvirt-in"]))
            .unwrap();
        assert!(play(&mut table, batch).is_some());
        assert_eq!(
            table.normalised(),
            ":FORWARD\n:FI-vnet0\n:HI-vnet0\n-A FORWARD -j FI-vnet0\n-A HI-vnet0 -j RETURN\n"
        );
        for rules in table.rules.values() {
            assert_eq!(rules.capacity(), rules.len(), "no room kept");
        }
    }

    #[test]
    fn zeroing_counters_leaves_the_kept_tables_as_they_are() {
        let mut tables = Tables::default();
        let mut batch = Batch::new(Family::Bridge);
        batch.create_chain("libvirt-I-vnet0").unwrap();
        batch.ask_for_whole_table();
        batch
            .append("libvirt-I-vnet0", &["-j".into(), "DROP".into()])
            .unwrap();
        assert!(batch.text().contains("\n-Z\n"), "{}", batch.text());
        assert!(play(tables.get_mut(Family::Bridge), batch.clone()).is_some());
        assert_eq!(
            tables.get(Family::Bridge).normalised(),
            ":libvirt-I-vnet0\n-A libvirt-I-vnet0 -j DROP\n"
        );
    }

    #[test]
    fn what_the_kernel_would_refuse_makes_the_tables_unknown() {
        let table = parse_save(Family::Ipv4, "*filter\n:X - [0:0]\nCOMMIT\n").unwrap();
        for bad in [
            |b: &mut Batch| b.create_chain("X"),
            |b: &mut Batch| b.delete_chain("Y"),
            |b: &mut Batch| b.delete("X", &words(&["-j", "DROP"])),
            |b: &mut Batch| b.rename_chain("Y", "Z"),
        ] {
            let mut batch = Batch::new(Family::Ipv4);
            bad(&mut batch).unwrap();
            assert!(
                play(&mut table.clone(), batch.clone()).is_none(),
                "{}",
                batch.text()
            );
        }
    }
}
