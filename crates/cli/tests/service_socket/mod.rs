//! The service on a Unix socket in this process, for the tests of the
//! CLI's `--connect` path: each accepted connection goes to the service's
//! JSON front end, as in the daemon (whose own tests cover its accept
//! loop, limits and shutdown). The CLI itself never depends on the daemon.

use std::os::unix::net::UnixListener;
use std::path::Path;
use std::sync::Arc;

use nwfilter_service::json::{serve_stream, Service};

/// Serves `service` on `socket` until the test process ends.
pub fn serve(service: Arc<dyn Service>, socket: &Path) {
    let listener = UnixListener::bind(socket).expect("bind the test socket");
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let service = Arc::clone(&service);
            std::thread::spawn(move || serve_stream(stream, service.as_ref()));
        }
    });
}
