//! The daemon's request decoder (`nwfilter_service::json::answer`): one JSON
//! line from any local client. Answering never panics and is always a
//! response; a request that decodes reaches the service exactly as it
//! re-decodes from its own encoding.
#![no_main]

use std::sync::Mutex;

use libfuzzer_sys::fuzz_target;
use nwfilter_service::json::answer;
use nwfilter_service::{Op, Reply, Request, Response, Service, PROTOCOL_VERSION};

/// Keeps the operation it is handed; refuses it (nothing is carried out).
#[derive(Default)]
struct Recorder(Mutex<Option<Op>>);

impl Service for Recorder {
    fn handle(&self, op: Op) -> Result<Reply, String> {
        *self.0.lock().unwrap() = Some(op);
        Err("recorded".into())
    }
}

fuzz_target!(|data: &[u8]| {
    let service = Recorder::default();
    let response = answer(data, &service);
    let Some(op) = service.0.lock().unwrap().take() else {
        assert!(matches!(response, Response::Error { .. }));
        return;
    };
    let request = Request {
        version: PROTOCOL_VERSION,
        op,
    };
    let line = serde_json::to_vec(&request).expect("a request encodes");
    let back: Request = serde_json::from_slice(&line).expect("an encoded request decodes");
    assert_eq!(back, request);
});
