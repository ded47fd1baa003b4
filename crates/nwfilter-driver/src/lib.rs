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
//! overrides it. The [`engine`] keeps the kernel in step with the stores,
//! through the [`Backend`] the settings ([`settings`]) choose. A port's
//! rules come from one pipeline ([`port_rules`]: `nwfilter-compile`,
//! then the backend's rendering), which `nwfilter render` also uses
//! ([`preview`]).

pub mod backend;
mod binding_memory;
mod bindings;
mod durable;
mod error;
mod filters;
mod graph;
mod listing;
mod on_cores;
pub mod port;
pub mod preview;
pub mod settings;
mod settled;
mod source;

pub use backend::{apply_once, Backend, Rendered, UnknownBackend};
pub use settings::{choose_backend, Settings, SettingsError};

pub use bindings::{BindingStore, BindingSummary, DEFAULT_STATE_DIR};
pub use error::Error;
pub use filters::{
    BindingUse, Defined, FilterInfo, FilterStore, Origin, ParsedFilter, Proposed, Undefined,
    DEFAULT_CONFIG_DIR,
};
pub use listing::Listing;
pub use port::{port_rules, LearningNeed, PortError, PortRules};
pub use preview::{preview, Form, Preview, PreviewError};

pub mod engine;
pub use engine::{Awaiting, Awaiting6, Created, Deleted, Engine, EngineError, Reapplied, Reapply};
