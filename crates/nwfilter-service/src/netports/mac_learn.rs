//! Learning a guest's MAC from its first frame, for a port of a filtered
//! network whose own MAC is not a libvirt tap's: first come, as for IP in
//! `any` mode. Until that frame the port has no binding (the network
//! cannot know which source MAC to hold it to).

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nwfilter_learn::{Capture, CaptureError, Direction, Filter};
use nwfilter_model::{IfName, MacAddr6};

/// How long a port is watched for its first frame before giving up (its
/// next link event starts over).
pub const GIVE_UP_AFTER: Duration = Duration::from_secs(300);

/// Waits for the first frame the guest sends on `port` and returns its
/// source MAC; `None` after `give_up` or when the port went away.
pub fn first_guest_mac(port: &IfName, give_up: Duration) -> Result<Option<MacAddr6>, CaptureError> {
    let capture = Capture::open(port, Filter::AnyFrame, None)?;
    let deadline = Instant::now() + give_up;
    let mut buf = [0u8; 64];
    while Instant::now() < deadline {
        let mut fds = [PollFd::new(capture.as_fd(), PollFlags::POLLIN)];
        // Woken by a frame; the timeout only bounds the wait for `give_up`.
        let _ = poll(&mut fds, PollTimeout::from(1000u16));
        let revents = fds[0].revents().unwrap_or(PollFlags::empty());
        if revents.intersects(PollFlags::POLLERR | PollFlags::POLLHUP | PollFlags::POLLNVAL) {
            return Ok(None); // the interface went away
        }
        while let Some((len, direction)) = capture.recv(&mut buf)? {
            if direction != Direction::FromGuest || len < 12 {
                continue;
            }
            if let Some(mac) = unicast_source(&buf[..len]) {
                return Ok(Some(mac));
            }
        }
    }
    Ok(None)
}

/// The source address of an Ethernet frame, if it is a usable unicast
/// one (not multicast, not all zeros).
pub fn unicast_source(frame: &[u8]) -> Option<MacAddr6> {
    let src: [u8; 6] = frame.get(6..12)?.try_into().ok()?;
    let usable = src[0] & 1 == 0 && src != [0; 6];
    usable.then(|| MacAddr6::from(src))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_unicast_source_is_learned() {
        let frame = |src: [u8; 6]| [[0xff; 6], src, [0x08, 0x06, 0, 0, 0, 0]].concat();
        let guest = [0x52, 0x54, 0, 0, 0, 0x0a];
        assert_eq!(unicast_source(&frame(guest)), Some(MacAddr6::from(guest)));
        assert_eq!(unicast_source(&frame([0x01, 0, 0x5e, 0, 0, 1])), None);
        assert_eq!(unicast_source(&frame([0; 6])), None);
        assert_eq!(unicast_source(&frame(guest)[..10]), None);
    }
}
