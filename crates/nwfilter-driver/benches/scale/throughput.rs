//! Per-packet cost as TCP throughput between two filtered guests.
//!
//! Lab: a "host" namespace with bridge `br0` and two veth ports, each the
//! other end of a guest namespace's `eth0` (MAC and IP as the port's
//! clean-traffic binding says). Both guest ports are filtered with
//! clean-traffic, beside `others` filtered ports that exist only as names.
//! The other ports are applied first, so with xtables the guests' jumps are
//! the last of the linear `-i`/`-o` lists (the worst place, as for the
//! newest guest under libvirt).
//!
//! Traffic: this same benchmark binary, started inside the guests as a
//! sender and a receiver (`--nwf-source`, `--nwf-sink`), over the guests'
//! own addresses (in namespaces made here) for a bounded number of seconds.
//! With offloads on (the default), veth hands 64 KiB TSO super-packets
//! through the bridge, so the filter runs once per ~45 segments; with
//! offloads off (`ethtool -K ... tso off gso off gro off`, run only where
//! `ethtool` is installed) it runs once per MTU-sized packet, which is the
//! per-packet cost.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::{Duration, Instant};

use crate::lab::{Error, Netns, Reaped};
use crate::workload::{rules_for, runner_in, Backend, Compiler, Port};

const SINK_PORT: u16 = 5201;

/// The host namespace and the two guests.
pub struct Lab {
    host: Netns,
    guests: [(Netns, Port); 2],
    first: usize,
}

impl Lab {
    /// Guest ports are `vnet{first}` and `vnet{first + 1}`.
    pub fn new(first: usize) -> Result<Lab, Error> {
        let host = Netns::new("host")?;
        host.ip(&["link", "add", "br0", "type", "bridge"])?;
        host.ip(&["link", "set", "br0", "up"])?;
        let guests = [
            (Netns::new("ga")?, Port::new(first, 0)),
            (Netns::new("gb")?, Port::new(first + 1, 0)),
        ];
        for (ns, port) in &guests {
            let dev = port.name.as_str();
            host.ip(&[
                "link", "add", dev, "type", "veth", "peer", "name", "eth0", "netns", &ns.name,
            ])?;
            ns.ip(&["link", "set", "eth0", "address", &port.mac_text(), "up"])?;
            ns.ip(&["addr", "add", &format!("{}/16", port.ip), "dev", "eth0"])?;
            host.ip(&["link", "set", dev, "master", "br0", "up"])?;
        }
        Ok(Lab {
            host,
            guests,
            first,
        })
    }

    /// The namespace with the bridge (where the firewall is).
    pub fn host(&self) -> &Netns {
        &self.host
    }

    /// Guest A (the sender) and guest B, each with its port.
    pub fn guests(&self) -> &[(Netns, Port); 2] {
        &self.guests
    }

    /// Filters `others` name-only ports, then the two guests, with `B`.
    pub fn filter<B: Backend>(&self, compiler: &Compiler, others: usize) -> Result<(), Error> {
        let runner = runner_in(&self.host.name);
        let first = self.first;
        if others > 0 {
            let (_, rules) = rules_for::<B>(compiler, 0..others, 0)?;
            B::apply(&runner, &rules.iter().collect::<Vec<_>>(), None)?;
        }
        let (_, rules) = rules_for::<B>(compiler, first..first + 2, 0)?;
        B::apply(&runner, &rules.iter().collect::<Vec<_>>(), None)
    }

    /// Checks that the lab really is filtered (or really is not): guest A
    /// reaches B from its own address, and from a spoofed one only when
    /// unfiltered (clean-traffic drops IPv4 from any other source).
    pub fn check_filtering(&self, filtered: bool) -> Result<(), Error> {
        let (a, b) = (&self.guests[0], &self.guests[1]);
        let ping = |from: &str| {
            a.0.exec(&["ping", "-q", "-c", "1", "-W", "2", "-I", from, &b.1.ip])
                .is_ok()
        };
        if !ping(&a.1.ip) {
            return Err("guest A cannot reach guest B from its own address".into());
        }
        let spoofed = "10.100.250.250";
        a.0.ip(&["addr", "add", &format!("{spoofed}/16"), "dev", "eth0"])?;
        let passed = ping(spoofed);
        a.0.ip(&["addr", "del", &format!("{spoofed}/16"), "dev", "eth0"])?;
        if passed == filtered {
            return Err(format!(
                "a spoofed source {}: the lab is not what it should be",
                if passed { "passed" } else { "was dropped" }
            )
            .into());
        }
        Ok(())
    }

    /// Turns segmentation and receive offloads off on all four veth ends.
    pub fn offloads_off(&self) -> Result<(), Error> {
        let off = ["tso", "off", "gso", "off", "gro", "off"];
        for (ns, port) in &self.guests {
            let mut argv = vec!["ethtool", "-K", "eth0"];
            argv.extend(off);
            ns.exec(&argv)?;
            let mut argv = vec!["ethtool", "-K", port.name.as_str()];
            argv.extend(off);
            self.host.exec(&argv)?;
        }
        Ok(())
    }

    /// Bytes per second from guest A to guest B over `secs` seconds.
    pub fn tcp_rate(&self, secs: u64) -> Result<f64, Error> {
        let exe = std::env::current_exe()?;
        let exe = exe.to_str().ok_or("benchmark path is not UTF-8")?;
        let (a, b) = (&self.guests[0], &self.guests[1]);
        let listen = format!("0.0.0.0:{SINK_PORT}");
        let mut sink = Reaped(b.0.spawn(&[exe, "--nwf-sink", &listen])?);
        let mut out = BufReader::new(sink.0.stdout.take().ok_or("sink has no stdout")?);
        let mut line = String::new();
        out.read_line(&mut line)?;
        if line.trim() != "listening" {
            return Err(format!("sink did not start: {line:?}").into());
        }
        let target = format!("{}:{SINK_PORT}", b.1.ip);
        a.0.exec(&[exe, "--nwf-source", &target, &secs.to_string()])?;
        line.clear();
        out.read_line(&mut line)?;
        let mut fields = line.split_whitespace().map(str::parse::<f64>);
        match (fields.next(), fields.next()) {
            (Some(Ok(bytes)), Some(Ok(secs))) if secs > 0.0 => Ok(bytes / secs),
            _ => Err(format!("sink said {line:?}").into()),
        }
    }
}

/// Receiver role (inside a guest): accepts one connection, reads to EOF,
/// prints "BYTES SECONDS" (from accept to EOF).
pub fn sink(listen: &str) -> Result<(), Error> {
    let listener = TcpListener::bind(listen)?;
    say("listening")?;
    let (mut stream, _) = listener.accept()?;
    let clock = Instant::now();
    let mut buf = vec![0u8; 256 * 1024];
    let mut bytes = 0u64;
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        bytes += n as u64;
    }
    say(&format!("{bytes} {}", clock.elapsed().as_secs_f64()))
}

/// Sender role (inside a guest): writes for `secs` seconds, then closes.
pub fn source(target: &str, secs: &str) -> Result<(), Error> {
    let secs: u64 = secs.parse()?;
    let deadline = Instant::now() + Duration::from_secs(3);
    // The first ARP exchange may take a moment: retry the connect briefly.
    let mut stream = loop {
        match TcpStream::connect_timeout(&target.parse()?, Duration::from_secs(1)) {
            Ok(s) => break s,
            Err(e) if Instant::now() >= deadline => return Err(e.into()),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    let buf = vec![0x5au8; 128 * 1024];
    let clock = Instant::now();
    let run = Duration::from_secs(secs);
    while clock.elapsed() < run {
        stream.write_all(&buf)?;
    }
    stream.shutdown(Shutdown::Write)?;
    // Wait for the receiver to close: it has read everything by then.
    let _ = stream.read(&mut [0u8; 1])?;
    Ok(())
}

/// One line to the lab on stdout, at once (the lab waits for it).
pub fn say(line: &str) -> Result<(), Error> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")?;
    out.flush()?;
    Ok(())
}

/// One throughput configuration's runs.
#[derive(Debug, Clone)]
pub struct Rates {
    pub label: &'static str,
    pub others: usize,
    pub offloads: bool,
    /// Bytes per second, one per run.
    pub runs: Vec<f64>,
}

impl Rates {
    pub fn median(&self) -> f64 {
        let mut v = self.runs.clone();
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }
}

/// `runs` runs of `secs` seconds with offloads on, then (where `ethtool`
/// is installed) as many with offloads off.
pub fn rates(
    lab: &Lab,
    label: &'static str,
    others: usize,
    secs: u64,
    runs: usize,
    has_ethtool: bool,
) -> Result<Vec<Rates>, Error> {
    let mut all = Vec::new();
    for offloads in [true, false] {
        if !offloads {
            if !has_ethtool {
                break;
            }
            lab.offloads_off()?;
        }
        let runs = (0..runs)
            .map(|_| lab.tcp_rate(secs))
            .collect::<Result<_, _>>()?;
        all.push(Rates {
            label,
            others,
            offloads,
            runs,
        });
    }
    Ok(all)
}
