//! Renders the chain IR as an nftables ruleset and applies it, one
//! transaction per change.
//!
//! Data flow: chain IR (from `nwfilter-compile`) → [`PortRuleset`] (per-port
//! chains of statements, each with its `nft -f` text and JSON) → a
//! [`Batch`] of commands (`batch`: the fixed layout from `layout`, each
//! port's change from `plan`, against the [`KernelState`] read by `kernel`)
//! → one `nft -f -` run of its text through `host-io`'s
//! [`Runner`](host_io::Runner) (the only I/O, in `apply`).

pub mod apply;
pub mod batch;
pub mod elements;
mod error;
pub(crate) mod fast_path;
mod inline;
mod ip_in_bridge;
pub mod kernel;
pub mod layout;
mod matches;
pub mod names;
mod nd;
mod nfproto;
mod plan;
pub mod render;
mod share;
pub mod small;
pub mod term;
#[cfg(test)]
mod test_ir;

pub use apply::{Applier, ApplyError, Change, Report};
pub use batch::{Batch, Cmd};
pub use kernel::{KernelState, ReadError};
pub use plan::instantiate;
pub use render::{
    ruleset, ruleset_for_json, Chain, PortKey, PortRuleset, PortSet, RenderError, Rule, Unsupported,
};
