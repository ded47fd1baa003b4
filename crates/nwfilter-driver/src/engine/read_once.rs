//! The filter store as a source that reads each filter once: an operation
//! that compiles every binding (start, reload) looked up the same few
//! filters for each binding, opening and locking their files again each
//! time (six filters for `clean-traffic`: thousands of file reads at 1000
//! bindings).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use nwfilter_compile::{FilterSource, SourceError};
use nwfilter_model::Filter;

use crate::FilterStore;

/// Lookups through `store`, each name read at most once (errors are not
/// kept: each binding that meets one reports it, as with the store).
pub(crate) struct ReadOnce<'s> {
    store: &'s FilterStore,
    /// Locked across a read too: the threads of a restart that ask for
    /// the same filter at once still read it once.
    read: Mutex<HashMap<String, Option<Arc<Filter>>>>,
}

impl<'s> ReadOnce<'s> {
    pub(crate) fn new(store: &'s FilterStore) -> ReadOnce<'s> {
        ReadOnce {
            store,
            read: Mutex::new(HashMap::new()),
        }
    }
}

impl FilterSource for ReadOnce<'_> {
    fn get(&self, name: &str) -> Result<Option<Arc<Filter>>, SourceError> {
        let mut read = self.read.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(known) = read.get(name) {
            return Ok(known.clone());
        }
        let found = FilterSource::get(self.store, name)?;
        read.insert(name.to_owned(), found.clone());
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_name_is_read_once_and_a_later_change_is_not_seen() {
        let dir = tempfile::tempdir().unwrap();
        let store = FilterStore::open(dir.path());
        store
            .define("<filter name='f' chain='root'><rule action='drop' direction='in'><all/></rule></filter>")
            .unwrap();
        let source = ReadOnce::new(&store);
        let first = source.get("f").unwrap().unwrap();
        // Gone from the directory: the operation keeps what it read.
        std::fs::remove_file(dir.path().join("f.xml")).unwrap();
        assert!(Arc::ptr_eq(&first, &source.get("f").unwrap().unwrap()));
        assert!(source.get("clean-traffic").unwrap().is_some());
        assert!(source.get("missing").unwrap().is_none());
        assert!(FilterSource::get(&store, "f").unwrap().is_none());
    }
}
