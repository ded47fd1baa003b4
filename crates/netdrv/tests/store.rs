//! Defining, redefining, listing and undefining networks on disk.

use netdrv::{LifecycleError, Store};
use nwfilter_model::IfName;

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(dir.path().join("config"), dir.path().join("state"));
    (dir, store)
}

fn nothing_exists(_: &IfName) -> bool {
    false
}

const LAB: &str =
    "<network><name>lab</name><forward/><ip address='10.8.0.1' prefix='24'/></network>";

#[test]
fn define_assigns_a_uuid_and_a_free_bridge_and_redefine_keeps_them() {
    let (_dir, store) = store();
    let host_has_virbr0 = |n: &IfName| n.as_str() == "virbr0";
    let net = store.define(LAB, &host_has_virbr0).unwrap();
    let uuid = net.uuid.expect("assigned");
    assert_eq!(net.bridge.name.as_ref().unwrap().as_str(), "virbr1");

    let again = store
        .define(&LAB.replace("10.8.0.1", "10.9.0.1"), &nothing_exists)
        .unwrap();
    assert_eq!(again.uuid, Some(uuid), "redefining keeps the UUID");
    assert_eq!(
        again.bridge.name.as_ref().unwrap().as_str(),
        "virbr1",
        "and the bridge"
    );
    assert_eq!(store.get("lab").unwrap(), again);
}

#[test]
fn a_second_network_gets_the_next_bridge_and_cannot_take_a_used_one() {
    let (_dir, store) = store();
    store.define(LAB, &nothing_exists).unwrap();
    let other = LAB
        .replace("<name>lab", "<name>other")
        .replace("10.8.", "10.7.");
    let net = store.define(&other, &nothing_exists).unwrap();
    assert_eq!(net.bridge.name.as_ref().unwrap().as_str(), "virbr1");

    let clash = LAB
        .replace("<name>lab", "<name>third")
        .replace("<forward/>", "<forward/><bridge name='virbr0'/>");
    match store.define(&clash, &nothing_exists) {
        Err(LifecycleError::BridgeTaken { bridge, by }) => {
            assert_eq!((bridge.as_str(), by.as_str()), ("virbr0", "lab"));
        }
        other => panic!("expected BridgeTaken, got {other:?}"),
    }
}

#[test]
fn uuids_belong_to_one_name() {
    let (_dir, store) = store();
    let uuid = store.define(LAB, &nothing_exists).unwrap().uuid.unwrap();
    let thief = LAB
        .replace(
            "<name>lab</name>",
            &format!("<name>thief</name><uuid>{uuid}</uuid>"),
        )
        .replace("10.8.", "10.6.");
    assert!(matches!(
        store.define(&thief, &nothing_exists),
        Err(LifecycleError::UuidTaken { .. })
    ));
    let changed = LAB.replace(
        "<name>lab</name>",
        "<name>lab</name><uuid>81ff0d90-c91e-6742-64da-4a736edb9a9b</uuid>",
    );
    assert!(matches!(
        store.define(&changed, &nothing_exists),
        Err(LifecycleError::UuidChanged { .. })
    ));
}

#[test]
fn an_invalid_document_changes_nothing() {
    let (_dir, store) = store();
    let before = store.define(LAB, &nothing_exists).unwrap();
    let bad = LAB.replace("prefix='24'", "prefix='40'");
    let err = store.define(&bad, &nothing_exists).unwrap_err();
    assert!(err.to_string().contains("prefix"), "{err}");
    assert_eq!(store.get("lab").unwrap(), before);
}

#[test]
fn list_autostart_and_undefine() {
    let (_dir, store) = store();
    store.define(LAB, &nothing_exists).unwrap();
    store.set_autostart("lab", true).unwrap();
    let rows = store.list().unwrap();
    assert_eq!(rows.len(), 1);
    assert!(rows[0].autostart && !rows[0].active);
    assert_eq!(rows[0].bridge.as_deref(), Some("virbr0"));

    store.set_autostart("lab", false).unwrap();
    assert!(!store.list().unwrap()[0].autostart);

    store.undefine("lab").unwrap();
    assert!(store.list().unwrap().is_empty());
    assert!(matches!(
        store.get("lab"),
        Err(LifecycleError::NoSuchNetwork(_))
    ));
    assert!(matches!(
        store.undefine("lab"),
        Err(LifecycleError::NoSuchNetwork(_))
    ));
}
