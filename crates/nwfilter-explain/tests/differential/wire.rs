//! Sending frames into the lab and seeing which arrive.

use std::collections::HashSet;
use std::path::Path;
use std::time::{Duration, Instant};

use netns_lab::Guest;

/// Receives every frame on eth0 for `secs` seconds (an AF_PACKET socket,
/// incoming frames only) into OUT, one hex line each (a file, not a pipe
/// nobody reads while frames arrive); touches READY once bound.
const RECEIVE: &str = r#"
import socket, sys, time
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 22)
s.bind(("eth0", 0))
s.settimeout(0.2)
out = open(sys.argv[3], "w")
open(sys.argv[1], "w").close()
end = time.time() + float(sys.argv[2])
while time.time() < end:
    try:
        frame, addr = s.recvfrom(65535)
    except socket.timeout:
        continue
    if addr[2] != socket.PACKET_OUTGOING:
        out.write(frame.hex() + "\n")
out.close()
"#;

/// The frame as a receiver sees it, whatever padding was added or
/// trimmed on the way: without trailing zero bytes.
pub fn key(frame: &[u8]) -> String {
    let end = frame.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
    frame[..end].iter().map(|b| format!("{b:02x}")).collect()
}

/// Sends `frames` from `from` and returns the keys of those that reached
/// `to` (with other traffic `to` saw).
pub fn deliver(from: &Guest, to: &Guest, frames: &[Vec<u8>], scratch: &Path) -> HashSet<String> {
    let ready = scratch.join(format!("ready-{}", to.port));
    let _ = std::fs::remove_file(&ready);
    let ready_arg = ready.display().to_string();
    // Long enough for the sender at 1 ms a frame (3 ms allowed), plus
    // its start-up on a loaded machine.
    let secs = format!("{}", 3.0 + frames.len() as f64 * 0.003);
    let received = scratch.join(format!("received-{}", to.port));
    let received_arg = received.display().to_string();
    let receiver = to
        .ns
        .spawn(&["python3", "-c", RECEIVE, &ready_arg, &secs, &received_arg]);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready.exists() {
        assert!(
            Instant::now() < deadline,
            "the receiver in {} did not start",
            to.port
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    from.send_frames(frames, Duration::from_millis(1));
    let out = receiver.wait();
    assert!(
        out.status.success(),
        "receiver: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read_to_string(&received)
        .expect("the receiver's file")
        .lines()
        .map(|hex| {
            let bytes: Vec<u8> = (0..hex.len() / 2)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap_or(0))
                .collect();
            key(&bytes)
        })
        .collect()
}
