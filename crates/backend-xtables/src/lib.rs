//! Renders the chain IR as ebtables / iptables / ip6tables commands (libvirt
//! 9.0's layout and spelling) or restore-format batches, and applies them.
//!
//! Data flow: chain IR (from `nwfilter-compile`) → [`PortRuleset`] (final
//! chain names, rule argument vectors) → [`Command`]s or restore text →
//! a `host_io` runner (the only I/O; the lock, the runners and the tools'
//! names live in `host-io`).

pub mod apply;
pub mod render;
pub mod ruleset;

pub use apply::{Applier, ApplyError, Change, Report};
pub use render::{
    command_lines, commands, port_ruleset, restore_text, ruleset, Format, RenderError,
};
pub use ruleset::{Family, Hook, PortRuleset, RenderedChain};
