//! Issue 8, items 3, 6 and 7: both backends side by side, in the kernel.
//!
//! ```text
//! cargo bench -p nwfilter-driver --bench scale -- [PART...] [OPTION...]
//! PART:   apply       instantiate / rebuild / remove N ports, one operation each
//!         add-one     add ONE binding beside 0 and beside 1000 existing ones
//!         counts      kernel objects with 1000 ports (also printed by apply)
//!         throughput  TCP between two filtered guests, beside 1 and 1000 ports
//!         pps         UDP packet rate from ONE pinned sender, the ruleset
//!                     taken apart (issue 20 item 1): pps.rs
//!         (default: all five)
//! OPTION: --sizes=1,100,1000  --reps=3 (apply; 1 for N >= 1000)
//!         --add-reps=15  --existing=1000 (add-one: beside 0 and each of these)
//!         --others=1,1000  --secs=3  --runs=3 (throughput)
//!         --pps-runs=30  --pps-secs=0.3  --frames=1514[,60]  --cpu=LAST
//!         --variants=KEY,... (pps: unfiltered is always there; keys
//!         bridge-skeleton skeleton dispatch ct ct-inet dualstack xt-ct)
//!         --backend=nftables|xtables
//!         --filter=clean-traffic|clean-traffic-dualstack (every port's filter;
//!         the dual-stack one also binds IPV6 per port: issue 16, item 6;
//!         pps sets each variant's filter itself)
//! ```
//!
//! Root only: everything runs in network namespaces it creates and deletes
//! (never this machine's own firewall); elsewhere it says why and exits.
//! Results and how to read them: docs/PERFORMANCE.md, "Both backends".

#![allow(clippy::print_stdout, clippy::print_stderr)]

mod blast;
mod counts;
mod lab;
mod measure;
mod partial;
mod pps;
mod report;
mod stats;
mod throughput;
mod workload;

use lab::Error;
use workload::{Backend, Compiler, Nftables, Xtables};

/// What to run, from the command line.
#[derive(Debug)]
struct Options {
    parts: Vec<String>,
    sizes: Vec<usize>,
    existing: Vec<usize>,
    others: Vec<usize>,
    reps: usize,
    add_reps: usize,
    secs: u64,
    runs: usize,
    backends: Vec<&'static str>,
    filter: String,
    pps: pps::Options,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, Error> {
        let mut o = Options {
            parts: Vec::new(),
            filter: "clean-traffic".to_owned(),
            sizes: vec![1, 100, 1000],
            existing: vec![1000],
            others: vec![1, 1000],
            reps: 3,
            add_reps: 15,
            secs: 3,
            runs: 3,
            backends: vec![Xtables::NAME, Nftables::NAME],
            pps: pps::Options {
                // Short runs, many of them: each is paired with the
                // unfiltered runs around it, and the pairs are closer in
                // time (docs/PERFORMANCE.md, "Per-packet cost without TCP's
                // noise").
                runs: 30,
                secs: 0.3,
                frames: vec![1514],
                // The last CPU: the first one takes more of the machine's
                // other interrupts and housekeeping.
                cpu: std::thread::available_parallelism().map_or(0, |n| n.get() - 1),
                others: Vec::new(),
                only: Vec::new(),
            },
        };
        for arg in args {
            let (key, value) = arg.split_once('=').unwrap_or((arg, ""));
            match key {
                // What `cargo bench` itself passes.
                "--bench" => {}
                "--sizes" => {
                    o.sizes = value.split(',').map(str::parse).collect::<Result<_, _>>()?
                }
                "--existing" => {
                    o.existing = value.split(',').map(str::parse).collect::<Result<_, _>>()?
                }
                "--others" => {
                    o.others = value.split(',').map(str::parse).collect::<Result<_, _>>()?
                }
                "--reps" => o.reps = value.parse()?,
                "--add-reps" => o.add_reps = value.parse()?,
                "--secs" => o.secs = value.parse()?,
                "--runs" => o.runs = value.parse()?,
                "--backend" => {
                    o.backends = match value {
                        "nftables" => vec![Nftables::NAME],
                        "xtables" => vec![Xtables::NAME],
                        _ => return Err(format!("--backend={value}: nftables or xtables").into()),
                    }
                }
                "--filter" => o.filter = value.to_owned(),
                "--pps-runs" => o.pps.runs = value.parse()?,
                "--pps-secs" => o.pps.secs = value.parse()?,
                "--frames" => {
                    o.pps.frames = value.split(',').map(str::parse).collect::<Result<_, _>>()?
                }
                "--cpu" => o.pps.cpu = value.parse()?,
                "--variants" => o.pps.only = value.split(',').map(String::from).collect(),
                "apply" | "add-one" | "counts" | "throughput" | "pps" => {
                    o.parts.push(key.to_string())
                }
                _ => return Err(format!("unknown argument {arg:?} (see the bench's doc)").into()),
            }
        }
        if o.parts.is_empty() {
            o.parts = ["apply", "add-one", "counts", "throughput", "pps"]
                .map(String::from)
                .to_vec();
        }
        if o.reps == 0 || o.add_reps == 0 || o.runs == 0 || o.pps.runs == 0 {
            return Err("--reps, --add-reps, --runs and --pps-runs must be at least 1".into());
        }
        if o.pps.secs.is_nan() || o.pps.secs <= 0.0 {
            return Err("--pps-secs must be more than 0".into());
        }
        o.pps.others = o.others.clone();
        Ok(o)
    }

    fn wants(&self, part: &str) -> bool {
        self.parts.iter().any(|p| p == part)
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // The traffic roles, started by the throughput part inside a guest.
    let role = match args.first().map(String::as_str) {
        Some("--nwf-sink") if args.len() == 2 => Some(throughput::sink(&args[1])),
        Some("--nwf-source") if args.len() == 3 => Some(throughput::source(&args[1], &args[2])),
        Some("--nwf-blast") if args.len() == 4 => Some(blast::sender(&args[1], &args[2], &args[3])),
        Some("--nwf-udp-hole") if args.len() == 3 => Some(blast::hole(&args[1], &args[2])),
        _ => None,
    };
    if let Some(result) = role {
        if let Err(e) = result {
            eprintln!("scale bench traffic role: {e}");
            std::process::exit(1);
        }
        return;
    }
    // `cargo test --all-targets` runs benches without `--bench`: a test run
    // is no place for minutes of kernel work.
    if !args.iter().any(|a| a == "--bench") {
        println!("scale bench: not run under `cargo test` (use `cargo bench` or bench/backends)");
        return;
    }
    if let Err(e) = run(&args) {
        eprintln!("scale bench: {e}");
        std::process::exit(1);
    }
}

fn run(args: &[String]) -> Result<(), Error> {
    let options = Options::parse(args)?;
    if let Some(why) = lab::cannot_run() {
        println!("skipped scale bench: {why}");
        return Ok(());
    }
    let probe = lab::Netns::new("probe")?;
    let mut backends = Vec::new();
    for (name, program) in [
        (Xtables::NAME, Xtables::PROGRAM),
        (Nftables::NAME, Nftables::PROGRAM),
    ] {
        if !options.backends.contains(&name) {
            continue;
        }
        if lab::has_program(&probe, program) {
            backends.push(name);
        } else {
            println!("skipped {name}: `{program}` is not installed");
        }
    }
    let has_ethtool = lab::has_program(&probe, "ethtool");
    let has_taskset = lab::has_program(&probe, "taskset");
    drop(probe);
    let compiler = Compiler::new(&options.filter)?;
    let mut out = report::Report::new();
    for &backend in &backends {
        if backend == Xtables::NAME {
            parts::<Xtables>(&options, &compiler, &mut out, has_ethtool)?;
        } else {
            parts::<Nftables>(&options, &compiler, &mut out, has_ethtool)?;
        }
    }
    if options.wants("throughput") {
        report::load("throughput baseline");
        let lab = throughput::Lab::new(0)?;
        lab.check_filtering(false)?;
        out.rates(throughput::rates(
            &lab,
            "unfiltered",
            0,
            options.secs,
            options.runs,
            has_ethtool,
        )?);
    }
    if options.wants("pps") {
        if !has_taskset {
            return Err(
                "the pps part pins its sender with `taskset` (util-linux): not installed".into(),
            );
        }
        if !has_ethtool {
            println!("# pps: `ethtool` is not installed, veth offloads stay as they are");
        }
        out.pps(pps::run(&options.pps, &backends, has_ethtool)?);
    }
    out.print();
    Ok(())
}

fn parts<B: Backend>(
    options: &Options,
    compiler: &Compiler,
    out: &mut report::Report,
    has_ethtool: bool,
) -> Result<(), Error> {
    if options.wants("apply") {
        for &n in &options.sizes {
            report::load(&format!("{} apply n={n}", B::NAME));
            let reps = if n >= 1000 { 1 } else { options.reps };
            out.batch(measure::batch::<B>(compiler, n, reps)?);
        }
    }
    if options.wants("counts") && !(options.wants("apply") && options.sizes.contains(&1000)) {
        report::load(&format!("{} counts", B::NAME));
        out.batch_counts_only(measure::counts_only::<B>(compiler, 1000)?);
    }
    if options.wants("add-one") {
        for existing in std::iter::once(0).chain(options.existing.iter().copied()) {
            report::load(&format!("{} add-one existing={existing}", B::NAME));
            out.add_one(measure::add_one::<B>(compiler, existing, options.add_reps)?);
        }
        if B::NAME == Nftables::NAME {
            for existing in std::iter::once(0).chain(options.existing.iter().copied()) {
                report::load(&format!("{} add-one existing={existing}", measure::TRACKED));
                out.add_one(measure::add_one_tracked(
                    compiler,
                    existing,
                    options.add_reps,
                )?);
            }
        }
    }
    if options.wants("throughput") {
        for &others in &options.others {
            report::load(&format!("{} throughput others={others}", B::NAME));
            let lab = throughput::Lab::new(others)?;
            lab.filter::<B>(compiler, others)?;
            lab.check_filtering(true)?;
            out.rates(throughput::rates(
                &lab,
                B::NAME,
                others,
                options.secs,
                options.runs,
                has_ethtool,
            )?);
        }
    }
    Ok(())
}
