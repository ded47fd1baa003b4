//! The one assembly of the engine, the learner and the service from a
//! [`HostConfig`]: the daemon and the CLI get theirs from here too (through
//! a [`Host`](crate::Host)), so there is one way to put them together.

use std::path::Path;
use std::sync::Arc;

use host_io::{ProcessRunner, Toolset};
use nwfilter_driver::engine::error_chain;
use nwfilter_driver::{choose_backend, Backend, BindingStore, Engine, FilterStore};
use nwfilter_learn::LeaseStore;
use nwfilter_service::learning::{self, Learning};
use nwfilter_service::EngineService;

use crate::config::HostConfig;
use crate::Error;

/// The service every front end shares, on the real host's tools.
pub(crate) type Service = EngineService<ProcessRunner>;

/// Builds the service `config` describes. `learner_log` receives every
/// line the learner reports (each starts with `port NAME: `).
pub(crate) fn assemble(config: &HostConfig, learner_log: learning::Log) -> Result<Service, Error> {
    let backend = choose_backend(config.firewall.fixed(), &config.config_dir)
        .map_err(|e| Error::setup(error_chain(&e)))?;
    let mut runner = ProcessRunner::new(Toolset::default());
    if let Some(netns) = &config.netns {
        runner = runner.in_netns(netns.clone());
    }
    if config.standby {
        runner = runner
            .with_standby()
            .watching_commits()
            .removing_by_handle();
    }
    if config.prepare && backend == Backend::Xtables {
        Toolset::default()
            .check_installed()
            .map_err(|e| Error::Firewall {
                message: error_chain(&e),
            })?;
    }
    let filters = FilterStore::open(&config.config_dir);
    let mut bindings = BindingStore::open(&config.state_dir);
    if config.only_writer {
        bindings = bindings.kept_in_memory();
    }
    if config.prepare {
        sweep(&filters, &bindings)?;
    }
    let mut engine = Engine::new(filters, bindings, runner).with_backend(backend);
    if let Some(lock) = &config.tables_lock {
        engine = engine.with_tables_lock(lock);
    }
    let service = if config.learning {
        let engine = Arc::new(engine);
        let learning = Learning::new(
            Arc::clone(&engine),
            learner_config(config),
            open_leases(&config.state_dir)?,
            learner_log,
        );
        EngineService::with_learning(engine, learning)
    } else {
        EngineService::new(engine)
    };
    let service = service.with_settings(config.firewall.fixed(), &config.config_dir);
    Ok(if config.networks {
        let store = nwfilter_service::net_ops::store(&config.config_dir, &config.state_dir);
        let service = service.with_networks(store);
        if config.network_ports {
            service.with_network_ports()
        } else {
            service
        }
    } else {
        service
    })
}

/// Removes temp files left by writers that were killed (safe at any time:
/// under the stores' exclusive locks).
fn sweep(filters: &FilterStore, bindings: &BindingStore) -> Result<(), Error> {
    let filters = filters.sweep()?;
    for stray in filters.into_iter().chain(bindings.sweep()?) {
        tracing::info!("removed {}, left by an interrupted write", stray.display());
    }
    Ok(())
}

fn learner_config(config: &HostConfig) -> nwfilter_learn::Config {
    nwfilter_learn::Config {
        give_up_after: config.learn_timeout,
        max_addresses: config.learn_max_addresses,
        netns: (config.netns.as_ref()).map(|name| Path::new("/run/netns").join(name)),
        ..nwfilter_learn::Config::default()
    }
}

fn open_leases(state_dir: &Path) -> Result<LeaseStore, Error> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    LeaseStore::open(state_dir, now).map_err(|e| Error::Storage {
        message: format!("opening the DHCP lease file: {}", error_chain(&e)),
    })
}
