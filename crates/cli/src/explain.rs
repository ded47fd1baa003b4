//! `nwfilter explain`: what a port's rules do to one packet, and why.
//!
//! The port's binding comes from the binding store (through the daemon
//! when one runs, with the addresses it learned) or from `--binding FILE`
//! (no daemon, no root: files only). The walk itself is the service's
//! (`nwfilter_service::explain`), so both ways give the same answer.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use nwfilter_driver::{choose_backend, FilterStore};
use nwfilter_explain::Direction;
use nwfilter_model::{parse_document, Document};
use nwfilter_service::explain::{explain_binding, reply, PacketInput};
use nwfilter_service::{Op, Reply};

use crate::connection::Connection;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DirectionArg {
    /// Delivered to the VM.
    In,
    /// Sent by the VM.
    Out,
}

/// Explain what a port's filter does to a packet.
#[derive(Debug, clap::Args)]
#[command(
    about = "Explain what a port's rules do to one packet: verdict, deciding rule, chains",
    long_about = "Walk the rules of port PORTDEV (its binding's filters, compiled with its \
        learned addresses) for one packet, with the semantics the kernel applies to the \
        backend's rules, and print the verdict, the rule that decided it (filter, rule, \
        priority, chain, file and line) and the chains the packet went through.\n\n\
        The packet is described with --packet, layers by keyword with field=value: \
        mac (src, dst, type), vlan (id, encap), arp/rarp (op, htype, ptype, sha, spa, tha, \
        tpa), stp (type, flags, …), ip/ipv6 (src, dst, proto, tos), tcp/udp/udplite/sctp \
        (sport, dport; tcp: flags, option), icmp/icmpv6 (type, code), ct (state, dir), \
        ipset NAME, host (addressed to the host). Or --frame HEX gives a raw Ethernet frame.\n\n\
        The binding is the stored one (through the daemon when it runs), or --binding FILE \
        (filters from --config-dir and the built-in set; no daemon, no root).\n\n\
        Examples:\n  nwfilter explain vnet0 --direction out --packet 'ip src=10.0.0.5 \
        dst=10.0.0.1 tcp dport=25'\n  nwfilter explain vnet0 --direction in --frame \
        ffffffffffff52540000000108060001...\n  nwfilter explain vnet0 --binding vnet0.xml \
        --direction out --packet 'arp spa=10.0.0.9' --json"
)]
pub struct Args {
    /// The port device (tap) whose rules to walk.
    pub portdev: String,
    /// Which way the packet crosses the port.
    #[arg(long, value_enum)]
    pub direction: DirectionArg,
    /// The packet, described (see above).
    #[arg(
        long,
        value_name = "SPEC",
        conflicts_with = "frame",
        required_unless_present = "frame"
    )]
    pub packet: Option<String>,
    /// The packet as a raw Ethernet frame in hex (spaces and colons allowed).
    #[arg(long, value_name = "HEX")]
    pub frame: Option<String>,
    /// Read the binding from this <filterbinding> file instead of the store.
    #[arg(long, value_name = "FILE")]
    pub binding: Option<PathBuf>,
    /// Print the explanation as JSON.
    #[arg(long)]
    pub json: bool,
    /// Explain as this backend decides [default: the backend holding the
    /// port's rules; with --binding, the configured one].
    #[arg(long, value_parser = crate::backend_arg::parser())]
    pub backend: Option<nwfilter_driver::Backend>,
}

impl Args {
    fn input(&self) -> PacketInput {
        match (&self.packet, &self.frame) {
            (Some(spec), _) => PacketInput::Packet(spec.clone()),
            (None, Some(hex)) => PacketInput::Frame(hex.clone()),
            (None, None) => unreachable!("clap requires --packet or --frame"),
        }
    }

    fn direction(&self) -> Direction {
        match self.direction {
            DirectionArg::In => Direction::In,
            DirectionArg::Out => Direction::Out,
        }
    }
}

/// Through the store (embedded or daemon).
pub fn run(connection: &mut Connection, args: &Args) -> Result<String> {
    let reply = connection.call(Op::Explain {
        portdev: args.portdev.clone(),
        direction: args.direction(),
        input: args.input(),
        backend: args.backend,
    })?;
    output(reply, args.json)
}

/// From `--binding FILE` and the config directory, without a daemon.
pub fn run_on_files(config_dir: &std::path::Path, file: &PathBuf, args: &Args) -> Result<String> {
    let text = crate::connection::read_file(file)?;
    let doc = file.display().to_string();
    let binding = match parse_document(&text).map_err(|e| e.in_doc(&doc))? {
        Document::Binding(b) => b,
        Document::Filter(_) => bail!("{doc}: a <filterbinding> is needed, this is a <filter>"),
    };
    if binding.portdev.as_str() != args.portdev {
        bail!(
            "{doc} is the binding of port {}, not {}",
            binding.portdev,
            args.portdev
        );
    }
    let backend = choose_backend(args.backend, config_dir)?;
    let filters = FilterStore::open(config_dir);
    let e = explain_binding(
        &filters,
        config_dir,
        &binding,
        backend,
        args.direction(),
        &args.input(),
    )
    .with_context(|| format!("explaining {doc}"))?;
    output(reply(&e), args.json)
}

fn output(reply: Reply, json: bool) -> Result<String> {
    let Reply::Explanation { text, explanation } = reply else {
        bail!("the service answered explain with {reply:?}");
    };
    Ok(if json {
        format!("{}\n", serde_json::to_string_pretty(&explanation)?)
    } else {
        text
    })
}
