//! Network filters for the VMs of a Rust VM manager, compatible with
//! libvirt's nwfilter: the same `<filter>` and `<filterbinding>`
//! documents, the same built-in filters (`clean-traffic` and its parts),
//! the same rules in the kernel.
//!
//! One entry point: a [`Host`], built from a [`HostConfig`], owns the
//! engine (stored filters and bindings kept in step with the kernel), the
//! rule check (rules another tool flushed are put back) and IP learning
//! (a guest's address learned from its traffic or its DHCP lease).
//!
//! Data flow: your call → [`Host`] → `nwfilter-service` (one verb, the
//! same code `nwfilterd` and the `nwfilter` CLI run) → `nwfilter-driver`
//! (store, compile, apply all or nothing under the tables lock) → the
//! firewall tools. Background: learner and rule check → [`Event`]s → your
//! callback.
//!
//! # What a VM manager does, and the call for it
//!
//! | when | call |
//! |---|---|
//! | the manager starts (after a reboot too) | [`HostConfig::open`], then [`Host::reload`] |
//! | a VM starts, a NIC is hot-plugged | [`Host::create_binding`] ([`BindingBuilder`]) or [`Host::create_binding_xml`] |
//! | a VM stops, a NIC is unplugged | [`Host::delete_binding`] |
//! | a filter is added or changed | [`Host::define_filter`] (every binding using it is rebuilt) |
//! | a filter is removed | [`Host::undefine_filter`] |
//! | the host firewall was reloaded | [`Host::reload`] (the rule check also repairs on its own) |
//! | show state | [`Host::filters`], [`Host::bindings`], [`Host::filter_xml`], [`Host::binding_xml`] |
//!
//! # Start, and define a filter
//!
//! Defining and listing filters touches no kernel state, so this runs
//! anywhere (filters live in the config directory):
//!
//! ```
//! use nwfilter::HostConfig;
//!
//! let dir = tempfile::tempdir()?;
//! let host = HostConfig::new(dir.path().join("etc"), dir.path().join("run"))
//!     .tables_lock(Some(dir.path().join("tables.lock")))
//!     .open()?;
//! let defined = host.define_filter(
//!     "<filter name='no-smtp' chain='root'>\
//!        <rule action='drop' direction='out'><tcp dstportstart='25'/></rule>\
//!        <filterref filter='clean-traffic'/>\
//!      </filter>",
//! )?;
//! assert!(defined.created);
//! let filters = host.filters()?;
//! assert!(filters.filters.iter().any(|f| f.name == "no-smtp"));
//! assert!(filters.filters.iter().any(|f| f.name == "clean-traffic" && f.builtin));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # A VM starts: filter its port
//!
//! Build the binding from typed values (checked as the XML parser checks
//! them) or hand over libvirt's `<filterbinding>` document. This changes
//! the kernel's rules, so it needs root (`no_run` here):
//!
//! ```no_run
//! use nwfilter::{BindingBuilder, Created, HostConfig, LearningMode, Uuid};
//!
//! let host = HostConfig::system().open()?;
//! host.reload()?; // the stored bindings' rules, after a reboot
//! let vm = Uuid::parse_str("d54df46f-1ab5-4a22-8618-4560ef5fac2c")?;
//! let binding = BindingBuilder::new("web1", vm, "vnet0", "52:54:00:12:34:56", "clean-traffic")
//!     .learning(LearningMode::Dhcp) // no IP given: learn it from DHCP
//!     .build()?;
//! assert_eq!(host.create_binding(&binding)?, Created::LearningAddress);
//!
//! // A fixed address: filtering at once.
//! let binding = BindingBuilder::new("web1", vm, "vnet1", "52:54:00:12:34:57", "clean-traffic")
//!     .ip("192.0.2.11".parse()?)
//!     .build()?;
//! assert_eq!(host.create_binding(&binding)?, Created::Filtering);
//!
//! // The VM stops.
//! host.delete_binding("vnet0")?;
//! host.delete_binding("vnet1")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Events
//!
//! The callback runs on a thread of the host, one event at a time, never
//! under the host's locks (it may call the host):
//!
//! ```no_run
//! use std::sync::mpsc;
//! use nwfilter::{Event, HostConfig};
//!
//! let (sender, events) = mpsc::channel();
//! let host = HostConfig::system()
//!     .on_event(move |event| { let _ = sender.send(event); })
//!     .open()?;
//! for event in events {
//!     match event {
//!         Event::AddressesLearned { port, addresses } => println!("{port}: {addresses:?}"),
//!         Event::Blocked { port, reason } | Event::Unprotected { port, reason } => {
//!             eprintln!("{port} is not usable: {reason}")
//!         }
//!         Event::RulesRepaired { ports } => eprintln!("restored the rules of {ports:?}"),
//!         other => eprintln!("{other:?}"),
//!     }
//! }
//! # drop(host);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Which calls block, and for how long
//!
//! Every [`Host`] call blocks its thread; none spawns work it does not
//! wait for. Calls that change the kernel take the host's lock and the
//! tables lock (shared with `nwfilterd`, the CLI, and other hosts), so
//! they also wait for each other and for the rule check.
//!
//! | call | blocks for |
//! |---|---|
//! | [`Host::filters`], [`Host::bindings`], [`Host::filter_xml`], [`Host::binding_xml`], [`Host::binding`] | reading the directories: about a millisecond per hundred files |
//! | [`Host::create_binding`], [`Host::delete_binding`] | one firewall transaction: a few to some tens of milliseconds (xtables: several `*-restore` processes; nftables: one `nft`) |
//! | [`Host::define_filter`], [`Host::undefine_filter`] | parsing, plus one transaction for every binding the filter reaches: up to about a second for a thousand ports |
//! | [`Host::reload`], [`Host::check_rules`] | reading the kernel's tables and re-applying what differs: about half a second per thousand ports |
//! | [`HostConfig::open`] | opening the directories and starting two threads: milliseconds; nothing is applied |
//!
//! Nothing here kills a firewall tool that hangs: such a tool holds up
//! the call, and every other kernel change, until it ends.
//!
//! # From async code
//!
//! Keep the calls off the runtime's worker threads: share the host in an
//! [`Arc`](std::sync::Arc) and call it in `spawn_blocking` (tokio; other
//! runtimes have the same), and receive events through an async channel
//! from the callback.
//!
//! ```
//! use std::sync::Arc;
//! use nwfilter::HostConfig;
//!
//! let dir = tempfile::tempdir()?;
//! let host = Arc::new(
//!     HostConfig::new(dir.path().join("etc"), dir.path().join("run"))
//!         .tables_lock(Some(dir.path().join("tables.lock")))
//!         .open()?,
//! );
//! let runtime = tokio::runtime::Builder::new_current_thread().build()?;
//! let filters = runtime.block_on(async {
//!     let host = Arc::clone(&host);
//!     tokio::task::spawn_blocking(move || host.filters()).await
//! })??;
//! assert!(!filters.filters.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # What is public
//!
//! Only this crate's own types and `std`'s appear in its signatures (and
//! [`Uuid`], from the `uuid` crate): no backend, runner or store type.
//! The other crates of nwfilter-rs are published because this one needs
//! them, but their APIs are internal; see the semver policy in the
//! README. The `frontend` feature is for `nwfilterd` and the `nwfilter`
//! CLI only.

#![deny(missing_docs)]

mod binding;
mod config;
mod error;
mod event;
#[cfg(feature = "frontend")]
pub mod frontend;
mod host;
mod report;
mod rule_check;
mod service;

pub use binding::{Binding, BindingBuilder, BindingError, LearningMode};
pub use config::{
    Firewall, HostConfig, DEFAULT_CONFIG_DIR, DEFAULT_LEARN_TIMEOUT, DEFAULT_RULE_CHECK,
    DEFAULT_STATE_DIR, DEFAULT_TABLES_LOCK,
};
pub use error::Error;
pub use event::Event;
pub use host::Host;
pub use nwfilter_model::Uuid;
pub use report::{BindingSummary, Created, DefinedFilter, FilterList, FilterSummary, ReloadReport};
