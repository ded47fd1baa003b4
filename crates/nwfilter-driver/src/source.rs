//! The filter store as the compiler's [`FilterSource`]: what bindings
//! resolve their `<filterref>`s against.

use std::io;
use std::sync::Arc;

use nwfilter_compile::{FilterSource, MemorySource, SourceError};
use nwfilter_model::Filter;

use crate::error::Error;
use crate::filters::FilterStore;

/// Live lookups: each `get` reads the one config file (or the built-in
/// filter) under the shared lock, so it sees the latest definition. For
/// compiling many bindings against one consistent state, use
/// [`FilterStore::source`].
impl FilterSource for FilterStore {
    fn get(&self, name: &str) -> Result<Option<Arc<Filter>>, SourceError> {
        FilterStore::get(self, name).map_err(source_error)
    }
}

impl FilterStore {
    /// Every visible filter, parsed once, as an in-memory source: one
    /// consistent view for compiling many bindings. Files that cannot be
    /// used are left out (see [`FilterStore::snapshot`] for the reasons).
    pub fn source(&self) -> Result<MemorySource, Error> {
        Ok(self.snapshot()?.items.into_iter().map(|(f, _)| f).collect())
    }
}

fn source_error(error: Error) -> SourceError {
    match error {
        Error::Io { path, source, .. } => SourceError::Io { path, source },
        Error::BadFile { path, reason } => SourceError::Io {
            path,
            source: io::Error::new(io::ErrorKind::InvalidData, reason),
        },
        other => SourceError::Io {
            path: Default::default(),
            source: io::Error::other(other),
        },
    }
}
