//! Walks over the `<filterref>` graph of the currently defined filters:
//! the loop check at define time and the "who uses this filter" check at
//! undefine time. References to undefined filters are skipped, as libvirt
//! does (they are only an error when a binding is instantiated).

use std::collections::HashSet;

use nwfilter_model::{Entry, Filter};

/// Names referenced by `filter`, in document order.
fn references(filter: &Filter) -> impl Iterator<Item = &str> {
    filter.entries.iter().filter_map(|entry| match entry {
        Entry::Ref(r) => Some(r.filter.as_str()),
        Entry::Rule(_) => None,
    })
}

/// A path `from -> … -> to` through defined filters, if one exists
/// (`[from]` alone when `from == to`).
pub(crate) fn path_to<'a, F>(from: &str, to: &str, lookup: &F) -> Option<Vec<String>>
where
    F: Fn(&str) -> Option<&'a Filter>,
{
    let mut dead = HashSet::new();
    let mut path = vec![from.to_owned()];
    search(from, to, lookup, &mut path, &mut dead).then_some(path)
}

/// The loop `start -> … -> start` that defining `start` would close, if
/// any. `lookup` must already answer with the new definition of `start`.
pub(crate) fn find_cycle<'a, F>(start: &'a Filter, lookup: &F) -> Option<Vec<String>>
where
    F: Fn(&str) -> Option<&'a Filter>,
{
    let target = start.name.as_str();
    let mut dead = HashSet::new();
    for next in references(start) {
        let mut path = vec![target.to_owned(), next.to_owned()];
        if search(next, target, lookup, &mut path, &mut dead) {
            return Some(path);
        }
    }
    None
}

/// Depth-first search from `at` for `target`, extending `path`. Nodes
/// proven not to reach `target` go into `dead`, so each filter is expanded
/// once (a DAG can reach one filter along many paths) and loops that do not
/// involve `target` (hand-edited files) cannot trap the search.
fn search<'a, F>(
    at: &str,
    target: &str,
    lookup: &F,
    path: &mut Vec<String>,
    dead: &mut HashSet<String>,
) -> bool
where
    F: Fn(&str) -> Option<&'a Filter>,
{
    if at == target {
        return true;
    }
    if !dead.insert(at.to_owned()) {
        return false;
    }
    let Some(filter) = lookup(at) else {
        return false;
    };
    for next in references(filter) {
        path.push(next.to_owned());
        if search(next, target, lookup, path, dead) {
            return true;
        }
        path.pop();
    }
    false
}
