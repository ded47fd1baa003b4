//! Restore input for one table: one process start, one kernel commit.
//!
//! `iptables-restore --noflush` (nft and legacy) and `ebtables-restore
//! --noflush` (nft) apply a whole `*table ... COMMIT` block as one
//! transaction: either every line takes effect or none does. Chain
//! declarations must come first (legacy iptables-restore refuses them
//! after a rule), and declaring a chain that exists flushes it, so only new
//! chains are ever declared.

use super::layout::declaration;
use super::rule::Rule;
use crate::ruleset::{kernel_family, table, Family};
#[cfg(doc)]
use host_io::Runner;
use host_io::{Command, Removal, RemovalStep, Tool};

/// Sorts chain names into [`Batch::declaration_order`]'s order.
fn order_declarations<S: AsRef<str> + Ord>(names: &mut [S], whole_table: bool) {
    if whole_table {
        names.sort_by_cached_key(|name| {
            use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
            // Fixed keys: the same batch text for the same chains in a build.
            BuildHasherDefault::<DefaultHasher>::default().hash_one(name.as_ref())
        });
    } else {
        names.sort_unstable_by(|a, b| b.cmp(a));
    }
}

/// An argument that cannot be written into restore input safely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("chain {chain}: argument {arg:?} {why}")]
pub struct BadArgument {
    pub chain: String,
    pub arg: String,
    pub why: &'static str,
}

/// One command of a batch, kept as data rather than as its line: the
/// kept tables take its rule as it is once the batch is committed (see
/// `kept`), instead of parsing 38 000 lines back (issue 22).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Step {
    /// `-A CHAIN RULE`
    Append(String, Rule),
    /// `-I CHAIN POSITION RULE` (1-based)
    Insert(String, usize, Rule),
    /// `-D CHAIN RULE`
    Delete(String, Rule),
    /// `-F CHAIN`
    Flush(String),
    /// `-X CHAIN`
    DeleteChain(String),
    /// `-E FROM TO`
    Rename(String, String),
}

/// The restore input for one family's table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    family: Family,
    /// The new chains' names, as added.
    declarations: Vec<String>,
    steps: Vec<Step>,
    /// Starts with `-Z` (see [`Batch::ask_for_whole_table`]).
    whole_table: bool,
}

/// How a batch's words are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Spelling {
    /// As rendered: libvirt's words (`-p ipv4`).
    Ours,
    /// For the restore tool: EtherTypes as numbers (see
    /// [`tool_ethertype`]).
    Tool,
}

impl Batch {
    pub fn new(family: Family) -> Batch {
        Batch {
            family,
            declarations: Vec::new(),
            steps: Vec::new(),
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
        self.declarations.is_empty() && self.steps.is_empty()
    }

    /// Creates a new (not existing) user chain.
    pub fn create_chain(&mut self, chain: &str) -> Result<(), BadArgument> {
        check_word(chain, chain)?;
        self.declarations.push(chain.to_owned());
        Ok(())
    }

    pub fn append(&mut self, chain: &str, rule: &[String]) -> Result<(), BadArgument> {
        let rule = checked_rule(chain, rule)?;
        self.steps.push(Step::Append(chain.to_owned(), rule));
        Ok(())
    }

    /// Inserts at a 1-based position.
    pub fn insert(
        &mut self,
        chain: &str,
        position: usize,
        rule: &[String],
    ) -> Result<(), BadArgument> {
        let rule = checked_rule(chain, rule)?;
        self.steps
            .push(Step::Insert(chain.to_owned(), position, rule));
        Ok(())
    }

    /// Deletes a rule by its specification (as the kernel listed it).
    pub fn delete(&mut self, chain: &str, rule: &[String]) -> Result<(), BadArgument> {
        let rule = checked_rule(chain, rule)?;
        self.steps.push(Step::Delete(chain.to_owned(), rule));
        Ok(())
    }

    pub fn flush_chain(&mut self, chain: &str) -> Result<(), BadArgument> {
        check_word(chain, chain)?;
        self.steps.push(Step::Flush(chain.to_owned()));
        Ok(())
    }

    pub fn delete_chain(&mut self, chain: &str) -> Result<(), BadArgument> {
        check_word(chain, chain)?;
        self.steps.push(Step::DeleteChain(chain.to_owned()));
        Ok(())
    }

    pub fn rename_chain(&mut self, from: &str, to: &str) -> Result<(), BadArgument> {
        check_word(from, from)?;
        check_word(from, to)?;
        self.steps
            .push(Step::Rename(from.to_owned(), to.to_owned()));
        Ok(())
    }

    /// The new chains in the order the restore input declares them:
    /// descending order of name. iptables-nft and ebtables-nft keep a
    /// table's chains in a list sorted by name and insert each new one
    /// by walking it from the smallest, so declaring 9 000 chains (a
    /// restart at 1000 ports) in ascending order costs a walk of the
    /// whole list each; descending, each insertion stops at the first
    /// entry. (Their order means nothing else: a declaration only creates
    /// the chain.)
    ///
    /// A batch that fills a bare table ([`Batch::ask_for_whole_table`])
    /// fetches the whole table first and inserts its declarations in no
    /// walk of its own worth ordering for; there the order is that of a
    /// hash of the name instead, for whoever lists the table later: the
    /// same tools insert the chains the kernel lists, in the kernel's
    /// order (their order of creation), into that sorted list, and 9 000
    /// chains created in order of name, either way, took `ebtables-save`
    /// 1.4–2.0 s to list, the same chains in an order unrelated to their
    /// names 0.56–0.65 s (1000 clean-traffic ports; the restore itself
    /// 1.33–1.54 s against 1.40 s). A daemon's start, and a reload after
    /// someone else's commit, list the table so.
    fn declaration_order(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.declarations.iter().map(String::as_str).collect();
        order_declarations(&mut names, self.whole_table);
        names
    }

    /// The batch taken apart for the kept tables: the new chains in
    /// declaration order, then the commands in order, as the restore
    /// tool applies them.
    pub(super) fn into_steps(self) -> (Vec<String>, Vec<Step>) {
        let mut declarations = self.declarations;
        order_declarations(&mut declarations, self.whole_table);
        (declarations, self.steps)
    }

    /// The restore input text, as rendered (`nwfilter render --format
    /// restore`); the restore tool is given [`Batch::command`]'s.
    pub fn text(&self) -> String {
        self.write(Spelling::Ours)
    }

    fn write(&self, spelling: Spelling) -> String {
        let mut text = String::with_capacity(self.text_len());
        text.push_str(&format!("*{}\n", table(self.family)));
        if self.whole_table {
            text.push_str("-Z\n");
        }
        for name in self.declaration_order() {
            text.push_str(&declaration(self.family, name));
            text.push('\n');
        }
        let spelling = match self.family {
            Family::Bridge => spelling,
            // `-p` is an IP protocol there, not an EtherType.
            Family::Ipv4 | Family::Ipv6 => Spelling::Ours,
        };
        for step in &self.steps {
            write_step(&mut text, step, spelling);
            text.push('\n');
        }
        text.push_str("COMMIT\n");
        text
    }

    /// About the length of the text, to write it without growing.
    fn text_len(&self) -> usize {
        let declared: usize = self.declarations.iter().map(|d| d.len() + 16).sum();
        let steps: usize = (self.steps.iter())
            .map(|step| match step {
                Step::Append(chain, rule)
                | Step::Insert(chain, _, rule)
                | Step::Delete(chain, rule) => chain.len() + rule.packed_len() + 16,
                Step::Flush(chain) | Step::DeleteChain(chain) => chain.len() + 4,
                Step::Rename(from, to) => from.len() + to.len() + 5,
            })
            .sum();
        declared + steps + 32
    }

    /// The batch as a removal by rule handle, when it only deletes
    /// (`-D` of rules jumping to chains it deletes, `-F`, `-X`): a runner
    /// may commit it without the tool (see [`Runner::remove_by_handle`]).
    pub fn removal(&self) -> Option<Removal> {
        if !self.declarations.is_empty() || self.whole_table {
            return None;
        }
        let steps = (self.steps.iter())
            .map(|step| match step {
                Step::Delete(chain, rule) => Some(RemovalStep::Unhook {
                    chain: chain.clone(),
                    target: rule.target()?.to_owned(),
                }),
                Step::Flush(chain) => Some(RemovalStep::Flush(chain.clone())),
                Step::DeleteChain(chain) => Some(RemovalStep::DeleteChain(chain.clone())),
                Step::Append(..) | Step::Insert(..) | Step::Rename(..) => None,
            })
            .collect::<Option<Vec<RemovalStep>>>()?;
        Removal::new(kernel_family(self.family), table(self.family), steps)
    }

    /// The command that commits this batch.
    pub fn command(&self) -> Command {
        let (tool, args): (Tool, &[&str]) = match self.family {
            Family::Bridge => (Tool::EbtablesRestore, &["--noflush"]),
            // -w: wait for the xtables lock instead of failing (legacy).
            Family::Ipv4 => (Tool::IptablesRestore, &["-w", "--noflush"]),
            Family::Ipv6 => (Tool::Ip6tablesRestore, &["-w", "--noflush"]),
        };
        // One table per batch: one commit (an nft-based tool announces it).
        Command::new(tool, args.iter().copied())
            .with_stdin(self.write(Spelling::Tool))
            .one_transaction()
    }
}

fn write_step(text: &mut String, step: &Step, spelling: Spelling) {
    let (verb, chain) = match step {
        Step::Append(chain, _) => ("-A", chain),
        Step::Insert(chain, _, _) => ("-I", chain),
        Step::Delete(chain, _) => ("-D", chain),
        Step::Flush(chain) => ("-F", chain),
        Step::DeleteChain(chain) => ("-X", chain),
        Step::Rename(from, _) => ("-E", from),
    };
    text.push_str(verb);
    text.push(' ');
    text.push_str(chain);
    match step {
        Step::Append(_, rule) | Step::Delete(_, rule) => write_rule(text, rule, spelling),
        Step::Insert(_, position, rule) => {
            text.push_str(&format!(" {position}"));
            write_rule(text, rule, spelling);
        }
        Step::Rename(_, to) => {
            text.push(' ');
            text.push_str(to);
        }
        Step::Flush(_) | Step::DeleteChain(_) => {}
    }
}

fn write_rule(text: &mut String, rule: &Rule, spelling: Spelling) {
    let mut after_p = false;
    for word in rule.words() {
        text.push(' ');
        match tool_ethertype(word).filter(|_| after_p && spelling == Spelling::Tool) {
            Some(number) => text.push_str(number),
            None => push_quoted(text, word),
        }
        after_p = word == "-p";
    }
}

/// The number of an EtherType the renderer spells by name (libvirt's
/// `-p ipv4`), as the restore tool is given it.
///
/// Why: ebtables-nft (1.8.9) resolves a name with `getethertypebyname`,
/// which opens and scans /etc/ethertypes each time: two per clean-traffic
/// port, 2 023 file opens in a restart at 1000 ports against 23 with
/// numbers (about 4 ms of a 0.45 s restore); and on a host without that
/// file (no netbase) the name is refused. The kernel gets the same rule
/// either way, listed `-p IPv4` by `ebtables-save` (tested in a
/// namespace); the rendered text and the kept tables keep libvirt's word.
fn tool_ethertype(word: &str) -> Option<&'static str> {
    match word {
        "ipv4" => Some("0x0800"),
        "ipv6" => Some("0x86dd"),
        _ => None,
    }
}

/// The rule of `args`, each of which can be written as one restore-input
/// word.
fn checked_rule(chain: &str, args: &[String]) -> Result<Rule, BadArgument> {
    check_word(chain, chain)?;
    for arg in args {
        check_arg(chain, arg)?;
    }
    // A NUL is a control character, refused above.
    Ok(Rule::new(args).expect("no argument holds a NUL"))
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

/// Line breaks and other control characters cannot be written into
/// restore input at all.
fn check_arg(chain: &str, arg: &str) -> Result<(), BadArgument> {
    if arg.chars().any(char::is_control) {
        return Err(BadArgument {
            chain: chain.to_string(),
            arg: arg.to_string(),
            why: "contains a line break or control character",
        });
    }
    Ok(())
}

/// Writes `arg` as one restore-input word: blanks, quotes and
/// backslashes go inside double quotes (the restore tools' own quoting).
fn push_quoted(text: &mut String, arg: &str) {
    let plain = !arg.is_empty()
        && !arg
            .chars()
            .any(|c| c.is_whitespace() || "\"\\'#".contains(c));
    if plain {
        text.push_str(arg);
        return;
    }
    text.push('"');
    for c in arg.chars() {
        if c == '\\' || c == '"' {
            text.push('\\');
        }
        text.push(c);
    }
    text.push('"');
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
    fn a_batch_filling_a_bare_table_declares_its_chains_in_no_order_of_name() {
        let names: Vec<String> = (0..100)
            .flat_map(|n| [format!("libvirt-I-vnet{n}"), format!("I-vnet{n}-ipv4")])
            .collect();
        let mut batch = Batch::new(Family::Bridge);
        batch.ask_for_whole_table();
        for name in &names {
            batch.create_chain(name).unwrap();
        }
        let declared: Vec<&str> = batch.declaration_order();
        let mut sorted = declared.clone();
        sorted.sort_unstable();
        let mut expected = names.iter().map(String::as_str).collect::<Vec<_>>();
        expected.sort_unstable();
        assert_eq!(sorted, expected, "every chain, once");
        // A later listing inserts them into a sorted list in this order:
        // far from sorted either way (see `declaration_order`).
        let ascending = declared.windows(2).filter(|w| w[0] < w[1]).count();
        assert!(
            (50..150).contains(&ascending),
            "{ascending} of 199 neighbours ascending: {declared:?}"
        );
        let again = declared.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(batch.text(), batch.text(), "the same text each time");
        assert_eq!(batch.clone().into_steps().0, again, "the kept tables agree");
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
    fn the_restore_tool_is_given_ethertypes_as_numbers_the_text_keeps_names() {
        let mut bridge = Batch::new(Family::Bridge);
        let rule = words(&["-p", "ipv4", "--comment", "ipv4", "-j", "ipv4"]);
        bridge.append("I-vnet0-ipv4", &rule).unwrap();
        let v6 = words(&["-p", "ipv6", "-j", "RETURN"]);
        bridge.insert("libvirt-I-vnet0", 2, &v6).unwrap();
        bridge.delete("libvirt-I-vnet0", &v6).unwrap();
        assert_eq!(
            bridge.command().stdin.unwrap(),
            "*nat\n-A I-vnet0-ipv4 -p 0x0800 --comment ipv4 -j ipv4\n\
             -I libvirt-I-vnet0 2 -p 0x86dd -j RETURN\n-D libvirt-I-vnet0 -p 0x86dd -j RETURN\nCOMMIT\n"
        );
        assert_eq!(
            bridge.text(),
            "*nat\n-A I-vnet0-ipv4 -p ipv4 --comment ipv4 -j ipv4\n\
             -I libvirt-I-vnet0 2 -p ipv6 -j RETURN\n-D libvirt-I-vnet0 -p ipv6 -j RETURN\nCOMMIT\n"
        );
        // iptables' `-p` names an IP protocol: left as it is.
        let mut ip = Batch::new(Family::Ipv4);
        ip.append("FI-vnet0", &words(&["-p", "ipv4", "-j", "DROP"]))
            .unwrap();
        assert_eq!(ip.command().stdin.unwrap(), ip.text());
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
