//! The binding store: a state directory of `<filterbinding>` documents,
//! one file per port device (`PORTDEV.xml`).

use std::path::{Path, PathBuf};
use std::sync::{Arc, MutexGuard};

use nwfilter_model::{Binding, IfName};

use crate::binding_memory::{Files, Memory};
use crate::durable::{DirLock, ObjectDir};
use crate::error::Error;
use crate::filters::BindingUse;
use crate::listing::Listing;

/// Where bindings are stored unless told otherwise.
pub const DEFAULT_STATE_DIR: &str = "/run/nwfilter";

/// The binding store. Like [`crate::FilterStore`], it re-reads under the
/// directory lock, so stores on one directory never lose each other's
/// writes; unless it is told it is the directory's only writer
/// ([`BindingStore::kept_in_memory`]).
#[derive(Debug, Clone)]
pub struct BindingStore {
    objects: ObjectDir,
    /// The directory as read once and written since (shared by clones);
    /// `None`: every read reads the files.
    memory: Option<Arc<Memory>>,
}

impl BindingStore {
    /// A store on `dir` (created by the first write).
    pub fn open(dir: impl Into<PathBuf>) -> BindingStore {
        BindingStore {
            objects: ObjectDir::new(dir.into()),
            memory: None,
        }
    }

    /// The same store, for the only process writing its directory while it
    /// runs (the daemon): the directory is read once, at the first read,
    /// and again only by [`BindingStore::read_all`]; every other read is
    /// answered from memory (see `binding_memory`). Writes still go to
    /// disk first. A file changed by another process meanwhile is not
    /// seen until the next `read_all`.
    pub fn kept_in_memory(mut self) -> BindingStore {
        self.memory = Some(Arc::default());
        self
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        self.objects.dir()
    }

    /// Parses a `<filterbinding>` document and stores it; see
    /// [`BindingStore::create`].
    pub fn create_xml(&self, xml: &str) -> Result<Binding, Error> {
        let binding = nwfilter_model::parse_binding(xml).map_err(|source| Error::Invalid {
            what: "filterbinding",
            source,
        })?;
        self.create(&binding)?;
        Ok(binding)
    }

    /// Stores `binding`; an error if its port already has one.
    pub fn create(&self, binding: &Binding) -> Result<(), Error> {
        let port = binding.portdev.as_str();
        let lock = self.objects.lock_exclusive()?;
        if self.exists(&lock, port)? {
            return Err(Error::BindingExists(port.to_owned()));
        }
        let text = nwfilter_model::format_binding(binding);
        self.objects.write(&lock, port, &text)?;
        self.remember(|files| files.set(port, binding));
        Ok(())
    }

    /// Stores `binding` in place of its port's binding; an error if the
    /// port has none.
    pub fn replace(&self, binding: &Binding) -> Result<(), Error> {
        let port = binding.portdev.as_str();
        let lock = self.objects.lock_exclusive()?;
        if !self.exists(&lock, port)? {
            return Err(Error::NoSuchBinding(port.to_owned()));
        }
        let text = nwfilter_model::format_binding(binding);
        self.objects.write(&lock, port, &text)?;
        self.remember(|files| files.set(port, binding));
        Ok(())
    }

    /// Removes the binding of `portdev`, returning it.
    pub fn delete(&self, portdev: &str) -> Result<Binding, Error> {
        let port = valid_port(portdev)?;
        let lock = self.objects.lock_exclusive()?;
        // A corrupt file is still removed: deleting is how one gets rid of
        // it. Why it could not be read is reported instead of the binding.
        let stored = match self.memory_under(&lock)? {
            Some(files) => files.get(port.as_str()),
            None => self.read_one(&lock, port.as_str()),
        };
        let parsed = match stored {
            Some(Ok(binding)) => Ok(binding),
            None => return Err(Error::NoSuchBinding(portdev.to_owned())),
            Some(Err(e @ Error::BadFile { .. })) => Err(e),
            Some(Err(e)) => return Err(e),
        };
        self.objects.remove(&lock, port.as_str())?;
        self.remember(|files| files.remove(port.as_str()));
        parsed
    }

    /// Removes the stored binding of a port whose name older versions
    /// accepted and this one refuses (a leading `-`: see
    /// [`IfName::is_refused_only_as_option_like`]), so such a binding is
    /// never stuck; `false` when there is none.
    pub fn remove_option_like(&self, portdev: &str) -> Result<bool, Error> {
        if !IfName::is_refused_only_as_option_like(portdev) {
            return Ok(false);
        }
        let lock = self.objects.lock_exclusive()?;
        let removed = self.objects.remove(&lock, portdev)?;
        self.remember(|files| files.remove(portdev));
        Ok(removed)
    }

    /// The binding of `portdev`, if there is one.
    pub fn get(&self, portdev: &str) -> Result<Option<Binding>, Error> {
        let Ok(port) = IfName::new(portdev) else {
            return Ok(None); // never turn a bad name into a path
        };
        let stored = match self.recall(|files| files.get(port.as_str()))? {
            Some(stored) => stored,
            None => self.read_one(&self.objects.lock_shared()?, port.as_str()),
        };
        stored.transpose()
    }

    /// Every binding (sorted by port), plus the files skipped.
    pub fn list(&self) -> Result<Listing<Binding>, Error> {
        match self.recall(Files::listing)? {
            Some(listing) => Ok(listing),
            None => self.read_all(),
        }
    }

    /// As [`BindingStore::list`], each binding summed up (port, filter,
    /// owner): from memory without rebuilding every binding's parameters
    /// (`binding-list` at 1000 bindings, issue 22).
    pub fn summaries(&self) -> Result<Listing<BindingSummary>, Error> {
        match self.recall(Files::summaries)? {
            Some(listing) => Ok(listing),
            None => Ok(self.read_all()?.map(|b| BindingSummary::of(&b))),
        }
    }

    /// As [`BindingStore::list`], always reading the directory; a store
    /// [kept in memory](BindingStore::kept_in_memory) then remembers what
    /// it read (the daemon's start and `reload`).
    pub fn read_all(&self) -> Result<Listing<Binding>, Error> {
        let lock = self.objects.lock_shared()?;
        let files = self.read_files(&lock)?;
        let listing = files.listing();
        if let Some(memory) = &self.memory {
            *memory.lock() = files; // under the directory's lock: no write in between
        }
        Ok(listing)
    }

    /// The port whose binding file `skipped` (from [`BindingStore::list`])
    /// is: a binding that exists but cannot be read. `None` for other
    /// reports (temp files of an interrupted write).
    pub fn port_of(&self, skipped: &Error) -> Option<IfName> {
        let path = match skipped {
            Error::BadFile { path, .. } | Error::Io { path, .. } => path,
            _ => return None,
        };
        let name = path.file_name()?.to_str()?.strip_suffix(".xml")?;
        if path.parent() != Some(self.dir()) || name.starts_with('.') {
            return None;
        }
        IfName::new(name).ok()
    }

    /// Each binding's port and top filter: what
    /// [`crate::FilterStore::undefine`] needs to know.
    pub fn uses(&self) -> Result<Vec<BindingUse>, Error> {
        Ok((self.summaries()?.items.into_iter())
            .map(|b| BindingUse {
                portdev: b.portdev,
                filter: b.filter,
            })
            .collect())
    }

    /// Deletes temp files left by writers that were killed; returns them.
    pub fn sweep(&self) -> Result<Vec<PathBuf>, Error> {
        let lock = self.objects.lock_exclusive()?;
        let swept = self.objects.sweep(&lock)?;
        self.remember(Files::forget_stray);
        Ok(swept)
    }

    /// Whether port `key` has a binding file (as remembered, when kept in
    /// memory). Call with the exclusive lock held.
    fn exists(&self, lock: &DirLock, key: &str) -> Result<bool, Error> {
        Ok(match self.memory_under(lock)? {
            Some(files) => files.contains(key),
            None => self.objects.path(key).exists(),
        })
    }

    /// What `f` finds in memory, filling it first if needed; `None` when
    /// this store keeps no memory.
    fn recall<T>(&self, f: impl FnOnce(&Files) -> T) -> Result<Option<T>, Error> {
        let Some(memory) = &self.memory else {
            return Ok(None);
        };
        {
            let files = memory.lock();
            if files.is_read() {
                return Ok(Some(f(&files)));
            }
        }
        // The directory's lock first, then the memory's (see
        // `binding_memory`).
        let lock = self.objects.lock_shared()?;
        Ok(self.memory_under(&lock)?.map(|files| f(&files)))
    }

    /// The memory, filled first if needed; call with the directory's lock
    /// held. `None` when this store keeps no memory.
    fn memory_under(&self, lock: &DirLock) -> Result<Option<MutexGuard<'_, Files>>, Error> {
        match &self.memory {
            Some(memory) => memory.filled(|| self.read_files(lock)).map(Some),
            None => Ok(None),
        }
    }

    /// Changes the memory after a write to disk (if it has been read:
    /// otherwise its first read reads the change).
    fn remember(&self, change: impl FnOnce(&mut Files)) {
        if let Some(memory) = &self.memory {
            let mut files = memory.lock();
            if files.is_read() {
                change(&mut files);
            }
        }
    }

    /// Every binding file of the directory, read and parsed.
    fn read_files(&self, lock: &DirLock) -> Result<Files, Error> {
        let scan = self.objects.scan(lock)?;
        let mut files = Files::new(scan.stray);
        let keys: Vec<String> = scan.objects.into_iter().map(|(key, _)| key).collect();
        let read = crate::on_cores::map(&keys, |key| self.read_one(lock, key));
        for (key, parsed) in keys.into_iter().zip(read) {
            let Some(parsed) = parsed else {
                continue; // removed since the scan
            };
            if let Err(e) = &parsed {
                tracing::warn!(error = %e, "binding file skipped");
            }
            files.add(key, parsed);
        }
        Ok(files)
    }

    /// The binding in file `key`, or why it cannot be read; `None`: no
    /// such file.
    fn read_one(&self, lock: &DirLock, key: &str) -> Option<Result<Binding, Error>> {
        match self.objects.read(lock, key) {
            Ok(Some(text)) => Some(self.parse_stored(key, &text)),
            Ok(None) => None,
            Err(e) => Some(Err(e)),
        }
    }

    /// Parses a state file, which must hold the binding of its port.
    fn parse_stored(&self, key: &str, text: &str) -> Result<Binding, Error> {
        let path = self.objects.path(key);
        let binding = nwfilter_model::parse_binding(text).map_err(|e| Error::bad_file(&path, e))?;
        if binding.portdev.as_str() != key {
            let reason = format!("holds the binding of port '{}'", binding.portdev);
            return Err(Error::bad_file(&path, reason));
        }
        Ok(binding)
    }
}

fn valid_port(portdev: &str) -> Result<IfName, Error> {
    IfName::new(portdev).map_err(|_| Error::NoSuchBinding(portdev.to_owned()))
}

/// What a listing of bindings shows of one ([`BindingStore::summaries`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingSummary {
    pub portdev: IfName,
    pub filter: nwfilter_model::FilterName,
    pub owner_name: String,
    pub owner_uuid: nwfilter_model::Uuid,
}

impl BindingSummary {
    pub fn of(binding: &Binding) -> BindingSummary {
        BindingSummary {
            portdev: binding.portdev.clone(),
            filter: binding.filterref.filter.clone(),
            owner_name: binding.owner.name.clone(),
            owner_uuid: binding.owner.uuid,
        }
    }
}
