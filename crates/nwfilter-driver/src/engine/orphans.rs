//! Rules of ports whose binding was never stored: binding-create writes
//! the port's record, applies its rules, then stores the binding; a
//! process killed between the last two leaves rules (and the record) but
//! no binding. A reapply (daemon start, reload) removes them, guided by
//! the record, which says which backend holds them.

use std::collections::BTreeSet;

use host_io::Runner;
use nwfilter_model::IfName;

use super::{records, Engine, State};

impl<R: Runner> Engine<R> {
    /// Removes the rules and record of every port that has a record but no
    /// binding in `bound`; returns the ports that could not be cleaned,
    /// with the reason (their record stays, so a later reapply retries).
    pub(super) fn remove_orphans(
        &self,
        state: &mut State,
        bound: &BTreeSet<IfName>,
    ) -> Vec<(IfName, String)> {
        let dir = self.bindings.dir();
        let mut failed = Vec::new();
        for port in records::recorded_ports(dir) {
            if bound.contains(&port) {
                continue;
            }
            let removed = self
                .remove_port(state, &port)
                .and_then(|()| state.records.remove(dir, &port));
            if let Err(e) = removed {
                let why = format!(
                    "rules left by a binding-create that did not finish could not be \
                     removed: {}",
                    super::error_chain(&e)
                );
                failed.push((port, why));
            }
        }
        failed
    }
}
