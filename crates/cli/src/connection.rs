//! Where an operation runs: in this process on the directories (embedded
//! mode, no daemon needed) or in `nwfilterd` over its socket. Both carry out
//! the same `Op` through the same service code, so their behaviour cannot
//! drift apart.

use std::path::{Path, PathBuf};

use anyhow::Context;
use nwfilter::{Host, HostConfig};
use nwfilter_driver::Backend;
use nwfilter_service::{Client, ClientError, Op, Reply};

/// The socket file name the daemon uses inside its state directory.
pub const SOCKET_NAME: &str = "nwfilterd.sock";

/// How verbs reach the filters and bindings.
#[derive(Debug)]
pub enum Connection {
    Embedded(Box<Host>),
    Daemon(Client),
}

impl Connection {
    /// `--connect SOCKET` must reach a daemon; without it the daemon's
    /// socket in the state directory is used when a daemon answers there,
    /// and the directories are used directly otherwise.
    ///
    /// `backend` is `--backend`: in embedded mode it beats the settings
    /// file; a daemon applies with its own setting, so a different one is
    /// refused rather than silently ignored.
    pub fn open(
        config: &Path,
        state: &Path,
        connect: Option<&Path>,
        backend: Option<Backend>,
    ) -> anyhow::Result<Connection> {
        if let Some(socket) = connect {
            return daemon(Client::connect(socket)?, socket, backend);
        }
        let socket = state.join(SOCKET_NAME);
        if socket.exists() {
            if let Ok(client) = Client::connect(&socket) {
                return daemon(client, &socket, backend);
            }
        }
        Ok(Connection::Embedded(Box::new(embedded(
            config, state, backend,
        )?)))
    }

    /// Carries out `op`.
    pub fn call(&mut self, op: Op) -> anyhow::Result<Reply> {
        match self {
            Connection::Embedded(host) => {
                (host.frontend_service().call(op)).map_err(anyhow::Error::msg)
            }
            Connection::Daemon(client) => client.call(op).map_err(|e| match e {
                ClientError::Refused(message) => anyhow::Error::msg(message),
                other => anyhow::Error::new(other),
            }),
        }
    }
}

/// The daemon on `client`, after checking that it applies with
/// `backend` when one was asked for.
fn daemon(
    mut client: Client,
    socket: &Path,
    backend: Option<Backend>,
) -> anyhow::Result<Connection> {
    if let Some(wanted) = backend {
        let running = match client.call(Op::Status) {
            Ok(Reply::Status { backend }) => backend,
            Ok(other) => anyhow::bail!("the daemon answered status with {other:?}"),
            Err(e) => anyhow::bail!(
                "--backend {wanted}: the daemon at {} does not report its backend ({e}); \
                 it applies rules with its own setting: leave out --backend",
                socket.display()
            ),
        };
        if running != wanted {
            anyhow::bail!(
                "--backend {wanted}: the daemon at {} applies rules with the {running} \
                 backend, and its setting decides (nwfilterd --backend, or `backend` in \
                 nwfilter.conf followed by a reload); leave out --backend or use \
                 --backend {running}",
                socket.display()
            );
        }
    }
    Ok(Connection::Daemon(client))
}

/// The service on the directories, applying rules in this network
/// namespace with `backend` (`None`: the settings file's), assembled by
/// `nwfilter::Host` as for every embedder; no IP learning (that needs a
/// process that stays) and no rule check.
pub fn embedded(config: &Path, state: &Path, backend: Option<Backend>) -> anyhow::Result<Host> {
    // Missing firewall tools are reported by the operation that needs them
    // (with the package to install), not here: `list` must work without.
    let host = HostConfig::new(config, state)
        .firewall(nwfilter::frontend::firewall(backend))
        .learning(false)
        .rule_check_every(None)
        .unprepared()
        .with_networks()
        .open()?;
    Ok(host)
}

/// Reads a document named on the command line.
pub fn read_file(path: &PathBuf) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}
