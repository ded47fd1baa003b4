//! `nwfilter`: virsh-style verbs for libvirt-compatible network filters.
//!
//! Thin by design: parse the command line, call one verb module, print what
//! it returns. A verb returns the text for stdout, so a failing verb prints
//! nothing there; its error goes to stderr and the exit status is 1.

mod backend_arg;
mod connection;
mod doctor;
mod edit;
mod explain;
mod format;
mod generate;
mod graph;
mod net;
mod objects;
mod render;

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use nwfilter_driver::engine::error_chain;

/// Network filters for virtual machines, compatible with libvirt's nwfilter.
#[derive(Debug, Parser)]
#[command(
    name = "nwfilter",
    version,
    about = "Network filters for virtual machines, compatible with libvirt's nwfilter",
    long_about = "Network filters for virtual machines, compatible with libvirt's nwfilter.\n\n\
        Reads libvirt <filter> and <filterbinding> XML documents, checks them, prints them \
        in libvirt's normalised form and turns them into firewall rules for a VM's port.\n\n\
        Filters and bindings live in --config-dir and --state-dir. Verbs that change them \
        go through the nwfilterd daemon when it runs (its socket in the state directory, \
        or --connect), and otherwise work on the directories directly and apply rules in \
        this network namespace.\n\n\
        Examples:\n  \
        nwfilter format /etc/libvirt/nwfilter/clean-traffic.xml\n  \
        nwfilter render --portdev vnet0 --mac 52:54:00:12:34:56 --param IP=192.0.2.10 clean-traffic.xml\n  \
        nwfilter define my-filter.xml\n  \
        nwfilter binding-create vnet0-binding.xml"
)]
pub(crate) struct Cli {
    /// Directory of filter definitions (XML files); the built-in filters
    /// are always available.
    #[arg(long, global = true, value_name = "DIR", default_value = nwfilter_driver::DEFAULT_CONFIG_DIR)]
    config_dir: std::path::PathBuf,
    /// Directory of run-time state (the bindings that are applied).
    #[arg(long, global = true, value_name = "DIR", default_value = nwfilter_driver::DEFAULT_STATE_DIR)]
    state_dir: std::path::PathBuf,
    /// Reach the nwfilterd daemon on this socket (default: its socket in the
    /// state directory when a daemon answers there, else work directly).
    #[arg(long, global = true, value_name = "SOCKET")]
    connect: Option<std::path::PathBuf>,
    #[command(subcommand)]
    command: Command,
}

/// One variant per verb; each verb lives in its own module.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Define or redefine a filter from an XML file; every binding using it
    /// is rebuilt at once (all or nothing).
    Define(objects::DefineArgs),
    /// Remove a filter (refused while a binding uses it).
    Undefine(objects::FilterArg),
    /// Print a filter's XML.
    Dumpxml(objects::FilterArg),
    /// List the filters (UUID and name; an override of a built-in is marked).
    List(objects::ListArgs),
    /// Edit a filter's XML in $EDITOR, then define it.
    Edit(objects::EditArgs),
    /// Apply a <filterbinding> document to its port and record it.
    BindingCreate(objects::BindingCreateArgs),
    /// Remove a port's rules and its recorded binding.
    BindingDelete(objects::PortArg),
    /// List the bindings (port device, filter, learned addresses).
    BindingList(objects::ListArgs),
    /// Print a binding's XML.
    BindingDumpxml(objects::PortArg),
    /// Re-read the filters and re-apply every binding.
    Reload(backend_arg::BackendArg),
    Format(format::Args),
    Render(render::Args),
    Explain(explain::Args),
    Graph(graph::Args),
    NetRender(net::RenderArgs),
    #[command(flatten)]
    Net(net::NetCommand),
    Doctor(doctor::Args),
    Completions(generate::CompletionsArgs),
    Man(generate::ManArgs),
}

impl Command {
    /// `--backend`, on the verbs that apply or print rules.
    fn backend(&self) -> Option<nwfilter_driver::Backend> {
        let arg = match self {
            Command::Define(args) => &args.backend,
            Command::Edit(args) => &args.backend,
            Command::BindingCreate(args) => &args.backend,
            Command::Reload(backend) => backend,
            Command::Render(args) => &args.backend,
            Command::Net(net::NetCommand::Start(args)) => &args.backend,
            _ => return None,
        };
        arg.backend
    }
}

fn run(cli: Cli) -> anyhow::Result<String> {
    let backend = cli.command.backend();
    let connect = || {
        connection::Connection::open(
            &cli.config_dir,
            &cli.state_dir,
            cli.connect.as_deref(),
            backend,
        )
    };
    match &cli.command {
        Command::Define(args) => objects::define(&mut connect()?, args),
        Command::Undefine(args) => objects::undefine(&mut connect()?, args),
        Command::Dumpxml(args) => objects::dumpxml(&mut connect()?, args),
        Command::List(args) => objects::list(&mut connect()?, args),
        Command::Edit(args) => edit::edit(&mut connect()?, args),
        Command::BindingCreate(args) => objects::binding_create(&mut connect()?, args),
        Command::BindingDelete(args) => objects::binding_delete(&mut connect()?, args),
        Command::BindingList(args) => objects::binding_list(&mut connect()?, args),
        Command::BindingDumpxml(args) => objects::binding_dumpxml(&mut connect()?, args),
        Command::Reload(_) => objects::reload(&mut connect()?),
        Command::Format(args) => format::run(args),
        Command::Render(args) => {
            let chosen = nwfilter_driver::choose_backend(backend, &cli.config_dir)?;
            render::run_for(args, chosen)
        }
        Command::NetRender(args) => net::render(args),
        Command::Explain(args) => match &args.binding {
            Some(file) => explain::run_on_files(&cli.config_dir, file, args),
            None => explain::run(&mut connect()?, args),
        },
        Command::Graph(args) => graph::run(&cli.config_dir, args),
        Command::Net(cmd) => net::run(&mut connect()?, cmd),
        Command::Doctor(args) => doctor::run(args, &cli.config_dir, &cli.state_dir),
        Command::Completions(args) => generate::completions(args),
        Command::Man(args) => generate::man(args),
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
            eprintln!("nwfilter: {}", error_chain(e.as_ref()));
            ExitCode::FAILURE
        }
    }
}
