//! Applying and removing through the configured backend, and moving ports
//! from one backend to another.
//!
//! A port whose record names another backend (the setting changed) is
//! switched make-before-break: the new backend's rules go in first, then
//! the old backend's rules come out, then the record says so. The port is
//! filtered at every instant. The record is written before each step that
//! could leave rules behind, so that a crash or a failure leaves a record
//! naming every backend that may hold rules of the port (see `records`).

use nwfilter_model::IfName;

use host_io::Runner;

use std::borrow::Cow;

use super::last_applied::{self, LastApplied};
use super::packed::Kept;
use super::records::Record;
use super::{Engine, EngineError, State};
use crate::backend::{self, Backend, Change, Rendered, Report};

impl<R: Runner> Engine<R> {
    /// Applies `rulesets` (rendered for the configured backend) in one
    /// batch, records them, and finishes moving ports whose rules another
    /// backend applied. With `skip_current`, ports whose recorded ruleset
    /// is already in the kernel are left alone. Taken by value: they are
    /// kept once applied (a copy of 1000 ports' rules took milliseconds
    /// of a restart while its ports were unfiltered).
    pub(super) fn apply_all(
        &self,
        state: &mut State,
        rulesets: Vec<Rendered>,
        skip_current: bool,
    ) -> Result<Report, EngineError> {
        if rulesets.is_empty() {
            return Ok(Report::default());
        }
        let backend = state.backend;
        let dir = self.bindings.dir();
        let mut moving: Vec<(IfName, Record)> = Vec::new();
        for rs in &rulesets {
            let record = state.records.get(dir, rs.port())?;
            if record != Record::only(backend) {
                moving.push((rs.port().clone(), record));
            }
        }
        // Intent first: from here on `backend` may hold rules of the port.
        for (port, record) in &moving {
            let intent = record.clone().with_leftover(backend);
            state.records.set(dir, port, intent)?;
        }
        let applied = self.apply_batch(state, rulesets, skip_current);
        let report = match applied {
            Ok(report) => report,
            Err(e) => {
                // Refused: nothing changed, so the old records are true.
                for (port, record) in moving {
                    let _ = state.records.set(dir, &port, record);
                }
                return Err(e);
            }
        };
        for (port, record) in &moving {
            let now = record
                .all()
                .into_iter()
                .fold(Record::only(backend), Record::with_leftover);
            state.records.set(dir, port, now)?;
        }
        let ports: Vec<IfName> = moving.into_iter().map(|(port, _)| port).collect();
        self.remove_leftovers(state, &ports)?;
        Ok(report)
    }

    fn apply_batch(
        &self,
        state: &mut State,
        rulesets: Vec<Rendered>,
        skip_current: bool,
    ) -> Result<Report, EngineError> {
        let backend = state.backend;
        // Shared before they are applied, not only once kept: the
        // applier's kernel state then names the template's sets and maps
        // with the very `Arc`s the kept rulesets hold (one copy for all
        // ports, issue 22 item 5).
        let rulesets: Vec<Rendered> = rulesets
            .into_iter()
            .map(|rs| state.templates.share(rs))
            .collect();
        let dir = self.bindings.dir();
        // xtables only: nftables rules have no record to read or hash.
        let last: Vec<LastApplied> = match backend {
            Backend::Xtables => crate::on_cores::map(&rulesets, |rs| LastApplied::of(dir, rs)),
            Backend::Nftables => rulesets.iter().map(|_| LastApplied::none()).collect(),
        };
        let recorded: Vec<Option<Cow<'_, Rendered>>> = rulesets
            .iter()
            .zip(&last)
            .map(|(rs, last)| {
                if !skip_current {
                    return None;
                }
                match state.applied.get(rs.port()) {
                    Some(kept) => Some(kept.as_rendered(rs)),
                    // Not applied by this process (a daemon's start): by
                    // an earlier one, if its record says these rules.
                    None => last.unchanged().then_some(Cow::Borrowed(rs)),
                }
            })
            .collect();
        for (rs, last) in rulesets.iter().zip(&last) {
            if last.stale() {
                last_applied::forget(dir, rs.port())?;
            }
        }
        let changes: Vec<Change<'_>> = rulesets
            .iter()
            .zip(&recorded)
            .map(|(rs, recorded)| Change {
                ruleset: rs,
                recorded: recorded.as_deref(),
            })
            .collect();
        let _tables = self.tables_lock()?;
        let _span = tracing::debug_span!("kernel", %backend, ports = rulesets.len()).entered();
        // What keeping them packs is worked out on another core while the
        // kernel applies them (a restart: the ports wait for it).
        let (applied, packings) = crate::on_cores::beside(
            rulesets.len(),
            || backend::apply(backend, &self.runner, &mut state.kept, &changes),
            || rulesets.iter().map(Kept::packing).collect::<Vec<_>>(),
        );
        drop(changes);
        drop(recorded);
        let report = match applied {
            Ok(report) => report,
            Err(source) => {
                let ports = rulesets.iter().map(|rs| rs.port().clone()).collect();
                // What only these rulesets held is not kept.
                drop(rulesets);
                state.templates.prune();
                return Err(EngineError::Apply {
                    ports,
                    backend,
                    source,
                });
            }
        };
        for (rs, last) in rulesets.iter().zip(&last) {
            last.record(dir, rs.port());
        }
        for (rs, packing) in rulesets.into_iter().zip(packings) {
            let port = rs.port().clone();
            state.applied.insert(port, Kept::keep_packed(rs, packing));
        }
        // What the rulesets replaced may have been the last holder.
        state.templates.prune();
        Ok(report)
    }

    /// Removes the rules that other backends than the configured one still
    /// hold for `ports` (one batch per backend), and updates the records.
    fn remove_leftovers(&self, state: &mut State, ports: &[IfName]) -> Result<(), EngineError> {
        let dir = self.bindings.dir();
        let now = state.backend;
        let mut failure = None;
        for old in Backend::ALL.into_iter().filter(|&b| b != now) {
            let mut holding = Vec::new();
            for port in ports {
                if state.records.get(dir, port)?.leftover.contains(&old) {
                    holding.push(port.clone());
                }
            }
            if holding.is_empty() {
                continue;
            }
            if old == Backend::Xtables {
                for port in &holding {
                    last_applied::forget(dir, port)?;
                }
            }
            let removed = {
                let _tables = self.tables_lock()?;
                backend::remove(old, &self.runner, &mut state.kept, &holding)
            };
            match removed {
                Ok(_) => {
                    for port in &holding {
                        let mut record = state.records.get(dir, port)?;
                        record.leftover.retain(|&b| b != old);
                        state.records.set(dir, port, record)?;
                    }
                }
                Err(source) => {
                    failure.get_or_insert(EngineError::RemoveOld {
                        ports: holding,
                        old,
                        now,
                        source,
                    });
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }

    /// Removes every rule of `port`, from each backend its record names
    /// (the stale ones first: if one fails, the port is still filtered),
    /// and keeps the record in step with what remains.
    pub(super) fn remove_port(&self, state: &mut State, port: &IfName) -> Result<(), EngineError> {
        let dir = self.bindings.dir();
        let record = state.records.get(dir, port)?;
        // Whichever backend holds them, the port's rules go.
        last_applied::forget(dir, port)?;
        let mut remaining = record.all();
        for b in record.all().into_iter().rev() {
            let removed = {
                let _tables = self.tables_lock()?;
                backend::remove(b, &self.runner, &mut state.kept, std::slice::from_ref(port))
            };
            removed.map_err(|source| EngineError::Apply {
                ports: vec![port.clone()],
                backend: b,
                source,
            })?;
            remaining.retain(|&r| r != b);
            if let Some((&first, rest)) = remaining.split_first() {
                let left = rest
                    .iter()
                    .copied()
                    .fold(Record::only(first), Record::with_leftover);
                state.records.set(dir, port, left)?;
            }
        }
        state.applied.remove(port);
        state.templates.prune();
        state.foreign.remove(port);
        Ok(())
    }
}
