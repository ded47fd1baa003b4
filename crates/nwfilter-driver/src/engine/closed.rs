//! The rules of a port whose binding cannot be read: everything dropped
//! both ways. Nobody can tell what the port's filter should be, and an
//! open port would be the worst guess; the guest is cut off until its
//! binding is deleted (and created again), and `reload` reports it.
//! The same rules as the learner's "blocked" state (nwfilter-learn), built
//! here because the engine does not depend on the learner.

use nwfilter_compile::ir::{BridgeDir, Chain, ChainRole, Family, Program, Rule, Verdict};
use nwfilter_model::IfName;

/// Drop every frame from and to `port`.
pub(crate) fn drop_all(port: &IfName) -> Program {
    let drop_chain = |dir| Chain {
        family: Family::Bridge,
        role: ChainRole::BridgeRoot(dir),
        rules: vec![Rule {
            matches: Vec::new(),
            comment: None,
            verdict: Verdict::Drop,
            per_port: Vec::new(),
        }],
    };
    Program {
        port: port.clone(),
        chains: vec![drop_chain(BridgeDir::FromVm), drop_chain(BridgeDir::ToVm)],
    }
}
