//! Wall time and process starts to instantiate, rebuild and remove
//! clean-traffic on N ports. Run by `bench/apply`, which starts it inside a
//! fresh network namespace; it refuses to run in the machine's own.
//!
//! Usage: apply_bench N [N...]   (prints one line per N, mode and phase)
//!
//! Modes: `per-binding` applies, rebuilds and removes one port per
//! operation (what the CLI does); `one-operation` does all N ports in one
//! operation (what a daemon rebuild or restart can do). Per-binding runs
//! only up to `APPLY_BENCH_PER_BINDING_MAX` ports (default 100): each of
//! its operations reads the whole tables, so it grows with N².

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::Command;
use std::time::Instant;

use backend_xtables::{Applier, Change, PortRuleset};
use host_io::{ProcessRunner, Toolset};
use nwfilter_compile::{compile_dag, resolve, Compiled, MemorySource};
use nwfilter_model::{builtin_filters, FilterName, IfName, Params};

fn main() {
    if let Err(e) = run() {
        eprintln!("apply_bench: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    if !in_named_netns()? {
        return Err(
            "refusing to run outside a namespace made by `ip netns add` (use bench/apply)".into(),
        );
    }
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    let mut source = MemorySource::new();
    for filter in builtin_filters() {
        source.insert(filter);
    }
    let dag = resolve(&source, &FilterName::new("clean-traffic")?)?;
    make_ports(sizes.iter().copied().max().unwrap_or(0))?;
    let per_binding_max: usize = match std::env::var("APPLY_BENCH_PER_BINDING_MAX") {
        Ok(v) => v.parse()?,
        Err(_) => 100,
    };
    for n in sizes {
        let first = rulesets(&dag, n, 0)?;
        let second = rulesets(&dag, n, 1)?;
        for batched in [false, true] {
            if batched || n <= per_binding_max {
                measure(n, batched, &first, &second)?;
            }
        }
    }
    Ok(())
}

/// Whether this process runs in one of the namespaces under /run/netns
/// (same nsfs inode), i.e. not in the machine's own.
fn in_named_netns() -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let own = std::fs::metadata("/proc/self/ns/net")?;
    let Ok(entries) = std::fs::read_dir("/run/netns") else {
        return Ok(false);
    };
    for entry in entries {
        let meta = std::fs::metadata(entry?.path())?;
        if meta.dev() == own.dev() && meta.ino() == own.ino() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `vnet0..` on a bridge, with veth peers in the same namespace.
fn make_ports(n: usize) -> Result<(), Box<dyn std::error::Error>> {
    let mut script = String::from("link add br0 type bridge\nlink set br0 up\n");
    for i in 0..n {
        script.push_str(&format!(
            "link add vnet{i} type veth peer name gst{i}\nlink set vnet{i} master br0 up\nlink set gst{i} up\n"
        ));
    }
    let path = std::env::temp_dir().join(format!("apply-bench-{}.ip", std::process::id()));
    std::fs::write(&path, script)?;
    let status = Command::new("ip").arg("-batch").arg(&path).status()?;
    std::fs::remove_file(&path)?;
    if !status.success() {
        return Err("creating the ports failed".into());
    }
    Ok(())
}

/// clean-traffic for ports 0..n; `generation` changes every port's IP, so
/// the second set is a real rebuild.
fn rulesets(
    dag: &nwfilter_compile::FilterDag,
    n: usize,
    generation: usize,
) -> Result<Vec<PortRuleset>, Box<dyn std::error::Error>> {
    (0..n)
        .map(|i| {
            let mut params = Params::default();
            params.push(
                "IP",
                format!("10.{}.{}.{}", 100 + generation, i / 250, i % 250 + 2),
            );
            let mac = format!("52:54:00:00:{:02x}:{:02x}", i / 256, i % 256).parse()?;
            let port = IfName::new(format!("vnet{i}"))?;
            match compile_dag(dag, &params, mac, &port)? {
                Compiled::Program(program) => Ok(backend_xtables::ruleset(&program)?),
                Compiled::AwaitingIp { .. } => Err("IP is bound, learning cannot start".into()),
            }
        })
        .collect()
}

fn measure(
    n: usize,
    batched: bool,
    first: &[PortRuleset],
    second: &[PortRuleset],
) -> Result<(), Box<dyn std::error::Error>> {
    let runner = ProcessRunner::new(Toolset::default());
    let applier = Applier::new(&runner);
    let phase = |name: &str,
                 step: &dyn Fn(&[usize]) -> Result<(), backend_xtables::ApplyError>|
     -> Result<(), Box<dyn std::error::Error>> {
        let starts = runner.process_starts();
        let clock = Instant::now();
        let all: Vec<usize> = (0..n).collect();
        if batched {
            step(&all)?;
        } else {
            for i in 0..n {
                step(&[i])?;
            }
        }
        let secs = clock.elapsed().as_secs_f64();
        let procs = runner.process_starts() - starts;
        println!(
            "n={n} mode={} phase={name} wall_s={secs:.3} per_port_ms={:.1} process_starts={procs} per_port_starts={:.2}",
            if batched { "one-operation" } else { "per-binding" },
            secs * 1000.0 / n as f64,
            procs as f64 / n as f64,
        );
        Ok(())
    };
    phase("instantiate", &|ports| {
        let list: Vec<Change> = ports
            .iter()
            .map(|&i| Change {
                ruleset: &first[i],
                recorded: None,
            })
            .collect();
        applier.apply(&list).map(drop)
    })?;
    phase("rebuild", &|ports| {
        let list: Vec<Change> = ports
            .iter()
            .map(|&i| Change {
                ruleset: &second[i],
                recorded: Some(&first[i]),
            })
            .collect();
        applier.apply(&list).map(drop)
    })?;
    phase("remove", &|ports| {
        let list: Vec<IfName> = ports.iter().map(|&i| second[i].port.clone()).collect();
        applier.remove(&list).map(drop)
    })?;
    let tables = applier.read_tables()?;
    let left: usize = [&tables.bridge, &tables.ipv4, &tables.ipv6]
        .iter()
        .map(|t| t.rules.values().map(Vec::len).sum::<usize>())
        .sum();
    if left != 0 {
        return Err(format!("{left} rules left after removing every port").into());
    }
    Ok(())
}
