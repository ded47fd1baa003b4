//! Several writers on one directory (threads with their own store objects,
//! as separate processes would have): no update is lost, and racing
//! definitions of one new name agree on its UUID.

use std::sync::Barrier;
use std::thread;

use nwfilter_driver::{BindingStore, Error, FilterStore};

const WRITERS: usize = 4;
const EACH: usize = 25;

#[test]
fn concurrent_defines_lose_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("etc");
    let barrier = Barrier::new(WRITERS);
    thread::scope(|s| {
        for w in 0..WRITERS {
            let (dir, barrier) = (&dir, &barrier);
            s.spawn(move || {
                let store = FilterStore::open(dir);
                barrier.wait();
                for i in 0..EACH {
                    let xml = format!("<filter name='w{w}-{i}' chain='root'/>");
                    store.define(&xml).unwrap();
                }
            });
        }
    });
    let listing = FilterStore::open(&dir).list().unwrap();
    assert!(listing.skipped.is_empty(), "{:?}", listing.skipped);
    // The built-ins: libvirt's 24 and our dual-stack set.
    let builtins = nwfilter_model::builtin_filters().len();
    assert_eq!(listing.items.len(), builtins + WRITERS * EACH);
}

#[test]
fn racing_definitions_of_a_new_name_agree_on_its_uuid() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("etc");
    for round in 0..10 {
        let name = format!("shared-{round}");
        let barrier = Barrier::new(WRITERS);
        let uuids: Vec<_> = thread::scope(|s| {
            let handles: Vec<_> = (0..WRITERS)
                .map(|w| {
                    let (dir, barrier, name) = (&dir, &barrier, &name);
                    s.spawn(move || {
                        let store = FilterStore::open(dir);
                        barrier.wait();
                        let xml = format!(
                            "<filter name='{name}' chain='root'>\
                             <rule action='accept' direction='out' priority='{w}'/></filter>"
                        );
                        store.define(&xml).unwrap().filter.uuid
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let stored = FilterStore::open(&dir).lookup(&name).unwrap().uuid;
        assert!(uuids.iter().all(|u| *u == stored), "{uuids:?} vs {stored}");
    }
}

#[test]
fn racing_binding_creates_for_one_port_let_exactly_one_win() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let barrier = Barrier::new(WRITERS);
    let results: Vec<Result<_, Error>> = thread::scope(|s| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (dir, barrier) = (&dir, &barrier);
                s.spawn(move || {
                    let store = BindingStore::open(dir);
                    let xml = format!(
                        "<filterbinding><owner><name>vm{w}</name>\
                         <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid></owner>\
                         <portdev name='vnet0'/><mac address='52:54:00:00:00:0{w}'/>\
                         <filterref filter='clean-traffic'/></filterbinding>"
                    );
                    barrier.wait();
                    store.create_xml(&xml)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let winners: Vec<_> = results.iter().filter_map(|r| r.as_ref().ok()).collect();
    assert_eq!(winners.len(), 1, "{results:?}");
    for r in &results {
        if let Err(e) = r {
            assert!(matches!(e, Error::BindingExists(p) if p == "vnet0"), "{e}");
        }
    }
    let stored = BindingStore::open(&dir).get("vnet0").unwrap().unwrap();
    assert_eq!(&stored, winners[0]);
}
