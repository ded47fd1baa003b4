//! `nwfilter`: virsh-style verbs for libvirt-compatible network filters.
//!
//! Thin by design: parse the command line, call one verb module, print what
//! it returns. A verb returns the text for stdout, so a failing verb prints
//! nothing there; its error goes to stderr and the exit status is 1.

mod binding;
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
    /// Directory of filter definitions (XML files); the built-in filters
    /// are always available.
    #[arg(long, global = true, value_name = "DIR", default_value = nwfilter_driver::DEFAULT_CONFIG_DIR)]
    config_dir: std::path::PathBuf,
    /// Directory of run-time state (the bindings that are applied).
    #[arg(long, global = true, value_name = "DIR", default_value = nwfilter_driver::DEFAULT_STATE_DIR)]
    state_dir: std::path::PathBuf,
    /// Firewall backend that applies the rules.
    #[arg(long, global = true, value_enum, default_value_t = Backend::Xtables)]
    backend: Backend,
    #[command(subcommand)]
    command: Command,
}

/// The firewall backends `--backend` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Backend {
    /// ebtables, iptables and ip6tables (libvirt's layout), through their
    /// restore tools.
    Xtables,
}

/// One variant per verb; each verb lives in its own module.
#[derive(Debug, Subcommand)]
enum Command {
    /// Apply a <filterbinding> document to its port in this network
    /// namespace and record it in the state directory.
    BindingCreate(binding::CreateArgs),
    /// Remove a port's rules and its recorded binding.
    BindingDelete(binding::DeleteArgs),
    Format(format::Args),
    Render(render::Args),
    NetRender(net::RenderArgs),
    #[command(flatten)]
    Net(net::NetCommand),
}

fn run(cli: Cli) -> anyhow::Result<String> {
    let dirs = binding::Dirs {
        config: cli.config_dir.clone(),
        state: cli.state_dir.clone(),
    };
    // One backend so far: this stops compiling when a second one is added
    // without being handled.
    let Backend::Xtables = cli.backend;
    match cli.command {
        Command::BindingCreate(args) => binding::create(&dirs, &args),
        Command::BindingDelete(args) => binding::delete(&dirs, &args),
        Command::Format(args) => format::run(&args),
        Command::Render(args) => render::run(&args),
        Command::NetRender(args) => net::render(&args.file),
        Command::Net(cmd) => net::run(&cli.config_dir, &cli.state_dir, &cmd),
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
