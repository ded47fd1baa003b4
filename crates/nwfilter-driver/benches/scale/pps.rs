//! Per-packet cost as a UDP packet rate (issue 20 item 1, issue 16 item 6),
//! with far less variance than the TCP throughput part.
//!
//! Why not TCP: one TCP flow's rate depends on the sender's and receiver's
//! scheduling on the two vCPUs, on ACK clocking and window growth, and
//! moved ±20–40 % run to run. Here ONE sender, pinned to one CPU with
//! `taskset`, sends UDP datagrams from guest A to guest B as fast as it
//! can; on veth the whole path of a datagram (A's stack, the bridge and
//! its hooks, B's stack) runs on that CPU inside `send`. Frames are
//! counted where they arrive: B's `eth0` rx counter (nothing legitimate is
//! dropped by the filter, so no receiving socket is needed; a socket that
//! is never read keeps B from answering with ICMP: blast.rs).
//!
//! The rate reported is per CPU-second: frames over the sender's on-CPU
//! time plus that CPU's ksoftirqd's (should the kernel defer softirq work
//! to it).
//! On a shared machine the wall-clock rate mostly measures how much of the
//! CPU the other work left us (a first try at load 6 ranged 190–620 kpps);
//! the CPU time per frame does not depend on that. The wall-clock rate and
//! the share of the run the sender waited for its CPU are reported beside
//! it.
//!
//! Every variant gets its own lab (throughput.rs's namespaces: a bridge,
//! two guests), all set up first and kept; then `runs` rounds of one short
//! run per lab, each run between two runs of the unfiltered lab, the order
//! alternating (forward, backward) so drift hits every variant alike.
//! Reported per variant: the median rate, quartiles and extremes, the
//! ratio of its median to the unfiltered one, and the median of its paired
//! ratios (each run over the mean of the two unfiltered runs around it).
//! The unfiltered lab is also measured as a variant of its own (an A/A
//! twin): how far its paired ratio is from 1 is the resolution.

use std::io::{BufRead, BufReader};

use crate::blast::schedstat;
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

const CT: &str = "nft: clean-traffic";
const DUALSTACK: &str = "nft: clean-traffic-dualstack";
const XT_CT: &str = "xtables: clean-traffic";

/// The questions asked of two variants beside the same number of ports
/// (issue 16 item 6; issue 20's "at least as fast as xtables"): the first
/// one's cost per frame over the second's, round by round (both paired
/// ratios come from the same round).
pub const COMPARE: [(&str, &str); 2] = [(DUALSTACK, CT), (CT, XT_CT)];

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
    /// clean-traffic through the nftables backend, then its bridge table
    /// moved into a netdev table entered from each guest port's own
    /// ingress and egress hooks (a candidate layout, issue 20).
    NetdevClean,
    /// As [`Setup::NetdevClean`], with a copy of the template's chains
    /// per port and the port's values written in (no set lookups).
    NetdevOwn,
    /// As [`Setup::NetdevOwn`], each hook chain led by a rule deciding the
    /// common frame at once: ingress `ether saddr MAC ip saddr IP accept`,
    /// egress `ether type ip accept` (what clean-traffic's chains decide
    /// for those frames). The bound of what per-port chains with a rule
    /// optimiser could reach (issue 20 item 5).
    NetdevFast,
    /// clean-traffic through the nftables backend, whose prerouting
    /// accepts a port's own IPv4 frames by one lookup (`fast-from`), with
    /// postrouting led the same way (`oifname . ether type` IPv4 for a
    /// port whose filter accepts all IPv4 towards it): what the shared
    /// layout reaches with both hooks led by a lookup.
    BridgeFast,
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
            Setup::Partial(_)
            | Setup::NetdevClean
            | Setup::NetdevOwn
            | Setup::NetdevFast
            | Setup::BridgeFast => Nftables::NAME,
            Setup::Full { backend, .. } => backend,
        }
    }
}

/// Every variant, each full or dispatch one beside each of `others`; the
/// unfiltered baseline first (the reference every run is paired with).
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
        one(
            "bridge-now",
            "nft: bridge table as now, no port",
            Setup::Partial(Partial::BridgeNow),
        ),
        one(
            "netdev-hooks",
            "nft: empty netdev ingress/egress chains on the ports",
            Setup::Partial(Partial::NetdevHooks),
        ),
        one(
            "netdev-ct",
            "nft: clean-traffic from netdev ingress/egress chains",
            Setup::NetdevClean,
        ),
        one(
            "netdev-own",
            "nft: clean-traffic in per-port netdev chains, values written in",
            Setup::NetdevOwn,
        ),
        one(
            "netdev-fast",
            "nft: per-port netdev chains led by a rule for the common frame",
            Setup::NetdevFast,
        ),
        one(
            "bridge-fast",
            "nft: clean-traffic, postrouting also led by a lookup for the common frame",
            Setup::BridgeFast,
        ),
    ];
    let each: [(&str, &str, Setup); 5] = [
        (
            "dispatch",
            "nft: skeleton + bridge dispatch",
            Setup::Partial(Partial::Dispatch),
        ),
        ("ct", CT, full(Nftables::NAME, "clean-traffic")),
        (
            "ct-inet",
            "nft: clean-traffic + inet tag path",
            full(Nftables::NAME, "nwfb-clean-traffic-inet"),
        ),
        (
            "dualstack",
            DUALSTACK,
            full(Nftables::NAME, "clean-traffic-dualstack"),
        ),
        ("xt-ct", XT_CT, full(Xtables::NAME, "clean-traffic")),
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
    /// Frames delivered at B per CPU-second, one per round.
    pub pps: Vec<f64>,
    /// Frames delivered at B per wall-clock second, one per round.
    pub wall: Vec<f64>,
    /// The share of each run the sender spent waiting for its CPU.
    pub waiting: Vec<f64>,
    /// Each run's rate over the mean of the unfiltered runs just before
    /// and after it.
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
    let softirqd = ksoftirqd(options.cpu)?;
    let cpu = Cpu {
        index: options.cpu,
        softirqd: &softirqd,
    };
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
        // (caches, the hole's first use) and a check that the flow really
        // arrives.
        for p in &labs {
            let r = blast(&p.lab, &exe, &cpu, 0.2, payload)?;
            if r.delivered * 2 < r.sent {
                return Err(format!(
                    "{} others={}: only {} of {} datagrams arrived: the lab drops the flow",
                    p.variant.label, p.variant.others, r.delivered, r.sent
                )
                .into());
            }
        }
        all.extend(rounds(&labs, &exe, &cpu, options, frame, payload)?);
    }
    Ok(all)
}

/// `options.runs` rounds. A round runs every variant once, forward then
/// backward in alternate rounds, with an unfiltered run before the first
/// and after each: U V1 U V2 U ... Vn U. A variant's paired ratio is its
/// rate over the mean of the two unfiltered runs around it, which are
/// seconds apart, so it cancels the machine's drift (neighbours' builds
/// moved whole rounds by ±25 %; a run beside the next agreed within ±4 %).
fn rounds(
    labs: &[Prepared],
    exe: &str,
    cpu: &Cpu,
    options: &Options,
    frame: usize,
    payload: usize,
) -> Result<Vec<Samples>, Error> {
    let mut samples: Vec<Samples> = labs
        .iter()
        .map(|p| Samples {
            label: p.variant.label,
            others: p.variant.others,
            frame,
            pps: Vec::new(),
            wall: Vec::new(),
            waiting: Vec::new(),
            paired: Vec::new(),
        })
        .collect();
    for round in 0..options.runs {
        crate::report::load(&format!(
            "pps frame={frame} round {}/{}",
            round + 1,
            options.runs
        ));
        let mut order: Vec<usize> = (1..labs.len()).collect();
        if round % 2 == 1 {
            order.reverse();
        }
        let mut before = blast(&labs[0].lab, exe, cpu, options.secs, payload)?;
        note(&mut samples, labs, 0, round, &before);
        for i in order {
            let r = blast(&labs[i].lab, exe, cpu, options.secs, payload)?;
            let after = blast(&labs[0].lab, exe, cpu, options.secs, payload)?;
            note(&mut samples, labs, i, round, &r);
            note(&mut samples, labs, 0, round, &after);
            let reference = (before.per_cpu_second() + after.per_cpu_second()) / 2.0;
            samples[i].paired.push(r.per_cpu_second() / reference);
            before = after;
        }
    }
    // The reference against itself.
    samples[0].paired = vec![1.0; samples[0].pps.len()];
    Ok(samples)
}

/// Prints one run and adds it to lab `i`'s samples.
fn note(samples: &mut [Samples], labs: &[Prepared], i: usize, round: usize, r: &Blast) {
    let s = &mut samples[i];
    println!(
        "pps variant={:?} others={} frame={} round={} kpps_cpu={:.1} kpps_wall={:.1} sent={} delivered={} on_cpu_ms={:.1} ksoftirqd_ms={:.1} waiting_ms={:.1}",
        labs[i].variant.label,
        labs[i].variant.others,
        s.frame,
        round + 1,
        r.per_cpu_second() / 1e3,
        r.per_second() / 1e3,
        r.sent,
        r.delivered,
        r.on_cpu_ns as f64 / 1e6,
        r.softirqd_ns as f64 / 1e6,
        r.waiting_ns as f64 / 1e6,
    );
    s.pps.push(r.per_cpu_second());
    s.wall.push(r.per_second());
    s.waiting.push(r.waiting_ns as f64 / 1e9 / r.elapsed);
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
            let guests: Vec<String> = lab
                .guests()
                .iter()
                .map(|(_, p)| p.name.to_string())
                .collect();
            ports.extend(guests.iter().cloned());
            lab.host()
                .exec_input(&["nft", "-f", "-"], &partial.text(&ports, &guests))?;
            false
        }
        Setup::NetdevClean | Setup::NetdevOwn | Setup::NetdevFast => {
            let compiler = Compiler::with_extra("clean-traffic", &[CT_INET])?;
            lab.filter::<Nftables>(&compiler, others)?;
            let guests: Vec<String> = lab
                .guests()
                .iter()
                .map(|(_, p)| p.name.to_string())
                .collect();
            let netdev = match variant.setup {
                Setup::NetdevOwn => netdev_own_from_bridge(&lab, &guests, false)?,
                Setup::NetdevFast => netdev_own_from_bridge(&lab, &guests, true)?,
                _ => netdev_from_bridge(&lab, &guests)?,
            };
            lab.host()
                .exec(&["nft", "delete", "table", "bridge", "nwfilter"])?;
            lab.host().exec_input(&["nft", "-f", "-"], &netdev)?;
            true
        }
        Setup::BridgeFast => {
            let compiler = Compiler::with_extra("clean-traffic", &[CT_INET])?;
            lab.filter::<Nftables>(&compiler, others)?;
            lab.host()
                .exec_input(&["nft", "-f", "-"], &bridge_fast_path(&lab))?;
            true
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

/// The backend's bridge table (as listed) as a netdev table: its base
/// chains dropped, and on each guest port an ingress chain jumping to the
/// port's from-VM root and an egress chain jumping to its to-VM root (the
/// roots the dispatch maps lead the port to).
fn netdev_from_bridge(lab: &Lab, guests: &[String]) -> Result<String, Error> {
    let listed = lab
        .host()
        .exec(&["nft", "list", "table", "bridge", "nwfilter"])?;
    let mut out = String::from("table netdev nwfilter {\n");
    for (kind, name, body) in listed_blocks(&listed) {
        if !["prerouting", "postrouting"].contains(&name.as_str()) {
            out.push_str(&format!("\t{kind} {name} {{\n{body}\t}}\n"));
        }
    }
    out.push_str("}\n");
    let mut hooks = String::new();
    for port in guests {
        let from = dispatched(&listed, "from-vm", port)?;
        let to = dispatched(&listed, "to-vm", port)?;
        hooks.push_str(&crate::partial::netdev_hooks(
            std::slice::from_ref(port),
            |hook| {
                let target = if hook == "ingress" { &from } else { &to };
                format!("\t\tjump {target}\n")
            },
        ));
    }
    Ok(format!("{out}{hooks}"))
}

/// The backend's bridge table (as listed) as per-port netdev chains: for
/// each guest port a copy of the template's chains named `ROLE/PORT`, each
/// per-port lookup (`iifname . FIELD [!=] @sN/T`) written as a compare
/// with the port's element (`FIELD [!=] VALUE`) and each own-chain map
/// (`iifname vmap @vN/T`) as a jump to the port's own chain; entered from
/// the port's ingress and egress hooks.
fn netdev_own_from_bridge(lab: &Lab, guests: &[String], fast: bool) -> Result<String, Error> {
    let listed = lab
        .host()
        .exec(&["nft", "list", "table", "bridge", "nwfilter"])?;
    let blocks = listed_blocks(&listed);
    let root = dispatched(&listed, "from-vm", &guests[0])?;
    let template = root.rsplit_once('/').ok_or("a template chain name")?.1;
    let suffix = format!("/{template}");
    let mut out = String::from("table netdev nwfilter {\n");
    // The ports' own chains (RARP), as they are.
    for (kind, name, body) in &blocks {
        let base = ["prerouting", "postrouting"].contains(&name.as_str());
        if kind == "chain" && !name.ends_with(&suffix) && !base {
            out.push_str(&format!("\tchain {name} {{\n{body}\t}}\n"));
        }
    }
    for port in guests {
        let quoted = format!("\"{port}\"");
        // The port's element in a listed set or map.
        let value = |set: &str| -> Option<String> {
            let (_, _, body) = blocks.iter().find(|(_, n, _)| n == set)?;
            let elements = body.split("elements = {").nth(1)?.split('}').next()?;
            elements.split(',').map(str::trim).find_map(|e| {
                let rest = e.strip_prefix(&quoted)?.trim_start();
                let v = rest.strip_prefix(". ").or(rest.strip_prefix(": "))?;
                Some(v.trim().to_owned())
            })
        };
        for (kind, name, body) in &blocks {
            let Some(role) = name.strip_suffix(&suffix) else {
                continue;
            };
            if kind != "chain" {
                continue;
            }
            let mut lines = String::new();
            for line in body.lines() {
                let mut l = line.replace(&suffix, &format!("/{port}"));
                let template_name = |n: &str| n.replace(&format!("/{port}"), &suffix);
                for key in ["iifname . ", "oifname . "] {
                    if let Some(at) = l.find(key) {
                        let after = l[at + key.len()..].to_owned();
                        let set_at = set_reference(&after).ok_or("a lookup")?;
                        let set =
                            template_name(after[set_at + 1..].split(' ').next().unwrap_or(""));
                        let v = value(&set).ok_or_else(|| format!("{port} in {set}"))?;
                        let tail = after[set_at..].split_once(' ').map_or("", |(_, t)| t);
                        let head = after[..set_at].trim_end();
                        let compares = as_compares(head, &v).ok_or_else(|| {
                            format!("{port}: cannot write {head} {v} as compares")
                        })?;
                        l = format!("{}{compares} {tail}", &l[..at]);
                    }
                }
                for key in ["iifname vmap @", "oifname vmap @"] {
                    if let Some(at) = l.find(key) {
                        let map =
                            template_name(l[at + key.len()..].split(' ').next().unwrap_or(""));
                        let v = value(&map).ok_or_else(|| format!("{port} in {map}"))?;
                        l = format!("{}{v}", &l[..at]);
                    }
                }
                lines.push_str(&l);
                lines.push('\n');
            }
            out.push_str(&format!("\tchain {role}/{port} {{\n{lines}\t}}\n"));
        }
    }
    out.push_str("}\n");
    for (port, (_, guest)) in guests.iter().zip(lab.guests()) {
        out.push_str(&crate::partial::netdev_hooks(
            std::slice::from_ref(port),
            |hook| {
                let (root, head) = if hook == "ingress" {
                    let own = format!("ether saddr {} ip saddr {}", guest.mac_text(), guest.ip);
                    ("I", format!("\t\t{own} accept\n"))
                } else {
                    ("O", "\t\tether type ip accept\n".to_owned())
                };
                let head = if fast { head } else { String::new() };
                format!("{head}\t\tjump {root}/{port}\n")
            },
        ));
    }
    Ok(out)
}

/// Where a set's `@name` starts in `text`: a template set's name has a
/// `/`, a raw payload field such as `@nh,64,48` has not.
fn set_reference(text: &str) -> Option<usize> {
    text.match_indices('@')
        .map(|(i, _)| i)
        .find(|&i| text[i..].split(' ').next().unwrap_or("").contains('/'))
}

/// A lookup's key `a . b` (followed by `!=` when negated) with the port's
/// element `A . B` as one compare per field, `a A b B`; a negated lookup
/// only of one field, where `a != A` is the same test. `None` otherwise.
fn as_compares(key: &str, element: &str) -> Option<String> {
    let (fields, op) = match key.strip_suffix(" !=") {
        Some(fields) => (fields, "!= "),
        None => (key, ""),
    };
    let fields: Vec<&str> = fields.split(" . ").collect();
    let values: Vec<&str> = element.split(" . ").collect();
    if fields.len() != values.len() || (!op.is_empty() && fields.len() > 1) {
        return None;
    }
    let compares: Vec<String> = (fields.iter().zip(&values))
        .map(|(f, v)| format!("{f} {op}{v}"))
        .collect();
    Some(compares.join(" "))
}

/// [`Setup::BridgeFast`]'s addition to the backend's bridge table, whose
/// prerouting already accepts the guests' own IPv4 frames by one lookup
/// (`fast-from`): the same for postrouting, a set of the guests' ports
/// and a lookup at its head accepting IPv4 towards them.
fn bridge_fast_path(lab: &Lab) -> String {
    let to: Vec<String> = lab
        .guests()
        .iter()
        .map(|(_, guest)| format!("\"{}\" . ip", guest.name))
        .collect();
    format!(
        "add set bridge nwfilter fast-to {{ typeof oifname . ether type; elements = {{ {} }}; }}\n\
         insert rule bridge nwfilter postrouting oifname . ether type @fast-to accept\n",
        to.join(", ")
    )
}

/// The listing's top-level blocks of a table: (kind, name, body lines).
fn listed_blocks(listed: &str) -> Vec<(String, String, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(String, String, String)> = None;
    for line in listed.lines() {
        let top = line.strip_prefix('\t').filter(|l| !l.starts_with('\t'));
        if let Some(head) = top {
            if head == "}" {
                blocks.extend(current.take());
            } else if let Some((kind, rest)) = head.split_once(' ') {
                let name = rest.trim_end_matches(" {").to_owned();
                current = Some((kind.to_owned(), name, String::new()));
            }
            continue;
        }
        if let Some((_, _, body)) = current.as_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    blocks
}

/// The chain the listed dispatch map `map` leads `port` to.
fn dispatched(listed: &str, map: &str, port: &str) -> Result<String, Error> {
    let element = format!("\"{port}\" : jump ");
    listed
        .split(&format!("map {map} "))
        .nth(1)
        .and_then(|m| m.split("map ").next())
        .and_then(|m| m.split(&element).nth(1))
        .and_then(|r| r.split([',', ' ', '}', '\n']).next())
        .map(str::to_owned)
        .ok_or_else(|| format!("no {map} element for {port} in:\n{listed}").into())
}

/// The CPU the sender is pinned to, and its ksoftirqd's schedstat file.
struct Cpu<'a> {
    index: usize,
    softirqd: &'a str,
}

/// `/proc/PID/schedstat` of the `ksoftirqd/CPU` kernel thread.
fn ksoftirqd(cpu: usize) -> Result<String, Error> {
    let want = format!("ksoftirqd/{cpu}");
    for entry in std::fs::read_dir("/proc")? {
        let path = entry?.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.trim() == want {
            let stat = path.join("schedstat");
            return Ok(stat.to_str().ok_or("non-UTF-8 /proc path")?.to_owned());
        }
    }
    Err(format!("no {want} thread: is there a CPU {cpu}? (--cpu=N)").into())
}

/// What one run sent, what arrived, and the CPU time it took.
struct Blast {
    sent: u64,
    delivered: u64,
    elapsed: f64,
    /// The sender's own time on the CPU (its softirq work included).
    on_cpu_ns: u64,
    /// The pinned CPU's ksoftirqd's time on the CPU during the run.
    softirqd_ns: u64,
    /// The sender's time runnable but waiting for the CPU.
    waiting_ns: u64,
}

impl Blast {
    fn per_second(&self) -> f64 {
        self.delivered as f64 / self.elapsed
    }

    fn per_cpu_second(&self) -> f64 {
        self.delivered as f64 / ((self.on_cpu_ns + self.softirqd_ns) as f64 / 1e9)
    }
}

/// One run of `secs` seconds: the hole in B, B's rx counter before, the
/// pinned sender in A, the counter after.
fn blast(lab: &Lab, exe: &str, cpu: &Cpu, secs: f64, payload: usize) -> Result<Blast, Error> {
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
    let softirqd_before = schedstat(cpu.softirqd)?.0;
    let target = format!("{}:{HOLE_PORT}", pb.ip);
    let out = a.exec(&[
        "taskset",
        "-c",
        &cpu.index.to_string(),
        exe,
        "--nwf-blast",
        &target,
        &secs.to_string(),
        &payload.to_string(),
    ])?;
    let softirqd_after = schedstat(cpu.softirqd)?.0;
    let after = rx_packets(b)?;
    drop(hole);
    let bad = || format!("sender said {out:?}");
    let fields: Vec<&str> = out.split_whitespace().collect();
    let [sent, elapsed, on_cpu, waiting] = fields[..] else {
        return Err(bad().into());
    };
    let elapsed: f64 = elapsed.parse()?;
    let on_cpu_ns: u64 = on_cpu.parse()?;
    if elapsed <= 0.0 || on_cpu_ns == 0 {
        return Err(bad().into());
    }
    Ok(Blast {
        sent: sent.parse()?,
        delivered: after - before,
        elapsed,
        on_cpu_ns,
        softirqd_ns: softirqd_after - softirqd_before,
        waiting_ns: waiting.parse()?,
    })
}

/// Frames received by the guest's `eth0` (`ip -s -j link`).
fn rx_packets(ns: &crate::lab::Netns) -> Result<u64, Error> {
    let out = ns.ip(&["-s", "-j", "link", "show", "dev", "eth0"])?;
    let json: serde_json::Value = serde_json::from_str(&out)?;
    json[0]["stats64"]["rx"]["packets"]
        .as_u64()
        .ok_or_else(|| format!("no rx packet counter in {out:?}").into())
}
