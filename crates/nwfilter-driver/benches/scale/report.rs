//! Prints each result as it comes (one `key=value` line) and all of them
//! as Markdown tables at the end, ready for docs/PERFORMANCE.md.

use std::time::Duration;

use crate::measure::{AddOneResult, BatchResult, CountsResult};
use crate::pps::{Samples, COMPARE};
use crate::stats::Spread;
use crate::throughput::Rates;

#[derive(Debug, Default)]
pub struct Report {
    batches: Vec<BatchResult>,
    counts: Vec<CountsResult>,
    add_one: Vec<AddOneResult>,
    rates: Vec<Rates>,
    pps: Vec<Samples>,
}

/// Prints the 1-minute load average: the machine is shared, so every
/// number needs it beside it.
pub fn load(what: &str) {
    let avg = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let one = avg.split_whitespace().next().unwrap_or("?");
    println!("# {what}: load average {one}");
}

fn time(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 10_000.0 {
        format!("{:.1} s", ms / 1000.0)
    } else if ms >= 100.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

fn gbit(bytes_per_sec: f64) -> String {
    format!("{:.2}", bytes_per_sec * 8.0 / 1e9)
}

impl Report {
    pub fn new() -> Report {
        Report::default()
    }

    pub fn batch(&mut self, r: BatchResult) {
        println!(
            "backend={} n={} reps={} instantiate_ms={:.1} rebuild_ms={:.1} remove_ms={:.1} starts={}/{}/{} nft_chains={} nft_rules={} nft_elements={}",
            r.backend,
            r.n,
            r.reps,
            r.instantiate.wall.as_secs_f64() * 1e3,
            r.rebuild.wall.as_secs_f64() * 1e3,
            r.remove.wall.as_secs_f64() * 1e3,
            r.instantiate.starts,
            r.rebuild.starts,
            r.remove.starts,
            r.nft.chains,
            r.nft.rules,
            r.nft.elements,
        );
        self.counts.push(CountsResult {
            backend: r.backend,
            n: r.n,
            nft: r.nft,
            save: r.save,
        });
        self.batches.push(r);
    }

    pub fn batch_counts_only(&mut self, r: CountsResult) {
        println!(
            "backend={} n={} nft_chains={} nft_rules={} nft_elements={}",
            r.backend, r.n, r.nft.chains, r.nft.rules, r.nft.elements
        );
        self.counts.push(r);
    }

    pub fn add_one(&mut self, r: AddOneResult) {
        println!(
            "backend={} add_one existing={} reps={} median_ms={:.2} min_ms={:.2} max_ms={:.2} starts={}",
            r.backend,
            r.existing,
            r.reps,
            r.median.as_secs_f64() * 1e3,
            r.min.as_secs_f64() * 1e3,
            r.max.as_secs_f64() * 1e3,
            r.starts
        );
        self.add_one.push(r);
    }

    pub fn rates(&mut self, rates: Vec<Rates>) {
        for r in rates {
            let runs: Vec<String> = r.runs.iter().map(|&b| gbit(b)).collect();
            println!(
                "throughput={} others={} offloads={} gbit_s_median={} runs={}",
                r.label,
                r.others,
                if r.offloads { "on" } else { "off" },
                gbit(r.median()),
                runs.join(",")
            );
            self.rates.push(r);
        }
    }

    pub fn pps(&mut self, samples: Vec<Samples>) {
        self.pps.extend(samples);
    }

    pub fn print(&self) {
        self.print_batches();
        self.print_counts();
        self.print_add_one();
        self.print_rates();
        self.print_pps();
        self.print_pps_compared();
    }

    /// The cost of one variant over another's, per round (the inverse of
    /// the ratio of their paired ratios), for each pair of [`COMPARE`]
    /// measured beside the same number of ports.
    fn print_pps_compared(&self) {
        let mut header = false;
        for a in &self.pps {
            for (label_a, label_b) in COMPARE {
                if a.label != label_a {
                    continue;
                }
                let b = self
                    .pps
                    .iter()
                    .find(|b| b.label == label_b && b.others == a.others && b.frame == a.frame);
                let Some(b) = b else { continue };
                let costs: Vec<f64> = a.paired.iter().zip(&b.paired).map(|(x, y)| y / x).collect();
                let Some(spread) = Spread::of(&costs) else {
                    continue;
                };
                if !header {
                    header = true;
                    println!("\n| cost per frame | other ports | frame | median per round (IQR) [95 % CI] |");
                    println!("|---|---:|---:|---|");
                }
                let ci = Spread::median_ci(&costs)
                    .map_or(String::new(), |(lo, hi)| format!("[{lo:.3}–{hi:.3}]"));
                println!(
                    "| {label_a} / {label_b} | {} | {} | {:.3} ({:.3}–{:.3}) {ci} |",
                    a.others, a.frame, spread.median, spread.q1, spread.q3
                );
            }
        }
    }

    /// Per frame length: each variant's rate per CPU-second, its spread,
    /// the CPU time per packet and what it adds to the unfiltered one (the
    /// first row of each frame length, the reference), both ratios, and
    /// the wall-clock rate with the share of time spent waiting for the CPU.
    fn print_pps(&self) {
        let Some(first) = self.pps.first() else {
            return;
        };
        let mut frame = None;
        let mut base = first.spread();
        for s in &self.pps {
            let spread = s.spread();
            if frame != Some(s.frame) {
                frame = Some(s.frame);
                base = spread;
                // The reference ran around every other run: count a variant's.
                let runs = self.pps.iter().filter(|x| x.frame == s.frame);
                let runs = runs.map(|x| x.pps.len()).min().unwrap_or(0);
                println!(
                    "\nUDP, {}-byte frames, {runs} runs per variant (the unfiltered one around each); kpps per CPU-second:",
                    s.frame,
                );
                println!("\n| variant | other ports | kpps median | IQR | min – max | ns/packet | + ns over unfiltered | ratio of medians | paired ratio: median (IQR) [95 % CI] | + ns, paired | wall kpps median | waiting for CPU |");
                println!("|---|---:|---:|---:|---|---:|---:|---:|---|---:|---:|---:|");
            }
            let paired = Spread::of(&s.paired).expect("one ratio per run");
            let wall = Spread::of(&s.wall).expect("one rate per run");
            let waiting = Spread::of(&s.waiting).expect("one share per run");
            let ns = 1e9 / spread.median;
            println!(
                "| {} | {} | {:.1} | {:.1} % | {:.1} – {:.1} | {:.0} | {:+.0} | {:.3} | {:.3} ({:.3}–{:.3}) {} | {:+.0} | {:.1} | {:.0} % |",
                s.label,
                s.others,
                spread.median / 1e3,
                spread.iqr_percent(),
                spread.min / 1e3,
                spread.max / 1e3,
                ns,
                ns - 1e9 / base.median,
                spread.median / base.median,
                paired.median,
                paired.q1,
                paired.q3,
                Spread::median_ci(&s.paired)
                    .map_or(String::new(), |(lo, hi)| format!("[{lo:.3}–{hi:.3}]")),
                // The unfiltered time per packet, over the paired ratio.
                1e9 / base.median * (1.0 / paired.median - 1.0),
                wall.median / 1e3,
                waiting.median * 100.0,
            );
        }
    }

    fn print_batches(&self) {
        if self.batches.is_empty() {
            return;
        }
        println!("\n| backend | N | instantiate | rebuild | remove | process starts (inst. / rebuild / remove) | reps |");
        println!("|---|---:|---:|---:|---:|---|---:|");
        for r in &self.batches {
            println!(
                "| {} | {} | {} | {} | {} | {} / {} / {} | {} |",
                r.backend,
                r.n,
                time(r.instantiate.wall),
                time(r.rebuild.wall),
                time(r.remove.wall),
                r.instantiate.starts,
                r.rebuild.starts,
                r.remove.starts,
                r.reps
            );
        }
    }

    fn print_counts(&self) {
        if self.counts.is_empty() {
            return;
        }
        println!("\n| backend | N | nf_tables chains (base) | nf_tables rules | sets/maps | set/map elements | `*-save`: chains / rules |");
        println!("|---|---:|---:|---:|---:|---:|---|");
        for r in &self.counts {
            let save = r
                .save
                .map_or("–".to_string(), |s| format!("{} / {}", s.chains, s.rules));
            println!(
                "| {} | {} | {} ({}) | {} | {} | {} | {} |",
                r.backend,
                r.n,
                r.nft.chains,
                r.nft.base_chains,
                r.nft.rules,
                r.nft.sets,
                r.nft.elements,
                save
            );
        }
    }

    fn print_add_one(&self) {
        if self.add_one.is_empty() {
            return;
        }
        println!("\n| backend | existing bindings | add one: median | min – max | process starts | ratio to 0 existing |");
        println!("|---|---:|---:|---|---:|---:|");
        for r in &self.add_one {
            let base = self
                .add_one
                .iter()
                .find(|b| b.backend == r.backend && b.existing == 0);
            let ratio = base.map_or("–".to_string(), |b| {
                format!("{:.2}", r.median.as_secs_f64() / b.median.as_secs_f64())
            });
            println!(
                "| {} | {} | {} | {} – {} | {} | {} |",
                r.backend,
                r.existing,
                time(r.median),
                time(r.min),
                time(r.max),
                r.starts,
                ratio
            );
        }
    }

    fn print_rates(&self) {
        if self.rates.is_empty() {
            return;
        }
        println!("\n| filtering | other filtered ports | offloads | TCP Gbit/s (median) | runs |");
        println!("|---|---:|---|---:|---|");
        for r in &self.rates {
            let runs: Vec<String> = r.runs.iter().map(|&b| gbit(b)).collect();
            println!(
                "| {} | {} | {} | {} | {} |",
                r.label,
                r.others,
                if r.offloads { "on" } else { "off" },
                gbit(r.median()),
                runs.join(", ")
            );
        }
    }
}
