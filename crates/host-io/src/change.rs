//! What a backend is asked to do and what it reports, in the same shape
//! for every backend (and for the driver that chooses between them).

/// One port to bring to `ruleset`, rendered by some backend (`R` is that
/// backend's per-port ruleset).
#[derive(Debug)]
pub struct Change<'a, R> {
    pub ruleset: &'a R,
    /// The ruleset last applied to this port, if the caller recorded it.
    /// A backend may leave the port untouched when it equals `ruleset`
    /// and the kernel still holds it; one that plans against an exact
    /// reading of the kernel may ignore it.
    pub recorded: Option<&'a R>,
}

// Copy whatever `R` is: a change only borrows its rulesets.
impl<R> Clone for Change<'_, R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R> Copy for Change<'_, R> {}

/// What an operation did, per port (`P` names a port).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report<P> {
    /// Ports whose rules were (re)applied or removed.
    pub changed: Vec<P>,
    /// Ports already in the wanted state: nothing was run for them.
    pub unchanged: Vec<P>,
}

// Not derived: a derive would ask `P: Default`, which a port name need not be.
impl<P> Default for Report<P> {
    fn default() -> Self {
        Report {
            changed: Vec::new(),
            unchanged: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_copies_without_copying_its_ruleset() {
        struct NotCopy(String);
        let ruleset = NotCopy("rules".into());
        let change = Change {
            ruleset: &ruleset,
            recorded: None,
        };
        let copy = change;
        assert_eq!(change.ruleset.0, copy.ruleset.0);
        assert!(Report::<NotCopy>::default().changed.is_empty());
    }
}
