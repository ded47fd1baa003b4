//! Where referenced filters come from: a small trait and its sources.
//!
//! Filters are handed out as `Arc<Filter>` so that resolving the same DAG
//! for many ports shares one parsed copy of each filter.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nwfilter_model::Filter;

/// Looks up filters by name.
pub trait FilterSource {
    /// The filter called `name`; `Ok(None)` when this source has none.
    fn get(&self, name: &str) -> Result<Option<Arc<Filter>>, SourceError>;
}

impl<S: FilterSource + ?Sized> FilterSource for &S {
    fn get(&self, name: &str) -> Result<Option<Arc<Filter>>, SourceError> {
        (**self).get(name)
    }
}

impl<S: FilterSource + ?Sized> FilterSource for Arc<S> {
    fn get(&self, name: &str) -> Result<Option<Arc<Filter>>, SourceError> {
        (**self).get(name)
    }
}

impl<S: FilterSource + ?Sized> FilterSource for Box<S> {
    fn get(&self, name: &str) -> Result<Option<Arc<Filter>>, SourceError> {
        (**self).get(name)
    }
}

/// Why a source could not produce a filter.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot read {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file is not a valid filter document. The message is the parse
    /// error's, which names the file, line:column, element and attribute.
    #[error("{error}")]
    Parse {
        path: PathBuf,
        error: nwfilter_model::ParseError,
    },
    /// Two files of one directory define the same filter name.
    #[error(
        "filter '{name}' is defined by more than one file: {}",
        list_paths(paths)
    )]
    Ambiguous { name: String, paths: Vec<PathBuf> },
}

fn list_paths(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    shown.join(", ")
}

/// Filters held in memory, by name (for tests, and for filter sets that
/// are already parsed, such as the built-in defaults).
#[derive(Debug, Clone, Default)]
pub struct MemorySource {
    filters: HashMap<String, Arc<Filter>>,
}

impl MemorySource {
    pub fn new() -> MemorySource {
        MemorySource::default()
    }

    /// Adds (or replaces) a filter under its own name.
    pub fn insert(&mut self, filter: impl Into<Arc<Filter>>) -> Option<Arc<Filter>> {
        let filter = filter.into();
        self.filters.insert(filter.name.as_str().to_owned(), filter)
    }

    /// Removes the filter `name`, returning it.
    pub fn remove(&mut self, name: &str) -> Option<Arc<Filter>> {
        self.filters.remove(name)
    }

    pub fn len(&self) -> usize {
        self.filters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.filters.is_empty()
    }

    /// The names held, in byte order.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.filters.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }
}

impl<F: Into<Arc<Filter>>> FromIterator<F> for MemorySource {
    /// Later filters replace earlier ones of the same name.
    fn from_iter<I: IntoIterator<Item = F>>(iter: I) -> MemorySource {
        let mut source = MemorySource::new();
        for filter in iter {
            source.insert(filter);
        }
        source
    }
}

impl FilterSource for MemorySource {
    fn get(&self, name: &str) -> Result<Option<Arc<Filter>>, SourceError> {
        Ok(self.filters.get(name).cloned())
    }
}

/// Several sources searched in order: the first that has a name wins
/// (e.g. `--filter-dir` folders, then the built-in default set).
#[derive(Default)]
pub struct LayeredSource {
    layers: Vec<Box<dyn FilterSource + Send + Sync>>,
}

impl std::fmt::Debug for LayeredSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayeredSource")
            .field("layers", &self.layers.len())
            .finish()
    }
}

impl LayeredSource {
    pub fn new() -> LayeredSource {
        LayeredSource::default()
    }

    /// Adds a layer searched after the existing ones.
    pub fn push(&mut self, layer: impl FilterSource + Send + Sync + 'static) -> &mut Self {
        self.layers.push(Box::new(layer));
        self
    }

    /// Builder form of [`LayeredSource::push`].
    pub fn with(mut self, layer: impl FilterSource + Send + Sync + 'static) -> Self {
        self.push(layer);
        self
    }
}

impl FilterSource for LayeredSource {
    fn get(&self, name: &str) -> Result<Option<Arc<Filter>>, SourceError> {
        for layer in &self.layers {
            if let Some(found) = layer.get(name)? {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }
}

/// A directory of `*.xml` filter documents, read and parsed once when
/// opened. Files are indexed by the name inside them, not by file name:
/// libvirt's config directory names files after their filter, but a
/// folder of test cases (libvirt's own corpus) holds many files whose
/// filters share a name. A name defined twice is only an error when it is
/// asked for.
#[derive(Debug, Clone)]
pub struct DirSource {
    dir: PathBuf,
    filters: HashMap<String, Arc<Filter>>,
    /// Names defined by several files, with every such file.
    ambiguous: HashMap<String, Vec<PathBuf>>,
}

impl DirSource {
    /// Reads and parses every `*.xml` file directly in `dir` (in file name
    /// order). An unreadable or invalid file is an error naming it.
    pub fn open(dir: impl AsRef<Path>) -> Result<DirSource, SourceError> {
        let dir = dir.as_ref().to_path_buf();
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| SourceError::Io { path, source }
        };
        let mut paths = Vec::new();
        for entry in std::fs::read_dir(&dir).map_err(io(&dir))? {
            let path = entry.map_err(io(&dir))?.path();
            if path.extension().is_some_and(|e| e == "xml") && path.is_file() {
                paths.push(path);
            }
        }
        paths.sort();
        let mut source = DirSource {
            dir,
            filters: HashMap::new(),
            ambiguous: HashMap::new(),
        };
        let mut origin: HashMap<String, PathBuf> = HashMap::new();
        for path in paths {
            let text = std::fs::read_to_string(&path).map_err(io(&path))?;
            let filter = parse_file(&path, &text)?;
            let name = filter.name.as_str().to_owned();
            if let Some(first) = origin.get(&name) {
                source
                    .ambiguous
                    .entry(name)
                    .or_insert_with(|| vec![first.clone()])
                    .push(path);
                continue;
            }
            origin.insert(name.clone(), path);
            source.filters.insert(name, Arc::new(filter));
        }
        Ok(source)
    }

    /// The directory this source was read from.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The unambiguous names held, in byte order.
    pub fn names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self
            .filters
            .keys()
            .filter(|n| !self.ambiguous.contains_key(*n))
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        names
    }
}

fn parse_file(path: &Path, text: &str) -> Result<Filter, SourceError> {
    nwfilter_model::parse_filter(text).map_err(|error| SourceError::Parse {
        path: path.to_path_buf(),
        error: error.in_doc(path.display().to_string()),
    })
}

impl FilterSource for DirSource {
    fn get(&self, name: &str) -> Result<Option<Arc<Filter>>, SourceError> {
        if let Some(paths) = self.ambiguous.get(name) {
            return Err(SourceError::Ambiguous {
                name: name.to_owned(),
                paths: paths.clone(),
            });
        }
        Ok(self.filters.get(name).cloned())
    }
}
