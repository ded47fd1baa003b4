//! What the [`Host`](crate::Host)'s calls return: plain values with
//! public fields, marked `#[non_exhaustive]` so that fields can be added
//! in a minor release.

use std::net::IpAddr;

use nwfilter_model::Uuid;

/// A filter as [`Host::define_filter`](crate::Host::define_filter) stored it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DefinedFilter {
    /// Its name.
    pub name: String,
    /// Its UUID (given, kept from the previous definition, or new).
    pub uuid: Uuid,
    /// `true` when no filter of this name existed before.
    pub created: bool,
    /// What the parser ignored, as libvirt ignores it (unknown
    /// attributes), one line each.
    pub warnings: Vec<String>,
}

/// One filter of [`FilterList`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FilterSummary {
    /// Its name.
    pub name: String,
    /// Its UUID.
    pub uuid: Uuid,
    /// One of the built-in filters (not overridden by a file).
    pub builtin: bool,
}

/// Every filter, and the files of the config directory that could not be
/// used (each skipped, never blocking the others).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct FilterList {
    /// The usable filters, by name.
    pub filters: Vec<FilterSummary>,
    /// One line per unusable file: the file and why.
    pub skipped: Vec<String>,
}

/// What [`Host::create_binding`](crate::Host::create_binding) did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Created {
    /// The port's rules are in place.
    Filtering,
    /// The port's filters need `IP` and the binding does not give it: the
    /// port is held under learning rules (only what finding its address
    /// needs passes) until an address is learned
    /// ([`Event::AddressesLearned`](crate::Event::AddressesLearned)).
    LearningAddress,
}

/// One binding of [`Host::bindings`](crate::Host::bindings).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BindingSummary {
    /// The port.
    pub port: String,
    /// Its top filter; empty for a binding whose file cannot be read.
    pub filter: String,
    /// `None` when simply filtering; else e.g. `learning IP`,
    /// `blocked: …`, or `closed …` for a binding whose file cannot be
    /// read (its port drops every frame).
    pub state: Option<String>,
    /// The addresses learned for it, if its `IP` is learned.
    pub learned: Vec<IpAddr>,
}

/// What [`Host::reload`](crate::Host::reload) did. Every binding that
/// could be applied was; the others are listed (and each sent as an
/// [`Event::Unprotected`](crate::Event::Unprotected)).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ReloadReport {
    /// Ports whose rules were (re)installed.
    pub applied: Vec<String>,
    /// Ports whose rules were already exactly in place.
    pub unchanged: Vec<String>,
    /// Ports whose filter tree does not compile, with why; their previous
    /// rules stay.
    pub failed: Vec<(String, String)>,
    /// Ports whose binding file cannot be read, with why: closed (every
    /// frame dropped) until the binding is deleted.
    pub closed: Vec<(String, String)>,
    /// One line per port on which learning could not start, naming the
    /// port and why.
    pub learning_failed: Vec<String>,
    /// Other files of the state directory that were skipped.
    pub skipped: Vec<String>,
}

impl ReloadReport {
    /// Whether every binding has the rules it should have (or is
    /// learning its address).
    pub fn is_complete(&self) -> bool {
        self.failed.is_empty() && self.closed.is_empty() && self.learning_failed.is_empty()
    }
}
