//! Binding XML (and the either-document entry point): parsing never
//! panics, and a binding round-trips through its printed form.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nwfilter_model::{format_binding, parse_binding, parse_document, Document};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let doc = parse_document(text);
    let Ok(binding) = parse_binding(text) else {
        assert!(
            !matches!(doc, Ok(Document::Binding(_))),
            "parse_document took a binding parse_binding refused"
        );
        return;
    };
    assert_eq!(doc.ok(), Some(Document::Binding(binding.clone())));
    let printed = format_binding(&binding);
    let again =
        parse_binding(&printed).unwrap_or_else(|e| panic!("printed form refused: {e}\n{printed}"));
    assert_eq!(again, binding, "model changed\n{printed}");
    assert_eq!(format_binding(&again), printed, "printed form changed");
});
