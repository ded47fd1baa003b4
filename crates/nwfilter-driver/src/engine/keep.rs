//! The rule check's entry point: [`Engine::repair`], timed from the moment
//! the engine's lock is held, so that the check's back-off counts its own
//! work and not the time it waited behind a long operation.

use std::time::{Duration, Instant};

use host_io::Runner;
use nwfilter_model::IfName;

use super::{Engine, EngineError};

/// What one check found and what it cost.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checked {
    /// Ports whose rules were missing or changed and were put back.
    pub repaired: Vec<IfName>,
    /// Time spent checking (and repairing), lock wait excluded.
    pub work: Duration,
}

impl<R: Runner> Engine<R> {
    /// As [`Engine::repair`], with the time it worked.
    pub fn check_kernel(&self) -> Result<Checked, EngineError> {
        let mut state = self.lock();
        let start = Instant::now();
        let repaired = self.repair_locked(&mut state)?;
        Ok(Checked {
            repaired,
            work: start.elapsed(),
        })
    }
}
