//! Per-packet cost as a UDP packet rate (issue 20 item 1, issue 16 item 6),
//! with far less variance than the TCP throughput part.
//!
//! Why not TCP: one TCP flow's rate depends on the sender's and receiver's
//! scheduling on the two vCPUs, on ACK clocking and window growth, and
//! moved ±20–40 % run to run. Here ONE sender, pinned to one CPU with
//! `taskset`, sends UDP datagrams from guest A to guest B as fast as it
//! can; on veth the whole path of a datagram (A's stack, the bridge and
//! its hooks, B's stack) runs on that CPU inside `send`, so the rate is
//! 1 / (one CPU's cost per packet). Frames are counted where they arrive:
//! B's `eth0` rx counter (nothing legitimate is dropped by the filter, so
//! no receiving socket is needed; a socket that is never read keeps B from
//! answering with ICMP: blast.rs).
//!
//! Every variant gets its own lab (throughput.rs's namespaces: a bridge,
//! two guests), all set up first and kept; then `runs` rounds of one short
//! run per lab, alternating the order (forward, backward) so drift hits
//! every variant alike. Reported per variant: the median rate, quartiles
//! and extremes, the ratio of its median to the unfiltered one, and the
//! median of the per-round ratios (the same round's unfiltered run as the
//! reference, which cancels drift slower than a round). The unfiltered lab
//! is measured twice (an A/A pair): how far apart those two are is the
//! resolution of the invocation.

use std::io::{BufRead, BufReader};

use crate::lab::{Error, Reaped};
use crate::partial::Partial;
use crate::stats::Spread;
use crate::throughput::Lab;
use crate::workload::{Backend, Compiler, Nftables, Xtables};

const HOLE_PORT: u16 = 5202;

/// clean-traffic plus one IP-layer rule: the ports get mark tags and
/// elements in the inet table's dispatch maps, so a packet also takes the
/// inet path (tag written in the bridge table, the port's inet chain
/// reached through the mark). The rule drops TCP to the discard port,
/// which the lab's UDP never matches, so every packet walks the whole
/// chain; a drop rule needs no conntrack state.
const CT_INET: &str = r#"<filter name='nwfb-clean-traffic-inet' chain='root'>
  <filterref filter='clean-traffic'/>
  <rule action='drop' direction='inout' priority='500'>
    <tcp dstportstart='9'/>
  </rule>
</filter>"#;

/// How a variant's lab is filtered.
#[derive(Debug, Clone, Copy)]
enum Setup {
    Unfiltered,
    Partial(Partial),
    /// Through the real backend (workload.rs), with a filter name.
    Full {
        backend: &'static str,
        filter: &'static str,
    },
}

/// One configuration measured.
#[derive(Debug, Clone)]
pub struct Variant {
    /// Short name, for `--variants=`.
    pub key: &'static str,
    pub label: &'static str,
    /// Other filtered ports beside the two guests.
    pub others: usize,
    setup: Setup,
}

impl Variant {
    fn backend(&self) -> &'static str {
        match self.setup {
            Setup::Unfiltered => "none",
            Setup::Partial(_) => Nftables::NAME,
            Setup::Full { backend, .. } => backend,
        }
    }
}

/// Every variant, each full or dispatch one beside each of `others`; the
/// unfiltered baseline first (the per-round reference).
pub fn variants(others: &[usize]) -> Vec<Variant> {
    let one = |key, label, setup| Variant {
        key,
        label,
        others: 0,
        setup,
    };
    let mut v = vec![
        one("unfiltered", "unfiltered", Setup::Unfiltered),
        one("unfiltered", "unfiltered (A/A twin)", Setup::Unfiltered),
        one(
            "bridge-skeleton",
            "nft: bridge table skeleton only",
            Setup::Partial(Partial::BridgeSkeleton),
        ),
        one(
            "skeleton",
            "nft: skeleton (bridge + inet)",
            Setup::Partial(Partial::Skeleton),
        ),
    ];
    let each: [(&str, &str, Setup); 5] = [
        (
            "dispatch",
            "nft: skeleton + bridge dispatch",
            Setup::Partial(Partial::Dispatch),
        ),
        (
            "ct",
            "nft: clean-traffic",
            full(Nftables::NAME, "clean-traffic"),
        ),
        (
            "ct-inet",
            "nft: clean-traffic + inet tag path",
            full(Nftables::NAME, "nwfb-clean-traffic-inet"),
        ),
        (
            "dualstack",
            "nft: clean-traffic-dualstack",
            full(Nftables::NAME, "clean-traffic-dualstack"),
        ),
        (
            "xt-ct",
            "xtables: clean-traffic",
            full(Xtables::NAME, "clean-traffic"),
        ),
    ];
    for (key, label, setup) in each {
        for &n in others {
            v.push(Variant {
                key,
                label,
                others: n,
                setup,
            });
        }
    }
    v
}

fn full(backend: &'static str, filter: &'static str) -> Setup {
    Setup::Full { backend, filter }
}

/// The pps part's options.
#[derive(Debug, Clone)]
pub struct Options {
    pub runs: usize,
    pub secs: f64,
    /// Ethernet frame lengths without FCS: 1514 (MTU) and/or 60 (minimum).
    pub frames: Vec<usize>,
    /// The CPU the sender is pinned to.
    pub cpu: usize,
    /// The dispatch and full variants are measured beside each of these.
    pub others: Vec<usize>,
    /// `--variants=` keys; empty: all.
    pub only: Vec<String>,
}

/// One variant's runs at one frame length.
#[derive(Debug, Clone)]
pub struct Samples {
    pub label: &'static str,
    pub others: usize,
    pub frame: usize,
    /// Frames per second delivered at B, one per round.
    pub pps: Vec<f64>,
    /// This round's rate over the same round's unfiltered rate.
    pub paired: Vec<f64>,
}

impl Samples {
    pub fn spread(&self) -> Spread {
        Spread::of(&self.pps).expect("at least one run")
    }
}

struct Prepared {
    variant: Variant,
    lab: Lab,
}

/// Sets up every wanted variant's lab (checked), then measures them in
/// interleaved rounds. `backends` are those installed.
pub fn run(
    options: &Options,
    backends: &[&'static str],
    has_ethtool: bool,
) -> Result<Vec<Samples>, Error> {
    let exe = std::env::current_exe()?;
    let exe = exe
        .to_str()
        .ok_or("benchmark path is not UTF-8")?
        .to_owned();
    let wanted: Vec<Variant> = variants(&options.others)
        .into_iter()
        .filter(|v| {
            v.key == "unfiltered"
                || options.only.is_empty()
                || options.only.iter().any(|k| k == v.key)
        })
        .filter(|v| v.backend() == "none" || backends.contains(&v.backend()))
        .collect();
    let mut labs = Vec::new();
    for variant in wanted {
        crate::report::load(&format!(
            "pps setup: {} others={}",
            variant.label, variant.others
        ));
        let lab = prepare(&variant, has_ethtool)?;
        labs.push(Prepared { variant, lab });
    }
    let mut all = Vec::new();
    for &frame in &options.frames {
        let payload = payload_for(frame)?;
        // One short run per lab, not counted: the lab's first datagrams
        // (neighbour entries, conntrack, caches) and a check that the flow
        // really arrives.
        for p in &labs {
            let r = blast(&p.lab, &exe, options.cpu, 0.2, payload)?;
            if r.delivered * 2 < r.sent {
                return Err(format!(
                    "{} others={}: only {} of {} datagrams arrived: the lab drops the flow",
                    p.variant.label, p.variant.others, r.delivered, r.sent
                )
                .into());
            }
        }
        let mut samples: Vec<Samples> = labs
            .iter()
            .map(|p| Samples {
                label: p.variant.label,
                others: p.variant.others,
                frame,
                pps: Vec::new(),
                paired: Vec::new(),
            })
            .collect();
        for round in 0..options.runs {
            crate::report::load(&format!(
                "pps frame={frame} round {}/{}",
                round + 1,
                options.runs
            ));
            let order: Vec<usize> = if round % 2 == 0 {
                (0..labs.len()).collect()
            } else {
                (0..labs.len()).rev().collect()
            };
            let mut rates = vec![0.0; labs.len()];
            for i in order {
                let r = blast(&labs[i].lab, &exe, options.cpu, options.secs, payload)?;
                rates[i] = r.delivered as f64 / r.elapsed;
                println!(
                    "pps variant={:?} others={} frame={frame} round={} kpps={:.1} sent={} delivered={}",
                    labs[i].variant.label,
                    labs[i].variant.others,
                    round + 1,
                    rates[i] / 1e3,
                    r.sent,
                    r.delivered
                );
            }
            for (s, &rate) in samples.iter_mut().zip(&rates) {
                s.pps.push(rate);
                s.paired.push(rate / rates[0]);
            }
        }
        all.extend(samples);
    }
    Ok(all)
}

/// The UDP payload that makes an Ethernet frame of `frame` bytes (no FCS).
fn payload_for(frame: usize) -> Result<usize, Error> {
    // Ethernet 14 + IPv4 20 + UDP 8; 60 is Ethernet's minimum (the NIC
    // would pad a shorter one), 1514 the 1500-byte MTU.
    const HEADERS: usize = 14 + 20 + 8;
    if !(60..=1514).contains(&frame) {
        return Err(format!("--frames: {frame} is not within 60..=1514").into());
    }
    Ok(frame - HEADERS)
}

/// A lab filtered as `variant` says, offloads off, static neighbours, and
/// checked: spoofed source dropped exactly when a filter is there.
fn prepare(variant: &Variant, has_ethtool: bool) -> Result<Lab, Error> {
    let others = variant.others;
    let lab = Lab::new(others)?;
    let filtered = match variant.setup {
        Setup::Unfiltered => false,
        Setup::Partial(partial) => {
            let mut ports: Vec<String> = (0..others).map(|i| format!("vnet{i}")).collect();
            ports.extend(lab.guests().iter().map(|(_, p)| p.name.to_string()));
            lab.host()
                .exec_input(&["nft", "-f", "-"], &partial.text(&ports))?;
            false
        }
        Setup::Full { backend, filter } => {
            let compiler = Compiler::with_extra(filter, &[CT_INET])?;
            if backend == Xtables::NAME {
                lab.filter::<Xtables>(&compiler, others)?;
            } else {
                lab.filter::<Nftables>(&compiler, others)?;
            }
            true
        }
    };
    lab.check_filtering(filtered)?;
    if has_ethtool {
        lab.offloads_off()?;
    }
    // No ARP during the runs: each guest knows the other for good.
    let [(a, pa), (b, pb)] = lab.guests();
    for (ns, peer) in [(a, pb), (b, pa)] {
        ns.ip(&[
            "neigh",
            "replace",
            &peer.ip,
            "lladdr",
            &peer.mac_text(),
            "dev",
            "eth0",
            "nud",
            "permanent",
        ])?;
    }
    Ok(lab)
}

/// What one run sent and what arrived.
struct Blast {
    sent: u64,
    delivered: u64,
    elapsed: f64,
}

/// One run of `secs` seconds: the hole in B, B's rx counter before, the
/// pinned sender in A, the counter after.
fn blast(lab: &Lab, exe: &str, cpu: usize, secs: f64, payload: usize) -> Result<Blast, Error> {
    let [(a, _), (b, pb)] = lab.guests();
    let listen = format!("0.0.0.0:{HOLE_PORT}");
    // It outlives the run by a margin and is killed by PID when done.
    let lifetime = format!("{}", secs + 30.0);
    let mut hole = Reaped(b.spawn(&[exe, "--nwf-udp-hole", &listen, &lifetime])?);
    let mut line = String::new();
    BufReader::new(hole.0.stdout.take().ok_or("hole has no stdout")?).read_line(&mut line)?;
    if line.trim() != "listening" {
        return Err(format!("udp hole did not start: {line:?}").into());
    }
    let before = rx_packets(b)?;
    let target = format!("{}:{HOLE_PORT}", pb.ip);
    let out = a.exec(&[
        "taskset",
        "-c",
        &cpu.to_string(),
        exe,
        "--nwf-blast",
        &target,
        &secs.to_string(),
        &payload.to_string(),
    ])?;
    let after = rx_packets(b)?;
    drop(hole);
    let mut fields = out.split_whitespace();
    match (
        fields.next().map(str::parse::<u64>),
        fields.next().map(str::parse::<f64>),
    ) {
        (Some(Ok(sent)), Some(Ok(elapsed))) if elapsed > 0.0 => Ok(Blast {
            sent,
            delivered: after - before,
            elapsed,
        }),
        _ => Err(format!("sender said {out:?}").into()),
    }
}

/// Frames received by the guest's `eth0` (`ip -s -j link`).
fn rx_packets(ns: &crate::lab::Netns) -> Result<u64, Error> {
    let out = ns.ip(&["-s", "-j", "link", "show", "dev", "eth0"])?;
    let json: serde_json::Value = serde_json::from_str(&out)?;
    json[0]["stats64"]["rx"]["packets"]
        .as_u64()
        .ok_or_else(|| format!("no rx packet counter in {out:?}").into())
}
