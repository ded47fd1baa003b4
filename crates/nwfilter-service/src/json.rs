//! The JSON front end: one request line in, the service's answer as one
//! response line out. Decoding, the version check and encoding live here;
//! the daemon's socket server only accepts connections and hands each
//! stream to [`serve_stream`].

use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Arc;

use crate::protocol::{Op, Reply, Request, Response, MAX_REQUEST_BYTES, PROTOCOL_VERSION};

/// What the JSON front end calls.
pub trait Service: Send + Sync {
    /// Carries out `op`; the error text goes to the client verbatim.
    fn handle(&self, op: Op) -> Result<Reply, String>;
}

impl<S: Service + ?Sized> Service for Arc<S> {
    fn handle(&self, op: Op) -> Result<Reply, String> {
        self.as_ref().handle(op)
    }
}

/// Answers the request lines of one connection until the client closes
/// it. A line longer than [`MAX_REQUEST_BYTES`] is answered with an error
/// and ends the connection.
pub fn serve_stream(stream: UnixStream, service: &dyn Service) -> io::Result<()> {
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    loop {
        let mut line = Vec::new();
        let n = (&mut reader)
            .take(MAX_REQUEST_BYTES as u64 + 1)
            .read_until(b'\n', &mut line)?;
        if n == 0 {
            return Ok(());
        }
        if line.len() > MAX_REQUEST_BYTES {
            let message = format!("request longer than {MAX_REQUEST_BYTES} bytes");
            return write_response(&mut writer, &Response::Error { message });
        }
        let response = answer(&line, service);
        write_response(&mut writer, &response)?;
    }
}

/// Decodes one request line and runs it. Public for the fuzz target
/// (fuzz/fuzz_targets/daemon_request.rs): a local client controls the line.
pub fn answer(line: &[u8], service: &dyn Service) -> Response {
    let request: Request = match serde_json::from_slice(line) {
        Ok(r) => r,
        Err(e) => {
            // Tell an old or new client apart from garbage.
            let version = serde_json::from_slice::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v.get("version").and_then(|v| v.as_u64()));
            let message = match version {
                Some(v) if v != u64::from(PROTOCOL_VERSION) => format!(
                    "protocol version {v} is not supported (this daemon speaks {PROTOCOL_VERSION})"
                ),
                _ => format!("malformed request: {e}"),
            };
            return Response::Error { message };
        }
    };
    if request.version != PROTOCOL_VERSION {
        return Response::Error {
            message: format!(
                "protocol version {} is not supported (this daemon speaks {PROTOCOL_VERSION})",
                request.version
            ),
        };
    }
    match service.handle(request.op) {
        Ok(result) => Response::Ok { result },
        Err(message) => Response::Error { message },
    }
}

/// Writes one response line.
pub fn write_response(w: &mut impl Write, response: &Response) -> io::Result<()> {
    let mut line = serde_json::to_vec(response).map_err(io::Error::other)?;
    line.push(b'\n');
    w.write_all(&line)?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// Records the operations it was given.
    struct Echo(Mutex<Vec<Op>>);

    impl Service for Echo {
        fn handle(&self, op: Op) -> Result<Reply, String> {
            self.0.lock().unwrap().push(op);
            Ok(Reply::Done {
                message: "done".into(),
            })
        }
    }

    #[test]
    fn wrong_version_and_garbage_are_answered_not_dropped() {
        let svc = Echo(Mutex::new(Vec::new()));
        match answer(br#"{"version":99,"op":"list"}"#, &svc) {
            Response::Error { message } => assert!(message.contains("version 99"), "{message}"),
            r => panic!("unexpected {r:?}"),
        }
        match answer(b"not json", &svc) {
            Response::Error { message } => assert!(message.starts_with("malformed request")),
            r => panic!("unexpected {r:?}"),
        }
        assert!(svc.0.lock().unwrap().is_empty());
        match answer(br#"{"version":1,"op":"list"}"#, &svc) {
            Response::Ok { .. } => assert_eq!(*svc.0.lock().unwrap(), [Op::List]),
            r => panic!("unexpected {r:?}"),
        }
    }
}
