//! The I/O floor: everything in the workspace that touches the host's
//! firewall tools sits here, behind small types and one trait.
//!
//! Data flow: a backend (or the network driver, or the learner) builds
//! [`Command`]s as data → a [`Runner`] runs them (the only place a firewall
//! tool is started: [`ProcessRunner`] for real, [`RecordingRunner`] in
//! tests, [`DryRun`] to print) → [`Output`] or a [`RunError`] naming tool,
//! arguments, status and stderr. [`TablesLock`] keeps one applier at a
//! time; [`Change`] and [`Report`] are the shape of every apply.
//!
//! This crate knows no filter, no IR and no backend: it must not depend on
//! any other crate of the workspace.

mod change;
mod command;
mod commit_watch;
mod dry_run;
mod gated;
mod lock;
mod nfnl;
mod nft_elements;
pub mod nft_events;
mod nft_removal;
mod nft_socket;
mod quote;
mod record;
mod run;
mod standby;
mod started;
mod tools;

pub use change::{Change, Report};
pub use command::{Command, OnError, Tool};
pub use dry_run::DryRun;
pub use gated::{Gate, GatedRunner};
pub use lock::{TablesLock, DEFAULT_LOCK_FILE};
pub use nft_elements::{ElementChange, ElementStep, KeyPart};
pub use nft_removal::{Removal, RemovalStep};
pub use nft_socket::{TableFamily, TableSeen};
pub use quote::{shell_line, shell_quote};
pub use record::RecordingRunner;
pub use run::{spawned_recently, Output, ProcessRunner, RunError, Runner};
pub use started::Started;
pub use tools::{missing, package_of, Flavour, MissingTool, Toolset};
