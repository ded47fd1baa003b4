//! The Unix-socket server of the JSON protocol: binds the socket, accepts
//! connections and hands each to the service's JSON front end
//! ([`json::serve_stream`]: request line in, response line out).
//!
//! Each connection gets its own thread so that a slow client (or a long
//! rebuild) does not hold up others; the service decides what must be
//! serialised. The number of live connections is capped so a misbehaving
//! client cannot exhaust threads.

use std::fs;
use std::io;
use std::os::fd::AsFd;
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;

use nwfilter_service::json::{self, Service};
use nwfilter_service::protocol::Response;

use crate::shutdown::{Shutdown, Woken};

/// Most connections served at once; further clients get an error line.
pub const MAX_CONNECTIONS: usize = 64;

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("socket {path}: another daemon is already listening there")]
    InUse { path: PathBuf },
    #[error("socket {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A bound, not yet serving, listener.
#[derive(Debug)]
pub struct Server {
    listener: UnixListener,
    path: PathBuf,
}

impl Server {
    /// Binds `path` with mode 0600 (owner only: the operations change the
    /// host's firewall). A stale socket left by a killed daemon is replaced;
    /// a live one is an error.
    pub fn bind(path: &Path) -> Result<Server, ServerError> {
        let io_err = |source| ServerError::Io {
            path: path.to_owned(),
            source,
        };
        if let Ok(meta) = fs::symlink_metadata(path) {
            if meta.file_type().is_socket() {
                if UnixStream::connect(path).is_ok() {
                    return Err(ServerError::InUse {
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
        fs::set_permissions(path, fs::Permissions::from_mode(0o600)).map_err(io_err)?;
        Ok(Server {
            listener,
            path: path.to_owned(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Serves until `shutdown` is requested. The listener is waited on
    /// together with the stop's wake-up descriptor: a request is accepted
    /// the moment it arrives, and a stop ends the loop at once.
    pub fn serve(self, service: Arc<dyn Service>, shutdown: Shutdown) -> io::Result<()> {
        // Non-blocking: a client that gave up between poll and accept must
        // not leave the loop stuck in accept.
        self.listener.set_nonblocking(true)?;
        let live = Arc::new(AtomicUsize::new(0));
        loop {
            match shutdown.wait(&[self.listener.as_fd()], None)? {
                Woken::Stop => return Ok(()),
                Woken::Timeout | Woken::Ready(_) => {}
            }
            match self.listener.accept() {
                Ok((stream, _)) => {
                    stream.set_nonblocking(false)?;
                    if live.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                        live.fetch_sub(1, Ordering::SeqCst);
                        refuse_busy(stream);
                        continue;
                    }
                    let service = Arc::clone(&service);
                    let live = Arc::clone(&live);
                    thread::spawn(move || {
                        // A broken connection only concerns its client.
                        let _ = json::serve_stream(stream, service.as_ref());
                        live.fetch_sub(1, Ordering::SeqCst);
                    });
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(e),
            }
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

fn refuse_busy(mut stream: UnixStream) {
    let _ = json::write_response(
        &mut stream,
        &Response::Error {
            message: format!("daemon busy: {MAX_CONNECTIONS} connections already open"),
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use nwfilter_service::protocol::{FilterEntry, Op, Reply};
    use nwfilter_service::{Client, ClientError};
    use std::sync::Mutex;

    /// Records the operations it was given and answers `list`.
    struct Echo(Mutex<Vec<Op>>);

    impl Service for Echo {
        fn handle(&self, op: Op) -> Result<Reply, String> {
            self.0.lock().unwrap().push(op.clone());
            match op {
                Op::List => Ok(Reply::Filters {
                    filters: vec![FilterEntry {
                        uuid: "5c6d49af-b071-6127-b4ec-6f8ed4b55335".into(),
                        name: "f".into(),
                        builtin: false,
                    }],
                    skipped: Vec::new(),
                }),
                Op::Undefine { filter } => Err(format!("filter '{filter}' is in use")),
                _ => Ok(Reply::Done {
                    message: "done".into(),
                }),
            }
        }
    }

    fn start() -> (tempfile::TempDir, PathBuf, Arc<Echo>, Shutdown) {
        let (dir, path, service, stop, _) = start_joinable();
        (dir, path, service, stop)
    }

    type Serving = thread::JoinHandle<io::Result<()>>;

    fn start_joinable() -> (tempfile::TempDir, PathBuf, Arc<Echo>, Shutdown, Serving) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sock");
        let server = Server::bind(&path).unwrap();
        let service = Arc::new(Echo(Mutex::new(Vec::new())));
        let stop = Shutdown::new().unwrap();
        let (svc, st) = (Arc::clone(&service), stop.clone());
        let serving = thread::spawn(move || server.serve(svc, st));
        (dir, path, service, stop, serving)
    }

    #[test]
    fn a_stop_ends_serving_at_once() {
        let (_dir, _path, _svc, stop, serving) = start_joinable();
        thread::sleep(std::time::Duration::from_millis(20));
        let asked = std::time::Instant::now();
        stop.request();
        serving.join().unwrap().unwrap();
        assert!(asked.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn socket_is_owner_only() {
        let (_dir, path, _svc, stop) = start();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        stop.request();
    }

    #[test]
    fn calls_reach_the_service_and_errors_come_back() {
        let (_dir, path, svc, stop) = start();
        let mut client = Client::connect(&path).unwrap();
        match client.call(Op::List).unwrap() {
            Reply::Filters { filters, .. } => assert_eq!(filters[0].name, "f"),
            other => panic!("unexpected {other:?}"),
        }
        match client.call(Op::Undefine { filter: "x".into() }) {
            Err(ClientError::Refused(m)) => assert_eq!(m, "filter 'x' is in use"),
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(svc.0.lock().unwrap().len(), 2);
        stop.request();
    }

    #[test]
    fn a_second_daemon_on_a_live_socket_is_refused() {
        let (_dir, path, _svc, stop) = start();
        assert!(matches!(
            Server::bind(&path),
            Err(ServerError::InUse { .. })
        ));
        stop.request();
    }
}
