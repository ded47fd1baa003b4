//! A recording runner that holds one chosen command until released: tests
//! use it to stop an operation inside the engine's lock at a known point
//! and show what other callers can do meanwhile, without timing anything.

use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Mutex;

use crate::{Command, Output, RecordingRunner, RunError, Runner};

/// Which command to hold.
type Holds = Box<dyn Fn(&Command) -> bool + Send + Sync>;

/// Records every command (as [`RecordingRunner`]); the first one `holds`
/// picks waits until [`Gate::release`]. Later matching commands run at once.
pub struct GatedRunner {
    /// Every command run, held ones included.
    pub inner: RecordingRunner,
    holds: Holds,
    gate: Mutex<Option<(Sender<()>, Receiver<()>)>>,
}

/// The test's side of a [`GatedRunner`].
#[derive(Debug)]
pub struct Gate {
    entered: Receiver<()>,
    release: Sender<()>,
}

impl std::fmt::Debug for GatedRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GatedRunner")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl GatedRunner {
    /// A runner holding the first command for which `holds` is true.
    pub fn new(holds: impl Fn(&Command) -> bool + Send + Sync + 'static) -> (GatedRunner, Gate) {
        let (entered_tx, entered) = mpsc::channel();
        let (release, release_rx) = mpsc::channel();
        let runner = GatedRunner {
            inner: RecordingRunner::new(),
            holds: Box::new(holds),
            gate: Mutex::new(Some((entered_tx, release_rx))),
        };
        (runner, Gate { entered, release })
    }
}

impl Runner for GatedRunner {
    fn run(&self, cmd: &Command) -> Result<Output, RunError> {
        if (self.holds)(cmd) {
            let gate = self.gate.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some((entered, release)) = gate {
                let _ = entered.send(());
                let _ = release.recv();
            }
        }
        self.inner.run(cmd)
    }
}

impl Gate {
    /// Waits until the held command has been reached.
    pub fn wait_entered(&self) {
        self.entered
            .recv()
            .expect("the gated runner was dropped before the held command ran");
    }

    /// Lets the held command run.
    pub fn release(&self) {
        let _ = self.release.send(());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Tool;
    use std::sync::Arc;

    #[test]
    fn holds_the_first_matching_command_until_released() {
        let (runner, gate) = GatedRunner::new(|cmd| cmd.args.iter().any(|a| a == "hold"));
        let runner = Arc::new(runner);
        runner.run(&Command::new(Tool::Nft, ["other"])).unwrap();
        let held = {
            let runner = Arc::clone(&runner);
            std::thread::spawn(move || runner.run(&Command::new(Tool::Nft, ["hold"])))
        };
        gate.wait_entered();
        assert_eq!(
            runner.inner.calls().len(),
            1,
            "the held command has not run"
        );
        gate.release();
        held.join().unwrap().unwrap();
        runner.run(&Command::new(Tool::Nft, ["hold"])).unwrap();
        assert_eq!(runner.inner.calls().len(), 3);
    }
}
