//! Virtual networks on nftables: the rendering of a network's firewall as
//! one table of ours (`render`, over the rule parts of `expr`) and the
//! reading of the kernel's whole ruleset (`listing`).

mod expr;
pub mod listing;
pub mod render;

pub use listing::{ListingError, Ruleset};
pub use render::{
    chain_names, chains, script, start_batch, stop_batch, transaction, Chain, Cmd, Hook,
    CHECKSUM_NOTE, FAMILY, TABLE,
};

/// The command that lists the whole ruleset as JSON.
pub fn listing_command() -> host_io::Command {
    host_io::Command::new(host_io::Tool::Nft, ["-j", "list", "ruleset"])
}
