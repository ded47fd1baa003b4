//! Timed operations: instantiate / rebuild / remove N ports in one
//! operation each, and adding ONE binding beside N existing ones. Every
//! repetition runs in a fresh namespace; wall time is measured around the
//! `Applier` call only (rules are compiled and rendered beforehand).

use std::time::{Duration, Instant};

use host_io::ProcessRunner;

use crate::counts::{NftCounts, SaveCounts};
use crate::lab::{Error, Netns};
use crate::workload::{names, rules_for, runner_in, Backend, Compiler, Nftables, Port};

/// One phase's median time and process starts (those are exact, the same
/// in every repetition).
#[derive(Debug, Clone, Copy)]
pub struct Phase {
    pub wall: Duration,
    pub starts: usize,
}

#[derive(Debug, Clone)]
pub struct BatchResult {
    pub backend: &'static str,
    pub n: usize,
    pub reps: usize,
    pub instantiate: Phase,
    pub rebuild: Phase,
    pub remove: Phase,
    /// Kernel objects with all N ports instantiated.
    pub nft: NftCounts,
    /// The `*-save` view (xtables only).
    pub save: Option<SaveCounts>,
}

pub fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn timed(
    runner: &ProcessRunner,
    step: impl FnOnce() -> Result<(), Error>,
) -> Result<(Duration, usize), Error> {
    let starts = runner.process_starts();
    let clock = Instant::now();
    step()?;
    Ok((clock.elapsed(), runner.process_starts() - starts))
}

/// Instantiate, rebuild (every port's IP changed) and remove N ports, each
/// as one operation, `reps` times.
pub fn batch<B: Backend>(compiler: &Compiler, n: usize, reps: usize) -> Result<BatchResult, Error> {
    let (ports, first) = rules_for::<B>(compiler, 0..n, 0)?;
    let (_, second) = rules_for::<B>(compiler, 0..n, 1)?;
    let first: Vec<&B::Rules> = first.iter().collect();
    let second: Vec<&B::Rules> = second.iter().collect();
    let ifnames = names(&ports);
    let mut times = [Vec::new(), Vec::new(), Vec::new()];
    let mut starts = [0; 3];
    let mut nft = NftCounts::default();
    let mut save = None;
    for rep in 0..reps {
        let ns = Netns::new(B::NAME)?;
        let runner = runner_in(&ns.name);
        let phases = [
            timed(&runner, || B::apply(&runner, &first, None))?,
            // Counted between the phases, outside the timing.
            {
                if rep == 0 {
                    nft = NftCounts::read(&ns)?;
                    if B::SAVE_VIEW {
                        save = Some(SaveCounts::read(&ns)?);
                    }
                }
                timed(&runner, || B::apply(&runner, &second, Some(&first)))?
            },
            timed(&runner, || B::remove(&runner, &ifnames))?,
        ];
        let left = NftCounts::read(&ns)?;
        if left.rules != 0 {
            return Err(format!("{}: {} rules left after remove", B::NAME, left.rules).into());
        }
        for (i, (wall, procs)) in phases.into_iter().enumerate() {
            times[i].push(wall);
            starts[i] = procs;
        }
    }
    let [i, r, m] = times.map(median);
    Ok(BatchResult {
        backend: B::NAME,
        n,
        reps,
        instantiate: Phase {
            wall: i,
            starts: starts[0],
        },
        rebuild: Phase {
            wall: r,
            starts: starts[1],
        },
        remove: Phase {
            wall: m,
            starts: starts[2],
        },
        nft,
        save,
    })
}

#[derive(Debug, Clone)]
pub struct AddOneResult {
    pub backend: &'static str,
    pub existing: usize,
    pub reps: usize,
    pub median: Duration,
    pub min: Duration,
    pub max: Duration,
    pub starts: usize,
}

/// Adds ONE clean-traffic binding (port `vnet5000`) with `existing` ports
/// already applied, `reps` times; the port is removed again after each
/// repetition, outside the timing.
pub fn add_one<B: Backend>(
    compiler: &Compiler,
    existing: usize,
    reps: usize,
) -> Result<AddOneResult, Error> {
    let ns = Netns::new(B::NAME)?;
    let runner = runner_in(&ns.name);
    if existing > 0 {
        let (_, rules) = rules_for::<B>(compiler, 0..existing, 0)?;
        let refs: Vec<&B::Rules> = rules.iter().collect();
        B::apply(&runner, &refs, None)?;
    }
    let port = Port::new(5000, 0);
    let new = B::render(&compiler.program(&port)?)?;
    let mut times = Vec::with_capacity(reps);
    let mut starts = 0;
    for _ in 0..reps {
        let (wall, procs) = timed(&runner, || B::apply(&runner, &[&new], None))?;
        times.push(wall);
        starts = procs;
        B::remove(&runner, std::slice::from_ref(&port.name))?;
    }
    Ok(summary(B::NAME, existing, times, starts))
}

/// Kernel objects with `n` ports instantiated in one operation.
#[derive(Debug, Clone)]
pub struct CountsResult {
    pub backend: &'static str,
    pub n: usize,
    pub nft: NftCounts,
    pub save: Option<SaveCounts>,
}

pub fn counts_only<B: Backend>(compiler: &Compiler, n: usize) -> Result<CountsResult, Error> {
    let ns = Netns::new(B::NAME)?;
    let runner = runner_in(&ns.name);
    let (_, rules) = rules_for::<B>(compiler, 0..n, 0)?;
    B::apply(&runner, &rules.iter().collect::<Vec<_>>(), None)?;
    Ok(CountsResult {
        backend: B::NAME,
        n,
        nft: NftCounts::read(&ns)?,
        save: B::SAVE_VIEW.then(|| SaveCounts::read(&ns)).transpose()?,
    })
}

/// As [`add_one`] for nftables, with the kernel state kept by the caller
/// between operations (`Applier::apply_tracked`, as a long-running daemon
/// can): no read of the ruleset before each transaction.
pub fn add_one_tracked(
    compiler: &Compiler,
    existing: usize,
    reps: usize,
) -> Result<AddOneResult, Error> {
    use backend_nftables::{Applier, Change};
    let ns = Netns::new("nft-tracked")?;
    let runner = runner_in(&ns.name);
    let applier = Applier::new(&runner);
    let mut state = None;
    if existing > 0 {
        let (_, rules) = rules_for::<Nftables>(compiler, 0..existing, 0)?;
        let changes: Vec<Change> = rules
            .iter()
            .map(|ruleset| Change {
                ruleset,
                recorded: None,
            })
            .collect();
        applier.apply_tracked(&mut state, &changes)?;
    }
    let port = Port::new(5000, 0);
    let new = Nftables::render(&compiler.program(&port)?)?;
    let change = Change {
        ruleset: &new,
        recorded: None,
    };
    let mut times = Vec::with_capacity(reps);
    let mut starts = 0;
    for _ in 0..reps {
        let (wall, procs) = timed(&runner, || {
            applier.apply_tracked(&mut state, &[change])?;
            Ok(())
        })?;
        times.push(wall);
        starts = procs;
        applier.remove_tracked(&mut state, std::slice::from_ref(&port.name))?;
    }
    Ok(summary(TRACKED, existing, times, starts))
}

/// The label of [`add_one_tracked`]'s results.
pub const TRACKED: &str = "nftables, state kept";

fn summary(
    backend: &'static str,
    existing: usize,
    times: Vec<Duration>,
    starts: usize,
) -> AddOneResult {
    let min = *times.iter().min().expect("reps > 0");
    let max = *times.iter().max().expect("reps > 0");
    AddOneResult {
        backend,
        existing,
        reps: times.len(),
        median: median(times),
        min,
        max,
        starts,
    }
}
