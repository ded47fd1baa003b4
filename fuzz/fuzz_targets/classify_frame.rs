//! Captured-frame classification (nwfilter-learn, IPv4 and IPv6): a guest controls the
//! frames; classifying one never panics, in any build.
//!
//! Input: one byte whose low bit is the direction (0: from the guest,
//! 1: to the guest), the guest's MAC (6 bytes), then the Ethernet frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nwfilter_learn::{classify, classify_v6, Direction};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let Some((guest, frame)) = rest.split_first_chunk::<6>() else {
        return;
    };
    let dir = if flags & 1 == 0 {
        Direction::FromGuest
    } else {
        Direction::ToGuest
    };
    let _ = classify(frame, dir, *guest);
    let _ = classify_v6(frame, dir, *guest);
});
