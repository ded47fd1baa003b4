//! [`Host`]: the engine, the rule check and IP learning of one host (or
//! one network namespace), behind the calls a VM manager makes.

use std::net::IpAddr;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use nwfilter_driver::{Origin, Reapplied};
use nwfilter_service::protocol::Reply;

use crate::binding::Binding;
use crate::config::{Firewall, HostConfig};
use crate::event::{self, Event, Notice, Notices};
use crate::report::{
    BindingSummary, Created, DefinedFilter, FilterList, FilterSummary, ReloadReport,
};
use crate::rule_check::RuleCheck;
use crate::service::{self, Service};
use crate::Error;

/// The network filters of one host: filters, bindings, the rules in the
/// kernel, the rule check and IP learning.
///
/// Every call is all or nothing and **blocks** the calling thread (see
/// the crate's documentation for how long, and how to call it from async
/// code). A `Host` is `Send + Sync`: share it in an [`Arc`].
///
/// Dropping it stops the rule check, the learners and the events thread;
/// the rules stay in the kernel, so the guests stay protected, and a new
/// `Host` on the same directories takes over with [`Host::reload`].
pub struct Host {
    service: Arc<Service>,
    notices: Notices,
    rule_check: Mutex<Option<RuleCheck>>,
    events: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Host {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Host")
            .field("firewall", &self.firewall())
            .finish_non_exhaustive()
    }
}

impl HostConfig {
    /// Builds the [`Host`]: opens the directories (removing temp files an
    /// interrupted write left), checks that the backend's tools are
    /// installed, and starts the rule check and the events thread. It
    /// applies nothing: call [`Host::reload`] to put the stored bindings'
    /// rules in place (after a reboot or a restart of the VM manager).
    ///
    /// # Errors
    /// [`Error::Setup`] (the settings file, a thread), [`Error::Firewall`]
    /// (a missing tool), [`Error::Storage`] (a directory or the lease
    /// file).
    pub fn open(self) -> Result<Host, Error> {
        let (sender, notices) = mpsc::channel();
        let learner_lines = Mutex::new(sender.clone());
        let log: nwfilter_service::learning::Log = Arc::new(move |line: String| {
            tracing::info!("{line}");
            let sender = learner_lines.lock().unwrap_or_else(|e| e.into_inner());
            let _ = sender.send(Notice::Learner(line));
        });
        let service = Arc::new(service::assemble(&self, log)?);
        let callback = self.on_event.clone().unwrap_or_else(|| Arc::new(|_| {}));
        let events = event::spawn(notices, Arc::downgrade(&service), callback)
            .map_err(|e| Error::setup(format!("starting the events thread: {e}")))?;
        let notices = Notices(sender);
        let rule_check = match self.rule_check {
            Some(every) => Some(
                RuleCheck::spawn(Arc::clone(&service), every, notices.clone())
                    .map_err(|e| Error::setup(format!("starting the rule check: {e}")))?,
            ),
            None => None,
        };
        Ok(Host {
            service,
            notices,
            rule_check: Mutex::new(rule_check),
            events: Some(events),
        })
    }
}

impl Host {
    /// The backend new rules are applied with.
    pub fn firewall(&self) -> Firewall {
        Firewall::of(self.service.engine().backend())
    }

    /// Defines or redefines a filter from its `<filter>` document, and
    /// rebuilds at once every binding whose filter tree reaches it. All or
    /// nothing: a definition that would leave a binding without rules is
    /// refused naming the port, and if the kernel refuses the new rules
    /// the old definition and rules stay.
    ///
    /// # Errors
    /// [`Error::InvalidDocument`], [`Error::Conflict`] (UUID or name of
    /// another filter, a loop), [`Error::Rules`], [`Error::Firewall`],
    /// [`Error::Storage`].
    pub fn define_filter(&self, xml: &str) -> Result<DefinedFilter, Error> {
        let defined = self.service.define(xml)?;
        Ok(DefinedFilter {
            name: defined.filter.name.to_string(),
            uuid: defined.filter.uuid,
            created: defined.created,
            warnings: defined.warnings.iter().map(ToString::to_string).collect(),
        })
    }

    /// Removes a filter by name or UUID; refused while a binding uses it
    /// (directly or through references), and for a built-in filter.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Conflict`], [`Error::Storage`].
    pub fn undefine_filter(&self, name_or_uuid: &str) -> Result<(), Error> {
        self.service.engine().undefine(name_or_uuid)?;
        Ok(())
    }

    /// A filter's document (by name or UUID), normalised as libvirt
    /// prints it.
    ///
    /// # Errors
    /// [`Error::NotFound`]; [`Error::Storage`] for a file that cannot be
    /// used (the message names it).
    pub fn filter_xml(&self, name_or_uuid: &str) -> Result<String, Error> {
        Ok(self.service.dumpxml(name_or_uuid)?)
    }

    /// Every filter (built in or defined), and the files that could not
    /// be used.
    ///
    /// # Errors
    /// [`Error::Storage`]: the config directory cannot be read.
    pub fn filters(&self) -> Result<FilterList, Error> {
        let listing = self.service.engine().filters().list()?;
        Ok(FilterList {
            filters: (listing.items.into_iter())
                .map(|f| FilterSummary {
                    name: f.name.to_string(),
                    uuid: f.uuid,
                    builtin: matches!(f.origin, Origin::Builtin),
                })
                .collect(),
            skipped: (listing.skipped.iter())
                .map(|e| nwfilter_driver::engine::error_chain(e))
                .collect(),
        })
    }

    /// Attaches a filter to a VM's port (VM start, NIC hotplug): applies
    /// its rules, then records the binding. A port whose filters need
    /// `IP`, which the binding does not give, is held under learning
    /// rules until its address is learned (when learning is on).
    ///
    /// # Errors
    /// [`Error::Conflict`] (the port has a binding), [`Error::Rules`],
    /// [`Error::Firewall`], [`Error::Storage`], [`Error::Learning`].
    pub fn create_binding(&self, binding: &Binding) -> Result<Created, Error> {
        self.create_binding_xml(&binding.to_xml())
    }

    /// [`Host::create_binding`] from a `<filterbinding>` document, as
    /// libvirt writes it.
    ///
    /// # Errors
    /// As [`Host::create_binding`], and [`Error::InvalidDocument`].
    pub fn create_binding_xml(&self, xml: &str) -> Result<Created, Error> {
        let created = (self.service.binding_create(xml)).map_err(Error::from_service)?;
        Ok(match created {
            nwfilter_driver::Created::Applied(_) => Created::Filtering,
            nwfilter_driver::Created::Recorded(_) => Created::LearningAddress,
        })
    }

    /// Removes a port's rules and its binding (VM stop, NIC unplug), and
    /// ends learning on it. Also removes a binding whose file cannot be
    /// read (its port was closed).
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Firewall`], [`Error::Storage`].
    pub fn delete_binding(&self, port: &str) -> Result<(), Error> {
        self.service.binding_delete(port)?;
        Ok(())
    }

    /// The binding of `port`, as stored.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Storage`].
    pub fn binding(&self, port: &str) -> Result<Binding, Error> {
        let inner = self.service.lookup_binding(port)?;
        Ok(Binding { inner })
    }

    /// The binding of `port` as instantiated: learned addresses show as
    /// its `IP` parameters.
    ///
    /// # Errors
    /// [`Error::NotFound`], [`Error::Storage`].
    pub fn binding_xml(&self, port: &str) -> Result<String, Error> {
        Ok(self.service.binding_dumpxml(port)?)
    }

    /// Every binding with its state and learned addresses, by port; a
    /// binding whose file cannot be read is listed too (closed).
    ///
    /// # Errors
    /// [`Error::Storage`]: the state directory cannot be read.
    pub fn bindings(&self) -> Result<Vec<BindingSummary>, Error> {
        let Reply::Bindings { bindings } = self.service.binding_list()? else {
            unreachable!("binding_list answers with Reply::Bindings");
        };
        Ok(bindings
            .into_iter()
            .map(|b| BindingSummary {
                port: b.portdev,
                filter: b.filter,
                state: b.state,
                learned: (b.learned.iter())
                    .filter_map(|a| a.parse::<IpAddr>().ok())
                    .collect(),
            })
            .collect())
    }

    /// Leaves what this host knows of the kernel's xtables tables in the
    /// state directory for the next [`Host::reload`] of a new process,
    /// which then reads no table if nothing at all committed to the
    /// firewall in between (a restart of 1000 ports: about 0.25 s instead
    /// of 0.8 s). Call it once as the VM manager exits (the rules stay in
    /// place); a later change by this host, or anyone, only makes the
    /// next start read as it would have. Never fails: what cannot be
    /// written costs that read.
    pub fn hand_over(&self) {
        self.service.engine().hand_over();
    }

    /// Re-reads the filters (and, with [`Firewall::FromSettings`], the
    /// backend setting) and re-applies every binding (start of the VM
    /// manager, host firewall reload). Ports already exactly in place are
    /// not touched. Every binding that can be applied is; each one that
    /// cannot is in the report and sent as [`Event::Unprotected`].
    ///
    /// # Errors
    /// [`Error::Setup`] (the settings file), [`Error::Firewall`] (the
    /// kernel refused the batch), [`Error::Storage`].
    pub fn reload(&self) -> Result<ReloadReport, Error> {
        self.service
            .reread_backend()
            .map_err(|e| Error::setup(nwfilter_driver::engine::error_chain(&e)))?;
        let (result, learning_failed) = self.service.reapply();
        let reapplied = result?;
        let report = report_of(reapplied, learning_failed);
        for (port, reason) in report.failed.iter().chain(&report.closed) {
            self.notices.send(Event::Unprotected {
                port: port.clone(),
                reason: reason.clone(),
            });
        }
        for line in &report.learning_failed {
            if let Some(port) = event::port_named_in(&self.service, line) {
                self.notices.send(Event::Unprotected {
                    port: port.to_string(),
                    reason: line.clone(),
                });
            }
        }
        Ok(report)
    }

    /// Checks now that the rules are still in the kernel, and puts back
    /// what is missing (as the background rule check does); returns the
    /// ports repaired, also sent as [`Event::RulesRepaired`].
    ///
    /// # Errors
    /// [`Error::Firewall`]: the tables could not be read or written.
    pub fn check_rules(&self) -> Result<Vec<String>, Error> {
        let checked = self.service.engine().check_kernel()?;
        let ports: Vec<String> = checked.repaired.iter().map(ToString::to_string).collect();
        if !ports.is_empty() {
            self.notices.send(Event::RulesRepaired {
                ports: ports.clone(),
            });
        }
        Ok(ports)
    }

    /// Stops the background rule check (as at drop); the rest keeps
    /// working.
    pub fn stop_rule_check(&self) {
        let running = self
            .rule_check
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take();
        if let Some(check) = running {
            check.stop();
        }
    }

    #[cfg(feature = "frontend")]
    pub(crate) fn service(&self) -> &Arc<Service> {
        &self.service
    }
}

/// The report of a re-apply, ports as text; learning failures (each
/// naming its port) as the service words them.
fn report_of(reapplied: Reapplied, learning_failed: Vec<String>) -> ReloadReport {
    let names =
        |ports: Vec<nwfilter_model::IfName>| ports.iter().map(ToString::to_string).collect();
    let with_reason = |ports: Vec<(nwfilter_model::IfName, String)>| {
        ports
            .into_iter()
            .map(|(p, why)| (p.to_string(), why))
            .collect()
    };
    ReloadReport {
        applied: names(reapplied.applied),
        unchanged: names(reapplied.unchanged),
        failed: with_reason(reapplied.failed),
        closed: with_reason(reapplied.blocked),
        learning_failed,
        skipped: reapplied.skipped,
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.stop_rule_check();
        // The events thread ends when every sender is gone: the learners'
        // (with the service, once no other holder is left) and ours.
        // It holds the service weakly, so it does not keep the learners
        // alive. Not joined: the last `Host` may be dropped by the
        // embedder's callback, on that very thread.
        let (sender, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.notices, Notices(sender)));
        drop(self.events.take());
    }
}
