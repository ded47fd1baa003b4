//! The two processes of the packet-rate lab, started inside the guests by
//! the `pps` part (this same binary, like throughput.rs's sink and source).
//!
//! - `--nwf-blast TARGET SECS PAYLOAD` (guest A, pinned to one CPU by
//!   `taskset`): sends UDP datagrams of PAYLOAD bytes to TARGET as fast as
//!   one thread can for SECS seconds, then prints "SENT ELAPSED_SECONDS
//!   ON_CPU_NS WAITING_NS" (its own time on the CPU and waiting for it,
//!   from /proc/self/schedstat). On veth everything a datagram costs (A's
//!   stack, the bridge, the filter, B's stack) runs in softirq on the
//!   sending CPU, inside the `send` call; with this kernel's accounting
//!   (no CONFIG_IRQ_TIME_ACCOUNTING) that softirq time is the sender's own
//!   on-CPU time. So on-CPU time / datagrams is the per-packet cost, even
//!   when other work takes turns on the CPU.
//! - `--nwf-udp-hole LISTEN SECS` (guest B): binds the port and never
//!   reads, for at most SECS seconds. Without it B would answer every
//!   datagram with an ICMP port-unreachable (rate-limited, but still
//!   traffic through the filter, and a connected sender would get
//!   ECONNREFUSED); with it, datagrams past the full receive queue are
//!   dropped by B's UDP layer, after B's interface has counted them.

use std::io::ErrorKind;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use crate::lab::Error;
use crate::throughput::say;

/// Sends for `secs` seconds; prints "SENT ELAPSED".
pub fn sender(target: &str, secs: &str, payload: &str) -> Result<(), Error> {
    let run = Duration::from_secs_f64(secs.parse()?);
    let payload: usize = payload.parse()?;
    let socket = UdpSocket::bind("0.0.0.0:0")?;
    // Connected: no route lookup per datagram in our process's share.
    socket.connect(target)?;
    let buf = vec![0x5au8; payload];
    let start = schedstat("/proc/self/schedstat")?;
    let clock = Instant::now();
    let mut sent = 0u64;
    'run: loop {
        // Look at the clock once per batch: a clock read per datagram
        // would be a noticeable share of a 64-byte datagram's cost.
        for _ in 0..256 {
            match socket.send(&buf) {
                Ok(_) => sent += 1,
                // A refusal left by an ICMP error from before the hole was
                // bound: keep sending (what is lost is not counted at B).
                Err(e) if e.kind() == ErrorKind::ConnectionRefused => {}
                Err(e) => return Err(e.into()),
            }
        }
        if clock.elapsed() >= run {
            break 'run;
        }
    }
    let elapsed = clock.elapsed().as_secs_f64();
    let end = schedstat("/proc/self/schedstat")?;
    say(&format!(
        "{sent} {elapsed} {} {}",
        end.0 - start.0,
        end.1 - start.1
    ))
}

/// A task's time on the CPU and time spent runnable but waiting for it,
/// in nanoseconds: the first two fields of `/proc/PID/schedstat`.
pub fn schedstat(path: &str) -> Result<(u64, u64), Error> {
    let text = std::fs::read_to_string(path)?;
    let mut fields = text.split_whitespace().map(str::parse::<u64>);
    match (fields.next(), fields.next()) {
        (Some(Ok(on_cpu)), Some(Ok(waiting))) => Ok((on_cpu, waiting)),
        _ => Err(format!("{path}: {text:?}").into()),
    }
}

/// Binds `listen`, says "listening", then holds the socket for `secs`
/// seconds without reading (the pps part kills it by PID when done).
pub fn hole(listen: &str, secs: &str) -> Result<(), Error> {
    let lifetime = Duration::from_secs_f64(secs.parse()?);
    let _socket = UdpSocket::bind(listen)?;
    say("listening")?;
    std::thread::sleep(lifetime);
    Ok(())
}
