//! The daemon's resource bounds (docs/RELIABILITY.md, issue 18 item 6),
//! each with the error a client gets at the bound: at most
//! `MAX_CONNECTIONS` open connections, requests of at most
//! `MAX_REQUEST_BYTES`, and on the libvirt socket lists of at most
//! libvirt's 16384 bindings or filters. The servers run on sockets in a
//! temporary directory with a service that answers lists (no kernel
//! involved).

mod libvirt_client;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use libvirt_client::RpcClient;
use libvirt_rpc::call::{BINDING_LIST_MAX, NWFILTER_LIST_MAX};
use libvirt_rpc::{Call, Ret};
use nwfilter_service::protocol::{BindingEntry, FilterEntry, MAX_REQUEST_BYTES};
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

/// Answers the lists with `n` bindings and `n` filters.
struct Many(usize);

impl nwfilter_service::libvirt::Api for Many {
    fn call(&self, op: Op) -> Result<Reply, Box<dyn std::error::Error>> {
        Ok(match op {
            Op::BindingList => Reply::Bindings {
                bindings: (0..self.0)
                    .map(|i| BindingEntry {
                        portdev: format!("vnet{i}"),
                        filter: "clean-traffic".into(),
                        state: None,
                        learned: Vec::new(),
                        owner: None,
                    })
                    .collect(),
            },
            Op::List => Reply::Filters {
                filters: (0..self.0)
                    .map(|i| FilterEntry {
                        uuid: uuid::Uuid::from_u128(i as u128).to_string(),
                        name: format!("f{i}"),
                        builtin: false,
                    })
                    .collect(),
                skipped: Vec::new(),
            },
            other => return Err(format!("not in this test: {other:?}").into()),
        })
    }

    fn define(
        &self,
        _xml: &str,
    ) -> Result<Arc<nwfilter_model::Filter>, Box<dyn std::error::Error>> {
        Err("not in this test: define".into())
    }

    fn binding_create(
        &self,
        _xml: &str,
    ) -> Result<nwfilter_model::Binding, Box<dyn std::error::Error>> {
        Err("not in this test: binding-create".into())
    }

    fn lookup_filter(
        &self,
        key: &str,
    ) -> Result<Arc<nwfilter_model::Filter>, nwfilter_driver::Error> {
        Err(nwfilter_driver::Error::NoSuchFilter(key.into()))
    }

    fn lookup_binding(
        &self,
        portdev: &str,
    ) -> Result<nwfilter_model::Binding, nwfilter_driver::Error> {
        Err(nwfilter_driver::Error::NoSuchBinding(portdev.into()))
    }
}

/// A libvirt socket served by `Many(n)`, and an opened client.
fn libvirt_with(n: usize) -> (tempfile::TempDir, RpcClient) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("virtnwfilterd-sock");
    nwfilterd::libvirt::Listener::bind(&path, false)
        .unwrap()
        .spawn(Arc::new(Many(n)))
        .unwrap();
    let mut client = RpcClient::connect(&path);
    client.open(false);
    (dir, client)
}

#[test]
fn libvirt_lists_up_to_libvirts_limit_and_refuses_longer_ones_naming_the_count() {
    assert_eq!(BINDING_LIST_MAX, NWFILTER_LIST_MAX);
    let list_bindings = Call::ConnectListAllBindings {
        need_results: 1,
        flags: 0,
    };
    let list_filters = Call::ConnectListAllNwfilters {
        need_results: 1,
        flags: 0,
    };
    // At the bound: every item comes back (what virsh can still decode).
    let (_dir, mut client) = libvirt_with(BINDING_LIST_MAX);
    match client.call(&list_bindings) {
        Ok(Ret::Bindings { bindings, ret }) => {
            assert_eq!(
                (bindings.len(), ret as usize),
                (BINDING_LIST_MAX, BINDING_LIST_MAX)
            );
            assert_eq!(bindings[BINDING_LIST_MAX - 1].portdev, "vnet16383");
        }
        other => panic!("{other:?}"),
    }
    match client.call(&list_filters) {
        Ok(Ret::Nwfilters { filters, ret }) => {
            assert_eq!(
                (filters.len(), ret as usize),
                (NWFILTER_LIST_MAX, NWFILTER_LIST_MAX)
            );
        }
        other => panic!("{other:?}"),
    }
    // One more: libvirt's RPC error naming the count and the limit; the
    // connection goes on.
    let (_dir, mut client) = libvirt_with(BINDING_LIST_MAX + 1);
    let err = client.call(&list_bindings).unwrap_err();
    assert_eq!(err.code, libvirt_rpc::error::code::RPC);
    assert!(
        err.text()
            .contains("Too many bindings '16385' for limit '16384'"),
        "{}",
        err.text()
    );
    let err = client.call(&list_filters).unwrap_err();
    assert!(
        err.text()
            .contains("Too many nwfilters '16385' for limit '16384'"),
        "{}",
        err.text()
    );
    assert!(client.ping(), "the connection is still served");
}

#[test]
fn a_refusal_sent_before_the_request_is_written_reaches_the_client() {
    // The server answers "busy" and closes before the client writes (as
    // the daemon does at the connection bound): the client's write then
    // fails with a broken pipe, and the user must still get the answer.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nwfilterd.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let mut client = Client::connect(&path).unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    let busy = nwfilter_service::Response::Error {
        message: format!("daemon busy: {MAX_CONNECTIONS} connections already open"),
    };
    let mut line = serde_json::to_vec(&busy).unwrap();
    line.push(b'\n');
    conn.write_all(&line).unwrap();
    drop(conn);
    match client.call(Op::List) {
        Err(ClientError::Refused(message)) => {
            assert!(message.starts_with("daemon busy"), "{message}")
        }
        other => panic!("the refusal was lost: {other:?}"),
    }
}
