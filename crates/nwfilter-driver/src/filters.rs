//! The filter store: a config directory of `NAME.xml` filter documents on
//! top of the built-in set, with libvirt's object rules for define and
//! undefine.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use nwfilter_compile::MemorySource;
use nwfilter_model::{Filter, FilterName, IfName, Uuid};

use crate::durable::{DirLock, ObjectDir, MAX_OBJECT_BYTES};
use crate::error::Error;
use crate::graph;
use crate::listing::{stray_reports, Listing};

/// Where filters are stored unless told otherwise.
pub const DEFAULT_CONFIG_DIR: &str = "/etc/nwfilter";

/// Where a visible filter comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// The built-in set compiled into the program.
    Builtin,
    /// A file in the config directory.
    Stored,
    /// A file in the config directory that shadows a built-in filter.
    Override,
}

/// One visible filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FilterInfo {
    pub name: FilterName,
    pub uuid: Uuid,
    pub origin: Origin,
}

/// A binding's use of a top filter, as `undefine` needs to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingUse {
    pub portdev: IfName,
    pub filter: FilterName,
}

/// What `define` did; hand it to [`FilterStore::undo_define`] to roll back.
#[derive(Debug, Clone)]
pub struct Defined {
    /// The filter as stored (with its final UUID).
    pub filter: Arc<Filter>,
    /// `true` when no filter of this name was visible before.
    pub created: bool,
    /// `false` when the stored document is identical to what was visible
    /// before (nothing needs rebuilding).
    pub changed: bool,
    /// The config file's previous bytes (`None`: there was no file), as
    /// they were even if they could not be used.
    previous_file: Option<Vec<u8>>,
    /// What the document carried that was ignored (unknown attributes, as
    /// libvirt ignores them), for the caller to pass on.
    pub warnings: Vec<nwfilter_model::Warning>,
}

/// What `undefine` removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Undefined {
    pub name: FilterName,
    pub uuid: Uuid,
    /// The built-in filter of the same name, visible again, if any.
    pub builtin_uuid: Option<Uuid>,
}

/// The filter store. Every operation re-reads the directory under its
/// lock, so several stores (threads or processes) on one directory see each
/// other's writes and never lose one.
#[derive(Debug, Clone)]
pub struct FilterStore {
    objects: ObjectDir,
}

/// The visible filters at one moment, under the directory lock.
struct View {
    filters: BTreeMap<String, (Arc<Filter>, Origin)>,
    /// Files that could not be used, by the name they are filed under:
    /// (path, reason).
    broken: BTreeMap<String, (PathBuf, String)>,
    stray: Vec<PathBuf>,
}

impl View {
    fn get(&self, name: &str) -> Option<&Filter> {
        self.filters.get(name).map(|(f, _)| f.as_ref())
    }

    fn by_uuid(&self, uuid: Uuid) -> Option<&Filter> {
        self.filters
            .values()
            .map(|(f, _)| f.as_ref())
            .find(|f| f.uuid == uuid)
    }

    /// Name first (a filter may be named like a UUID), then UUID.
    fn lookup(&self, key: &str) -> Result<(&Arc<Filter>, Origin), Error> {
        if let Some((filter, origin)) = self.filters.get(key) {
            return Ok((filter, *origin));
        }
        if let Some((path, reason)) = self.broken.get(key) {
            return Err(Error::bad_file(path, reason));
        }
        let uuid = Uuid::parse_str(key.trim()).map_err(|_| Error::NoSuchFilter(key.to_owned()))?;
        self.filters
            .values()
            .find(|(f, _)| f.uuid == uuid)
            .map(|(f, o)| (f, *o))
            .ok_or_else(|| Error::NoSuchFilter(key.to_owned()))
    }
}

impl FilterStore {
    /// A store on `dir` (which need not exist yet: it is created by the
    /// first write).
    pub fn open(dir: impl Into<PathBuf>) -> FilterStore {
        FilterStore {
            objects: ObjectDir::new(dir.into()),
        }
    }

    /// The config directory.
    pub fn dir(&self) -> &Path {
        self.objects.dir()
    }

    /// Defines or redefines a filter from its XML text (libvirt's
    /// `nwfilter-define`, reference §2.6 and §7.2):
    /// * a new name keeps the document's `<uuid>`, or gets a fresh one — or
    ///   the built-in filter's UUID when it overrides a built-in;
    /// * a known name keeps its UUID; a document without `<uuid>` takes it
    ///   (libvirt refuses that case; we follow `virsh edit` users' intent);
    ///   an explicit different UUID is refused;
    /// * a UUID that belongs to another name is refused;
    /// * a definition that would close a loop of references is refused,
    ///   naming the loop;
    /// * a definition whose normalised document would be larger than a
    ///   document may be is refused (it could not be read back).
    ///
    /// On any error nothing is written.
    pub fn define(&self, xml: &str) -> Result<Defined, Error> {
        let parsed = ParsedFilter::parse(xml)?;
        self.define_parsed(parsed, |_| Ok::<(), Error>(()))
            .map(|(defined, ())| defined)
    }

    /// As [`FilterStore::define`], for a document parsed beforehand (the
    /// slow part, done without any lock), with one more check: `check` is
    /// called under the directory's lock once the definition has passed
    /// the store's own rules, before anything is written, and sees every
    /// filter as it would be after the define ([`Proposed`]). Its error
    /// refuses the define; nothing is written then.
    pub fn define_parsed<T, E>(
        &self,
        parsed: ParsedFilter,
        check: impl FnOnce(&Proposed) -> Result<T, E>,
    ) -> Result<(Defined, T), E>
    where
        E: From<Error>,
    {
        let ParsedFilter {
            mut filter,
            uuid_given,
            warnings,
        } = parsed;
        let lock = self.objects.lock_exclusive()?;
        let view = self.view(&lock)?;
        let name = filter.name.as_str().to_owned();
        // A broken config file hides its built-in; a redefinition still
        // inherits the built-in's UUID.
        let existing = view
            .get(&name)
            .or(builtin(&name).map(|b| b.as_ref()))
            .cloned();
        if !uuid_given {
            if let Some(existing) = &existing {
                filter.uuid = existing.uuid;
            }
        }
        check_identity(&view, &filter, existing.as_ref())?;
        let lookup = |n: &str| {
            if n == name {
                Some(&filter)
            } else {
                view.get(n)
            }
        };
        if let Some(path) = graph::find_cycle(&filter, &lookup) {
            return Err(Error::Cycle { path }.into());
        }
        let text = nwfilter_model::format_filter(&filter);
        if text.len() > MAX_OBJECT_BYTES {
            return Err(Error::TooLarge {
                what: format!("filter '{name}'"),
                size: text.len(),
                limit: MAX_OBJECT_BYTES,
            }
            .into());
        }
        let changed = existing
            .as_ref()
            .is_none_or(|old| nwfilter_model::format_filter(old) != text);
        let filter = Arc::new(filter);
        let mut filters = view.filters;
        filters.insert(name.clone(), (Arc::clone(&filter), Origin::Stored));
        let checked = check(&Proposed {
            filter: Arc::clone(&filter),
            changed,
            filters,
        })?;
        let previous_file = self.objects.read_bytes(&lock, &name)?;
        self.objects.write(&lock, &name, &text)?;
        let defined = Defined {
            filter,
            created: existing.is_none(),
            changed,
            previous_file,
            warnings,
        };
        Ok((defined, checked))
    }

    /// Puts the config file back as it was before `defined` (used when
    /// rebuilding the bindings after a define failed).
    pub fn undo_define(&self, defined: &Defined) -> Result<(), Error> {
        let lock = self.objects.lock_exclusive()?;
        let name = defined.filter.name.as_str();
        match &defined.previous_file {
            Some(bytes) => self.objects.write_bytes(&lock, name, bytes),
            None => self.objects.remove(&lock, name).map(drop),
        }
    }

    /// Removes the stored filter `key` (name or UUID), unless a binding
    /// uses it directly or through references. `current_bindings` is asked
    /// for the bindings while the store is locked.
    pub fn undefine<F>(&self, key: &str, current_bindings: F) -> Result<Undefined, Error>
    where
        F: FnOnce() -> Result<Vec<BindingUse>, Error>,
    {
        let lock = self.objects.lock_exclusive()?;
        let view = self.view(&lock)?;
        let (filter, origin) = view.lookup(key)?;
        if origin == Origin::Builtin {
            return Err(Error::Builtin(filter.name.to_string()));
        }
        let name = filter.name.as_str();
        let bindings = current_bindings().map_err(|e| Error::Bindings(Box::new(e)))?;
        let lookup = |n: &str| view.get(n);
        let users: Vec<String> = bindings
            .iter()
            .filter_map(|b| {
                let path = graph::path_to(b.filter.as_str(), name, &lookup)?;
                Some(describe_use(&b.portdev, &path))
            })
            .collect();
        if !users.is_empty() {
            return Err(Error::InUse {
                name: name.to_owned(),
                users,
            });
        }
        self.objects.remove(&lock, name)?;
        Ok(Undefined {
            name: filter.name.clone(),
            uuid: filter.uuid,
            builtin_uuid: builtin(name).map(|b| b.uuid),
        })
    }

    /// The filter `key` (name, else UUID).
    pub fn lookup(&self, key: &str) -> Result<Arc<Filter>, Error> {
        let lock = self.objects.lock_shared()?;
        let view = self.view(&lock)?;
        view.lookup(key).map(|(f, _)| Arc::clone(f))
    }

    /// The filter called `name`, if one is visible. Reads only that file.
    pub fn get(&self, name: &str) -> Result<Option<Arc<Filter>>, Error> {
        if FilterName::new(name).is_err() {
            return Ok(None); // never turn a bad name into a path
        }
        let lock = self.objects.lock_shared()?;
        match self.objects.read(&lock, name)? {
            Some(text) => parse_stored(name, &text)
                .map(Some)
                .map_err(|reason| Error::bad_file(&self.objects.path(name), reason)),
            None => Ok(builtin(name).cloned()),
        }
    }

    /// Every visible filter (sorted by name), plus the files skipped.
    pub fn list(&self) -> Result<Listing<FilterInfo>, Error> {
        Ok(self.snapshot()?.map(|(filter, origin)| FilterInfo {
            name: filter.name.clone(),
            uuid: filter.uuid,
            origin,
        }))
    }

    /// Every visible filter, parsed (sorted by name), plus the files
    /// skipped: one consistent view for compiling many bindings.
    pub fn snapshot(&self) -> Result<Listing<(Arc<Filter>, Origin)>, Error> {
        let lock = self.objects.lock_shared()?;
        let view = self.view(&lock)?;
        let mut skipped: Vec<Error> = (view.broken.into_values())
            .map(|(path, reason)| Error::BadFile { path, reason })
            .collect();
        skipped.extend(stray_reports(view.stray));
        Ok(Listing {
            items: view.filters.into_values().collect(),
            skipped,
        })
    }

    /// Deletes temp files left by writers that were killed; returns them.
    pub fn sweep(&self) -> Result<Vec<PathBuf>, Error> {
        let lock = self.objects.lock_exclusive()?;
        self.objects.sweep(&lock)
    }

    fn view(&self, lock: &DirLock) -> Result<View, Error> {
        let scan = self.objects.scan(lock)?;
        let mut filters: BTreeMap<String, (Arc<Filter>, Origin)> = builtins()
            .iter()
            .map(|(name, f)| (name.clone(), (Arc::clone(f), Origin::Builtin)))
            .collect();
        let mut broken = BTreeMap::new();
        for (key, path) in scan.objects {
            let parsed = match self.objects.read(lock, &key) {
                Ok(Some(text)) => parse_stored(&key, &text),
                Ok(None) => continue, // removed since the scan
                Err(e) => Err(reason_of(&e)),
            };
            match parsed {
                Ok(filter) => {
                    let origin = if filters.contains_key(&key) {
                        Origin::Override
                    } else {
                        Origin::Stored
                    };
                    filters.insert(key, (filter, origin));
                }
                Err(e) => {
                    // A broken override hides the built-in filter: falling
                    // back silently would change what bindings get.
                    tracing::warn!(file = %path.display(), reason = %e, "filter file skipped");
                    filters.remove(&key);
                    broken.insert(key, (path, e));
                }
            }
        }
        Ok(View {
            filters,
            broken,
            stray: scan.stray,
        })
    }
}

/// libvirt's identity rules: a UUID names one filter, and a name keeps
/// its UUID.
fn check_identity(view: &View, filter: &Filter, existing: Option<&Filter>) -> Result<(), Error> {
    let name = filter.name.as_str();
    if let Some(owner) = view.by_uuid(filter.uuid) {
        if owner.name != filter.name {
            return Err(Error::UuidTaken {
                name: name.to_owned(),
                uuid: filter.uuid,
                owner: owner.name.to_string(),
            });
        }
    }
    match existing {
        Some(existing) if existing.uuid != filter.uuid => Err(Error::NameTaken {
            name: name.to_owned(),
            existing: existing.uuid,
            given: filter.uuid,
        }),
        _ => Ok(()),
    }
}

/// A `<filter>` document parsed and checked on its own: the part of a
/// define that grows with the document, done before any lock is taken
/// (see [`FilterStore::define_parsed`]).
#[derive(Debug, Clone)]
pub struct ParsedFilter {
    filter: Filter,
    /// Whether the document has its own `<uuid>` (else the model made up
    /// a random one, and a known name keeps its stored UUID instead).
    uuid_given: bool,
    /// What was ignored (unknown attributes), for the caller to pass on.
    warnings: Vec<nwfilter_model::Warning>,
}

impl ParsedFilter {
    pub fn parse(xml: &str) -> Result<ParsedFilter, Error> {
        let parsed = parse_filter(xml)?;
        Ok(ParsedFilter {
            uuid_given: declares_uuid(xml),
            filter: parsed.value,
            warnings: parsed.warnings,
        })
    }

    pub fn filter(&self) -> &Filter {
        &self.filter
    }
}

/// Every filter as it would be after a define: what
/// [`FilterStore::define_parsed`]'s check sees.
#[derive(Debug)]
pub struct Proposed {
    /// The new definition (with its final UUID).
    pub filter: Arc<Filter>,
    /// `false` when the new definition is identical to the visible one.
    pub changed: bool,
    filters: BTreeMap<String, (Arc<Filter>, Origin)>,
}

impl Proposed {
    /// Whether the tree of filter `top` reaches the new definition, going
    /// through the filters that exist (a reference to a missing filter
    /// leads nowhere, so a tree that does not resolve is still found).
    pub fn reaches(&self, top: &str) -> bool {
        let lookup = |n: &str| self.filters.get(n).map(|(f, _)| f.as_ref());
        graph::path_to(top, self.filter.name.as_str(), &lookup).is_some()
    }

    /// The filters as a source to compile bindings against.
    pub fn source(&self) -> MemorySource {
        (self.filters.values())
            .map(|(f, _)| Arc::clone(f))
            .collect()
    }
}

/// Why a file could not be read, without repeating its path (the report
/// names it).
fn reason_of(error: &Error) -> String {
    match error {
        Error::BadFile { reason, .. } => reason.clone(),
        Error::Io { source, .. } => format!("cannot read it: {source}"),
        other => other.to_string(),
    }
}

/// "vnet0" for a direct use, "vnet0 (via a -> b)" through references.
fn describe_use(portdev: &IfName, path: &[String]) -> String {
    match path {
        [_] => portdev.to_string(),
        _ => format!("{portdev} (via {})", path.join(" -> ")),
    }
}

/// Whether a (valid) `<filter>` document carries its own `<uuid>`: the
/// model fills in a random one when it does not, and define must then
/// inherit the existing filter's UUID instead. A document without the
/// text `<uuid` cannot have one: that case costs no second parse.
fn declares_uuid(xml: &str) -> bool {
    xml.contains("<uuid")
        && roxmltree::Document::parse(xml).is_ok_and(|doc| {
            (doc.root_element().children()).any(|c| c.is_element() && c.has_tag_name("uuid"))
        })
}

/// A document to define; unknown attributes are ignored (as libvirt
/// does) and returned.
fn parse_filter(xml: &str) -> Result<nwfilter_model::Parsed<Filter>, Error> {
    nwfilter_model::parse_filter_with(xml, Default::default()).map_err(|source| Error::Invalid {
        what: "filter",
        source,
    })
}

/// Parses a config file, which must hold the filter it is named after;
/// the error is the reason it cannot be used. A file without `<uuid>`
/// gets [`stable_uuid`], the same at every read.
fn parse_stored(key: &str, text: &str) -> Result<Arc<Filter>, String> {
    let mut filter = nwfilter_model::parse_filter(text).map_err(|e| e.to_string())?;
    if filter.name.as_str() != key {
        return Err(format!("holds filter '{}', not '{key}'", filter.name));
    }
    if !declares_uuid(text) {
        filter.uuid = stable_uuid(&filter.name);
    }
    Ok(Arc::new(filter))
}

/// Namespace of the UUIDs derived from filter names (a fixed random
/// UUID: it only has to differ from other uses of name-based UUIDs).
const NAME_UUID_NAMESPACE: Uuid = Uuid::from_u128(0x5d0c_29a4_8f61_4a7e_9b3d_c2e1_7f40_a8b6);

/// The UUID of a config file that has no `<uuid>` (written by hand or
/// by another tool). The model gives such a document a random UUID,
/// which would change at every read (`list` and `dumpxml` disagreeing,
/// a UUID that names nothing a moment later). libvirt writes the file
/// back with the random UUID on first load; we derive it instead:
/// a read never writes (readers hold only the shared lock, and may run
/// as a user who cannot write the config directory), and the UUID is
/// the same in every process, after a restart and on every host. A
/// file that overrides a built-in filter takes the built-in's UUID, as
/// a define of that name would; any other gets a name-based (v5) UUID.
/// A later define without `<uuid>` stores the same UUID (a known name
/// keeps its UUID).
fn stable_uuid(name: &FilterName) -> Uuid {
    match builtin(name.as_str()) {
        Some(builtin) => builtin.uuid,
        None => Uuid::new_v5(&NAME_UUID_NAMESPACE, name.as_str().as_bytes()),
    }
}

fn builtins() -> &'static BTreeMap<String, Arc<Filter>> {
    static BUILTINS: OnceLock<BTreeMap<String, Arc<Filter>>> = OnceLock::new();
    BUILTINS.get_or_init(|| {
        nwfilter_model::builtin_filters()
            .into_iter()
            .map(|f| (f.name.as_str().to_owned(), Arc::new(f)))
            .collect()
    })
}

fn builtin(name: &str) -> Option<&'static Arc<Filter>> {
    builtins().get(name)
}
