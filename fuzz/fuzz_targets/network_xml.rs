//! Network XML (netdrv): parsing never panics, and a network round-trips
//! through libvirt's normalised form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netdrv::{format_network, parse_network};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(network) = parse_network(text) else {
        return;
    };
    let printed = format_network(&network);
    let again =
        parse_network(&printed).unwrap_or_else(|e| panic!("printed form refused: {e}\n{printed}"));
    assert_eq!(format_network(&again), printed, "printed form changed");
});
