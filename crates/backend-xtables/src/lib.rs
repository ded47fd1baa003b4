//! Renders the chain IR as ebtables / iptables / ip6tables commands (libvirt
//! 9.0's layout and spelling) or restore-format batches, and applies them.
//!
//! Data flow: chain IR (from `nwfilter-compile`) → [`PortRuleset`] (final
//! chain names, rule argument vectors) → [`Command`]s or restore text →
//! a runner (the only I/O).

pub mod apply;
pub mod command;
pub mod render;
pub mod ruleset;
pub mod run;
pub mod tools;

pub use apply::{Applier, ApplyError, Change, Report};
pub use command::{Command, OnError, Tool};
pub use render::{
    command_lines, commands, port_ruleset, restore_text, ruleset, Format, RenderError,
};
pub use ruleset::{ChainRole, Family, PortRuleset, RenderedChain};
pub use run::{spawned_recently, DryRun, Output, ProcessRunner, RecordingRunner, RunError, Runner};
pub use tools::{Flavour, MissingTool, Toolset};
