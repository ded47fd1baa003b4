//! Issue 8, item 6: the cost of adding ONE clean-traffic binding when 1000
//! exist, against when none exist.
//!
//! - `plan/N`: building the transaction (pure), and its size in commands and
//!   bytes of `nft -f` input (printed once, see docs/PERFORMANCE.md);
//! - `apply/N` (root only, in a namespace of its own): the whole operation
//!   as the applier runs it (two reads, one `nft -f -` transaction), the
//!   port removed again outside the timed part.
//!
//! It also prints the kernel object count for 1000 clean-traffic ports with
//! this backend and with the xtables backend.

use std::hint::black_box;
use std::process::Command as Process;
use std::time::{Duration, Instant};

use backend_nftables::apply::{plan_apply, transaction};
use backend_nftables::{Applier, Change, KernelState, PortRuleset};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use host_io::{ProcessRunner, Toolset};
use nwfilter_compile::ir::Program;
use nwfilter_compile::{compile, Compiled, MemorySource};
use nwfilter_model::{FilterName, FilterRef, IfName, MacAddr6, Params};

fn program(i: u32) -> Program {
    let source = MemorySource::from_iter(nwfilter_model::builtin_filters());
    let [_, a, b, c] = i.to_be_bytes();
    let mut params = Params::default();
    params.push("IP", format!("10.{a}.{b}.{}", c.max(1)));
    let top = FilterRef {
        filter: FilterName::new("clean-traffic").unwrap(),
        params,
    };
    let port = IfName::new(format!("vnet{i}")).unwrap();
    let mac = MacAddr6::new(0x52, 0x54, 0x00, a, b, c);
    match compile(&source, &top, mac, &port).unwrap() {
        Compiled::Program(p) => p,
        Compiled::AwaitingIp { .. } => unreachable!("IP is bound"),
    }
}

fn ruleset(i: u32) -> PortRuleset {
    backend_nftables::ruleset(&program(i)).unwrap()
}

fn changes(rulesets: &[PortRuleset]) -> Vec<Change<'_>> {
    rulesets
        .iter()
        .map(|r| Change {
            ruleset: r,
            recorded: None,
        })
        .collect()
}

/// The kernel state after applying `rulesets` (what a read would return).
fn state_with(rulesets: &[PortRuleset]) -> KernelState {
    let mut state = KernelState::default();
    plan_apply(&mut state, &changes(rulesets)).unwrap();
    state
}

#[allow(clippy::print_stdout)]
fn object_counts(rulesets: &[PortRuleset]) {
    let state = state_with(rulesets);
    let templates = state.templates.len();
    let chains: usize = state.templates.values().map(|t| t.chains.len()).sum();
    let rules: usize = state
        .templates
        .values()
        .flat_map(|t| t.chains.values())
        .sum();
    let sets: usize = state.templates.values().map(|t| t.sets.len()).sum();
    let tag_chains = state.ports.values().filter(|p| p.tag_chain).count();
    let own_chains: usize = state.ports.values().map(|p| p.own_chains.len()).sum();
    let elements: usize = state
        .ports
        .values()
        .flat_map(|p| p.elements.values())
        .map(|e| e.len())
        .sum();
    let map_elements: usize = state
        .ports
        .values()
        .map(|p| p.dispatch.len() + usize::from(p.tag.is_some()) + usize::from(p.out_tag))
        .sum();
    println!(
        "nftables, {} ports of clean-traffic: {templates} template(s) of {chains} chains and {rules} rules, {sets} sets; \
         the ports' own: {own_chains} one-rule chains, {tag_chains} tag chains, {elements} set elements, \
         {map_elements} map elements \
         (plus 5 base chains with 7 rules and 7 maps)",
        rulesets.len()
    );
    let (mut x_chains, mut x_rules) = (0, 0);
    for i in 0..rulesets.len() as u32 {
        let x = backend_xtables::ruleset(&program(i)).unwrap();
        x_chains += x.chains.len();
        // Plus one hook rule per root chain (PREROUTING/POSTROUTING, or
        // libvirt-in/-out/-host-in and libvirt-in-post for IP chains).
        x_rules += x.chains.iter().map(|c| c.rules.len()).sum::<usize>();
        x_rules += x
            .chains
            .iter()
            .filter(|c| !matches!(c.role, backend_xtables::Hook::BridgeSub))
            .count();
    }
    println!(
        "xtables, {} ports of clean-traffic: {x_chains} chains, {x_rules} rules (hook rules included, one per port and root chain), no sets",
        rulesets.len()
    );
}

#[allow(clippy::print_stdout)]
fn plan(c: &mut Criterion) {
    let existing: Vec<PortRuleset> = (0..1000).map(ruleset).collect();
    object_counts(&existing);
    let new = ruleset(5000);
    let mut group = c.benchmark_group("add_one_binding_plan");
    for n in [0usize, 1000] {
        let state = state_with(&existing[..n]);
        let change = [Change {
            ruleset: &new,
            recorded: None,
        }];
        let (batch, _) = plan_apply(&mut state.clone(), &change).unwrap();
        let input = transaction(&batch).stdin.unwrap_or_default();
        println!(
            "with {n} existing: {} commands, {} bytes of nft input",
            batch.cmds.len(),
            input.len()
        );
        group.bench_with_input(BenchmarkId::from_parameter(n), &state, |b, state| {
            b.iter_batched(
                || state.clone(),
                // The state is returned, so that dropping it (a 1000-port
                // state takes a while) is not timed.
                |mut s| {
                    let plan = plan_apply(black_box(&mut s), black_box(&change)).unwrap();
                    (plan, s)
                },
                criterion::BatchSize::LargeInput,
            )
        });
    }
    group.finish();
}

/// A namespace of our own for the kernel part, deleted on drop.
struct Netns(String);

impl Netns {
    fn new() -> Option<Netns> {
        let name = format!("nwf-nftbench-{}", std::process::id());
        let ok = Process::new("ip")
            .args(["netns", "add", &name])
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Netns(name))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Process::new("ip").args(["netns", "del", &self.0]).status();
    }
}

#[allow(clippy::print_stderr)]
fn apply(c: &mut Criterion) {
    let Some(ns) = Netns::new() else {
        eprintln!("skipped apply benchmark: cannot create a network namespace (not root?)");
        return;
    };
    let runner = ProcessRunner::new(Toolset::default()).in_netns(ns.0.clone());
    let applier = Applier::new(&runner);
    let existing: Vec<PortRuleset> = (0..1000).map(ruleset).collect();
    let new = ruleset(5000);
    // Tracked: the caller (the engine) keeps the kernel state, as the
    // daemon does; untracked: every operation reads the kernel first.
    let mut group = c.benchmark_group("add_one_binding_apply");
    group.sample_size(20);
    for n in [0usize, 1000] {
        let mut state = None;
        if n > 0 {
            applier
                .apply_tracked(&mut state, &changes(&existing[..n]))
                .unwrap();
        }
        for tracked in [true, false] {
            let id = format!("{}/{n}", if tracked { "tracked" } else { "untracked" });
            group.bench_function(BenchmarkId::from_parameter(id), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let change = Change {
                            ruleset: &new,
                            recorded: None,
                        };
                        let start = Instant::now();
                        if tracked {
                            applier.apply_tracked(&mut state, &[change]).unwrap();
                        } else {
                            applier.apply(&[change]).unwrap();
                            state = None;
                        }
                        total += start.elapsed();
                        applier
                            .remove_tracked(&mut state, std::slice::from_ref(&new.port))
                            .unwrap();
                    }
                    total
                })
            });
        }
    }
    group.finish();
}

criterion_group!(benches, plan, apply);
criterion_main!(benches);
