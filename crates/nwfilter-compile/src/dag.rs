//! Resolving a top filter's `<filterref>` DAG against a [`FilterSource`].
//!
//! Loading fetches every reachable filter exactly once (a filter referenced
//! from many places is one node with many edges), then a petgraph
//! depth-first search in document order finds the first missing filter or
//! cycle, so the error names the path a reader would follow by hand.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use nwfilter_model::{Entry, Filter, FilterName, Value};
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::{depth_first_search, Control, DfsEvent};

use crate::source::{FilterSource, SourceError};

/// A chain of filter names, each referencing the next (`a -> b -> c`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefPath(pub Vec<FilterName>);

impl RefPath {
    /// The last name of the path (the missing or failing filter).
    pub fn last(&self) -> &FilterName {
        self.0.last().expect("a reference path is never empty")
    }
}

impl fmt::Display for RefPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, name) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" -> ")?;
            }
            f.write_str(name.as_str())?;
        }
        Ok(())
    }
}

/// Why a filter DAG could not be resolved.
#[derive(Debug, thiserror::Error)]
pub enum ResolveError {
    /// The last filter of the path does not exist in the source.
    #[error("filter '{}' is missing (referenced as {path})", path.last())]
    Missing { path: RefPath },
    /// Following references leads back to a filter on the path.
    #[error("filter references form a loop: {path}")]
    Cycle { path: RefPath },
    /// The source failed while fetching the last filter of the path.
    #[error("cannot load filter '{}' (referenced as {path})", path.last())]
    Source {
        path: RefPath,
        #[source]
        source: SourceError,
    },
    /// The source answered for one name with a filter of another name.
    #[error("the filter source returned filter '{found}' when asked for '{wanted}'")]
    WrongName {
        wanted: FilterName,
        found: FilterName,
    },
}

/// A node of the reference graph: the filter, or `None` where the source
/// does not have it.
type Node = Option<Arc<Filter>>;

/// A top filter and every filter reachable from it, checked to be complete
/// and acyclic. Cheap to keep and reuse: binding many ports to the same top
/// filter needs one resolution, not one per port.
#[derive(Debug, Clone)]
pub struct FilterDag {
    graph: DiGraph<Node, ()>,
    index: HashMap<FilterName, NodeIndex>,
    top: NodeIndex,
    /// Per node, the nodes its `<filterref>`s point at, in document order
    /// (so flattening follows references without name lookups).
    children: Vec<Vec<NodeIndex>>,
    /// Rules and `<filterref>` instances of the flattened tree (a filter
    /// referenced twice counts twice), saturating: lets binding allocate
    /// once.
    flat_size: (usize, usize),
}

impl FilterDag {
    /// The top filter.
    pub fn top(&self) -> &Arc<Filter> {
        self.filter_at(self.top)
    }

    /// A filter of the DAG by name (`None` if it is not reachable from the
    /// top).
    pub fn get(&self, name: &str) -> Option<&Arc<Filter>> {
        self.index.get(name).map(|&i| self.filter_at(i))
    }

    /// Every filter of the DAG, the top first, then in load order.
    pub fn filters(&self) -> impl Iterator<Item = &Arc<Filter>> {
        self.graph.node_indices().map(|i| self.filter_at(i))
    }

    /// Does the DAG contain (use) the filter `name`?
    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// The first filter (in [`FilterDag::filters`] order) with a rule
    /// attribute that is the variable `var` (`$var`, any index): lets a
    /// caller that has no value for it tell the user which filter wants
    /// one before binding.
    pub fn first_user_of(&self, var: &str) -> Option<&Arc<Filter>> {
        self.filters().find(|filter| {
            filter.entries.iter().any(|entry| match entry {
                Entry::Rule(rule) => rule.protocol.iter().any(|pm| {
                    pm.attrs
                        .iter()
                        .any(|a| matches!(&a.value, Value::Var(v) if v.name == var))
                }),
                Entry::Ref(_) => false,
            })
        })
    }

    /// (rules, references) of the flattened tree, saturating at
    /// `usize::MAX`.
    pub(crate) fn flat_size(&self) -> (usize, usize) {
        self.flat_size
    }

    pub(crate) fn top_node(&self) -> NodeIndex {
        self.top
    }

    /// The node of `node`'s `k`-th `<filterref>` (0-based, document order).
    pub(crate) fn child(&self, node: NodeIndex, k: usize) -> NodeIndex {
        self.children[node.index()][k]
    }

    pub(crate) fn filter_at(&self, i: NodeIndex) -> &Arc<Filter> {
        self.graph[i]
            .as_ref()
            .expect("resolve() admits only DAGs without missing filters")
    }
}

/// Loads `top` and every filter it references, directly or not.
///
/// Errors: a missing filter or a source failure (with the reference path
/// from `top`), or a reference cycle (with the cycle's path).
pub fn resolve(source: &dyn FilterSource, top: &FilterName) -> Result<FilterDag, ResolveError> {
    let loaded = load(source, None, top)?;
    if let Some(err) = first_problem(&loaded, true) {
        return Err(err);
    }
    let mut memo = vec![None; loaded.graph.node_count()];
    let flat_size = flat_size(&loaded.graph, &loaded.children, loaded.top, &mut memo);
    Ok(FilterDag {
        graph: loaded.graph,
        index: loaded.index,
        top: loaded.top,
        children: loaded.children,
        flat_size,
    })
}

/// (rules, references) of the tree flattened from `node`, memoized per
/// node (the graph is acyclic, so recursion depth is at most the number of
/// filters). Saturating: a pathological DAG doubles at every level.
fn flat_size(
    graph: &DiGraph<Node, ()>,
    children: &[Vec<NodeIndex>],
    node: NodeIndex,
    memo: &mut [Option<(usize, usize)>],
) -> (usize, usize) {
    if let Some(size) = memo[node.index()] {
        return size;
    }
    let kids = &children[node.index()];
    let filter = graph[node].as_ref().expect("no missing filters");
    let mut total = (filter.entries.len() - kids.len(), kids.len());
    for &c in kids {
        let (r, f) = flat_size(graph, children, c, memo);
        total = (total.0.saturating_add(r), total.1.saturating_add(f));
    }
    memo[node.index()] = Some(total);
    total
}

/// The define-time loop check: would storing `candidate` (replacing any
/// filter of the same name in `source`) create a reference cycle through
/// the filters `source` currently holds? References to filters that do not
/// exist (yet) are skipped, as libvirt does; they are only an error when a
/// binding is instantiated.
pub fn check_cycle(source: &dyn FilterSource, candidate: &Filter) -> Result<(), ResolveError> {
    let candidate = Arc::new(candidate.clone());
    let loaded = load(source, Some(&candidate), &candidate.name)?;
    match first_problem(&loaded, false) {
        Some(err) => Err(err),
        None => Ok(()),
    }
}

/// The graph as loaded, missing filters included as `None` nodes.
struct Loaded {
    graph: DiGraph<Node, ()>,
    index: HashMap<FilterName, NodeIndex>,
    top: NodeIndex,
    /// Each node's name, by node index.
    names: Vec<FilterName>,
    /// How each node was first reached while loading (for error paths).
    parent: Vec<Option<NodeIndex>>,
    /// Each node's reference targets, in document order (repeats kept).
    children: Vec<Vec<NodeIndex>>,
}

impl Loaded {
    fn path_to(&self, mut node: NodeIndex) -> RefPath {
        let mut names = vec![self.name(node)];
        while let Some(p) = self.parent[node.index()] {
            names.push(self.name(p));
            node = p;
        }
        names.reverse();
        RefPath(names)
    }

    fn name(&self, node: NodeIndex) -> FilterName {
        self.names[node.index()].clone()
    }
}

/// Fetches every filter reachable from `top` once, breadth first.
/// `overlay` stands in for the source's filter of the same name.
fn load(
    source: &dyn FilterSource,
    overlay: Option<&Arc<Filter>>,
    top: &FilterName,
) -> Result<Loaded, ResolveError> {
    let mut loaded = Loaded {
        graph: DiGraph::new(),
        // Room for a typical tree (clean-traffic has 13 filters).
        index: HashMap::with_capacity(32),
        top: NodeIndex::new(0),
        names: Vec::new(),
        parent: Vec::new(),
        children: Vec::new(),
    };
    loaded.top = add_node(&mut loaded, top, None);
    let mut next = 0;
    while next < loaded.graph.node_count() {
        let node = NodeIndex::new(next);
        next += 1;
        let name = &loaded.names[node.index()];
        let fetched = match overlay {
            Some(f) if f.name == *name => Some(Arc::clone(f)),
            _ => source
                .get(name.as_str())
                .map_err(|source| ResolveError::Source {
                    path: loaded.path_to(node),
                    source,
                })?,
        };
        let Some(filter) = fetched else { continue };
        if filter.name != *name {
            return Err(ResolveError::WrongName {
                wanted: name.clone(),
                found: filter.name.clone(),
            });
        }
        let targets: Vec<NodeIndex> = references(&filter)
            .map(|child| match loaded.index.get(child) {
                Some(&i) => i,
                None => add_node(&mut loaded, child, Some(node)),
            })
            .collect();
        // petgraph lists a node's neighbours newest edge first; adding the
        // edges in reverse makes the search follow document order.
        for &t in targets.iter().rev() {
            loaded.graph.add_edge(node, t, ());
        }
        loaded.children[node.index()] = targets;
        loaded.graph[node] = Some(filter);
    }
    Ok(loaded)
}

fn add_node(loaded: &mut Loaded, name: &FilterName, parent: Option<NodeIndex>) -> NodeIndex {
    let i = loaded.graph.add_node(None);
    loaded.index.insert(name.clone(), i);
    loaded.names.push(name.clone());
    loaded.parent.push(parent);
    loaded.children.push(Vec::new());
    i
}

/// The names a filter references, in document order (repeats kept).
pub(crate) fn references(filter: &Filter) -> impl Iterator<Item = &FilterName> {
    filter.entries.iter().filter_map(|e| match e {
        Entry::Ref(r) => Some(&r.filter),
        Entry::Rule(_) => None,
    })
}

/// Depth-first search from the top in document order: the first cycle, or
/// (when `missing_is_error`) the first missing filter.
fn first_problem(loaded: &Loaded, missing_is_error: bool) -> Option<ResolveError> {
    // Each node's parent in the search tree, by node index.
    let mut pred: Vec<Option<NodeIndex>> = vec![None; loaded.graph.node_count()];
    let tree_path = |pred: &[Option<NodeIndex>], mut n: NodeIndex| {
        let mut nodes = vec![n];
        while let Some(p) = pred[n.index()] {
            nodes.push(p);
            n = p;
        }
        nodes.reverse();
        nodes
    };
    let found = depth_first_search(&loaded.graph, Some(loaded.top), |event| match event {
        DfsEvent::TreeEdge(u, v) => {
            pred[v.index()] = Some(u);
            Control::Continue
        }
        DfsEvent::Discover(v, _) if missing_is_error && loaded.graph[v].is_none() => {
            Control::Break(ResolveError::Missing {
                path: names(loaded, tree_path(&pred, v)),
            })
        }
        DfsEvent::BackEdge(u, v) => {
            // `v` is on the current search path: the loop is v ... u -> v.
            let mut cycle: Vec<NodeIndex> = tree_path(&pred, u)
                .into_iter()
                .skip_while(|&n| n != v)
                .collect();
            cycle.push(v);
            Control::Break(ResolveError::Cycle {
                path: names(loaded, cycle),
            })
        }
        _ => Control::Continue,
    });
    found.break_value()
}

fn names(loaded: &Loaded, nodes: Vec<NodeIndex>) -> RefPath {
    RefPath(nodes.into_iter().map(|n| loaded.name(n)).collect())
}
