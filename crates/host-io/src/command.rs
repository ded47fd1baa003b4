//! Firewall commands as data.
//!
//! A command names its tool, carries its argument vector (never a shell
//! line) or its restore input, and says what an error means. Renderers
//! produce these; a runner (the only place that starts processes) consumes
//! them.

use serde::Serialize;

/// The programs we drive. Each is started by name with an argument vector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Tool {
    Ebtables,
    Iptables,
    Ip6tables,
    EbtablesRestore,
    IptablesRestore,
    Ip6tablesRestore,
    /// `ebtables-save`, `iptables-save`, `ip6tables-save`: read the
    /// kernel's current tables (what is ours, what changed).
    EbtablesSave,
    IptablesSave,
    Ip6tablesSave,
    /// `nft` (nftables backend): JSON batches on stdin, JSON listings.
    Nft,
}

impl Tool {
    /// The program name as found on `PATH`.
    pub fn program(self) -> &'static str {
        match self {
            Tool::Ebtables => "ebtables",
            Tool::Iptables => "iptables",
            Tool::Ip6tables => "ip6tables",
            Tool::EbtablesRestore => "ebtables-restore",
            Tool::IptablesRestore => "iptables-restore",
            Tool::Ip6tablesRestore => "ip6tables-restore",
            Tool::EbtablesSave => "ebtables-save",
            Tool::IptablesSave => "iptables-save",
            Tool::Ip6tablesSave => "ip6tables-save",
            Tool::Nft => "nft",
        }
    }
}

/// What a failure of this command means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// The operation failed: stop and roll back.
    Fail,
    /// Expected to fail sometimes (deleting a chain or rule that may not
    /// exist during clean-up): ignore.
    Ignore,
}

/// One process start.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Command {
    pub tool: Tool,
    /// Arguments after the program name, one element per argv entry.
    pub args: Vec<String>,
    /// Text written to the program's standard input (restore batches).
    pub stdin: Option<String>,
    pub on_error: OnError,
    /// Its whole effect is one nf_tables transaction and its output is
    /// not read when it succeeds (see [`Command::one_transaction`]).
    #[serde(skip_serializing_if = "is_false")]
    pub one_transaction: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl Command {
    /// A command whose failure fails the operation.
    pub fn new<I, S>(tool: Tool, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Command {
            tool,
            args: args.into_iter().map(Into::into).collect(),
            stdin: None,
            on_error: OnError::Fail,
            one_transaction: false,
        }
    }

    /// The same command, with failures ignored (clean-up of what may not exist).
    pub fn ignoring_errors(mut self) -> Command {
        self.on_error = OnError::Ignore;
        self
    }

    /// The same command, marked as one kernel transaction whose output
    /// nobody reads on success (a batch of `nft -f -` or a one-table
    /// `*-restore`): a runner may report its success once the kernel
    /// announces the commit, without waiting for the program to exit
    /// (which, after a removal, waits for the kernel's RCU grace period).
    /// Never for input with two tables (`*-restore` commits each).
    pub fn one_transaction(mut self) -> Command {
        self.one_transaction = true;
        self
    }

    /// The same command, fed `input` on standard input.
    pub fn with_stdin(mut self, input: impl Into<String>) -> Command {
        self.stdin = Some(input.into());
        self
    }
}
