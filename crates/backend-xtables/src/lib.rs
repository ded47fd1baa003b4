//! Renders the chain IR as ebtables / iptables / ip6tables commands (libvirt
//! 9.0's layout and spelling) or restore-format batches, and applies them.

pub mod command;

pub use command::{Command, OnError, Tool};
