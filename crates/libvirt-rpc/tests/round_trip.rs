//! Every call and every reply shape encodes and decodes back to itself;
//! truncated and random input is an error, never a panic.

use libvirt_rpc::call::proc;
use libvirt_rpc::{
    read_frame, BindingRef, Call, NwfilterRef, RemoteError, Ret, TypedParam, TypedValue, MAX_FRAME,
};
use proptest::prelude::*;

fn filter() -> NwfilterRef {
    NwfilterRef {
        name: "clean-traffic".into(),
        uuid: *b"0123456789abcdef",
    }
}

fn binding() -> BindingRef {
    BindingRef {
        portdev: "vnet0".into(),
        filtername: "clean-traffic".into(),
    }
}

fn every_call() -> Vec<Call> {
    let xml = "<filter name='f' chain='root'/>".to_string();
    vec![
        Call::AuthList,
        Call::ConnectOpen {
            name: Some("nwfilter:///system".into()),
            flags: 1,
        },
        Call::ConnectOpen {
            name: None,
            flags: 0,
        },
        Call::ConnectClose,
        Call::ConnectGetType,
        Call::ConnectGetVersion,
        Call::ConnectGetHostname,
        Call::ConnectSupportsFeature { feature: 10 },
        Call::ConnectGetUri,
        Call::ConnectIsSecure,
        Call::ConnectGetLibVersion,
        Call::ConnectSetIdentity {
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
                    value: TypedValue::LLong(-4),
                },
                TypedParam {
                    field: "i".into(),
                    value: TypedValue::Int(-1),
                },
                TypedParam {
                    field: "u".into(),
                    value: TypedValue::UInt(7),
                },
                TypedParam {
                    field: "d".into(),
                    value: TypedValue::Double(1.5),
                },
                TypedParam {
                    field: "b".into(),
                    value: TypedValue::Boolean(1),
                },
            ],
            flags: 0,
        },
        Call::NwfilterLookupByName {
            name: "allow-arp".into(),
        },
        Call::NwfilterLookupByUuid { uuid: [7; 16] },
        Call::NwfilterGetXmlDesc {
            nwfilter: filter(),
            flags: 0,
        },
        Call::ConnectNumOfNwfilters,
        Call::ConnectListNwfilters { maxnames: 100 },
        Call::NwfilterDefineXml { xml: xml.clone() },
        Call::NwfilterDefineXmlFlags {
            xml: xml.clone(),
            flags: 1,
        },
        Call::NwfilterUndefine { nwfilter: filter() },
        Call::ConnectListAllNwfilters {
            need_results: 1,
            flags: 0,
        },
        Call::BindingLookupByPortDev {
            name: "vnet0".into(),
        },
        Call::BindingGetXmlDesc {
            binding: binding(),
            flags: 0,
        },
        Call::BindingCreateXml { xml, flags: 1 },
        Call::BindingDelete { binding: binding() },
        Call::ConnectListAllBindings {
            need_results: 0,
            flags: 0,
        },
    ]
}

fn every_reply() -> Vec<(i32, Ret)> {
    vec![
        (proc::CONNECT_OPEN, Ret::Void),
        (proc::AUTH_LIST, Ret::AuthTypes(vec![0])),
        (
            proc::CONNECT_GET_URI,
            Ret::Text("nwfilter:///system".into()),
        ),
        (proc::CONNECT_GET_LIB_VERSION, Ret::Version(9_000_000)),
        (proc::CONNECT_SUPPORTS_FEATURE, Ret::Int(1)),
        (proc::NWFILTER_LOOKUP_BY_NAME, Ret::Nwfilter(filter())),
        (
            proc::CONNECT_LIST_NWFILTERS,
            Ret::Names(vec!["a".into(), "bcdef".into()]),
        ),
        (
            proc::CONNECT_LIST_ALL_NWFILTERS,
            Ret::Nwfilters {
                filters: vec![filter(), filter()],
                ret: 2,
            },
        ),
        (proc::NWFILTER_BINDING_CREATE_XML, Ret::Binding(binding())),
        (
            proc::CONNECT_LIST_ALL_NWFILTER_BINDINGS,
            Ret::Bindings {
                bindings: vec![binding()],
                ret: 1,
            },
        ),
    ]
}

#[test]
fn every_call_round_trips() {
    for call in every_call() {
        let bytes = call.encode_args();
        assert_eq!(Call::decode(call.procedure(), &bytes).unwrap(), call);
    }
}

#[test]
fn every_reply_shape_round_trips() {
    for (procedure, ret) in every_reply() {
        let bytes = ret.to_bytes();
        assert_eq!(Ret::decode(procedure, &bytes).unwrap(), Some(ret));
    }
}

#[test]
fn truncated_or_extended_arguments_are_errors() {
    for call in every_call() {
        let bytes = call.encode_args();
        for cut in 0..bytes.len() {
            assert!(
                Call::decode(call.procedure(), &bytes[..cut]).is_err(),
                "{call:?} cut at {cut}"
            );
        }
        let mut longer = bytes.clone();
        longer.extend_from_slice(&[0, 0, 0, 0]);
        assert!(
            Call::decode(call.procedure(), &longer).is_err(),
            "{call:?} with trailing bytes"
        );
    }
}

#[test]
fn an_unknown_procedure_is_reported_as_such() {
    assert_eq!(
        Call::decode(12345, &[]),
        Err(libvirt_rpc::CallError::UnknownProcedure(12345))
    );
}

proptest! {
    #[test]
    fn random_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), procedure in 0i32..450) {
        let _ = Call::decode(procedure, &bytes);
        let _ = Ret::decode(procedure, &bytes);
        let _ = RemoteError::from_bytes(&bytes);
        let _ = read_frame(&mut &bytes[..], MAX_FRAME);
    }

    #[test]
    fn mutated_valid_calls_never_panic(index in 0usize..26, flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let calls = every_call();
        let call = &calls[index % calls.len()];
        let mut bytes = call.encode_args();
        if !bytes.is_empty() {
            for (at, value) in flips {
                let i = at % bytes.len();
                bytes[i] = value;
            }
        }
        let _ = Call::decode(call.procedure(), &bytes);
    }
}
