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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use anyhow::Context;
use backend_xtables::{ProcessRunner, Toolset};
use clap::Parser;
use nwfilter_driver::engine::error_chain;
use nwfilter_driver::{choose_backend, Backend, BindingStore, Engine, FilterStore};
use nwfilter_learn::LeaseStore;
use nwfilterd::learning::Learning;
use nwfilterd::networks::{self, Networks};
use nwfilterd::{firewalld, keeper, net_ops, EngineService, Server};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

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
    /// How often to check that our rules are still in the kernel (ms).
    #[arg(long, value_name = "MS", default_value_t = keeper::DEFAULT_INTERVAL.as_millis() as u64)]
    check_interval_ms: u64,
    /// Give up learning a port's IP address after this many seconds (the
    /// port then stays blocked); 0 waits forever, as libvirt does.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    learn_timeout_secs: u64,
    /// Firewall backend that applies the rules: xtables or nftables
    /// [default: `backend` in CONFIG_DIR/nwfilter.conf, else xtables].
    /// Bindings applied by the other backend move to this one at start.
    #[arg(long, value_name = "BACKEND")]
    backend: Option<Backend>,
    /// Also serve libvirt's RPC protocol (virsh, libvirt's hypervisor
    /// drivers) on this socket, as libvirt's virtnwfilterd does.
    #[arg(long, value_name = "PATH", num_args = 0..=1,
          default_missing_value = nwfilterd::libvirt::DEFAULT_SOCKET)]
    libvirt_socket: Option<PathBuf>,
    /// Also serve libvirt's RPC protocol read-only (every change refused)
    /// on this socket.
    #[arg(long, value_name = "PATH", num_args = 0..=1,
          default_missing_value = nwfilterd::libvirt::DEFAULT_SOCKET_RO)]
    libvirt_socket_ro: Option<PathBuf>,
}

#[allow(clippy::print_stderr)]
fn log(line: String) {
    eprintln!("nwfilterd: {line}");
}

fn run(args: Args) -> anyhow::Result<()> {
    let socket = args
        .socket
        .unwrap_or_else(|| args.state_dir.join("nwfilterd.sock"));
    let backend = choose_backend(args.backend, &args.config_dir)?;
    let toolset = Toolset::default();
    if backend == Backend::Xtables {
        toolset.check_installed()?;
    }
    let filters = FilterStore::open(&args.config_dir);
    let bindings = BindingStore::open(&args.state_dir);
    for stray in filters.sweep()?.into_iter().chain(bindings.sweep()?) {
        log(format!(
            "removed {}, left by an interrupted write",
            stray.display()
        ));
    }
    let engine = Arc::new(
        Engine::new(filters, bindings, ProcessRunner::new(toolset))
            .with_backend(backend)
            .with_tables_lock(backend_xtables::apply::DEFAULT_LOCK_FILE),
    );
    log(format!("applying rules with the {backend} backend"));
    // Bind before applying anything: a second daemon must fail here, not
    // after fighting the first one over the kernel.
    let server = Server::bind(&socket)?;
    let libvirt_listeners = bind_libvirt(&args.libvirt_socket, &args.libvirt_socket_ro)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let leases = LeaseStore::open(&args.state_dir, now).context("opening the DHCP lease file")?;
    let config = nwfilter_learn::Config {
        give_up_after: (args.learn_timeout_secs > 0)
            .then(|| Duration::from_secs(args.learn_timeout_secs)),
        ..nwfilter_learn::Config::default()
    };
    let learning = Learning::new(Arc::clone(&engine), config, leases, Arc::new(log));
    let service = Arc::new(
        EngineService::with_learning(engine, learning)
            .with_networks(net_ops::store(&args.config_dir, &args.state_dir))
            .with_settings(args.backend, &args.config_dir),
    );
    reapply(&service, "start");
    for listener in libvirt_listeners {
        log(format!(
            "serving libvirt clients on {}{}",
            listener.path().display(),
            if listener.is_read_only() {
                " (read-only)"
            } else {
                ""
            }
        ));
        listener
            .spawn(Arc::clone(&service) as Arc<dyn nwfilterd::libvirt::Api>)
            .context("starting the libvirt listener")?;
    }
    let networks = Arc::new(Networks::new(&args.config_dir, &args.state_dir));
    match networks.autostart() {
        Ok(results) => networks::describe("started (autostart)", results)
            .into_iter()
            .for_each(log),
        Err(e) => log(format!("autostarting networks failed: {}", error_chain(&e))),
    }

    let stop = Arc::new(AtomicBool::new(false));
    let mut signals =
        Signals::new([SIGHUP, SIGTERM, SIGINT]).context("installing signal handlers")?;
    {
        let (service, stop) = (Arc::clone(&service), Arc::clone(&stop));
        let networks = Arc::clone(&networks);
        thread::spawn(move || {
            for signal in signals.forever() {
                if signal == SIGHUP {
                    reread_backend(&service);
                    reapply(&service, "SIGHUP");
                    reload_networks(&networks, "SIGHUP");
                } else {
                    log("stopping; rules stay in place".into());
                    stop.store(true, Ordering::SeqCst);
                    break;
                }
            }
        });
    }
    {
        let (service, stop) = (Arc::clone(&service), Arc::clone(&stop));
        let interval = Duration::from_millis(args.check_interval_ms.max(100));
        thread::spawn(move || keeper::watch(service.engine(), interval, &stop, &log));
    }
    {
        let service = Arc::clone(&service);
        let networks = Arc::clone(&networks);
        thread::spawn(move || {
            let error = firewalld::listen(|event| {
                let why = match event {
                    firewalld::Event::Reloaded => "firewalld reloaded",
                    firewalld::Event::Restarted => "firewalld (re)started",
                };
                reapply(&service, why);
                reload_networks(&networks, why);
            });
            log(format!(
                "not listening for firewalld reloads ({error}); the rule check still restores flushed rules"
            ));
        });
    }
    log(format!("serving on {}", server.path().display()));
    server.serve(service, stop).context("serving the socket")?;
    Ok(())
}

/// Binds the libvirt sockets asked for (before anything is applied, so a
/// daemon already serving them stops this one early).
fn bind_libvirt(
    read_write: &Option<PathBuf>,
    read_only: &Option<PathBuf>,
) -> anyhow::Result<Vec<nwfilterd::libvirt::Listener>> {
    let wanted = [(read_write, false), (read_only, true)];
    let mut listeners = Vec::new();
    for (path, read_only) in wanted {
        if let Some(path) = path {
            listeners.push(nwfilterd::libvirt::Listener::bind(path, read_only)?);
        }
    }
    Ok(listeners)
}

fn reapply(service: &EngineService<ProcessRunner>, why: &str) {
    match service.engine().reapply_all() {
        Ok(report) => {
            log(format!(
                "{why}: {} binding(s) applied, {} already in place",
                report.applied.len(),
                report.unchanged.len()
            ));
            for (port, reason) in report.failed {
                log(format!("{why}: port {port} not applied: {reason}"));
            }
        }
        Err(e) => log(format!(
            "{why}: re-applying the bindings failed: {}",
            error_chain(&e)
        )),
    }
    for failure in service.start_learning_all() {
        log(format!("{why}: {failure}"));
    }
}

/// SIGHUP re-reads the settings file (unless `--backend` was given): a
/// changed `backend` moves every binding at the re-apply that follows.
fn reread_backend(service: &EngineService<ProcessRunner>) {
    match service.reread_backend() {
        Ok(Some(backend)) => log(format!("SIGHUP: switching to the {backend} backend")),
        Ok(None) => {}
        Err(e) => log(format!(
            "SIGHUP: keeping the {} backend: {}",
            service.engine().backend(),
            error_chain(&e)
        )),
    }
}

/// Puts the running networks' rules back (the tables were rebuilt).
fn reload_networks(networks: &Networks, why: &str) {
    match networks.reload_firewall() {
        Ok(results) => networks::describe("firewall rules re-added", results)
            .into_iter()
            .for_each(|line| log(format!("{why}: {line}"))),
        Err(e) => log(format!(
            "{why}: reloading network rules failed: {}",
            error_chain(&e)
        )),
    }
}

fn main() -> ExitCode {
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            log(format!("{e:#}"));
            ExitCode::FAILURE
        }
    }
}
