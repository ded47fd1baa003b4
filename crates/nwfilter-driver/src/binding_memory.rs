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
//! What is kept per port is its binding packed ([`Packed`]): some 390
//! bytes for a binding as `bench/e2e` makes them (`clean-traffic`, one
//! `IP`), where the parsed [`Binding`] took 1.1 KiB (a map and a `String`
//! per parameter), against the daemon's target of 7 KB per binding for
//! everything. The engine keeps only the rendered rules of a port, never
//! its binding, so there is no copy of its to share.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use nwfilter_model::{Binding, FilterName, IfName, MacAddr6, Owner, Params, Uuid};

use crate::bindings::BindingSummary;
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
    objects: BTreeMap<Box<str>, Result<Packed, Box<Error>>>,
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
        let kept = parsed.map(|b| Packed::pack(&b)).map_err(Box::new);
        self.objects.insert(key.into(), kept);
    }

    /// What [`crate::BindingStore::list`] answers: stray temp files first,
    /// then the bindings (and the files that cannot be read) by key.
    pub(crate) fn listing(&self) -> Listing<Binding> {
        self.each(Packed::unpack)
    }

    /// As [`Files::listing`], each binding summed up: what a listing of
    /// them shows, without rebuilding its parameters.
    pub(crate) fn summaries(&self) -> Listing<BindingSummary> {
        self.each(Packed::summary)
    }

    /// Stray temp files first, then `read` of each binding (and the
    /// files that cannot be read) by key.
    fn each<T>(&self, read: impl Fn(&Packed) -> T) -> Listing<T> {
        let mut listing = Listing {
            items: Vec::with_capacity(self.objects.len()),
            skipped: stray_reports(self.stray.clone()).collect(),
        };
        for kept in self.objects.values() {
            match kept {
                Ok(packed) => listing.items.push(read(packed)),
                Err(e) => listing.skipped.push(duplicate(e)),
            }
        }
        listing
    }

    /// The binding in file `key` (or why it cannot be read); `None`: no
    /// such file.
    pub(crate) fn get(&self, key: &str) -> Option<Result<Binding, Error>> {
        (self.objects.get(key)).map(|kept| match kept {
            Ok(packed) => Ok(packed.unpack()),
            Err(e) => Err(duplicate(e)),
        })
    }

    pub(crate) fn contains(&self, key: &str) -> bool {
        self.objects.contains_key(key)
    }

    /// File `key` now holds `binding`.
    pub(crate) fn set(&mut self, key: &str, binding: &Binding) {
        self.objects.insert(key.into(), Ok(Packed::pack(binding)));
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

/// Between two fields of [`Packed::text`].
const FIELD: char = '\u{1f}';
/// Before each parameter in [`Packed::text`].
const PARAM: char = '\u{1e}';

/// A binding in as little memory as gives it back exactly: its names as
/// the validated types, the owner's name and the parameters in one
/// string. The separators are control characters, which XML documents
/// cannot carry (a parsed binding never holds one); a binding that does
/// anyway is kept whole.
#[derive(Debug)]
enum Packed {
    Text {
        portdev: IfName,
        linkdev: Option<IfName>,
        mac: MacAddr6,
        owner: Uuid,
        filter: FilterName,
        /// The owner's name, then per parameter name [`PARAM`], the name,
        /// and [`FIELD`] before each of its values.
        text: Box<str>,
    },
    Whole(Box<Binding>),
}

impl Packed {
    fn pack(binding: &Binding) -> Packed {
        let mut text = binding.owner.name.clone();
        for (name, values) in &binding.filterref.params.0 {
            text.push(PARAM);
            text.push_str(name);
            for value in values {
                text.push(FIELD);
                text.push_str(value);
            }
        }
        let separator_free = (binding.owner.name.chars())
            .chain(binding.filterref.params.0.keys().flat_map(|n| n.chars()))
            .chain((binding.filterref.params.0.values().flatten()).flat_map(|v| v.chars()))
            .all(|c| c != FIELD && c != PARAM);
        if !separator_free {
            return Packed::Whole(Box::new(binding.clone()));
        }
        Packed::Text {
            portdev: binding.portdev.clone(),
            linkdev: binding.linkdev.clone(),
            mac: binding.mac,
            owner: binding.owner.uuid,
            filter: binding.filterref.filter.clone(),
            text: text.into(),
        }
    }

    fn summary(&self) -> BindingSummary {
        match self {
            Packed::Whole(binding) => BindingSummary::of(binding),
            Packed::Text {
                portdev,
                owner,
                filter,
                text,
                ..
            } => BindingSummary {
                portdev: portdev.clone(),
                filter: filter.clone(),
                owner_name: text.split(PARAM).next().unwrap_or_default().to_owned(),
                owner_uuid: *owner,
            },
        }
    }

    fn unpack(&self) -> Binding {
        let (portdev, linkdev, mac, owner, filter, text) = match self {
            Packed::Whole(binding) => return (**binding).clone(),
            Packed::Text {
                portdev,
                linkdev,
                mac,
                owner,
                filter,
                text,
            } => (portdev, linkdev, mac, owner, filter, text),
        };
        let mut parts = text.split(PARAM);
        let name = parts.next().unwrap_or_default().to_owned();
        let mut params = Params::default();
        for param in parts {
            let mut fields = param.split(FIELD);
            let name = fields.next().unwrap_or_default().to_owned();
            params.0.insert(name, fields.map(str::to_owned).collect());
        }
        Binding {
            owner: Owner { name, uuid: *owner },
            portdev: portdev.clone(),
            linkdev: linkdev.clone(),
            mac: *mac,
            filterref: nwfilter_model::FilterRef {
                filter: filter.clone(),
                params,
            },
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn binding(params: &[(&str, &[&str])], linkdev: Option<&str>) -> Binding {
        let xml = format!(
            "<filterbinding><owner><name>guest one</name>\
             <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid></owner>\
             <portdev name='vnet0'/>{}<mac address='52:54:00:7b:35:93'/>\
             <filterref filter='clean-traffic'/></filterbinding>",
            linkdev.map_or(String::new(), |l| format!("<linkdev name='{l}'/>"))
        );
        let mut binding = nwfilter_model::parse_binding(&xml).unwrap();
        for (name, values) in params {
            let values = values.iter().map(|v| (*v).to_owned()).collect();
            binding
                .filterref
                .params
                .0
                .insert((*name).to_owned(), values);
        }
        binding
    }

    #[test]
    fn a_packed_binding_unpacks_to_the_same() {
        let cases = [
            binding(&[], None),
            binding(&[("IP", &["10.0.0.1", "10.0.0.2"]), ("EMPTY", &[""])], None),
            binding(
                &[("NONE", &[]), ("MAC", &["52:54:00:7b:35:93"])],
                Some("eth0"),
            ),
            // Separators in a value (never parsed from XML): kept whole.
            binding(&[("ODD", &["a\u{1f}b\u{1e}c"])], None),
        ];
        for original in cases {
            let packed = Packed::pack(&original);
            assert_eq!(packed.unpack(), original, "{packed:?}");
            // The owner's name ends where the parameters begin.
            assert_eq!(packed.summary(), BindingSummary::of(&original));
        }
        let odd = binding(&[("ODD", &["a\u{1f}b"])], None);
        assert!(matches!(Packed::pack(&odd), Packed::Whole(_)));
    }
}
