//! No request waits behind a slow one longer than its own work plus the
//! engine's (issue 18 item 5), shown without timing anything: a
//! binding-create is stopped inside its kernel change (the runner waits
//! until the test lets it go, holding the engine's lock), and while it is
//! stopped, other clients on the daemon's socket get every read answered
//! with the right content, and a bad definition refused. A second change
//! waits for the engine, as it must, and is answered once the first is
//! done. The server is the daemon's (`Server`), the service the daemon's
//! (`EngineService`); only the firewall tools are replaced.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use host_io::{Gate, GatedRunner};
use nwfilter_driver::{BindingStore, Engine, FilterStore};
use nwfilter_service::{Client, ClientError, EngineService, Op, Reply};
use nwfilterd::shutdown::Shutdown;
use nwfilterd::Server;

/// Records commands; the first command that touches `port` waits, inside
/// the engine's lock, until the test lets it go.
fn gated_on(port: &'static str) -> (GatedRunner, Gate) {
    GatedRunner::new(move |cmd| {
        cmd.args.iter().any(|a| a.contains(port))
            || cmd.stdin.as_deref().is_some_and(|s| s.contains(port))
    })
}

fn binding(port: &str, n: u8, filter: &str) -> String {
    format!(
        "<filterbinding><owner><name>vm-{port}</name>\
         <uuid>d54df46f-1ab5-4a22-8618-4560ef5fac{n:02x}</uuid></owner>\
         <portdev name='{port}'/><mac address='52:54:00:7b:35:{n:02x}'/>\
         <filterref filter='{filter}'><parameter name='IP' value='192.0.2.{n}'/></filterref>\
         </filterbinding>"
    )
}

const FAST_FILTER: &str = "<filter name='fast' chain='ipv4'>\
    <uuid>6a1f0c3e-5b2d-4c8e-9f7a-1d2e3f4a5b6c</uuid>\
    <rule action='drop' direction='in' priority='500'><ip srcipaddr='10.9.9.7'/></rule>\
    </filter>";

struct Daemon {
    _dir: tempfile::TempDir,
    socket: PathBuf,
    stop: Shutdown,
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop.request();
    }
}

fn serve(runner: Arc<GatedRunner>) -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::new(
        FilterStore::open(dir.path().join("etc")),
        BindingStore::open(dir.path().join("run")),
        runner,
    );
    let service = Arc::new(EngineService::new(engine));
    let socket = dir.path().join("nwfilterd.sock");
    let server = Server::bind(&socket).unwrap();
    let stop = Shutdown::new().unwrap();
    let flag = stop.clone();
    thread::spawn(move || server.serve(service, flag).unwrap());
    Daemon {
        _dir: dir,
        socket,
        stop,
    }
}

fn call(socket: &Path, op: Op) -> Result<Reply, ClientError> {
    Client::connect(socket).unwrap().call(op)
}

fn done(message: &str) -> Reply {
    Reply::Done {
        message: message.into(),
    }
}

/// `op` on a connection of its own, answered on the returned channel.
fn in_background(socket: &Path, op: Op) -> Receiver<Result<Reply, ClientError>> {
    let (tx, rx) = mpsc::channel();
    let socket = socket.to_owned();
    thread::spawn(move || {
        let _ = tx.send(call(&socket, op));
    });
    rx
}

/// Not a time limit on the request: only a guard against the test hanging
/// forever should the request queue behind the stopped one (the bug).
const GUARD: Duration = Duration::from_secs(120);

#[test]
fn reads_are_answered_while_a_writer_is_stopped_inside_the_engine() {
    let (runner, gate) = gated_on("slow0");
    let runner = Arc::new(runner);
    let daemon = serve(runner);
    let socket = daemon.socket.as_path();
    assert_eq!(
        call(
            socket,
            Op::Define {
                xml: FAST_FILTER.into()
            }
        )
        .unwrap(),
        done("Network filter fast defined")
    );
    assert_eq!(
        call(
            socket,
            Op::BindingCreate {
                xml: binding("fast0", 1, "fast")
            }
        )
        .unwrap(),
        done("Network filter binding on fast0 created")
    );

    // The slow writer: stopped inside its kernel change.
    let slow = in_background(
        socket,
        Op::BindingCreate {
            xml: binding("slow0", 2, "clean-traffic"),
        },
    );
    gate.wait_entered();

    // Every read, from clients of their own, at once.
    let reads = [
        Op::List,
        Op::Dumpxml {
            filter: "fast".into(),
        },
        Op::Dumpxml {
            filter: "6a1f0c3e-5b2d-4c8e-9f7a-1d2e3f4a5b6c".into(),
        },
        Op::BindingList,
        Op::BindingDumpxml {
            portdev: "fast0".into(),
        },
        Op::BindingDumpxml {
            portdev: "slow0".into(),
        },
        Op::Define {
            xml: "<filter name='bad'><rule action='sideways' direction='in'/></filter>".into(),
        },
    ];
    let pending: Vec<_> = reads
        .iter()
        .map(|op| (op.clone(), in_background(socket, op.clone())))
        .collect();
    let answers: Vec<_> = pending
        .into_iter()
        .map(|(op, rx)| {
            let answer = rx.recv_timeout(GUARD);
            (op, answer)
        })
        .collect();
    // A change waits for the engine (the slow writer's work), and only that.
    let second = in_background(
        socket,
        Op::BindingCreate {
            xml: binding("fast1", 3, "fast"),
        },
    );
    gate.release();
    for (op, answer) in answers {
        let answer = answer.unwrap_or_else(|_| panic!("{op:?} waited behind the stopped writer"));
        check_read(&op, answer);
    }
    assert_eq!(
        slow.recv().unwrap().unwrap(),
        done("Network filter binding on slow0 created")
    );
    assert_eq!(
        second.recv().unwrap().unwrap(),
        done("Network filter binding on fast1 created")
    );
    let Reply::Bindings { bindings } = call(socket, Op::BindingList).unwrap() else {
        panic!("binding-list")
    };
    let mut ports: Vec<_> = bindings.into_iter().map(|b| b.portdev).collect();
    ports.sort();
    assert_eq!(ports, ["fast0", "fast1", "slow0"]);
}

/// What each read must answer while `slow0`'s create is unfinished: the
/// state before it (its binding is stored only once its rules are in).
fn check_read(op: &Op, answer: Result<Reply, ClientError>) {
    match (op, answer) {
        (Op::List, Ok(Reply::Filters { filters, skipped })) => {
            let names: Vec<_> = filters.iter().map(|f| f.name.as_str()).collect();
            assert!(names.contains(&"fast"), "{names:?}");
            assert!(names.contains(&"clean-traffic"), "{names:?}");
            assert!(!names.contains(&"bad"), "{names:?}");
            assert!(skipped.is_empty(), "{skipped:?}");
        }
        (Op::Dumpxml { .. }, Ok(Reply::Xml { xml })) => {
            assert!(xml.contains("<filter name='fast'"), "{xml}");
            assert!(xml.contains("10.9.9.7"), "{xml}");
        }
        (Op::BindingList, Ok(Reply::Bindings { bindings })) => {
            let ports: Vec<_> = bindings.iter().map(|b| b.portdev.as_str()).collect();
            assert_eq!(ports, ["fast0"]);
            assert_eq!(bindings[0].filter, "fast");
        }
        (Op::BindingDumpxml { portdev }, answer) if portdev == "fast0" => {
            let Ok(Reply::Xml { xml }) = answer else {
                panic!("{answer:?}")
            };
            assert!(xml.contains("<portdev name='fast0'/>"), "{xml}");
            assert!(xml.contains("192.0.2.1"), "{xml}");
        }
        (Op::BindingDumpxml { .. }, Err(ClientError::Refused(message))) => {
            assert!(message.contains("slow0"), "{message}");
        }
        (Op::Define { .. }, Err(ClientError::Refused(message))) => {
            assert!(message.contains("sideways"), "{message}");
        }
        (op, answer) => panic!("{op:?}: unexpected answer {answer:?}"),
    }
}
