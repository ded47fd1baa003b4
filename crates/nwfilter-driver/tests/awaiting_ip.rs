//! A port that must learn its address is an outcome of compiling, not an
//! error: binding-create for a caller that learns records the binding
//! with what to learn (mode, trusted DHCP servers) in the same call, and
//! a re-apply names every port the learner must follow, from the one
//! compile it makes per binding.

use std::net::Ipv4Addr;
use std::sync::Arc;

use host_io::RecordingRunner;
use nwfilter_compile::LearningMode;
use nwfilter_driver::{
    Awaiting, BindingStore, Created, Engine, EngineError, FilterStore, LearningNeed,
};
use nwfilter_model::IfName;

fn binding(port: &str, params: &str) -> String {
    format!(
        "<filterbinding>
  <owner><name>vm-{port}</name><uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner>
  <portdev name='{port}'/>
  <mac address='52:54:00:7b:35:93'/>
  <filterref filter='clean-traffic'>{params}</filterref>
</filterbinding>"
    )
}

const DHCP: &str = "<parameter name='CTRL_IP_LEARNING' value='dhcp'/>\
    <parameter name='DHCPSERVER' value='192.0.2.1'/>";

fn engine() -> (tempfile::TempDir, Engine<Arc<RecordingRunner>>) {
    let dir = tempfile::tempdir().unwrap();
    let engine = Engine::new(
        FilterStore::open(dir.path().join("etc")),
        BindingStore::open(dir.path().join("run")),
        Arc::new(RecordingRunner::new()),
    );
    (dir, engine)
}

fn port(name: &str) -> IfName {
    IfName::new(name).unwrap()
}

fn dhcp_need() -> LearningNeed {
    LearningNeed {
        mode: LearningMode::Dhcp,
        dhcp_servers: vec![Ipv4Addr::new(192, 0, 2, 1)],
    }
}

#[test]
fn a_port_awaiting_its_address_is_recorded_with_what_to_learn() {
    let (_dir, engine) = engine();
    let parsed = nwfilter_model::parse_binding(&binding("vnet0", DHCP)).unwrap();
    let created = engine.binding_create_learning(parsed.clone()).unwrap();
    assert_eq!(
        created,
        Created::Recorded(Awaiting {
            binding: parsed.clone(),
            need: dhcp_need(),
        })
    );
    assert!(engine.runner().calls().is_empty(), "nothing applied");
    assert_eq!(engine.bindings().get("vnet0").unwrap(), Some(parsed));
    // Recorded: a second create is refused like any existing port.
    let again = nwfilter_model::parse_binding(&binding("vnet0", DHCP)).unwrap();
    let err = engine.binding_create_learning(again).unwrap_err();
    assert!(err.to_string().contains("vnet0"), "{err}");
}

#[test]
fn without_a_learner_the_same_port_is_refused_naming_ip() {
    let (_dir, engine) = engine();
    let err = engine.binding_create(&binding("vnet0", DHCP)).unwrap_err();
    let EngineError::NeedsIp {
        mode, dhcp_servers, ..
    } = &err
    else {
        panic!("{err}")
    };
    assert_eq!(
        (*mode, dhcp_servers.clone()),
        (LearningMode::Dhcp, dhcp_need().dhcp_servers)
    );
    assert!(engine.bindings().get("vnet0").unwrap().is_none());
}

#[test]
fn a_reapply_names_every_port_to_learn_on_also_those_with_learned_addresses() {
    let (_dir, engine) = engine();
    for (name, params) in [
        ("vnet0", DHCP),
        ("vnet1", DHCP),
        ("vnet2", "<parameter name='IP' value='192.0.2.30'/>"),
    ] {
        let parsed = nwfilter_model::parse_binding(&binding(name, params)).unwrap();
        engine.binding_create_learning(parsed).unwrap();
    }
    // vnet1 learned a lease: it gets its rules, and the learner must still
    // follow its leases.
    engine
        .set_learned(&port("vnet1"), vec![Ipv4Addr::new(192, 0, 2, 20)])
        .unwrap();
    let reapply = engine.reapply();
    let report = reapply.result.unwrap();
    assert_eq!(report.learning, [port("vnet0")], "only vnet0 has no rules");
    let to_learn: Vec<(String, LearningNeed)> = (reapply.learning.into_iter())
        .map(|a| (a.binding.portdev.to_string(), a.need))
        .collect();
    assert_eq!(
        to_learn,
        [("vnet0".into(), dhcp_need()), ("vnet1".into(), dhcp_need())]
    );
}

fn dualstack(port: &str, params: &str) -> String {
    binding(port, params).replace("'clean-traffic'", "'clean-traffic-dualstack'")
}

#[test]
fn a_reapply_names_the_ports_that_learn_ipv6_from_its_one_compile() {
    let (_dir, engine) = engine();
    let ip = "<parameter name='IP' value='192.0.2.10'/>";
    for xml in [
        // Learns IPv6 by claim (`any`, the default).
        dualstack("vnet0", ip),
        // Gives its IPv6 address: nothing to learn.
        dualstack(
            "vnet1",
            &format!("{ip}<parameter name='IPV6' value='2001:db8::1'/>"),
        ),
        // clean-traffic has no `$IPV6`.
        binding("vnet2", ip),
        // Learns from a trusted DHCPv6 server only.
        dualstack(
            "vnet3",
            &format!(
                "{ip}<parameter name='CTRL_IP_LEARNING' value='dhcp'/>\
                 <parameter name='DHCPSERVER' value='192.0.2.1'/>\
                 <parameter name='DHCPSERVERV6' value='fe80::1'/>"
            ),
        ),
    ] {
        let parsed = nwfilter_model::parse_binding(&xml).unwrap();
        engine.binding_create_learning(parsed).unwrap();
    }
    let reapply = engine.reapply();
    reapply.result.unwrap();
    let learns: Vec<(String, LearningMode, Vec<std::net::Ipv6Addr>)> = (reapply.learning6)
        .into_iter()
        .map(|a| {
            let need = a.need.unwrap();
            (a.binding.portdev.to_string(), need.mode, need.dhcp_servers)
        })
        .collect();
    assert_eq!(
        learns,
        [
            ("vnet0".into(), LearningMode::Any, vec![]),
            (
                "vnet3".into(),
                LearningMode::Dhcp,
                vec!["fe80::1".parse().unwrap()]
            ),
        ]
    );
}
