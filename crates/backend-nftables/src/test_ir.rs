//! Hand-built chain IR for the unit tests of the modules that reason about
//! a port's program (`ip_in_bridge`, `fast_path`): one spelling of a rule,
//! a chain and a port's program.

use nwfilter_compile::ir::{
    BridgeDir, Chain, ChainRole, Family, Match, Negatable, Program, Rule, Verdict,
};
use nwfilter_model::{ChainName, IfName};

/// A rule with no per-port value.
pub(crate) fn rule(matches: Vec<Match>, verdict: Verdict) -> Rule {
    Rule {
        matches,
        comment: None,
        verdict,
        per_port: Vec::new(),
    }
}

pub(crate) fn chain(family: Family, role: ChainRole, rules: Vec<Rule>) -> Chain {
    Chain {
        family,
        role,
        rules,
    }
}

/// A bridge sub-chain of direction `dir` named `name`.
pub(crate) fn sub(dir: BridgeDir, name: &str, rules: Vec<Rule>) -> Chain {
    let role = ChainRole::BridgeSub {
        dir,
        name: ChainName::new(name).unwrap(),
        priority: -700,
    };
    chain(Family::Bridge, role, rules)
}

/// The bridge root chain of direction `dir`.
pub(crate) fn root(dir: BridgeDir, rules: Vec<Rule>) -> Chain {
    chain(Family::Bridge, ChainRole::BridgeRoot(dir), rules)
}

/// `vnet0`'s program of `chains`.
pub(crate) fn program(chains: Vec<Chain>) -> Program {
    Program {
        port: IfName::new("vnet0").unwrap(),
        chains,
    }
}

pub(crate) fn ether_type(value: u16, negated: bool) -> Match {
    Match::EtherType(Negatable { value, negated })
}

pub(crate) fn jump(name: &str) -> Verdict {
    Verdict::Jump(ChainName::new(name).unwrap())
}
