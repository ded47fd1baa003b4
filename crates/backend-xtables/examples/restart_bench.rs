//! The daemon's own cost of a restart after the kernel was flushed, at
//! 1000 clean-traffic ports: plan, write the restore batches and keep
//! the tables afterwards (issue 22), against empty tables.
//!
//! No kernel: the tools are stand-ins that answer at once (`instant`:
//! the time is all ours) or take 100 ms per restore (`slow_restore`, as
//! a real one takes 0.4 s: what is measured beyond 100 ms per restore
//! batch is the daemon's time on the restart's critical path).
//!
//! Usage: cargo run --release -p backend-xtables --example restart_bench [RUNS]

#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use backend_xtables::{Applier, Change, PortRuleset};
use host_io::{Command, Output, RunError, Runner, Tool};
use nwfilter_compile::{compile_dag, resolve, Compiled, MemorySource};
use nwfilter_model::{builtin_filters, FilterName, IfName, Params};

/// Answers every command with empty output (empty tables), after
/// `restore` for a restore.
struct Tools {
    restore: Duration,
}

impl Runner for Tools {
    fn run(&self, cmd: &Command) -> Result<Output, RunError> {
        let restores = [
            Tool::EbtablesRestore,
            Tool::IptablesRestore,
            Tool::Ip6tablesRestore,
        ];
        if restores.contains(&cmd.tool) {
            std::thread::sleep(self.restore);
        }
        Ok(Output {
            status: Some(0),
            ..Output::default()
        })
    }
}

/// This thread's time on a CPU so far (the kernel's schedstat, in ns):
/// unlike the wall clock, not inflated by other work on the machine.
fn cpu_ms() -> f64 {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
    let ns: f64 = stat.split(' ').next().unwrap().parse().unwrap();
    ns / 1e6
}

fn rulesets(n: usize) -> Vec<PortRuleset> {
    let source = MemorySource::from_iter(builtin_filters());
    let dag = resolve(&source, &FilterName::new("clean-traffic").unwrap()).unwrap();
    (0..n)
        .map(|i| {
            let mut params = Params::default();
            params.push("IP", format!("10.100.{}.{}", i / 250, i % 250 + 2));
            let mac = format!("52:54:00:00:{:02x}:{:02x}", i / 256, i % 256)
                .parse()
                .unwrap();
            let port = IfName::new(format!("vnet{i}")).unwrap();
            match compile_dag(&dag, &params, mac, &port).unwrap() {
                Compiled::Program(program) => backend_xtables::ruleset(&program).unwrap(),
                Compiled::AwaitingIp { .. } => panic!("IP is bound"),
            }
        })
        .collect()
}

fn main() {
    let runs: usize = std::env::args().nth(1).map_or(10, |a| a.parse().unwrap());
    let rulesets = rulesets(1000);
    let changes: Vec<Change> = rulesets
        .iter()
        .map(|ruleset| Change {
            ruleset,
            recorded: None,
        })
        .collect();
    for (name, restore) in [
        ("instant", Duration::ZERO),
        ("slow_restore", Duration::from_millis(100)),
    ] {
        let tools = Tools { restore };
        let applier = Applier::new(&tools);
        let (mut wall, mut cpu): (Vec<f64>, Vec<f64>) = (0..runs)
            .map(|_| {
                let mut kept = None;
                let (clock, on_cpu) = (Instant::now(), cpu_ms());
                applier.apply_kept(&mut kept, &changes).unwrap();
                let times = (clock.elapsed().as_secs_f64() * 1000.0, cpu_ms() - on_cpu);
                assert!(kept.is_some(), "the tables are known afterwards");
                drop(kept);
                times
            })
            .unzip();
        wall.sort_by(f64::total_cmp);
        cpu.sort_by(f64::total_cmp);
        println!(
            "ports=1000 stand_in={name} runs={runs} wall_min_ms={:.1} wall_median_ms={:.1} cpu_min_ms={:.1} cpu_median_ms={:.1}",
            wall[0],
            wall[runs / 2],
            cpu[0],
            cpu[runs / 2],
        );
    }
}
