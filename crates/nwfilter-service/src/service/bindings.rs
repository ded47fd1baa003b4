//! The binding verbs: binding-create (with IP learning when the daemon
//! runs it), binding-delete, binding-list, binding-dumpxml.

use std::error::Error;

use host_io::Runner;
use nwfilter_driver::engine::error_chain;
use nwfilter_driver::{Created, Deleted, EngineError};
use nwfilter_model::{format_binding, Binding, IfName};

use super::EngineService;
use crate::protocol::{BindingEntry, OwnerEntry, Reply};

impl<R: Runner + Send + Sync + 'static> EngineService<R> {
    /// Creates a binding from its document. A port whose filters await
    /// `IP` is recorded and learning starts on it, when this service
    /// learns (the daemon); without learning it is refused. On a port a
    /// network filters, the explicit binding replaces the network's.
    pub fn binding_create(&self, xml: &str) -> Result<Created, Box<dyn Error>> {
        let binding = nwfilter_model::parse_binding(xml).map_err(EngineError::InvalidBinding)?;
        let Some(links) = self.netports_guard() else {
            return self.binding_create_parsed(binding);
        };
        let port = binding.portdev.clone();
        if self.owned_by_network(port.as_str()) {
            // Make before break: the port's new rules replace the
            // network's in one apply, so it is never without a filter.
            match self.engine.rebind(std::slice::from_ref(&binding)) {
                Ok(()) => return self.learn_after_replacing(binding),
                // Its address is to be learned anew: the network's binding
                // goes and the port goes through the learner's rules, as
                // a new binding does (below).
                Err(EngineError::NeedsIp { .. }) => self.yield_to_explicit(&links, port.as_str()),
                // Nothing changed: the network's binding stays in force.
                Err(e) => return Err(e.into()),
            }
        }
        let created = self.binding_create_parsed(binding);
        if created.is_err() {
            self.return_to_network(&links, port.as_str());
        }
        created
    }

    /// After an explicit binding replaced a network's on its port: the
    /// network binding's learners go; addresses learned there stay (the
    /// same guest is behind the port) and IPv6 learning goes on if the new
    /// binding learns. Should that fail, the binding is removed again.
    fn learn_after_replacing(&self, binding: Binding) -> Result<Created, Box<dyn Error>> {
        let Some(learning) = &self.learning else {
            return Ok(Created::Applied(binding));
        };
        learning.stop(&binding.portdev);
        if let Err(why) = learning.start6(&binding) {
            return Err(self.undo_unlearnable(&binding.portdev, "IPv6 addresses", &why));
        }
        Ok(Created::Applied(binding))
    }

    /// Removes `port`'s binding again when learning its `what` could not
    /// start, and says why (and whether removing it failed too).
    fn undo_unlearnable(&self, port: &IfName, what: &str, why: &str) -> Box<dyn Error> {
        let undo = self.engine.binding_delete(port.as_str()).err();
        let undo = undo.map(|u| format!("; removing it also failed: {u}"));
        format!(
            "port {port}: cannot learn its {what}: {why}{}",
            undo.unwrap_or_default()
        )
        .into()
    }

    /// As [`EngineService::binding_create`] for a parsed binding, with no
    /// regard for networks (their own bindings are made here).
    pub(crate) fn binding_create_parsed(
        &self,
        binding: Binding,
    ) -> Result<Created, Box<dyn Error>> {
        let Some(learning) = &self.learning else {
            return Ok(Created::Applied(
                self.engine.binding_create_parsed(binding)?,
            ));
        };
        let created = self.engine.binding_create_learning(binding)?;
        if let Created::Recorded(awaiting) = &created {
            if let Err(why) = learning.start(&awaiting.binding, &awaiting.need) {
                let port = &awaiting.binding.portdev;
                return Err(self.undo_unlearnable(port, "IP address", &why));
            }
        }
        // IPv6 learning (issue 16) goes on beside, whether IPv4's
        // address is given, learned, or still awaited.
        if let Err(why) = learning.start6(created.binding()) {
            let port = &created.binding().portdev;
            learning.stop(port);
            return Err(self.undo_unlearnable(port, "IPv6 addresses", &why));
        }
        Ok(created)
    }

    /// Removes a port's binding (also one whose file cannot be read) and
    /// its learner; returns the message for the client. A port on a
    /// network with a filter goes back to the network's binding.
    pub fn binding_delete(&self, portdev: &str) -> Result<String, EngineError> {
        let links = self.netports_guard();
        let deleted = self.binding_delete_unsynced(portdev);
        if let Some(links) = &links {
            self.return_to_network(links, portdev);
        }
        deleted
    }

    /// As [`EngineService::binding_delete`], leaving the port without one.
    pub(crate) fn binding_delete_unsynced(&self, portdev: &str) -> Result<String, EngineError> {
        if let (Some(learning), Ok(port)) = (&self.learning, IfName::new(portdev.to_owned())) {
            learning.stop(&port);
        }
        Ok(match self.engine.binding_delete_any(portdev)? {
            Deleted::Binding(binding) => {
                format!("Network filter binding on {} deleted", binding.portdev)
            }
            Deleted::Unreadable { port, path, reason } => format!(
                "Network filter binding on {port} deleted (its file {} could not be \
                 read: {reason})",
                path.display()
            ),
        })
    }

    /// The binding of port `portdev`.
    pub fn lookup_binding(&self, portdev: &str) -> Result<Binding, nwfilter_driver::Error> {
        self.engine
            .bindings()
            .get(portdev)?
            .ok_or_else(|| nwfilter_driver::Error::NoSuchBinding(portdev.to_owned()))
    }

    /// A binding's XML as instantiated: learned addresses show as `IP`,
    /// learned IPv6 addresses as `IPV6`.
    pub fn binding_dumpxml(&self, portdev: &str) -> Result<String, nwfilter_driver::Error> {
        let binding = self.lookup_binding(portdev)?;
        Ok(format_binding(&self.engine.effective(&binding)))
    }

    /// Every binding, and those whose file cannot be read (their port is
    /// closed): listed with the reason as their state, never left out.
    pub fn binding_list(&self) -> Result<Reply, nwfilter_driver::Error> {
        let engine = &self.engine;
        let listing = engine.bindings().summaries()?;
        let networks = self.network_uuids();
        let mut bindings: Vec<BindingEntry> = (listing.items.into_iter())
            .map(|b| BindingEntry {
                portdev: b.portdev.to_string(),
                filter: b.filter.to_string(),
                state: self.learning.as_ref().and_then(|l| l.state(&b.portdev)),
                learned: (engine.learned_addrs(&b.portdev).unwrap_or_default().iter())
                    .map(ToString::to_string)
                    .chain(
                        (engine.learned6(&b.portdev).unwrap_or_default().iter())
                            .map(|(a, _)| a.to_string()),
                    )
                    .collect(),
                owner: Some(OwnerEntry {
                    uuid: b.owner_uuid.hyphenated().to_string(),
                    network: networks.contains(&b.owner_uuid),
                    name: b.owner_name,
                }),
            })
            .collect();
        for skipped in &listing.skipped {
            if let Some(port) = engine.bindings().port_of(skipped) {
                bindings.push(BindingEntry {
                    portdev: port.to_string(),
                    filter: String::new(),
                    state: Some(unreadable_state(&port, &error_chain(skipped))),
                    learned: Vec::new(),
                    owner: None,
                });
            }
        }
        bindings.sort_by(|a, b| a.portdev.cmp(&b.portdev));
        Ok(Reply::Bindings { bindings })
    }
}

/// What a binding-create tells the client.
pub(super) fn created_message(created: &Created) -> String {
    match created {
        Created::Applied(binding) => {
            format!("Network filter binding on {} created", binding.portdev)
        }
        Created::Recorded(awaiting) => format!(
            "Network filter binding on {} created (learning its IP address)",
            awaiting.binding.portdev
        ),
    }
}

/// The state of a port whose binding file cannot be read.
pub(super) fn unreadable_state(port: &IfName, why: &str) -> String {
    format!(
        "closed (every frame dropped): its binding cannot be read: {why}; \
         binding-delete {port} removes it"
    )
}
