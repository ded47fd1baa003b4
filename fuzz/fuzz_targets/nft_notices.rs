//! The readers of the kernel's nf_tables notices (host-io `nfnl`,
//! `nft_events`, and the rule and chain changes the commit watch keeps
//! for the removals by handle): whatever a datagram holds, reading it
//! never panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = host_io::nft_events::read_for_fuzzing(data);
});
