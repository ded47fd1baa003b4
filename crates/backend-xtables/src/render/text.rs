//! A [`PortRuleset`] as process invocations or as `*-restore` input.
//!
//! Both forms hold the port's chains (sub-chains first, so every jump
//! target exists), their rules, and the port's hook rules (into
//! PREROUTING/POSTROUTING for ebtables; `libvirt-in`, `libvirt-out`,
//! `libvirt-host-in` and `libvirt-in-post` for iptables/ip6tables). The
//! shared iptables chains themselves are the applier's business: they are
//! assumed to exist.

use crate::apply::batch::Batch;
use crate::apply::layout::{hook_rule, in_post_rule};
use crate::apply::BadArgument;
use crate::ruleset::{Family, PortRuleset};
use host_io::{shell_quote, Command, Tool};

use super::RenderError;

/// How `render` prints a program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// One ebtables/iptables/ip6tables command per line.
    #[default]
    Commands,
    /// `*-restore --noflush` input, each block after a line naming the tool.
    Restore,
}

const FAMILIES: [Family; 3] = [Family::Bridge, Family::Ipv4, Family::Ipv6];

/// One step of a family's program.
enum Op<'a> {
    /// Create this (new) chain.
    Create(&'a str),
    /// Append a rule to a chain.
    Append(&'a str, &'a [String]),
    /// Append a hook rule to a built-in or shared chain.
    Hook(&'static str, Vec<String>),
}

/// The steps of one family, in order: chains, rules, hooks.
fn operations(rs: &PortRuleset, family: Family) -> Vec<Op<'_>> {
    let chains: Vec<_> = rs.chains.iter().filter(|c| c.family == family).collect();
    let mut ops: Vec<Op<'_>> = chains.iter().map(|c| Op::Create(&c.name)).collect();
    for c in &chains {
        ops.extend(c.rules.iter().map(|r| Op::Append(&c.name, r)));
    }
    for c in &chains {
        if let Some((holder, args)) = hook_rule(c.role, &rs.port, &c.name) {
            ops.push(Op::Hook(holder, args));
        }
    }
    // What the forward-from-VM chain passes is accepted here (libvirt adds
    // this whenever the port has rules of the family).
    if family != Family::Bridge && !chains.is_empty() {
        ops.push(Op::Hook("libvirt-in-post", in_post_rule(&rs.port)));
    }
    ops
}

/// One command per chain creation and rule, libvirt's way.
pub fn commands(rs: &PortRuleset) -> Result<Vec<Command>, RenderError> {
    let mut out = Vec::new();
    for family in FAMILIES {
        let (tool, prefix): (Tool, &[&str]) = match family {
            Family::Bridge => (Tool::Ebtables, &["--concurrent", "-t", "nat"]),
            Family::Ipv4 => (Tool::Iptables, &["-w"]),
            Family::Ipv6 => (Tool::Ip6tables, &["-w"]),
        };
        for op in operations(rs, family) {
            let mut args: Vec<String> = prefix.iter().map(|s| (*s).to_owned()).collect();
            let (verb, chain, rule) = match &op {
                Op::Create(chain) => ("-N", *chain, &[][..]),
                Op::Append(chain, rule) => ("-A", *chain, *rule),
                Op::Hook(chain, rule) => ("-A", *chain, &rule[..]),
            };
            check_args(chain, rule)?;
            args.extend([verb.to_owned(), chain.to_owned()]);
            args.extend(rule.iter().cloned());
            out.push(Command::new(tool, args));
        }
    }
    Ok(out)
}

/// A line break or control character can never be passed on: refuse it
/// even where an argv could carry it, so both formats accept the same
/// rulesets (a hand-made [`PortRuleset`] included).
fn check_args(chain: &str, args: &[String]) -> Result<(), RenderError> {
    if let Some(arg) = args.iter().find(|a| a.chars().any(char::is_control)) {
        return Err(RenderError::Argument(BadArgument {
            chain: chain.to_owned(),
            arg: arg.clone(),
            why: "contains a line break or control character",
        }));
    }
    Ok(())
}

/// Commands as shell lines (POSIX-quoted), one per line.
pub fn command_lines(commands: &[Command]) -> String {
    let mut text = String::new();
    for c in commands {
        text.push_str(c.tool.program());
        for a in &c.args {
            text.push(' ');
            text.push_str(&shell_quote(a));
        }
        text.push('\n');
    }
    text
}

/// `ebtables-restore --noflush` / `iptables-restore -w --noflush` /
/// `ip6tables-restore -w --noflush` blocks, one per family with chains.
pub fn restore_text(rs: &PortRuleset) -> Result<String, RenderError> {
    let mut text = String::new();
    for family in FAMILIES {
        let mut batch = Batch::new(family);
        for op in operations(rs, family) {
            match op {
                Op::Create(chain) => batch.create_chain(chain)?,
                Op::Append(chain, rule) => batch.append(chain, rule)?,
                Op::Hook(chain, rule) => batch.append(chain, &rule)?,
            }
        }
        if batch.is_empty() {
            continue;
        }
        let command = batch.command();
        text.push_str(command.tool.program());
        for a in &command.args {
            text.push(' ');
            text.push_str(a);
        }
        text.push('\n');
        text.push_str(&batch.text());
    }
    Ok(text)
}
