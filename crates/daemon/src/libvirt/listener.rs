//! The libvirt sockets: a blocking accept loop in its own thread, a thread
//! per connection, at most [`MAX_CLIENTS`] at once per socket (a further
//! client is closed at once, as libvirt closes clients over its limit).

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use tracing::{debug, error, warn};

use super::connection;
use super::peer::Peer;
use nwfilter_service::libvirt::Api;

/// Most clients served at once on one socket.
pub const MAX_CLIENTS: usize = 64;

/// Why a socket could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum ListenerError {
    #[error("libvirt socket {path}: another daemon is already listening there")]
    InUse { path: PathBuf },
    #[error("libvirt socket {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A bound libvirt socket, not yet serving.
#[derive(Debug)]
pub struct Listener {
    listener: UnixListener,
    path: PathBuf,
    read_only: bool,
}

impl Listener {
    /// Binds `path`: mode 0600 for the read-write socket, 0666 for the
    /// read-only one (libvirt's modes). A stale socket left by a killed
    /// daemon is replaced; a live one is an error.
    pub fn bind(path: &Path, read_only: bool) -> Result<Listener, ListenerError> {
        let io_err = |source| ListenerError::Io {
            path: path.to_owned(),
            source,
        };
        if let Ok(meta) = fs::symlink_metadata(path) {
            if meta.file_type().is_socket() {
                if UnixStream::connect(path).is_ok() {
                    return Err(ListenerError::InUse {
                        path: path.to_owned(),
                    });
                }
                fs::remove_file(path).map_err(io_err)?;
            }
        }
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).map_err(io_err)?;
        }
        let listener = UnixListener::bind(path).map_err(io_err)?;
        let mode = if read_only { 0o666 } else { 0o600 };
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(io_err)?;
        Ok(Listener {
            listener,
            path: path.to_owned(),
            read_only,
        })
    }

    /// A socket bound by someone else (systemd's socket unit, which sets
    /// its mode): served as it is.
    pub fn passed(listener: UnixListener, read_only: bool) -> Listener {
        let path = listener
            .local_addr()
            .ok()
            .and_then(|addr| addr.as_pathname().map(Path::to_owned))
            .unwrap_or_else(|| PathBuf::from("(socket passed by systemd)"));
        Listener {
            listener,
            path,
            read_only,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only
    }

    /// Serves in a thread of its own, for the life of the process.
    pub fn spawn(self, api: Arc<dyn Api>) -> io::Result<thread::JoinHandle<()>> {
        let name = if self.read_only {
            "libvirt-ro"
        } else {
            "libvirt"
        };
        thread::Builder::new()
            .name(name.into())
            .spawn(move || self.serve(api))
    }

    /// Accepts clients until accepting fails for good.
    pub fn serve(self, api: Arc<dyn Api>) {
        let live = Arc::new(AtomicUsize::new(0));
        for stream in self.listener.incoming() {
            match stream {
                Ok(stream) => self.admit(stream, &api, &live),
                Err(e) if is_transient(&e) => warn!(path = %self.path.display(), "accept: {e}"),
                Err(e) => {
                    error!(path = %self.path.display(), "no longer serving libvirt clients: {e}");
                    return;
                }
            }
        }
    }

    fn admit(&self, stream: UnixStream, api: &Arc<dyn Api>, live: &Arc<AtomicUsize>) {
        let peer = match Peer::of(&stream) {
            Ok(peer) => peer,
            Err(e) => {
                warn!("libvirt client refused: no peer credentials: {e}");
                return;
            }
        };
        if live.fetch_add(1, Ordering::SeqCst) >= MAX_CLIENTS {
            live.fetch_sub(1, Ordering::SeqCst);
            warn!(%peer, "libvirt client refused: {MAX_CLIENTS} clients already connected");
            return; // dropping the stream closes it
        }
        debug!(%peer, read_only = self.read_only, "libvirt client connected");
        let (api, counted) = (Arc::clone(api), Arc::clone(live));
        let read_only = self.read_only;
        let spawned = thread::Builder::new()
            .name("libvirt-client".into())
            .spawn(move || {
                connection::serve(stream, peer, read_only, api.as_ref());
                counted.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(e) = spawned {
            warn!(%peer, "libvirt client refused: cannot start its thread: {e}");
            // The closure (and its count) was dropped without running.
            live.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// Errors after which accepting can go on (a client that vanished, a
/// momentary lack of descriptors or memory).
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(
            libc::ECONNABORTED
                | libc::EINTR
                | libc::EMFILE
                | libc::ENFILE
                | libc::ENOBUFS
                | libc::ENOMEM
                | libc::EPROTO
        )
    )
}
