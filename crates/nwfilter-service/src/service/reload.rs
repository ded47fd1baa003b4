//! `reload` (and the daemon's start and SIGHUP): re-read the settings and
//! the filters, re-apply every binding, and start learning on the ports
//! the re-apply names: no binding is compiled a second time to find them.

use std::error::Error;

use host_io::Runner;
use nwfilter_driver::{Awaiting, Awaiting6, EngineError, Reapplied, Reapply};

use super::bindings::unreadable_state;
use super::EngineService;

impl<R: Runner + Send + Sync + 'static> EngineService<R> {
    /// The `reload` verb: returns its message. A reload that left a
    /// binding without its rules is a failure (a non-zero exit), even
    /// though the other bindings were applied: the message says which.
    pub fn reload(&self) -> Result<String, Box<dyn Error>> {
        self.reread_backend()?;
        let Reapply {
            result,
            learning,
            learning6,
        } = self.engine.reapply();
        let report = result?;
        // Failures to start a learner are the daemon's log's, as at start.
        for why in self
            .start_learning(&learning)
            .into_iter()
            .chain(self.start_learning6(learning6))
        {
            tracing::warn!("reload: {why}");
        }
        let mut message = reload_message(&report);
        // Running networks follow the backend, as the bindings do.
        if let Some(store) = &self.networks {
            match crate::net_ops::reload_firewall(store, self.engine.backend()) {
                Ok(lines) => lines
                    .iter()
                    .for_each(|l| message.push_str(&format!("\n{l}"))),
                Err(e) => message.push_str(&format!("\nnetworks not reloaded: {e}")),
            }
        }
        if !report.complete() {
            return Err(message.into());
        }
        Ok(message)
    }

    /// Re-applies every binding, then starts learning on every port that
    /// awaits its address and has no learner yet (also when applying
    /// failed: the learner's own rules then hold those ports). Returns the
    /// re-apply's result and one line per learner that did not start.
    pub fn reapply(&self) -> (Result<Reapplied, EngineError>, Vec<String>) {
        let Reapply {
            result,
            learning,
            learning6,
        } = self.engine.reapply();
        let mut failures = self.start_learning(&learning);
        failures.extend(self.start_learning6(learning6));
        (result, failures)
    }

    /// IPv6 learning on every binding the re-apply found learning IPv6
    /// addresses (issue 16), as it told how.
    fn start_learning6(&self, ports: Vec<Awaiting6>) -> Vec<String> {
        let Some(learning) = &self.learning else {
            return Vec::new();
        };
        ports
            .into_iter()
            .filter_map(|Awaiting6 { binding, need }| {
                (learning.start6_with(&binding, need).err()).map(|why| {
                    format!(
                        "port {}: cannot learn its IPv6 addresses: {why}",
                        binding.portdev
                    )
                })
            })
            .collect()
    }

    fn start_learning(&self, ports: &[Awaiting]) -> Vec<String> {
        let Some(learning) = &self.learning else {
            return Vec::new();
        };
        ports
            .iter()
            .filter_map(|awaiting| {
                let port = &awaiting.binding.portdev;
                (learning.start(&awaiting.binding, &awaiting.need).err())
                    .map(|why| format!("port {port}: cannot learn its IP address: {why}"))
            })
            .collect()
    }
}

/// What `reload` prints: counts, then one line per binding that is not
/// filtered as it should be and per file skipped.
fn reload_message(report: &Reapplied) -> String {
    let mut message = format!(
        "Reloaded: {} binding(s) applied, {} already in place",
        report.applied.len(),
        report.unchanged.len()
    );
    for (port, why) in &report.failed {
        message.push_str(&format!("\nport {port} not applied: {why}"));
    }
    for (port, why) in &report.blocked {
        message.push_str(&format!("\nport {port} {}", unreadable_state(port, why)));
    }
    for why in &report.skipped {
        message.push_str(&format!("\nskipped {why}"));
    }
    message
}
