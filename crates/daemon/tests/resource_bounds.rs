//! The daemon's resource bounds (docs/RELIABILITY.md, issue 18 item 6),
//! each with the error a client gets at the bound: at most
//! `MAX_CONNECTIONS` open connections, requests of at most
//! `MAX_REQUEST_BYTES`. The server runs on a socket in a temporary
//! directory with a service that answers `list` (no kernel involved).

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nwfilter_service::protocol::MAX_REQUEST_BYTES;
use nwfilter_service::{Client, ClientError, Op, Reply, Service};
use nwfilterd::server::MAX_CONNECTIONS;
use nwfilterd::Server;

struct Lister;

impl Service for Lister {
    fn handle(&self, op: Op) -> Result<Reply, String> {
        match op {
            Op::List => Ok(Reply::Filters {
                filters: Vec::new(),
                skipped: Vec::new(),
            }),
            other => Err(format!("not in this test: {other:?}")),
        }
    }
}

struct Running {
    _dir: tempfile::TempDir,
    path: PathBuf,
    stop: nwfilterd::shutdown::Shutdown,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.request();
    }
}

fn serve() -> Running {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nwfilterd.sock");
    let server = Server::bind(&path).unwrap();
    let stop = nwfilterd::shutdown::Shutdown::new().unwrap();
    let flag = stop.clone();
    std::thread::spawn(move || server.serve(Arc::new(Lister), flag).unwrap());
    Running {
        _dir: dir,
        path,
        stop,
    }
}

/// A connection that has been accepted and answered once (so the server
/// counts it as open).
fn open(path: &Path) -> Client {
    let mut client = Client::connect(path).unwrap();
    client.call(Op::List).expect("answered");
    client
}

#[test]
fn connections_beyond_the_bound_are_refused_with_a_busy_error() {
    let daemon = serve();
    let held: Vec<Client> = (0..MAX_CONNECTIONS).map(|_| open(&daemon.path)).collect();
    let mut extra = Client::connect(&daemon.path).unwrap();
    match extra.call(Op::List) {
        Err(ClientError::Refused(message)) => assert_eq!(
            message,
            format!("daemon busy: {MAX_CONNECTIONS} connections already open")
        ),
        other => panic!(
            "connection {} was not refused: {other:?}",
            MAX_CONNECTIONS + 1
        ),
    }
    // Closing one makes room again.
    drop(held);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let mut client = Client::connect(&daemon.path).unwrap();
        match client.call(Op::List) {
            Ok(_) => break,
            Err(ClientError::Refused(m)) if m.starts_with("daemon busy") => {
                assert!(std::time::Instant::now() < deadline, "never freed");
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn a_request_longer_than_the_bound_is_refused_with_its_size() {
    let daemon = serve();
    let mut stream = UnixStream::connect(&daemon.path).unwrap();
    // One line of MAX_REQUEST_BYTES + 1 bytes: the server stops reading
    // there and answers, whatever follows.
    let mut line = br#"{"version":1,"op":"define","xml":""#.to_vec();
    line.resize(MAX_REQUEST_BYTES + 1, b'x');
    let writer = {
        let mut s = stream.try_clone().unwrap();
        std::thread::spawn(move || {
            let _ = s.write_all(&line);
            let _ = s.write_all(b"\"}\n");
        })
    };
    let mut answer = String::new();
    BufReader::new(&mut stream).read_line(&mut answer).unwrap();
    assert!(
        answer.contains(&format!("request longer than {MAX_REQUEST_BYTES} bytes")),
        "{answer}"
    );
    drop(stream);
    let _ = writer.join();
    // A request at the bound is read and answered on its own merits.
    let mut client = Client::connect(&daemon.path).unwrap();
    let xml = "x".repeat(MAX_REQUEST_BYTES - 64);
    match client.call(Op::Define { xml }) {
        Err(ClientError::Refused(m)) => assert!(m.starts_with("not in this test"), "{m}"),
        other => panic!("{other:?}"),
    }
}
