//! `nwfilter`: virsh-style verbs for libvirt-compatible network filters.
//!
//! Thin by design: parse the command line, call one verb module, print what
//! it returns. A verb returns the text for stdout, so a failing verb prints
//! nothing there; its error goes to stderr and the exit status is 1.

mod format;
mod render;
mod net;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Network filters for virtual machines, compatible with libvirt's nwfilter.
#[derive(Debug, Parser)]
#[command(
    name = "nwfilter",
    version,
    about = "Network filters for virtual machines, compatible with libvirt's nwfilter",
    long_about = "Network filters for virtual machines, compatible with libvirt's nwfilter.\n\n\
        Reads libvirt <filter> and <filterbinding> XML documents, checks them, prints them \
        in libvirt's normalised form and turns them into firewall rules for a VM's port.\n\n\
        Example:\n  nwfilter format /etc/libvirt/nwfilter/clean-traffic.xml"
)]
struct Cli {
    // Global options (e.g. --config-dir, --state-dir) go here, marked
    // `#[arg(global = true)]`, so every verb accepts them.
    #[command(subcommand)]
    command: Command,
}

/// One variant per verb; each verb lives in its own module.
#[derive(Debug, Subcommand)]
enum Command {
    Format(format::Args),
    Render(render::Args),
    NetRender(net::RenderArgs),
}

fn run(cli: Cli) -> anyhow::Result<String> {
    match cli.command {
        Command::Format(args) => format::run(&args),
        Command::Render(args) => render::run(&args),
        Command::NetRender(args) => net::render(&args.file),
    }
}

// The binary's job is to print: stdout for results, stderr for errors.
#[allow(clippy::print_stdout, clippy::print_stderr)]
fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(out) => {
            print!("{out}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nwfilter: {e:#}");
            ExitCode::FAILURE
        }
    }
}
