//! The xtables tables a stopping engine leaves for the next start.
//!
//! A restart with every rule in place spent 0.65–0.76 s of its 0.8 s at
//! 1000 ports in `ebtables-save` (issue 22, stop 35): a new process knows
//! nothing of the kernel, so it reads every table. At a clean stop the
//! engine's kept tables are often proven to be exactly the kernel's
//! (`settled`: nothing has committed since our own last commit); the
//! engine then writes them to [`FILE`] with what names that moment: the
//! boot, the network namespace, the ruleset generation, and for each of
//! the three tables its handle (which incarnation it is: a table deleted
//! and made again gets another) and how many chains it holds.
//!
//! The next start takes the file (removes it, whatever it holds) and
//! plans on those tables instead of reading them only if all of that is
//! still so and the `*-save` tools still work through nf_tables: then
//! nothing at all has committed to nf_tables in this namespace since the
//! stop, and the tables are what a read would give. A reboot, another
//! namespace, one commit by anyone (another tool, a flush, a second
//! process of ours), a table made again, tools switched to legacy, or a
//! torn or foreign file: the start reads the tables as before. A process
//! killed without its stop leaves no file, so its successor reads too.
//!
//! Written once per stop (O(ports), off every request's path); never
//! synced: after an OS crash the boot differs and the file is refused.

use std::borrow::Cow;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use backend_xtables::apply::{Rule, Table, Tables, FAMILIES};
use host_io::{Runner, TableSeen};
use serde::{Deserialize, Serialize};

use super::state_file;

/// The file in the state directory.
const FILE: &str = "xtables-tables.handover";

/// Changed whenever the file's meaning changes: an older file is refused.
const FORMAT: u32 = 1;

/// Where and when the tables were the kernel's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Moment<'a> {
    /// `/proc/sys/kernel/random/boot_id`.
    boot: Cow<'a, str>,
    /// The inode of the network namespace (`/proc/thread-self/ns/net`).
    netns: u64,
    /// nf_tables' ruleset generation.
    generation: u32,
    /// The three tables in `FAMILIES`' order.
    tables: [TableSeen; 3],
}

#[derive(Debug, Serialize, Deserialize)]
struct HandedOver<'a> {
    format: u32,
    #[serde(borrow)]
    moment: Moment<'a>,
    /// The three tables in `FAMILIES`' order.
    #[serde(borrow)]
    contents: [Listed<'a>; 3],
}

/// A rule as its argument vector.
type Words<'a> = Vec<Cow<'a, str>>;

/// One [`Table`]: its chains in listing order, and its rules per chain as
/// argument vectors.
#[derive(Debug, Serialize, Deserialize)]
struct Listed<'a> {
    #[serde(borrow)]
    chains: Vec<Cow<'a, str>>,
    #[serde(borrow)]
    rules: Vec<(Cow<'a, str>, Vec<Words<'a>>)>,
}

impl<'a> Listed<'a> {
    fn of(table: &'a Table) -> Listed<'a> {
        Listed {
            chains: table.chains.iter().map(|c| Cow::Borrowed(&**c)).collect(),
            rules: (table.rules.iter())
                .map(|(chain, rules)| {
                    let rules = rules
                        .iter()
                        .map(|rule| rule.words().map(Cow::Borrowed).collect())
                        .collect();
                    (Cow::Borrowed(&**chain), rules)
                })
                .collect(),
        }
    }

    /// The table; `None` if a rule cannot be one (a NUL).
    fn into_table(self) -> Option<Table> {
        let mut table = Table::default();
        for (chain, listed) in self.rules {
            let rules: Option<Vec<Rule>> = listed.iter().map(|w| Rule::new(w).ok()).collect();
            table.rules.insert(Arc::from(&*chain), rules?);
        }
        for chain in &self.chains {
            table.add_chain(chain);
        }
        Some(table)
    }
}

fn path(dir: &Path) -> PathBuf {
    dir.join(FILE)
}

/// The moment now as this process sees it; `None` when any part cannot
/// be told (a runner that cannot ask the kernel, no `/proc`).
fn now<R: Runner + ?Sized>(runner: &R) -> Option<Moment<'static>> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let netns = std::fs::metadata("/proc/thread-self/ns/net").ok()?.ino();
    let generation = runner.ruleset_generation()?;
    let tables = backend_xtables::apply::tables_seen(runner)?;
    // The tables were asked after the generation: the same generation
    // after them says no commit fell between.
    (runner.ruleset_generation()? == generation).then_some(Moment {
        boot: Cow::Owned(boot.trim().to_owned()),
        netns,
        generation,
        tables,
    })
}

/// Writes `tables`, the kernel's at `generation`, for the next start.
/// A failure costs that start a read, nothing else: logged.
pub(crate) fn write<R: Runner + ?Sized>(dir: &Path, runner: &R, tables: &Tables, generation: u32) {
    let Some(moment) = now(runner).filter(|m| m.generation == generation) else {
        tracing::debug!("tables not handed over: their moment cannot be told");
        return;
    };
    let handed = HandedOver {
        format: FORMAT,
        moment,
        contents: FAMILIES.map(|family| Listed::of(tables.get(family))),
    };
    let written = serde_json::to_string(&handed)
        .map_err(std::io::Error::other)
        .and_then(|text| state_file::write_atomically(dir, &path(dir), "handover", &text));
    match written {
        Ok(()) => tracing::debug!(generation, "xtables tables handed over to the next start"),
        Err(e) => tracing::warn!("handing the xtables tables over failed: {e}"),
    }
}

/// Takes the tables a stopped engine left in `dir`, with the generation
/// at which they are the kernel's, if they still are (see the module's
/// comment). The file is removed whatever it holds: it is for one start.
pub(crate) fn take<R: Runner + ?Sized>(dir: &Path, runner: &R) -> Option<(Tables, u32)> {
    let text = std::fs::read_to_string(path(dir)).ok()?;
    if let Err(e) = state_file::remove(&path(dir)) {
        // Kept, it could be taken again after our first commit; but that
        // commit moves the generation, which refutes it then.
        tracing::warn!("removing the handed-over tables failed: {e}");
    }
    let handed: HandedOver<'_> = match serde_json::from_str(&text) {
        Ok(handed) => handed,
        Err(e) => {
            tracing::debug!("handed-over tables not read: {e}");
            return None;
        }
    };
    if handed.format != FORMAT {
        return None;
    }
    if now(runner).as_ref() != Some(&handed.moment) {
        tracing::debug!("handed-over tables refused: something changed since the stop");
        return None;
    }
    if !backend_xtables::apply::tools_through_nf_tables(runner) {
        tracing::debug!("handed-over tables refused: the tools are not nf_tables ones now");
        return None;
    }
    let [bridge, ipv4, ipv6] = handed.contents.map(Listed::into_table);
    let tables = Tables {
        bridge: bridge?,
        ipv4: ipv4?,
        ipv6: ipv6?,
        through_nf_tables: true,
    };
    Some((tables, handed.moment.generation))
}

#[cfg(test)]
mod tests {
    use super::*;
    use backend_xtables::Family;

    fn tables() -> Tables {
        let mut tables = Tables {
            through_nf_tables: true,
            ..Tables::default()
        };
        let bridge = tables.get_mut(Family::Bridge);
        bridge
            .add_chain("PREROUTING")
            .push(Rule::new(&["-i", "vnet0", "-j", "libvirt-I-vnet0"]).unwrap());
        bridge
            .add_chain("libvirt-I-vnet0")
            .push(Rule::new(&["--comment", "two words \"quoted\"\n", "-j", "ACCEPT"]).unwrap());
        tables.get_mut(Family::Ipv4).add_chain("FORWARD");
        tables
    }

    #[test]
    fn a_table_survives_the_file_word_for_word() {
        let tables = tables();
        for family in FAMILIES {
            let text = serde_json::to_string(&Listed::of(tables.get(family))).unwrap();
            let back: Listed<'_> = serde_json::from_str(&text).unwrap();
            assert_eq!(
                &back.into_table().unwrap(),
                tables.get(family),
                "{family:?}"
            );
        }
    }

    #[test]
    fn without_a_kernel_to_ask_nothing_is_written_or_taken() {
        let dir = tempfile::tempdir().unwrap();
        let runner = host_io::RecordingRunner::new();
        write(dir.path(), &runner, &tables(), 7);
        assert!(!path(dir.path()).exists());
        // A file written elsewhere is taken (removed) but not trusted.
        std::fs::write(path(dir.path()), "{}").unwrap();
        assert!(take(dir.path(), &runner).is_none());
        assert!(!path(dir.path()).exists());
    }
}
