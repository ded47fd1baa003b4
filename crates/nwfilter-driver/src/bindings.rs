//! The binding store: a state directory of `<filterbinding>` documents,
//! one file per port device (`PORTDEV.xml`).

use std::path::{Path, PathBuf};

use nwfilter_model::{Binding, IfName};

use crate::durable::ObjectDir;
use crate::error::Error;
use crate::filters::BindingUse;
use crate::listing::{stray_reports, Listing};

/// Where bindings are stored unless told otherwise.
pub const DEFAULT_STATE_DIR: &str = "/run/nwfilter";

/// The binding store. Like [`crate::FilterStore`], it re-reads under the
/// directory lock, so stores on one directory never lose each other's
/// writes.
#[derive(Debug, Clone)]
pub struct BindingStore {
    objects: ObjectDir,
}

impl BindingStore {
    /// A store on `dir` (created by the first write).
    pub fn open(dir: impl Into<PathBuf>) -> BindingStore {
        BindingStore {
            objects: ObjectDir::new(dir.into()),
        }
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
        if self.objects.path(port).exists() {
            return Err(Error::BindingExists(port.to_owned()));
        }
        let text = nwfilter_model::format_binding(binding);
        self.objects.write(&lock, port, &text)
    }

    /// Stores `binding` in place of its port's binding; an error if the
    /// port has none.
    pub fn replace(&self, binding: &Binding) -> Result<(), Error> {
        let port = binding.portdev.as_str();
        let lock = self.objects.lock_exclusive()?;
        if !self.objects.path(port).exists() {
            return Err(Error::NoSuchBinding(port.to_owned()));
        }
        let text = nwfilter_model::format_binding(binding);
        self.objects.write(&lock, port, &text)
    }

    /// Removes the binding of `portdev`, returning it.
    pub fn delete(&self, portdev: &str) -> Result<Binding, Error> {
        let port = valid_port(portdev)?;
        let lock = self.objects.lock_exclusive()?;
        // A corrupt file is still removed: deleting is how one gets rid of
        // it. Why it could not be read is reported instead of the binding.
        let parsed = match self.objects.read(&lock, port.as_str()) {
            Ok(Some(text)) => self.parse_stored(port.as_str(), &text),
            Ok(None) => return Err(Error::NoSuchBinding(portdev.to_owned())),
            Err(e @ Error::BadFile { .. }) => Err(e),
            Err(e) => return Err(e),
        };
        self.objects.remove(&lock, port.as_str())?;
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
        self.objects.remove(&lock, portdev)
    }

    /// The binding of `portdev`, if there is one.
    pub fn get(&self, portdev: &str) -> Result<Option<Binding>, Error> {
        let Ok(port) = IfName::new(portdev) else {
            return Ok(None); // never turn a bad name into a path
        };
        let lock = self.objects.lock_shared()?;
        match self.objects.read(&lock, port.as_str())? {
            Some(text) => self.parse_stored(port.as_str(), &text).map(Some),
            None => Ok(None),
        }
    }

    /// Every binding (sorted by port), plus the files skipped.
    pub fn list(&self) -> Result<Listing<Binding>, Error> {
        let lock = self.objects.lock_shared()?;
        let scan = self.objects.scan(&lock)?;
        let mut listing = Listing {
            items: Vec::new(),
            skipped: stray_reports(scan.stray).collect(),
        };
        for (key, _) in scan.objects {
            let parsed = match self.objects.read(&lock, &key) {
                Ok(Some(text)) => self.parse_stored(&key, &text),
                Ok(None) => continue, // removed since the scan
                Err(e) => Err(e),
            };
            match parsed {
                Ok(binding) => listing.items.push(binding),
                Err(e) => {
                    tracing::warn!(error = %e, "binding file skipped");
                    listing.skipped.push(e);
                }
            }
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
        Ok((self.list()?.items.into_iter())
            .map(|b| BindingUse {
                portdev: b.portdev,
                filter: b.filterref.filter,
            })
            .collect())
    }

    /// Deletes temp files left by writers that were killed; returns them.
    pub fn sweep(&self) -> Result<Vec<PathBuf>, Error> {
        let lock = self.objects.lock_exclusive()?;
        self.objects.sweep(&lock)
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
