//! Chain IR ([`Program`]) → one port's nft chains ([`PortRuleset`]).
//!
//! Bridge chains keep their IR shape (roots, sub-chains, jumps). The IPv4
//! and IPv6 chains of one role become ONE chain of the `inet` table, each
//! rule guarded by `meta nfproto`: a packet is one or the other, so the
//! merged chain decides exactly as the two separate ones did.
//!
//! What nft cannot express is refused for the whole port (never a rule
//! silently skipped): a half-applied filter would let through what the
//! author meant to stop.

use nftables::expr::MetaKey;
use nftables::stmt::{Accept, Continue, Drop, JumpTarget, Reject, RejectType, Return, Statement};
use nwfilter_compile::ir::{
    self, BridgeDir, ChainRole, Family, IpVersion, L4Proto, Program, Verdict,
};
use nwfilter_model::IfName;
use serde::Serialize;

use crate::matches::{terms, Context};
use crate::names::{self, Role, Table};
use crate::term::{compare, statement, Operand, Term};

/// One port's chains, ready for a batch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortRuleset {
    pub port: IfName,
    /// Invariants: names unique; a chain a rule jumps to comes first;
    /// every chain has at least one rule.
    pub chains: Vec<Chain>,
}

impl PortRuleset {
    /// Whether the port has IPv4/IPv6 chains (and so needs a port tag).
    pub fn needs_tag(&self) -> bool {
        self.chains.iter().any(|c| c.table == Table::Inet)
    }
}

/// One chain of a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Chain {
    pub table: Table,
    pub role: Role,
    pub name: String,
    pub rules: Vec<Rule>,
}

/// One rule: its statements in order, and its comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    pub terms: Vec<Term>,
    /// At most 128 bytes, no `"` or control characters.
    pub comment: Option<String>,
}

/// A rule nft cannot express.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsupported {
    #[error("{0} cannot be expressed in nftables")]
    Feature(&'static str),
    #[error("ipset '{0}': kernel ipsets are not visible to nftables; use the xtables backend")]
    Ipset(String),
    #[error("tcp option kind {0} has no nft name (known kinds: 2, 3, 4, 5, 8)")]
    TcpOption(u8),
    #[error("reject in a bridge chain (the IR lowers it to drop there)")]
    BridgeReject,
    #[error("comment {0:?} {1}")]
    Comment(String, &'static str),
}

/// Why a port's program could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("port {port}, chain {chain}, rule {rule}: {source}")]
    Rule {
        port: String,
        chain: String,
        /// 1-based position in the IR chain.
        rule: usize,
        #[source]
        source: Unsupported,
    },
}

/// Renders one port's program.
pub fn ruleset(program: &Program) -> Result<PortRuleset, RenderError> {
    let port = &program.port;
    let mut chains: Vec<Chain> = Vec::new();
    for chain in &program.chains {
        let (table, role, name) = placement(&chain.role, port);
        let mut rendered = Vec::new();
        for (i, rule) in chain.rules.iter().enumerate() {
            let r = render_rule(rule, chain, port).map_err(|source| RenderError::Rule {
                port: port.to_string(),
                chain: name.clone(),
                rule: i + 1,
                source,
            })?;
            rendered.push(r);
        }
        match chains.iter_mut().find(|c| c.name == name) {
            // The IPv6 half of an inet chain follows its IPv4 half.
            Some(existing) => existing.rules.extend(rendered),
            None => chains.push(Chain {
                table,
                role,
                name,
                rules: rendered,
            }),
        }
    }
    Ok(PortRuleset {
        port: port.clone(),
        chains,
    })
}

/// The table, role and name of an IR chain.
fn placement(role: &ChainRole, port: &IfName) -> (Table, Role, String) {
    let inet = |role: Role| {
        let name = names::chain(&role, port);
        (Table::Inet, role, name)
    };
    match role {
        ChainRole::BridgeRoot(BridgeDir::FromVm) => (
            Table::Bridge,
            Role::FromVmL2,
            names::chain(&Role::FromVmL2, port),
        ),
        ChainRole::BridgeRoot(BridgeDir::ToVm) => (
            Table::Bridge,
            Role::ToVmL2,
            names::chain(&Role::ToVmL2, port),
        ),
        ChainRole::BridgeSub { dir, name, .. } => {
            (Table::Bridge, Role::Sub, names::sub_chain(*dir, name, port))
        }
        ChainRole::ForwardFromVm => inet(Role::FromVm),
        ChainRole::ForwardToVm => inet(Role::ToVm),
        ChainRole::HostFromVm => inet(Role::HostFromVm),
    }
}

fn render_rule(rule: &ir::Rule, chain: &ir::Chain, port: &IfName) -> Result<Rule, Unsupported> {
    let mut ctx = Context::default();
    let mut out = Vec::new();
    match chain.family {
        Family::Bridge => {}
        Family::Ipv4 | Family::Ipv6 => {
            let (version, name) = if chain.family == Family::Ipv4 {
                (IpVersion::V4, "ipv4")
            } else {
                (IpVersion::V6, "ipv6")
            };
            ctx.ip = Some(version);
            out.push(compare(
                Operand::meta(MetaKey::Nfproto, "nfproto"),
                false,
                Operand::symbol(name),
            ));
        }
    }
    for m in &rule.matches {
        out.extend(terms(m, &mut ctx)?);
    }
    out.push(verdict(&rule.verdict, chain, &ctx, port)?);
    Ok(Rule {
        terms: out,
        comment: rule.comment.as_deref().map(checked_comment).transpose()?,
    })
}

fn verdict(
    v: &Verdict,
    chain: &ir::Chain,
    ctx: &Context,
    port: &IfName,
) -> Result<Term, Unsupported> {
    Ok(match v {
        Verdict::Accept => statement("accept", Statement::Accept(Some(Accept {}))),
        // Our inet chains are entered by a jump from the dispatch rule: a
        // return goes on to the next dispatch (to-VM after from-VM), just
        // as libvirt's goto chains return to FORWARD.
        Verdict::AcceptByReturn | Verdict::Return => {
            statement("return", Statement::Return(Some(Return {})))
        }
        Verdict::Drop => statement("drop", Statement::Drop(Some(Drop {}))),
        Verdict::Continue => statement("continue", Statement::Continue(Some(Continue {}))),
        Verdict::Reject => {
            if chain.family == Family::Bridge {
                return Err(Unsupported::BridgeReject);
            }
            // TCP gets a reset (what a closed port sends); everything else
            // the ICMP/ICMPv6 port-unreachable a closed UDP port sends.
            if ctx.l4 == Some(L4Proto::Tcp) {
                statement(
                    "reject with tcp reset",
                    Statement::Reject(Some(Reject::new(Some(RejectType::TCPReset), None))),
                )
            } else {
                statement("reject", Statement::Reject(Some(Reject::new(None, None))))
            }
        }
        Verdict::Jump(name) => {
            let dir = match &chain.role {
                ChainRole::BridgeRoot(dir) | ChainRole::BridgeSub { dir, .. } => *dir,
                _ => BridgeDir::FromVm,
            };
            let target = names::sub_chain(dir, name, port);
            statement(
                format!("jump {target}"),
                Statement::Jump(JumpTarget {
                    target: target.into(),
                }),
            )
        }
    })
}

/// nft stores at most 128 bytes of comment and its text form cannot
/// escape a `"`.
fn checked_comment(text: &str) -> Result<String, Unsupported> {
    if text.len() > 128 {
        return Err(Unsupported::Comment(
            text.to_owned(),
            "is longer than 128 bytes",
        ));
    }
    if text.chars().any(|c| c == '"' || c.is_control()) {
        return Err(Unsupported::Comment(
            text.to_owned(),
            "contains a double quote or a control character",
        ));
    }
    Ok(text.to_owned())
}
