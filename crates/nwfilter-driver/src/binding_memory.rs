//! The binding store's memory of its directory (issue 22), for a process
//! that is the only writer of the state directory while it runs: the
//! daemon (the CLI goes through it whenever one runs). Without it every
//! `binding-list`, lookup by port and learned-address check read and
//! parsed every binding file (15–18 ms at 1000 bindings); libvirt too
//! reads its binding directory at start only.
//!
//! The directory stays the truth across restarts: every write goes to
//! disk first and is remembered once it is there. The memory is filled by
//! the first read, and replaced by [`crate::BindingStore::read_all`] (the
//! daemon's start and `reload`: a file mended by hand is read then). In
//! between, a file changed behind the store's back is not seen.
//!
//! Lock order: the directory's `flock`, then this mutex. The mutex is
//! never held while waiting for the `flock`, so filling it never
//! deadlocks against a write; reads that find it filled take no `flock`.
//!
//! What is kept per port is the parsed [`Binding`] (a few hundred bytes:
//! names, MAC, parameters). The engine keeps only the rendered rules of a
//! port, never its binding, so there is no second copy to share.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use nwfilter_model::Binding;

use crate::error::Error;
use crate::listing::{stray_reports, Listing};

/// The memory of one state directory, shared by the store's clones.
#[derive(Debug, Default)]
pub(crate) struct Memory {
    files: Mutex<Files>,
}

impl Memory {
    /// The files as remembered (possibly not read yet: [`Files::read`]).
    pub(crate) fn lock(&self) -> MutexGuard<'_, Files> {
        // A panic while holding it cannot leave a half-changed entry:
        // each change is one insert or remove.
        self.files.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The files as remembered, read with `read` first if they are not
    /// yet. Call with the directory's lock held.
    pub(crate) fn filled(
        &self,
        read: impl FnOnce() -> Result<Files, Error>,
    ) -> Result<MutexGuard<'_, Files>, Error> {
        let mut files = self.lock();
        if !files.read {
            *files = read()?;
        }
        Ok(files)
    }
}

/// A state directory's binding files, as read or written by this store.
#[derive(Debug, Default)]
pub(crate) struct Files {
    /// Whether the directory was read: until then nothing below is known.
    read: bool,
    /// Temp files of interrupted writes found when it was read.
    stray: Vec<PathBuf>,
    /// Each object file by key (its port's name): its binding, or why it
    /// cannot be read. In key order, as a directory listing is.
    objects: BTreeMap<String, Result<Binding, Error>>,
}

impl Files {
    /// An empty directory, as read.
    pub(crate) fn new(stray: Vec<PathBuf>) -> Files {
        Files {
            read: true,
            stray,
            objects: BTreeMap::new(),
        }
    }

    pub(crate) fn is_read(&self) -> bool {
        self.read
    }

    /// Adds what the file `key` holds (while reading the directory).
    pub(crate) fn add(&mut self, key: String, parsed: Result<Binding, Error>) {
        self.objects.insert(key, parsed);
    }

    /// What [`crate::BindingStore::list`] answers: stray temp files first,
    /// then the bindings (and the files that cannot be read) by key.
    pub(crate) fn listing(&self) -> Listing<Binding> {
        let mut listing = Listing {
            items: Vec::with_capacity(self.objects.len()),
            skipped: stray_reports(self.stray.clone()).collect(),
        };
        for parsed in self.objects.values() {
            match parsed {
                Ok(binding) => listing.items.push(binding.clone()),
                Err(e) => listing.skipped.push(duplicate(e)),
            }
        }
        listing
    }

    /// As [`Files::listing`], giving the files up (no memory kept).
    pub(crate) fn into_listing(self) -> Listing<Binding> {
        let mut listing = Listing {
            items: Vec::with_capacity(self.objects.len()),
            skipped: stray_reports(self.stray).collect(),
        };
        for parsed in self.objects.into_values() {
            match parsed {
                Ok(binding) => listing.items.push(binding),
                Err(e) => listing.skipped.push(e),
            }
        }
        listing
    }

    /// The binding in file `key` (or why it cannot be read); `None`: no
    /// such file.
    pub(crate) fn get(&self, key: &str) -> Option<Result<Binding, Error>> {
        (self.objects.get(key)).map(|parsed| parsed.as_ref().cloned().map_err(duplicate))
    }

    pub(crate) fn contains(&self, key: &str) -> bool {
        self.objects.contains_key(key)
    }

    /// File `key` now holds `binding`.
    pub(crate) fn set(&mut self, key: &str, binding: Binding) {
        self.objects.insert(key.to_owned(), Ok(binding));
    }

    /// File `key` is gone.
    pub(crate) fn remove(&mut self, key: &str) {
        self.objects.remove(key);
    }

    /// The temp files are gone (swept).
    pub(crate) fn forget_stray(&mut self) {
        self.stray.clear();
    }
}

/// A copy of a report on a file that cannot be read. Reading a binding
/// file fails only with `Io` or `BadFile`; an I/O error is copied with its
/// kind and text (what every report shows of it).
fn duplicate(e: &Error) -> Error {
    match e {
        Error::Io { op, path, source } => Error::Io {
            op,
            path: path.clone(),
            source: std::io::Error::new(source.kind(), source.to_string()),
        },
        Error::BadFile { path, reason } => Error::BadFile {
            path: path.clone(),
            reason: reason.clone(),
        },
        other => Error::BadFile {
            path: PathBuf::new(),
            reason: crate::engine::error_chain(other),
        },
    }
}
