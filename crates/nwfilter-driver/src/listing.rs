//! Listings that carry, beside their items, the files they had to skip.

use std::path::PathBuf;

use crate::error::Error;

/// Items read from a store directory, and the files that were skipped
/// (unparsable, misnamed, or temp files of an interrupted write) with the
/// reason for each. Skipping keeps one bad file from hiding all the rest;
/// callers log `skipped`.
#[derive(Debug)]
pub struct Listing<T> {
    pub items: Vec<T>,
    pub skipped: Vec<Error>,
}

impl<T> Listing<T> {
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Listing<U> {
        Listing {
            items: self.items.into_iter().map(f).collect(),
            skipped: self.skipped,
        }
    }
}

/// One report per temp file a killed writer left behind.
pub(crate) fn stray_reports(paths: Vec<PathBuf>) -> impl Iterator<Item = Error> {
    paths.into_iter().map(|path| Error::BadFile {
        path,
        reason: "leftover temp file of an interrupted write (ignored)".to_owned(),
    })
}
