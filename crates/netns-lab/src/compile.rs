//! The chain IR a filter gives a guest's port, through the real compiler.

use crate::lab::Guest;

/// Compiles `filter` (built-in or one of `extra` filter documents) for
/// `guest`'s port and MAC with `params`, through the real compiler: the
/// chain IR every backend renders.
pub fn program(
    extra: &[&str],
    guest: &Guest,
    filter: &str,
    params: &[(&str, &str)],
) -> nwfilter_compile::ir::Program {
    use nwfilter_compile::{compile, Compiled, MemorySource};
    use nwfilter_model::{builtin_filters, parse_filter, FilterName, FilterRef, IfName, Params};
    let mut source = MemorySource::new();
    for f in builtin_filters() {
        source.insert(f);
    }
    for xml in extra {
        source.insert(parse_filter(xml).expect("test filter parses"));
    }
    let mut p = Params::default();
    for (name, value) in params {
        p.push(*name, *value);
    }
    let top = FilterRef {
        filter: FilterName::new(filter).unwrap(),
        params: p,
    };
    let mac = guest.mac.parse().unwrap();
    let port = IfName::new(guest.port.clone()).unwrap();
    let Compiled::Program(program) = compile(&source, &top, mac, &port).expect("compiles") else {
        panic!("{filter}: every variable must be bound in these tests");
    };
    program
}

/// `fixtures/golden`: the binding cases every backend's golden test
/// renders, the filters they reference and the snapshots.
pub fn golden_dir() -> &'static std::path::Path {
    std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../fixtures/golden"
    ))
}

/// The chain IR of the golden binding case at `path`: its filters come from
/// `fixtures/golden/filters`, then the built-in set.
pub fn golden_case(path: &std::path::Path) -> nwfilter_compile::ir::Program {
    use nwfilter_compile::{compile, Compiled, DirSource, LayeredSource, MemorySource};
    use nwfilter_model::{builtin_filters, parse_binding};
    let binding = parse_binding(&std::fs::read_to_string(path).unwrap()).unwrap();
    let source = LayeredSource::new()
        .with(DirSource::open(golden_dir().join("filters")).unwrap())
        .with(MemorySource::from_iter(builtin_filters()));
    let compiled = compile(&source, &binding.filterref, binding.mac, &binding.portdev).unwrap();
    let Compiled::Program(program) = compiled else {
        panic!("{}: every golden case binds $IP", path.display());
    };
    program
}
