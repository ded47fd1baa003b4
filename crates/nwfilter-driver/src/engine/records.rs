//! Which backend applied each port's rules: a `PORT.backend` file next to
//! the binding, so that a binding is removed (or moved to another
//! backend) by the backend whose rules it has, whatever the current
//! setting says.
//!
//! ```text
//! backend = nftables
//! leftover = xtables
//! ```
//!
//! `backend` is the one whose rules filter the port; each `leftover` is a
//! backend that may still hold old rules of the port (a switch whose
//! removal step has not finished). A port without a file was applied by
//! xtables: that is what every version before the nftables backend did.
//! Kept in memory once read; only changed while the engine's lock is held.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use nwfilter_model::IfName;

use super::error::EngineError;
use super::state_file;
use crate::backend::Backend;

const SUFFIX: &str = ".backend";

/// The backends that hold (or may hold) a port's rules.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct Record {
    /// Whose rules filter the port.
    pub(crate) backend: Backend,
    /// Backends that may still hold old rules of the port; never
    /// contains `backend`.
    pub(crate) leftover: Vec<Backend>,
}

impl Record {
    pub(crate) fn only(backend: Backend) -> Record {
        Record {
            backend,
            leftover: Vec::new(),
        }
    }

    /// A record that could not be read: every backend may hold rules.
    fn damaged() -> Record {
        Backend::ALL
            .into_iter()
            .fold(Record::default(), Record::with_leftover)
    }

    /// Every backend that may hold rules of the port, `backend` first.
    pub(crate) fn all(&self) -> Vec<Backend> {
        let mut all = vec![self.backend];
        all.extend(self.leftover.iter().copied());
        all
    }

    /// With `other` added to the leftovers (unless it is `backend`).
    pub(crate) fn with_leftover(mut self, other: Backend) -> Record {
        if other != self.backend && !self.leftover.contains(&other) {
            self.leftover.push(other);
        }
        self
    }

    fn text(&self) -> String {
        let mut text = format!("backend = {}\n", self.backend);
        for b in &self.leftover {
            text.push_str(&format!("leftover = {b}\n"));
        }
        text
    }

    fn parse(text: &str, path: &Path) -> Result<Record, EngineError> {
        let mut backend = None;
        let mut leftover = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let bad = |reason: String| EngineError::BadRecord {
                path: path.to_owned(),
                line: i + 1,
                reason,
            };
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (key, value) = line
                .split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| bad(format!("expected `key = value`, found '{line}'")))?;
            let value: Backend = value.parse().map_err(|e| bad(format!("{e}")))?;
            match key {
                "backend" if backend.is_none() => backend = Some(value),
                "leftover" => leftover.push(value),
                _ => return Err(bad(format!("unexpected '{key}'"))),
            }
        }
        let backend = backend.ok_or_else(|| EngineError::BadRecord {
            path: path.to_owned(),
            line: 1,
            reason: "no `backend = ...` line".into(),
        })?;
        let record = leftover
            .into_iter()
            .fold(Record::only(backend), Record::with_leftover);
        Ok(record)
    }
}

/// The records of the ports this engine has looked at.
#[derive(Debug, Default)]
pub(crate) struct Records {
    by_port: HashMap<IfName, Record>,
}

impl Records {
    /// The record of `port`, read from `dir` the first time.
    pub(crate) fn get(&mut self, dir: &Path, port: &IfName) -> Result<Record, EngineError> {
        if let Some(record) = self.by_port.get(port) {
            return Ok(record.clone());
        }
        let path = file(dir, port);
        let record = match std::fs::read_to_string(&path) {
            Ok(text) => Record::parse(&text, &path).unwrap_or_else(|e| {
                // A damaged record must not stop every batch it is in: any
                // backend may hold rules of the port, so the next apply
                // removes the others' and writes a good record.
                tracing::warn!(error = %e, "backend record damaged: assuming every backend");
                Record::damaged()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Record::default(),
            Err(source) => return Err(EngineError::Record { path, source }),
        };
        self.by_port.insert(port.clone(), record.clone());
        Ok(record)
    }

    /// Records `record` for `port`, on disk first.
    pub(crate) fn set(
        &mut self,
        dir: &Path,
        port: &IfName,
        record: Record,
    ) -> Result<(), EngineError> {
        if self.by_port.get(port) == Some(&record) {
            return Ok(());
        }
        let path = file(dir, port);
        state_file::write_atomically(dir, &path, "backend", &record.text())
            .map_err(|source| EngineError::Record { path, source })?;
        self.by_port.insert(port.clone(), record);
        Ok(())
    }

    /// Forgets `port` (its binding is gone).
    pub(crate) fn remove(&mut self, dir: &Path, port: &IfName) -> Result<(), EngineError> {
        let path = file(dir, port);
        state_file::remove(&path).map_err(|source| EngineError::Record { path, source })?;
        self.by_port.remove(port);
        Ok(())
    }
}

/// Removes the record of a port name that `IfName` now refuses (see
/// `BindingStore::remove_option_like`); nothing in memory holds it.
pub(crate) fn remove_option_like(dir: &Path, portdev: &str) -> Result<(), EngineError> {
    let path = state_file::of_port(dir, portdev, SUFFIX);
    state_file::remove(&path).map_err(|source| EngineError::Record { path, source })
}

/// The ports that have a record in `dir` (an unreadable directory: none).
pub(crate) fn recorded_ports(dir: &Path) -> Vec<IfName> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let port = name.strip_suffix(SUFFIX)?;
            (!port.starts_with('.')).then(|| IfName::new(port.to_owned()).ok())?
        })
        .collect()
}

pub(crate) fn file(dir: &Path, port: &IfName) -> PathBuf {
    state_file::of_port(dir, port.as_str(), SUFFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_and_a_missing_file_means_xtables() {
        let dir = tempfile::tempdir().unwrap();
        let port = IfName::new("vnet0").unwrap();
        let mut records = Records::default();
        assert_eq!(
            records.get(dir.path(), &port).unwrap(),
            Record::only(Backend::Xtables)
        );
        let switching = Record::only(Backend::Nftables).with_leftover(Backend::Xtables);
        records.set(dir.path(), &port, switching.clone()).unwrap();
        let text = std::fs::read_to_string(file(dir.path(), &port)).unwrap();
        assert_eq!(text, "backend = nftables\nleftover = xtables\n");
        assert_eq!(
            Records::default().get(dir.path(), &port).unwrap(),
            switching
        );
        records.remove(dir.path(), &port).unwrap();
        assert!(!file(dir.path(), &port).exists());
    }

    #[test]
    fn a_damaged_record_names_file_line_and_value() {
        let dir = tempfile::tempdir().unwrap();
        let port = IfName::new("vnet0").unwrap();
        let path = file(dir.path(), &port);
        let err = Record::parse("backend = pf\n", &path)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("vnet0.backend:1") && err.contains("'pf'"),
            "{err}"
        );
    }

    #[test]
    fn an_empty_record_left_by_an_os_crash_means_every_backend_may_hold_rules() {
        // Records are not synced (see `state_file`): an OS crash may
        // leave one empty.
        let dir = tempfile::tempdir().unwrap();
        let port = IfName::new("vnet0").unwrap();
        std::fs::write(file(dir.path(), &port), "").unwrap();
        let record = Records::default().get(dir.path(), &port).unwrap();
        assert_eq!(record.all().len(), Backend::ALL.len(), "{record:?}");
    }

    #[test]
    fn a_damaged_record_means_every_backend_may_hold_rules() {
        let dir = tempfile::tempdir().unwrap();
        let port = IfName::new("vnet0").unwrap();
        std::fs::write(file(dir.path(), &port), "backend = pf\n").unwrap();
        let record = Records::default().get(dir.path(), &port).unwrap();
        assert_eq!(record.all().len(), Backend::ALL.len(), "{record:?}");
    }
}
