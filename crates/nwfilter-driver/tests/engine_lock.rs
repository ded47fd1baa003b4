//! A define parses and validates its document before it takes the
//! engine's lock: a large or invalid document never holds up the
//! operations that keep ports protected (`repair`, other bindings).

use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use host_io::{Command, Output, RecordingRunner, RunError, Runner};
use nwfilter_driver::{BindingStore, Engine, EngineError, FilterStore};

/// Runs like a [`RecordingRunner`], but the first command waits, inside
/// the engine's lock, until the test lets it go.
#[derive(Debug, Default)]
struct Gated {
    inner: RecordingRunner,
    gate: Mutex<Option<(mpsc::Sender<()>, mpsc::Receiver<()>)>>,
}

impl Runner for Gated {
    fn run(&self, cmd: &Command) -> Result<Output, RunError> {
        let gate = self.gate.lock().unwrap().take();
        if let Some((entered, release)) = gate {
            entered.send(()).unwrap();
            let _ = release.recv();
        }
        self.inner.run(cmd)
    }
}

const BINDING: &str = "<filterbinding>
  <owner><name>vm</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner>
  <portdev name='vnet0'/><mac address='52:54:00:7b:35:93'/>
  <filterref filter='clean-traffic'><parameter name='IP' value='192.0.2.10'/></filterref>
</filterbinding>";

#[test]
fn an_invalid_define_is_refused_while_another_operation_holds_the_lock() {
    let dirs = tempfile::tempdir().unwrap();
    let (entered_tx, entered) = mpsc::channel();
    let (release, release_rx) = mpsc::channel();
    let runner = Arc::new(Gated {
        gate: Mutex::new(Some((entered_tx, release_rx))),
        ..Gated::default()
    });
    let engine = Arc::new(Engine::new(
        FilterStore::open(dirs.path().join("etc")),
        BindingStore::open(dirs.path().join("run")),
        runner,
    ));
    let holder = {
        let engine = Arc::clone(&engine);
        std::thread::spawn(move || engine.binding_create(BINDING).map(drop))
    };
    entered.recv().unwrap(); // the binding holds the engine's lock now
    let (done_tx, done) = mpsc::channel();
    let definer = {
        let engine = Arc::clone(&engine);
        std::thread::spawn(move || {
            let xml = "<filter name='x'><rule action='bogus' direction='in'/></filter>";
            done_tx.send(engine.define(xml).map(drop)).unwrap();
        })
    };
    // Not a time limit on the parse: only a guard against waiting forever
    // if the define queued behind the lock (the bug this test is about).
    let refused = done.recv_timeout(Duration::from_secs(120));
    release.send(()).unwrap();
    holder.join().unwrap().unwrap();
    definer.join().unwrap();
    let refused = refused.expect("the define waited for the engine's lock");
    assert!(
        matches!(
            refused,
            Err(EngineError::Store(nwfilter_driver::Error::Invalid { .. }))
        ),
        "{refused:?}"
    );
}
