//! Fuzzes libvirt-rpc's decoders: a frame from a byte stream, then its
//! payload as the call it names, as every reply shape and as an error.
//! None may panic or allocate beyond the frame limit.
#![no_main]

use libfuzzer_sys::fuzz_target;
use libvirt_rpc::{read_frame, Call, RemoteError, Ret, MAX_FRAME};

fuzz_target!(|data: &[u8]| {
    let mut stream = data;
    while let Ok(Some(frame)) = read_frame(&mut stream, MAX_FRAME) {
        let procedure = frame.header.procedure;
        if let Ok(call) = Call::decode(procedure, &frame.payload) {
            // What decodes must encode and decode again to the same call
            // (bytes may differ: padding content is not checked). Compared
            // as text so that a NaN parameter equals itself.
            let again = Call::decode(procedure, &call.encode_args());
            assert_eq!(format!("{again:?}"), format!("{:?}", Ok::<_, ()>(&call)));
        }
        let _ = Ret::decode(procedure, &frame.payload);
        let _ = RemoteError::from_bytes(&frame.payload);
    }
});
