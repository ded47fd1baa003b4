//! Filter XML: parsing never panics, and whatever parses round-trips:
//! format, parse, format again gives the same text and the same model.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nwfilter_model::{format_filter, parse_filter};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(filter) = parse_filter(text) else {
        return;
    };
    let printed = format_filter(&filter);
    let again =
        parse_filter(&printed).unwrap_or_else(|e| panic!("printed form refused: {e}\n{printed}"));
    assert_eq!(again, filter, "model changed\n{printed}");
    assert_eq!(format_filter(&again), printed, "printed form changed");
});
