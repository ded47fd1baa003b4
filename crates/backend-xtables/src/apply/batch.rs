//! Restore input for one table: one process start, one kernel commit.
//!
//! `iptables-restore --noflush` (nft and legacy) and `ebtables-restore
//! --noflush` (nft) apply a whole `*table ... COMMIT` block as one
//! transaction: either every line takes effect or none does. Chain
//! declarations must come first (legacy iptables-restore refuses them
//! after a rule), and declaring a chain that exists flushes it, so only new
//! chains are ever declared.

use super::layout::declaration;
use crate::ruleset::{table, Family};
use host_io::{Command, Tool};

/// An argument that cannot be written into restore input safely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("chain {chain}: argument {arg:?} {why}")]
pub struct BadArgument {
    pub chain: String,
    pub arg: String,
    pub why: &'static str,
}

/// The restore input for one family's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    family: Family,
    declarations: Vec<String>,
    commands: Vec<String>,
    /// Starts with `-Z` (see [`Batch::ask_for_whole_table`]).
    whole_table: bool,
}

impl Batch {
    pub fn new(family: Family) -> Batch {
        Batch {
            family,
            declarations: Vec::new(),
            commands: Vec::new(),
            whole_table: false,
        }
    }

    /// How many chains the batch creates.
    pub fn declared(&self) -> usize {
        self.declarations.len()
    }

    /// Starts the batch with a chain-less `-Z` (zero the table's
    /// counters), for a batch that fills a table holding nothing.
    ///
    /// Why: iptables-nft and ebtables-nft (`nft_cache_level_set`, 1.8.x)
    /// note every command's chain and jump target in a list of the chains
    /// to fetch, sorted by name, walked from the smallest for each command
    /// and dropped once a command names no chain ("fetch them all"). An
    /// ebtables restart at 1000 ports is 29 000 commands over 9 000 names:
    /// 1.27 s of restore, 60 % of it in that walk; led by `-Z`, 0.50 s
    /// (iptables, 3 000 chains: 0.14 s, 0.09 s). In a table holding
    /// nothing the only counters to zero are the built-in chains' (no
    /// other tool's rule is touched, and fetching the whole table costs
    /// nothing): the planner asks for this only then.
    pub fn ask_for_whole_table(&mut self) {
        self.whole_table = true;
    }

    pub fn is_empty(&self) -> bool {
        self.declarations.is_empty() && self.commands.is_empty()
    }

    /// Creates a new (not existing) user chain.
    pub fn create_chain(&mut self, chain: &str) -> Result<(), BadArgument> {
        check_word(chain, chain)?;
        self.declarations.push(declaration(self.family, chain));
        Ok(())
    }

    pub fn append(&mut self, chain: &str, rule: &[String]) -> Result<(), BadArgument> {
        self.rule_command("-A", chain, None, rule)
    }

    /// Inserts at a 1-based position.
    pub fn insert(
        &mut self,
        chain: &str,
        position: usize,
        rule: &[String],
    ) -> Result<(), BadArgument> {
        self.rule_command("-I", chain, Some(position), rule)
    }

    /// Deletes a rule by its specification (as the kernel listed it).
    pub fn delete(&mut self, chain: &str, rule: &[String]) -> Result<(), BadArgument> {
        self.rule_command("-D", chain, None, rule)
    }

    pub fn flush_chain(&mut self, chain: &str) -> Result<(), BadArgument> {
        check_word(chain, chain)?;
        self.commands.push(format!("-F {chain}"));
        Ok(())
    }

    pub fn delete_chain(&mut self, chain: &str) -> Result<(), BadArgument> {
        check_word(chain, chain)?;
        self.commands.push(format!("-X {chain}"));
        Ok(())
    }

    pub fn rename_chain(&mut self, from: &str, to: &str) -> Result<(), BadArgument> {
        check_word(from, from)?;
        check_word(from, to)?;
        self.commands.push(format!("-E {from} {to}"));
        Ok(())
    }

    fn rule_command(
        &mut self,
        verb: &str,
        chain: &str,
        position: Option<usize>,
        rule: &[String],
    ) -> Result<(), BadArgument> {
        check_word(chain, chain)?;
        let mut line = format!("{verb} {chain}");
        if let Some(position) = position {
            line.push_str(&format!(" {position}"));
        }
        for arg in rule {
            line.push(' ');
            line.push_str(&quote(chain, arg)?);
        }
        self.commands.push(line);
        Ok(())
    }

    /// The restore input text. The declarations come in descending order
    /// of name: iptables-nft and ebtables-nft keep a table's chains in a
    /// list sorted by name and insert each new one by walking it from the
    /// smallest, so declaring 9 000 chains (a restart at 1000 ports) in
    /// ascending order costs a walk of the whole list each; descending,
    /// each insertion stops at the first entry. (Their order means nothing
    /// else: a declaration only creates the chain.)
    pub fn text(&self) -> String {
        let mut text = format!("*{}\n", table(self.family));
        if self.whole_table {
            text.push_str("-Z\n");
        }
        // `:NAME POLICY`, `:NAME - [0:0]`: ordered by the name alone.
        fn name(line: &str) -> &str {
            line[1..].split(' ').next().unwrap_or_default()
        }
        let mut declarations: Vec<&String> = self.declarations.iter().collect();
        declarations.sort_unstable_by(|a, b| name(b).cmp(name(a)));
        for line in declarations.into_iter().chain(&self.commands) {
            text.push_str(line);
            text.push('\n');
        }
        text.push_str("COMMIT\n");
        text
    }

    /// The command that commits this batch.
    pub fn command(&self) -> Command {
        let (tool, args): (Tool, &[&str]) = match self.family {
            Family::Bridge => (Tool::EbtablesRestore, &["--noflush"]),
            // -w: wait for the xtables lock instead of failing (legacy).
            Family::Ipv4 => (Tool::IptablesRestore, &["-w", "--noflush"]),
            Family::Ipv6 => (Tool::Ip6tablesRestore, &["-w", "--noflush"]),
        };
        Command::new(tool, args.iter().copied()).with_stdin(self.text())
    }
}

/// A chain name must be one plain word.
fn check_word(chain: &str, word: &str) -> Result<(), BadArgument> {
    let bad = |why| {
        Err(BadArgument {
            chain: chain.to_string(),
            arg: word.to_string(),
            why,
        })
    };
    if word.is_empty() {
        return bad("is empty");
    }
    if word
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '"' || c == '\\')
    {
        return bad("is not a plain chain name");
    }
    Ok(())
}

/// Spells `arg` as one restore-input word: blanks, quotes and backslashes
/// go inside double quotes (the restore tools' own quoting); line breaks
/// and other control characters cannot be written at all.
fn quote(chain: &str, arg: &str) -> Result<String, BadArgument> {
    if arg.chars().any(char::is_control) {
        return Err(BadArgument {
            chain: chain.to_string(),
            arg: arg.to_string(),
            why: "contains a line break or control character",
        });
    }
    let plain = !arg.is_empty()
        && !arg
            .chars()
            .any(|c| c.is_whitespace() || "\"\\'#".contains(c));
    if plain {
        return Ok(arg.to_string());
    }
    Ok(format!(
        "\"{}\"",
        arg.replace('\\', "\\\\").replace('"', "\\\"")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::apply::kernel::split_words;

    fn words(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn declarations_come_before_commands() {
        let mut batch = Batch::new(Family::Ipv4);
        batch.append("FI-vnet0", &words(&["-j", "DROP"])).unwrap();
        batch.create_chain("FI-vnet0").unwrap();
        batch
            .insert("FORWARD", 1, &words(&["-j", "libvirt-in"]))
            .unwrap();
        batch.rename_chain("FJ-vnet0", "FI-vnet0").unwrap();
        assert_eq!(
            batch.text(),
            "*filter\n:FI-vnet0 - [0:0]\n-A FI-vnet0 -j DROP\n-I FORWARD 1 -j libvirt-in\n-E FJ-vnet0 FI-vnet0\nCOMMIT\n"
        );
        let cmd = batch.command();
        assert_eq!(cmd.tool, Tool::IptablesRestore);
        assert_eq!(cmd.args, ["-w", "--noflush"]);
    }

    #[test]
    fn bridge_batches_use_the_nat_table_and_accept_policy() {
        let mut batch = Batch::new(Family::Bridge);
        batch.create_chain("libvirt-I-vnet0").unwrap();
        batch.flush_chain("I-vnet0-ipv4").unwrap();
        batch.delete_chain("I-vnet0-ipv4").unwrap();
        assert_eq!(
            batch.text(),
            "*nat\n:libvirt-I-vnet0 ACCEPT\n-F I-vnet0-ipv4\n-X I-vnet0-ipv4\nCOMMIT\n"
        );
        assert_eq!(batch.command().tool, Tool::EbtablesRestore);
    }

    #[test]
    fn chains_are_declared_in_descending_order_of_name_before_any_command() {
        let mut batch = Batch::new(Family::Bridge);
        for chain in [
            "I-vnet0-mac",
            "I-vnet0-mac-x",
            "libvirt-I-vnet0",
            "I-vnet1-mac",
        ] {
            batch.create_chain(chain).unwrap();
            batch.append(chain, &["-j".into(), "DROP".into()]).unwrap();
        }
        let text = batch.text();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[..5],
            [
                "*nat",
                ":libvirt-I-vnet0 ACCEPT",
                ":I-vnet1-mac ACCEPT",
                ":I-vnet0-mac-x ACCEPT",
                ":I-vnet0-mac ACCEPT",
            ],
            "{text}"
        );
        assert_eq!(
            lines[5], "-A I-vnet0-mac -j DROP",
            "commands keep their order"
        );
    }

    #[test]
    fn awkward_arguments_round_trip_through_restore_quoting() {
        let arg = r#"say "hi" \ there # now"#;
        let mut batch = Batch::new(Family::Ipv6);
        batch
            .append("FI-vnet0", &words(&["--comment", arg]))
            .unwrap();
        let line = batch.text().lines().nth(1).unwrap().to_string();
        assert_eq!(
            split_words(&line).unwrap(),
            ["-A", "FI-vnet0", "--comment", arg]
        );
    }

    #[test]
    fn line_breaks_and_bad_chain_names_are_refused() {
        let mut batch = Batch::new(Family::Ipv4);
        let err = batch
            .append("FI-vnet0", &words(&["--comment", "a\nCOMMIT"]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "chain FI-vnet0: argument \"a\\nCOMMIT\" contains a line break or control character"
        );
        assert!(batch.create_chain("bad name").is_err());
        assert!(batch.flush_chain("").is_err());
        assert!(batch.is_empty());
    }
}
