//! A define parses and validates its document before it takes the
//! engine's lock: a large or invalid document never holds up the
//! operations that keep ports protected (`repair`, other bindings).

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use host_io::GatedRunner;
use nwfilter_driver::{BindingStore, Engine, EngineError, FilterStore};

const BINDING: &str = "<filterbinding>
  <owner><name>vm</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner>
  <portdev name='vnet0'/><mac address='52:54:00:7b:35:93'/>
  <filterref filter='clean-traffic'><parameter name='IP' value='192.0.2.10'/></filterref>
</filterbinding>";

#[test]
fn an_invalid_define_is_refused_while_another_operation_holds_the_lock() {
    let dirs = tempfile::tempdir().unwrap();
    // The first command waits, inside the engine's lock, until released.
    let (runner, gate) = GatedRunner::new(|_| true);
    let runner = Arc::new(runner);
    let engine = Arc::new(Engine::new(
        FilterStore::open(dirs.path().join("etc")),
        BindingStore::open(dirs.path().join("run")),
        runner,
    ));
    let holder = {
        let engine = Arc::clone(&engine);
        std::thread::spawn(move || engine.binding_create(BINDING).map(drop))
    };
    gate.wait_entered(); // the binding holds the engine's lock now
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
    gate.release();
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
