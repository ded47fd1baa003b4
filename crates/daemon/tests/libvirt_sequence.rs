//! The libvirt front end over a real socket, with the codec as the
//! client: the sequence a hypervisor driver sends, the connection rules
//! (open first, read-only), libvirt's errors, keepalive, and clients that
//! break the protocol without hurting others. The firewall is a recording
//! runner, so these run without root.

mod libvirt_client;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use host_io::RecordingRunner;
use libvirt_client::RpcClient;
use libvirt_rpc::error::code;
use libvirt_rpc::{BindingRef, Call, Frame, Header, Ret, TypedParam, TypedValue};
use nwfilter_driver::{BindingStore, Engine, FilterStore};
use nwfilter_service::libvirt::Api;
use nwfilter_service::EngineService;
use nwfilterd::libvirt::listener::MAX_CLIENTS;
use nwfilterd::libvirt::Listener;

struct Daemon {
    dir: tempfile::TempDir,
    rw: PathBuf,
    ro: PathBuf,
}

fn start() -> Daemon {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::new(
        FilterStore::open(dir.path().join("etc")),
        BindingStore::open(dir.path().join("run")),
        RecordingRunner::new(),
    )
    .with_tables_lock(dir.path().join("xtables.lock"));
    let api: Arc<dyn Api> = Arc::new(EngineService::new(engine));
    let (rw, ro) = (dir.path().join("sock"), dir.path().join("sock-ro"));
    Listener::bind(&rw, false)
        .unwrap()
        .spawn(Arc::clone(&api))
        .unwrap();
    Listener::bind(&ro, true).unwrap().spawn(api).unwrap();
    Daemon { dir, rw, ro }
}

fn binding_xml(port: &str) -> String {
    format!(
        "<filterbinding>
  <owner><name>vm1</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner>
  <portdev name='{port}'/>
  <mac address='52:54:00:12:34:56'/>
  <filterref filter='no-mac-spoofing'/>
</filterbinding>"
    )
}

fn lookup(port: &str) -> Call {
    Call::BindingLookupByPortDev { name: port.into() }
}

fn code_of(result: Result<Ret, libvirt_rpc::RemoteError>) -> (i32, i32, String) {
    let e = result.unwrap_err();
    (e.code, e.domain, e.text().to_string())
}

#[test]
fn the_hypervisor_driver_sequence() {
    let daemon = start();
    let mut qemu = RpcClient::connect(&daemon.rw);
    let open = Call::ConnectOpen {
        name: Some("nwfilter:///system".into()),
        flags: 0,
    };
    assert_eq!(qemu.call(&open), Ok(Ret::Void));
    let identity = Call::ConnectSetIdentity {
        params: vec![
            TypedParam {
                field: "user-name".into(),
                value: TypedValue::String("qemu".into()),
            },
            TypedParam {
                field: "unix-user-id".into(),
                value: TypedValue::ULLong(107),
            },
            TypedParam {
                field: "process-id".into(),
                value: TypedValue::LLong(4242),
            },
        ],
        flags: 0,
    };
    assert_eq!(qemu.call(&identity), Ok(Ret::Void));
    // Reconnecting to a VM: is the port bound already? No (101).
    let (c, d, text) = code_of(qemu.call(&lookup("vnet0")));
    assert_eq!((c, d), (code::NO_NWFILTER_BINDING, 33), "{text}");
    assert!(
        text.starts_with("Network filter binding not found: "),
        "{text}"
    );

    let created = qemu.call(&Call::BindingCreateXml {
        xml: binding_xml("vnet0"),
        flags: 0,
    });
    let port = BindingRef {
        portdev: "vnet0".into(),
        filtername: "no-mac-spoofing".into(),
    };
    assert_eq!(created, Ok(Ret::Binding(port.clone())));
    assert_eq!(qemu.call(&lookup("vnet0")), Ok(Ret::Binding(port.clone())));
    // A second create for the same port is refused, the first stays.
    let (c, _, text) = code_of(qemu.call(&Call::BindingCreateXml {
        xml: binding_xml("vnet0"),
        flags: 0,
    }));
    assert_eq!(c, code::OPERATION_FAILED, "{text}");

    // VM stop: lookup, delete.
    assert_eq!(qemu.call(&lookup("vnet0")), Ok(Ret::Binding(port.clone())));
    assert_eq!(
        qemu.call(&Call::BindingDelete { binding: port }),
        Ok(Ret::Void)
    );
    let (c, ..) = code_of(qemu.call(&lookup("vnet0")));
    assert_eq!(c, code::NO_NWFILTER_BINDING);
    qemu.close();
}

#[test]
fn filters_define_look_up_dump_list_and_undefine() {
    let daemon = start();
    let mut c = RpcClient::connect(&daemon.rw);
    c.open(false);
    let xml = "<filter name='rpc-f' chain='ipv4'><uuid>5c6d49af-b071-6127-b4ec-6f8ed4b55335</uuid>\
               <rule action='drop' direction='in'><ip srcipaddr='10.0.0.9'/></rule></filter>";
    let uuid = *uuid::Uuid::parse_str("5c6d49af-b071-6127-b4ec-6f8ed4b55335")
        .unwrap()
        .as_bytes();
    let filter = libvirt_rpc::NwfilterRef {
        name: "rpc-f".into(),
        uuid,
    };
    let defined = c.call(&Call::NwfilterDefineXmlFlags {
        xml: xml.into(),
        flags: 1,
    });
    assert_eq!(defined, Ok(Ret::Nwfilter(filter.clone())));
    assert_eq!(
        c.call(&Call::NwfilterLookupByUuid { uuid }),
        Ok(Ret::Nwfilter(filter.clone()))
    );
    match c.call(&Call::NwfilterGetXmlDesc {
        nwfilter: filter.clone(),
        flags: 0,
    }) {
        Ok(Ret::Text(text)) => assert!(text.contains("10.0.0.9"), "{text}"),
        other => panic!("{other:?}"),
    }
    let Ok(Ret::Int(n)) = c.call(&Call::ConnectNumOfNwfilters) else {
        panic!()
    };
    match c.call(&Call::ConnectListAllNwfilters {
        need_results: 0,
        flags: 0,
    }) {
        Ok(Ret::Nwfilters { filters, ret }) => {
            assert!(filters.is_empty(), "need_results 0: no array");
            assert_eq!(ret as i32, n);
        }
        other => panic!("{other:?}"),
    }
    match c.call(&Call::ConnectListNwfilters { maxnames: 2 }) {
        Ok(Ret::Names(names)) => assert_eq!(names.len(), 2),
        other => panic!("{other:?}"),
    }
    let (code_, ..) = code_of(c.call(&Call::ConnectListAllNwfilters {
        need_results: 1,
        flags: 4,
    }));
    assert_eq!(code_, code::INVALID_ARG);
    let (code_, _, text) = code_of(c.call(&Call::NwfilterDefineXml {
        xml: "<filter name='bad'><rule action='nope'/></filter>".into(),
    }));
    assert_eq!(code_, code::INVALID_NWFILTER, "{text}");
    assert!(text.contains("nope"), "names what is wrong: {text}");
    assert_eq!(
        c.call(&Call::NwfilterUndefine { nwfilter: filter }),
        Ok(Ret::Void)
    );
    let (code_, domain, _) = code_of(c.call(&Call::NwfilterLookupByName {
        name: "rpc-f".into(),
    }));
    assert_eq!((code_, domain), (code::NO_NWFILTER, 33));
    c.close();
}

#[test]
fn calls_before_open_unknown_procedures_and_bad_flags_get_libvirts_errors() {
    let daemon = start();
    let mut c = RpcClient::connect(&daemon.rw);
    let (code_, ..) = code_of(c.call(&lookup("vnet0")));
    assert_eq!(code_, code::INTERNAL_ERROR, "connection not open");
    c.open(false);
    let header = Header::call(9999, 77);
    c.send(&Frame::new(header, vec![]));
    let e = c.reply_to(header).unwrap_err();
    assert_eq!((e.code, e.domain, e.level), (39, 7, 2));
    assert_eq!(e.text(), "unknown procedure: 9999");
    let (code_, _, text) = code_of(c.call(&Call::BindingCreateXml {
        xml: binding_xml("vnet1"),
        flags: 2,
    }));
    assert_eq!(code_, code::INVALID_ARG, "{text}");
    assert_eq!(
        c.call(&Call::ConnectSupportsFeature { feature: 15 }),
        Ok(Ret::Int(0))
    );
    assert!(c.ping(), "keepalive PING is answered with PONG");
    c.close();
}

#[test]
fn the_read_only_socket_and_a_read_only_open_refuse_every_change() {
    let daemon = start();
    for (path, read_only_open) in [(&daemon.ro, false), (&daemon.rw, true)] {
        let mut c = RpcClient::connect(path);
        c.open(read_only_open);
        for call in [
            Call::NwfilterDefineXml {
                xml: "<filter name='x' chain='root'/>".into(),
            },
            Call::BindingCreateXml {
                xml: binding_xml("vnet2"),
                flags: 0,
            },
            Call::BindingDelete {
                binding: BindingRef {
                    portdev: "vnet2".into(),
                    filtername: "x".into(),
                },
            },
        ] {
            let (code_, domain, text) = code_of(c.call(&call));
            assert_eq!((code_, domain), (code::OPERATION_DENIED, 33), "{text}");
            assert!(
                text.starts_with("operation forbidden: read only access prevents vir"),
                "{text}"
            );
        }
        assert!(matches!(
            c.call(&Call::ConnectListAllNwfilters {
                need_results: 1,
                flags: 0
            }),
            Ok(Ret::Nwfilters { .. })
        ));
        c.close();
    }
}

/// A client keeps working while others misbehave.
fn still_served(path: &Path) {
    let mut c = RpcClient::connect(path);
    c.stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    c.open(false);
    c.close();
}

#[test]
fn hostile_clients_are_answered_or_dropped_and_do_not_hurt_others() {
    let daemon = start();
    // Wrong program: an RPC error, the connection goes on.
    let mut c = RpcClient::connect(&daemon.rw);
    let header = Header {
        program: 0x1234,
        ..Header::call(1, 1)
    };
    c.send(&Frame::new(header, vec![]));
    let e = c.reply_to(header).unwrap_err();
    assert_eq!(e.code, code::RPC);
    // Garbage arguments: an RPC error naming the procedure.
    let header = Header::call(1, 2);
    c.send(&Frame::new(header, vec![0, 0, 0, 7]));
    let e = c.reply_to(header).unwrap_err();
    assert!(e.text().contains("procedure 1"), "{}", e.text());
    c.open(false);

    // Over the frame limit: closed without reading the rest.
    let mut big = RpcClient::connect(&daemon.rw);
    big.send_bytes(&(64u32 << 20).to_be_bytes());
    assert!(big.read().is_none());
    // Too short to hold a header: closed.
    let mut short = RpcClient::connect(&daemon.rw);
    short.send_bytes(&8u32.to_be_bytes());
    assert!(short.read().is_none());
    // A frame that never finishes, and a client that never reads its
    // replies: neither delays anyone else.
    let mut stalled = RpcClient::connect(&daemon.rw);
    stalled.send_bytes(&100u32.to_be_bytes());
    let flood = RpcClient::connect(&daemon.rw);
    let flooder = std::thread::spawn(move || {
        let mut flood = flood;
        let ping = Frame::new(Header::call(66, 1), vec![]).to_bytes();
        // Until the kernel buffers fill and the server gives up on us.
        for _ in 0..200_000 {
            if std::io::Write::write_all(&mut flood.stream, &ping).is_err() {
                break;
            }
        }
    });
    still_served(&daemon.rw);
    assert!(c.ping());
    // A reply to a message type a client may not send: dropped.
    let mut odd = RpcClient::connect(&daemon.rw);
    odd.send(&Frame::new(
        Header::call(1, 1).reply(libvirt_rpc::MessageStatus::Ok),
        vec![],
    ));
    assert!(odd.read().is_none());
    drop(stalled);
    flooder.join().unwrap();
    still_served(&daemon.rw);
}

#[test]
fn more_clients_than_the_limit_are_closed_and_the_slots_come_back() {
    let daemon = start();
    let mut held: Vec<RpcClient> = (0..MAX_CLIENTS)
        .map(|_| {
            let mut c = RpcClient::connect(&daemon.rw);
            assert_eq!(c.call(&Call::AuthList), Ok(Ret::AuthTypes(vec![0])));
            c
        })
        .collect();
    let mut extra = RpcClient::connect(&daemon.rw);
    assert!(extra.read().is_none(), "client over the limit is closed");
    held.pop();
    // The freed slot is reusable once its thread has ended.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let mut again = RpcClient::connect(&daemon.rw);
        // Refused while the slot is still taken: the write may then fail.
        let call = Frame::new(Header::call(66, 1), vec![]).to_bytes();
        let _ = std::io::Write::write_all(&mut again.stream, &call);
        if again.read().is_some() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "slot never freed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_filter_file_without_uuid_is_dumped_through_the_reference_a_lookup_returned() {
    // libvirt's shipped filter files carry no <uuid>: virsh looks the
    // filter up by name, then asks for the XML with the reference it got.
    let daemon = start();
    let etc = daemon.dir.path().join("etc");
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("no-uuid.xml"),
        "<filter name='no-uuid' chain='root'><rule action='drop' direction='in'><all/></rule></filter>",
    )
    .unwrap();
    let mut c = RpcClient::connect(&daemon.rw);
    c.open(false);
    let Ok(Ret::Nwfilter(filter)) = c.call(&Call::NwfilterLookupByName {
        name: "no-uuid".into(),
    }) else {
        panic!("lookup by name")
    };
    match c.call(&Call::NwfilterGetXmlDesc {
        nwfilter: filter,
        flags: 0,
    }) {
        Ok(Ret::Text(xml)) => assert!(xml.contains("<filter name='no-uuid'"), "{xml}"),
        other => panic!("{other:?}"),
    }
    c.close();
}
