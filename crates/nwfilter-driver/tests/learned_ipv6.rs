//! Learned IPv6 addresses in the engine (issue 16, item 3): a dual-stack
//! binding without `IPV6` is applied (not refused) and says it learns;
//! each change of its addresses is one apply with them as `IPV6`; they
//! show as `IPV6` parameters, are kept in the state directory across a
//! new engine (with their lifetimes), and go with the binding.

use std::net::Ipv6Addr;
use std::path::Path;
use std::sync::Arc;

use host_io::RecordingRunner;
use nwfilter_compile::{Ipv6Learning, LearningMode};
use nwfilter_driver::{BindingStore, Engine, FilterStore};
use nwfilter_model::{Binding, IfName};

fn binding(params: &str) -> Binding {
    nwfilter_model::parse_binding(&format!(
        "<filterbinding>
  <owner><name>vm</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner>
  <portdev name='vnet0'/>
  <mac address='52:54:00:7b:35:93'/>
  <filterref filter='clean-traffic-dualstack'>
    <parameter name='IP' value='192.0.2.10'/>{params}
  </filterref>
</filterbinding>"
    ))
    .unwrap()
}

fn engine(dir: &Path) -> Engine<Arc<RecordingRunner>> {
    Engine::new(
        FilterStore::open(dir.join("etc")),
        BindingStore::open(dir.join("run")),
        Arc::new(RecordingRunner::new()),
    )
}

fn port() -> IfName {
    IfName::new("vnet0").unwrap()
}

fn ip(text: &str) -> Ipv6Addr {
    text.parse().unwrap()
}

fn ipv6_params(b: &Binding) -> Vec<String> {
    b.filterref.params.get("IPV6").unwrap_or(&[]).to_vec()
}

/// Every argument and input the runner was given, as one text.
fn applied(engine: &Engine<Arc<RecordingRunner>>) -> String {
    (engine.runner().calls().iter())
        .map(|c| {
            format!(
                "{} {}",
                c.args.join(" "),
                c.stdin.clone().unwrap_or_default()
            )
        })
        .collect()
}

#[test]
fn learned_ipv6_addresses_are_bound_shown_kept_and_forgotten_with_the_binding() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let stored = binding("");
    engine.binding_create_parsed(stored.clone()).unwrap();
    assert_eq!(
        engine.ipv6_learning(&stored).unwrap(),
        Some(Ipv6Learning {
            mode: LearningMode::Any,
            dhcp_servers: vec![]
        })
    );
    assert!(!applied(&engine).contains("2001:db8::5"));

    let held = vec![
        (ip("2001:db8::5"), None),
        (ip("fe80::1"), Some(4_000_000_000)),
    ];
    engine.set_learned6(&port(), held.clone()).unwrap();
    assert!(applied(&engine).contains("2001:db8::5"), "applied with it");
    assert_eq!(
        ipv6_params(&engine.effective(&stored)),
        ["2001:db8::5", "fe80::1"]
    );
    drop(engine);

    // A new engine (a restart) binds them again from the state directory.
    let engine = self::engine(dir.path());
    engine.reapply_all().unwrap();
    assert_eq!(engine.learned6(&port()), Some(held));
    assert!(applied(&engine).contains("2001:db8::5"));

    engine.binding_delete("vnet0").unwrap();
    drop(engine);
    let engine = self::engine(dir.path());
    engine.binding_create_parsed(binding("")).unwrap();
    engine.reapply_all().unwrap();
    assert_eq!(engine.learned6(&port()), None, "gone with the binding");
}

#[test]
fn a_given_ipv6_wins_over_learned_ones_and_needs_no_learning() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let stored = binding("<parameter name='IPV6' value='2001:db8::9'/>");
    engine.binding_create_parsed(stored.clone()).unwrap();
    assert_eq!(engine.ipv6_learning(&stored).unwrap(), None);
    engine
        .set_learned6(&port(), vec![(ip("2001:db8::5"), None)])
        .unwrap();
    assert_eq!(ipv6_params(&engine.effective(&stored)), ["2001:db8::9"]);
}

#[test]
fn without_learning_a_missing_ipv6_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let engine = engine(dir.path());
    let none = binding("<parameter name='CTRL_IP_LEARNING' value='none'/>");
    let err = engine.binding_create_parsed(none).unwrap_err();
    assert!(err.to_string().contains("IPV6"), "{err}");
}
