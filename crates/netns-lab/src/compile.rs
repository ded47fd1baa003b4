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
