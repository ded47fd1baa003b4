//! Persistent state of nwfilter: which filters are defined and which ports
//! have bindings.
//!
//! Data flow: XML text → [`FilterStore::define`] / [`BindingStore::create`]
//! (parsed and checked by `nwfilter-model`, identity and loop rules here) →
//! normalised XML files in the config directory (`/etc/nwfilter`) and the
//! state directory (`/run/nwfilter`), written atomically under a lock →
//! read back by [`FilterStore::lookup`] / [`FilterStore::snapshot`] /
//! [`BindingStore::list`] for the compiler and the daemon. The built-in
//! filter set is visible without any file; a file of the same name
//! overrides it. Applying rules is not this crate's job.

mod bindings;
mod durable;
mod error;
mod filters;
mod graph;
mod listing;
mod source;

pub use bindings::{BindingStore, DEFAULT_STATE_DIR};
pub use error::Error;
pub use filters::{
    BindingUse, Defined, FilterInfo, FilterStore, Origin, Undefined, DEFAULT_CONFIG_DIR,
};
pub use listing::Listing;

pub mod engine;
pub use engine::{Engine, EngineError, Reapplied};
