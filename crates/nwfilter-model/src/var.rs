//! Variable references inside rule attributes (`$IP`, `$IP[@1]`, `$A[2]`).

use serde::{Deserialize, Serialize};

/// The largest iterator id libvirt accepts in `$NAME[@N]`.
pub const MAX_ITERATOR_ID: u32 = 1000;

/// A reference to a variable, as written in an attribute.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct VarRef {
    /// `[A-Za-z0-9_]+`, case-sensitive.
    pub name: String,
    pub access: VarAccess,
}

/// How a reference walks a (possibly list-valued) variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VarAccess {
    /// `$NAME[@N]` (plain `$NAME` is iterator 0): all references sharing
    /// iterator N walk their lists in parallel. Invariant: N <= 1000.
    Iterator(u32),
    /// `$NAME[N]`: the fixed element N (0-based).
    Index(u32),
}

impl VarRef {
    /// A plain `$NAME` reference (iterator 0).
    pub fn plain(name: impl Into<String>) -> VarRef {
        VarRef {
            name: name.into(),
            access: VarAccess::Iterator(0),
        }
    }
}
