//! `nwfilterd`: serves the filter and binding operations on a Unix socket
//! and keeps the kernel's rules in step with the stored bindings.
//!
//! Start: re-apply every stored binding. SIGHUP: re-read filters and
//! re-apply everything (and running networks' rules); likewise when
//! firewalld reloads or restarts (D-Bus). Autostart networks start with
//! the daemon.
//! Every interval: restore rules someone else removed.
//! SIGTERM/SIGINT: stop serving and exit, leaving the rules in place so
//! guests stay protected while the daemon is down.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use host_io::Toolset;
use nwfilter::frontend::Service;
use nwfilter::{Host, HostConfig};
use nwfilter_driver::engine::error_chain;
use nwfilter_driver::Backend;
use nwfilter_service::networks::{self, Networks};
use nwfilterd::logged::Logged;
use nwfilterd::logging::{self, Took};
use nwfilterd::shutdown::Shutdown;
use nwfilterd::socket_activation::{Activated, ActivationError};
use nwfilterd::{firewalld, keeper, supervise, Server};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tracing::{error, info, warn};

/// The nwfilter daemon: applies VM network filters and keeps them applied.
#[derive(Debug, Parser)]
#[command(name = "nwfilterd", version)]
struct Args {
    /// Directory of filter definitions.
    #[arg(long, value_name = "DIR", default_value = nwfilter_driver::DEFAULT_CONFIG_DIR)]
    config_dir: PathBuf,
    /// Directory of run-time state (applied bindings).
    #[arg(long, value_name = "DIR", default_value = nwfilter_driver::DEFAULT_STATE_DIR)]
    state_dir: PathBuf,
    /// The socket to serve on [default: STATE_DIR/nwfilterd.sock].
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
    /// How often to check, besides on kernel change events, that our
    /// rules are still in the kernel (ms) [default: 60000 when the
    /// nf_tables events see every change of our rules, else 1000].
    #[arg(long, value_name = "MS")]
    check_interval_ms: Option<u64>,
    /// Check the rules on the timer only, not when the kernel reports a
    /// change (for a host without the nf_tables netlink group, and for
    /// tests of the other repair triggers).
    #[arg(long)]
    no_kernel_events: bool,
    /// Log how long each part of an operation took (compile, state
    /// files, kernel change, each tool process), at debug level.
    #[arg(long)]
    log_timings: bool,
    /// Give up learning a port's IP address after this many seconds (the
    /// port then stays blocked); 0 waits forever, as libvirt does.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    learn_timeout_secs: u64,
    /// The most addresses learning gives one port: DHCP leases (IPv4
    /// `dhcp` mode) and IPv6 addresses (either mode). Further claims
    /// or leases are ignored and logged.
    #[arg(long, value_name = "N", default_value_t = 16,
          value_parser = clap::value_parser!(u16).range(1..))]
    learn_max_addresses: u16,
    /// Firewall backend that applies the rules: xtables or nftables
    /// [default: `backend` in CONFIG_DIR/nwfilter.conf, else xtables].
    /// Bindings applied by the other backend move to this one at start.
    #[arg(long, value_name = "BACKEND")]
    backend: Option<Backend>,
    /// Also serve libvirt's RPC protocol (virsh, libvirt's hypervisor
    /// drivers) on this socket, as libvirt's virtnwfilterd does. A socket
    /// systemd passes (named `libvirt`, see contrib/) is served instead.
    #[arg(long, value_name = "PATH", num_args = 0..=1,
          default_missing_value = nwfilterd::libvirt::DEFAULT_SOCKET)]
    libvirt_socket: Option<PathBuf>,
    /// Also serve libvirt's RPC protocol read-only (every change refused)
    /// on this socket; a passed socket named `libvirt-ro` is served instead.
    #[arg(long, value_name = "PATH", num_args = 0..=1,
          default_missing_value = nwfilterd::libvirt::DEFAULT_SOCKET_RO)]
    libvirt_socket_ro: Option<PathBuf>,
}

fn run(
    args: Args,
    activated: Result<Activated, ActivationError>,
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    let socket = args
        .socket
        .clone()
        .unwrap_or_else(|| args.state_dir.join("nwfilterd.sock"));
    // Bind before anything else: a second daemon must fail here, not
    // after fighting the first one over the kernel and the lease file.
    let server = Server::bind(&socket)?;
    let activated = activated?;
    if !activated.is_empty() {
        info!("using the sockets passed by systemd");
    }
    let libvirt_listeners = activated.libvirt_listeners(
        args.libvirt_socket.as_deref(),
        args.libvirt_socket_ro.as_deref(),
    )?;
    // Kept to the end of `run`: it owns the learners.
    let host = open_host(&args)?;
    let service = host.frontend_service();
    reapply(&service, "start");
    for listener in libvirt_listeners {
        let mode = if listener.is_read_only() {
            " (read-only)"
        } else {
            ""
        };
        info!(
            "serving libvirt clients on {}{mode}",
            listener.path().display()
        );
        listener
            .spawn(Arc::clone(&service) as Arc<dyn nwfilter_service::libvirt::Api>)
            .context("starting the libvirt listener")?;
    }
    let networks = Arc::new(Networks::new(&args.config_dir, &args.state_dir));
    match networks.autostart(service.engine().backend()) {
        Ok(results) => networks::describe("started (autostart)", results)
            .into_iter()
            .for_each(|line| info!("{line}")),
        Err(e) => warn!("autostarting networks failed: {}", error_chain(&e)),
    }
    spawn_network_ports(&service)?;
    spawn_signals(&service, &networks, shutdown)?;
    spawn_keeper(&service, &args, shutdown)?;
    spawn_firewalld(&service, &networks)?;
    info!("serving on {}", server.path().display());
    let logged = Arc::new(Logged(Arc::clone(&service)));
    server
        .serve(logged, shutdown.clone())
        .context("serving the socket")?;
    // The rules stay; what we know of them spares the next start a read.
    host.hand_over();
    Ok(())
}

/// The engine, IP learning and the network verbs, assembled by
/// `nwfilter::Host` as for every embedder. The rule check is the daemon's
/// own (`keeper`: kernel change events and a timer), not the host's timer.
fn open_host(args: &Args) -> anyhow::Result<Host> {
    let learn_timeout =
        (args.learn_timeout_secs > 0).then(|| Duration::from_secs(args.learn_timeout_secs));
    let host = HostConfig::new(&args.config_dir, &args.state_dir)
        .firewall(nwfilter::frontend::firewall(args.backend))
        .learn_timeout(learn_timeout)
        .learn_max_addresses(usize::from(args.learn_max_addresses))
        .rule_check_every(None)
        .with_network_ports()
        .only_writer()
        .tools_on_standby()
        .open()?;
    let backend = host.frontend_service().engine().backend();
    info!("applying rules with the {backend} backend");
    Ok(host)
}

/// Networks' filters follow their ports: the kernel's link events, on a
/// thread of their own (see `nwfilter_service::netports`).
fn spawn_network_ports(service: &Arc<Service>) -> anyhow::Result<()> {
    let service = Arc::clone(service);
    thread::Builder::new()
        .name("network-ports".into())
        .spawn(move || {
            if let Err(e) = nwfilter_service::netports::watch(&service) {
                error!("following the network ports stopped: {e}; networks' filters no longer follow their ports");
            }
        })
        .context("starting the network port watch")?;
    Ok(())
}

/// SIGHUP re-applies everything; SIGTERM and SIGINT stop the daemon.
fn spawn_signals(
    service: &Arc<Service>,
    networks: &Arc<Networks>,
    shutdown: &Shutdown,
) -> anyhow::Result<()> {
    let mut signals =
        Signals::new([SIGHUP, SIGTERM, SIGINT]).context("installing signal handlers")?;
    let (service, networks, shutdown) =
        (Arc::clone(service), Arc::clone(networks), shutdown.clone());
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            for signal in signals.forever() {
                if signal == SIGHUP {
                    reread_backend(&service);
                    reapply(&service, "SIGHUP");
                    reload_networks(&networks, service.engine().backend(), "SIGHUP");
                } else {
                    info!("stopping; rules stay in place");
                    shutdown.request();
                    break;
                }
            }
        })
        .context("starting the signal thread")?;
    Ok(())
}

fn spawn_keeper(service: &Arc<Service>, args: &Args, shutdown: &Shutdown) -> anyhow::Result<()> {
    let (service, shutdown) = (Arc::clone(service), shutdown.clone());
    let requested = args
        .check_interval_ms
        .map(|ms| Duration::from_millis(ms.max(100)));
    let see_all = service.engine().backend() == Backend::Nftables || xtables_on_nf_tables();
    let (events, timer) = keeper::setup(requested, see_all, !args.no_kernel_events);
    thread::Builder::new()
        .name("rule-check".into())
        .spawn(move || {
            let ours = |pid| host_io::spawned_recently(pid);
            keeper::watch(service.engine(), timer, events, &ours, &shutdown);
        })
        .context("starting the rule check")?;
    Ok(())
}

/// Whether the xtables tools change the kernel through nf_tables (their
/// changes then send events), as the tools say of themselves.
fn xtables_on_nf_tables() -> bool {
    let tools = host_io::ProcessRunner::new(Toolset::default());
    nwfilter_driver::backend::xtables::tools_through_nf_tables(&tools)
}

fn spawn_firewalld(service: &Arc<Service>, networks: &Arc<Networks>) -> anyhow::Result<()> {
    let (service, networks) = (Arc::clone(service), Arc::clone(networks));
    thread::Builder::new()
        .name("firewalld".into())
        .spawn(move || {
            let error = firewalld::listen(|event| {
                let why = match event {
                    firewalld::Event::Reloaded => "firewalld reloaded",
                    firewalld::Event::Restarted => "firewalld (re)started",
                };
                reapply(&service, why);
                reload_networks(&networks, service.engine().backend(), why);
            });
            info!(
                "not listening for firewalld reloads ({error}); the rule check still restores flushed rules"
            );
        })
        .context("starting the firewalld listener")?;
    Ok(())
}

fn reapply(service: &Service, why: &str) {
    let start = Instant::now();
    let (result, learning_failures) = service.reapply();
    match result {
        Ok(report) => {
            info!(
                took = %Took(start.elapsed()),
                "{why}: {} binding(s) applied, {} already in place",
                report.applied.len(),
                report.unchanged.len()
            );
            for (port, reason) in report.failed {
                warn!("{why}: port {port} not applied: {reason}");
            }
        }
        Err(e) => error!(
            "{why}: re-applying the bindings failed: {}",
            error_chain(&e)
        ),
    }
    for failure in learning_failures {
        warn!("{why}: {failure}");
    }
}

/// SIGHUP re-reads the settings file (unless `--backend` was given): a
/// changed `backend` moves every binding at the re-apply that follows.
fn reread_backend(service: &Service) {
    match service.reread_backend() {
        Ok(Some(backend)) => info!("SIGHUP: switching to the {backend} backend"),
        Ok(None) => {}
        Err(e) => warn!(
            "SIGHUP: keeping the {} backend: {}",
            service.engine().backend(),
            error_chain(&e)
        ),
    }
}

/// Puts the running networks' rules back (the tables were rebuilt).
fn reload_networks(networks: &Networks, backend: nwfilter_driver::Backend, why: &str) {
    match networks.reload_firewall(backend) {
        Ok(results) => networks::describe("firewall rules re-added", results)
            .into_iter()
            .for_each(|line| info!("{why}: {line}")),
        Err(e) => warn!("{why}: reloading network rules failed: {}", error_chain(&e)),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    // Before any thread starts: this clears the protocol's variables.
    let activated = Activated::take_from_env();
    // Without a log writer (no thread could start) the daemon still runs:
    // protection matters more than its log.
    let log = logging::init(args.log_timings).ok();
    let code = match Shutdown::new() {
        Ok(shutdown) => {
            supervise::exit_on_panic(shutdown.clone());
            match run(args, activated, &shutdown) {
                Err(e) => {
                    error!("{}", error_chain(e.as_ref()));
                    ExitCode::FAILURE
                }
                Ok(()) => match supervise::exit_status(&shutdown) {
                    0 => ExitCode::SUCCESS,
                    code => {
                        error!("a thread died; exiting with status {code}");
                        ExitCode::from(code as u8)
                    }
                },
            }
        }
        Err(e) => {
            error!("creating the stop descriptor: {e}");
            ExitCode::FAILURE
        }
    };
    if let Some(log) = log {
        log.flush(Duration::from_secs(1));
    }
    code
}
