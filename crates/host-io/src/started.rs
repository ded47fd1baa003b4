//! A command started to run beside the caller's own work
//! ([`Runner::start`](crate::Runner::start)).

use std::thread::JoinHandle;

use crate::run::{Output, RunError};

/// A started command: finished already, or running with a thread
/// collecting its output.
#[derive(Debug)]
pub struct Started(State);

#[derive(Debug)]
enum State {
    Finished(Result<Output, RunError>),
    Running(JoinHandle<Result<Output, RunError>>),
}

impl Started {
    /// A command that has already run (or could not start).
    pub fn finished(result: Result<Output, RunError>) -> Started {
        Started(State::Finished(result))
    }

    pub(crate) fn running(handle: JoinHandle<Result<Output, RunError>>) -> Started {
        Started(State::Running(handle))
    }

    /// Waits for the command; its result is what
    /// [`Runner::run`](crate::Runner::run) would have given.
    pub fn finish(self) -> Result<Output, RunError> {
        match self.0 {
            State::Finished(result) => result,
            State::Running(handle) => match handle.join() {
                Ok(result) => result,
                // The collecting thread only waits on pipes; should it
                // panic all the same, the panic is the caller's to see.
                Err(panic) => std::panic::resume_unwind(panic),
            },
        }
    }
}
