//! What a recording runner's calls say about the kernel work an engine
//! did, for the xtables tests that count table reads and commits.
// Each test binary uses the part it needs.
#![allow(dead_code)]

use host_io::{Command, Tool};

/// The kernel commits among `calls` (the applier builds and switches
/// chains through the `*-restore` tools).
pub fn restores(calls: &[Command]) -> usize {
    calls
        .iter()
        .filter(|c| {
            matches!(
                c.tool,
                Tool::EbtablesRestore | Tool::IptablesRestore | Tool::Ip6tablesRestore
            )
        })
        .count()
}

/// The table reads among `calls` (a tool asked for its version, `-V`,
/// reads nothing).
pub fn saves(calls: &[Command]) -> usize {
    calls
        .iter()
        .filter(|c| {
            matches!(
                c.tool,
                Tool::EbtablesSave | Tool::IptablesSave | Tool::Ip6tablesSave
            ) && c.args != ["-V"]
        })
        .count()
}
