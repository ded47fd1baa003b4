//! Renders the chain IR as an nftables ruleset and applies it, one
//! transaction per change.
//!
//! Data flow: chain IR (from `nwfilter-compile`) → [`PortRuleset`] (per-port
//! chains of statements, each with its `nft -f` text and JSON) → a
//! [`Batch`] (the skeleton, ports added, ports removed) → one `nft -j -f -`
//! run through `host-io`'s [`Runner`](host_io::Runner) (the only I/O).

pub mod apply;
pub mod batch;
pub mod kernel;
mod matches;
pub mod names;
pub mod render;
mod share;
pub mod term;

pub use apply::{Applier, ApplyError, Change, Report};
pub use batch::{instantiate, Batch, Cmd};
pub use kernel::{KernelState, ReadError};
pub use render::{ruleset, Chain, PortKey, PortRuleset, PortSet, RenderError, Rule, Unsupported};
