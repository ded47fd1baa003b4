//! Frames captured from virsh 9.0 (Debian's libvirt-clients) with
//! `tests/capture.py`: every one decodes to the call we expect and encodes
//! back to the very same bytes, and each command sends the sequence the
//! reference recorded.

use std::collections::BTreeMap;
use std::path::PathBuf;

use libvirt_rpc::call::proc;
use libvirt_rpc::{read_frame, Call, Frame, MessageType, MAX_FRAME};

fn fixtures() -> BTreeMap<String, Vec<(i32, Vec<u8>)>> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut by_command: BTreeMap<String, Vec<(i32, Vec<u8>)>> = BTreeMap::new();
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".bin"))
        .collect();
    names.sort();
    for name in names {
        // COMMAND-NN-call-PROC.bin
        let stem = name.trim_end_matches(".bin");
        let parts: Vec<&str> = stem.rsplitn(4, '-').collect();
        let (procedure, command) = (parts[0].parse().unwrap(), parts[3].to_string());
        let bytes = std::fs::read(dir.join(&name)).unwrap();
        by_command
            .entry(command)
            .or_default()
            .push((procedure, bytes));
    }
    by_command
}

fn decode(bytes: &[u8]) -> (Frame, Call) {
    let frame = read_frame(&mut &bytes[..], MAX_FRAME).unwrap().unwrap();
    assert!(frame.header.is_remote());
    assert_eq!(frame.header.kind, MessageType::Call);
    let call = Call::decode(frame.header.procedure, &frame.payload).unwrap();
    (frame, call)
}

#[test]
fn every_captured_call_decodes_and_encodes_to_the_same_bytes() {
    let all = fixtures();
    assert!(all.len() >= 8, "fixtures missing: {:?}", all.keys());
    for (command, frames) in &all {
        for (procedure, bytes) in frames {
            let (frame, call) = decode(bytes);
            assert_eq!(call.procedure(), *procedure, "{command}");
            let again = Frame::new(frame.header, call.encode_args()).to_bytes();
            assert_eq!(
                &again, bytes,
                "{command}: procedure {procedure} re-encoded differently"
            );
        }
    }
}

#[test]
fn each_command_opens_with_auth_features_and_open_and_ends_with_close() {
    for (command, frames) in fixtures() {
        let procs: Vec<i32> = frames.iter().map(|(p, _)| *p).collect();
        assert_eq!(&procs[..5], &[66, 60, 1, 60, 60], "{command}");
        assert_eq!(procs.last(), Some(&proc::CONNECT_CLOSE), "{command}");
        let features: Vec<Call> = [1, 3, 4].iter().map(|&i| decode(&frames[i].1).1).collect();
        assert_eq!(
            features,
            [10, 14, 15].map(|feature| Call::ConnectSupportsFeature { feature })
        );
        let (_, open) = decode(&frames[2].1);
        let flags = if command == "readonly" { 1 } else { 0 };
        assert_eq!(
            open,
            Call::ConnectOpen {
                name: Some("nwfilter:///system".into()),
                flags
            },
            "{command}"
        );
    }
}

#[test]
fn the_commands_send_the_calls_the_reference_lists() {
    let all = fixtures();
    let body = |command: &str| -> Vec<i32> {
        let frames = &all[command];
        frames[5..frames.len() - 1]
            .iter()
            .map(|(p, _)| *p)
            .collect()
    };
    assert_eq!(body("list"), [286]);
    assert_eq!(body("define-validate"), [431]);
    assert_eq!(body("undefine"), [175, 181]);
    assert_eq!(body("binding-list"), [401]);
    assert_eq!(body("binding-create"), [399]);
    assert_eq!(body("binding-delete"), [397, 400]);
    // By UUID first; virsh tries the name when the UUID is not found.
    assert_eq!(body("dumpxml-uuid")[0], 176);

    let (_, define) = decode(&all["define-validate"][5].1);
    match define {
        Call::NwfilterDefineXmlFlags { xml, flags } => {
            assert_eq!(flags, 1, "--validate");
            assert!(xml.contains("<filter name='rpc-test'"), "{xml}");
        }
        other => panic!("{other:?}"),
    }
    let (_, create) = decode(&all["binding-create"][5].1);
    match create {
        Call::BindingCreateXml { xml, flags } => {
            assert_eq!(flags, 0);
            assert!(xml.contains("<portdev name='vnet7'/>"), "{xml}");
        }
        other => panic!("{other:?}"),
    }
    let (_, list) = decode(&all["list"][5].1);
    assert_eq!(
        list,
        Call::ConnectListAllNwfilters {
            need_results: 1,
            flags: 0
        }
    );
}
