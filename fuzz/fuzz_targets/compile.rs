//! Compile: a fuzzed filter, bound with list parameters on a port, with
//! the built-in filters (clean-traffic and its parts) available to its
//! `<filterref>`s, lowered and rendered by both backends (every output
//! form). Any stage may refuse; none may panic.
//!
//! Input: the filter's XML, optionally followed by a NUL byte and
//! `NAME=VALUE` lines that replace the default parameters (a name given
//! several times is a list). Inputs are bounded (size, number of values)
//! so that one input's work stays small: the compiler's own limit on
//! bound rules (100 000) is tested in nwfilter-compile, not here.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nwfilter_compile::{compile, Compiled, LayeredSource, MemorySource};
use nwfilter_model::{builtin_filters, parse_filter, FilterRef, IfName, MacAddr6, Params};

const MAX_INPUT: usize = 8 * 1024;
const MAX_VALUES: usize = 16;

/// Lists like libvirt's test harness binds, plus what the built-in
/// filters use.
const DEFAULT_PARAMS: &[(&str, &str)] = &[
    ("IP", "10.0.0.1"),
    ("IP", "10.0.0.2"),
    ("IPV6", "2001:db8::1"),
    ("DHCPSERVER", "10.0.0.254"),
    ("GATEWAY_MAC", "52:54:00:00:00:01"),
    ("IPSETNAME", "tck_test"),
    ("A", "1.1.1.1"),
    ("A", "2.2.2.2"),
    ("A", "3.3.3.3"),
    ("B", "80"),
    ("B", "90"),
    ("C", "1080"),
    ("C", "1090"),
];

fn params(text: Option<&str>) -> Option<Params> {
    let mut params = Params::default();
    match text {
        None => DEFAULT_PARAMS.iter().for_each(|(n, v)| params.push(*n, *v)),
        Some(text) => {
            for line in text.lines().take(MAX_VALUES) {
                let (name, value) = line.split_once('=')?;
                params.push(name, value);
            }
        }
    }
    Some(params)
}

fuzz_target!(|data: &[u8]| {
    if data.len() > MAX_INPUT {
        return;
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (xml, param_text) = match text.split_once('\0') {
        Some((xml, params)) => (xml, Some(params)),
        None => (text, None),
    };
    let (Ok(filter), Some(params)) = (parse_filter(xml), params(param_text)) else {
        return;
    };
    let top = FilterRef {
        filter: filter.name.clone(),
        params,
    };
    let source = LayeredSource::new()
        .with(MemorySource::from_iter([filter]))
        .with(MemorySource::from_iter(builtin_filters()));
    let mac: MacAddr6 = [0x52, 0x54, 0x00, 0x12, 0x34, 0x56].into();
    let port = IfName::new("vnet0").unwrap();
    let Ok(Compiled::Program(program)) = compile(&source, &top, mac, &port) else {
        return;
    };
    if let Ok(rules) = backend_xtables::ruleset(&program) {
        if let Ok(commands) = backend_xtables::commands(&rules) {
            let _ = backend_xtables::command_lines(&commands);
        }
        let _ = backend_xtables::restore_text(&rules);
    }
    if let Ok(rules) = backend_nftables::ruleset(&program) {
        let _ = backend_nftables::instantiate(&rules).text();
    }
    if let Ok(rules) = backend_nftables::ruleset_for_json(&program) {
        let _ = backend_nftables::instantiate(&rules).json();
    }
});
