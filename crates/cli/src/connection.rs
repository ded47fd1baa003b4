//! Where an operation runs: in this process on the directories (embedded
//! mode, no daemon needed) or in `nwfilterd` over its socket. Both carry out
//! the same `Op` through the same service code, so their behaviour cannot
//! drift apart.

use std::path::{Path, PathBuf};

use anyhow::Context;
use backend_xtables::{ProcessRunner, Toolset};
use nwfilter_driver::{BindingStore, Engine, FilterStore};
use nwfilterd::{Client, ClientError, EngineService, Op, Reply};

/// The socket file name the daemon uses inside its state directory.
pub const SOCKET_NAME: &str = "nwfilterd.sock";

/// How verbs reach the filters and bindings.
#[derive(Debug)]
pub enum Connection {
    Embedded(Box<EngineService<ProcessRunner>>),
    Daemon(Client),
}

impl Connection {
    /// `--connect SOCKET` must reach a daemon; without it the daemon's
    /// socket in the state directory is used when a daemon answers there,
    /// and the directories are used directly otherwise.
    pub fn open(config: &Path, state: &Path, connect: Option<&Path>) -> anyhow::Result<Connection> {
        if let Some(socket) = connect {
            return Ok(Connection::Daemon(Client::connect(socket)?));
        }
        let socket = state.join(SOCKET_NAME);
        if socket.exists() {
            if let Ok(client) = Client::connect(&socket) {
                return Ok(Connection::Daemon(client));
            }
        }
        Ok(Connection::Embedded(Box::new(embedded(config, state))))
    }

    /// Carries out `op`.
    pub fn call(&mut self, op: Op) -> anyhow::Result<Reply> {
        match self {
            Connection::Embedded(service) => service.call(op).map_err(anyhow::Error::msg),
            Connection::Daemon(client) => client.call(op).map_err(|e| match e {
                ClientError::Refused(message) => anyhow::Error::msg(message),
                other => anyhow::Error::new(other),
            }),
        }
    }
}

/// The service on the directories, applying rules in this network namespace.
pub fn embedded(config: &Path, state: &Path) -> EngineService<ProcessRunner> {
    // Missing firewall tools are reported by the operation that needs them
    // (with the package to install), not here: `list` must work without.
    let runner = ProcessRunner::new(Toolset::default());
    EngineService::new(
        Engine::new(FilterStore::open(config), BindingStore::open(state), runner)
            .with_tables_lock(backend_xtables::apply::DEFAULT_LOCK_FILE),
    )
    .with_networks(nwfilterd::net_ops::store(config, state))
}

/// Reads a document named on the command line.
pub fn read_file(path: &PathBuf) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}
