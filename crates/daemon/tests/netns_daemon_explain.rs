//! `nwfilterd` answers `explain` for a live port: the binding it applied,
//! under the backend it applied with, agreeing with what the kernel does
//! to the guest's traffic.

use netns_lab as support;

mod daemon_lab;
use daemon_lab::{call, start_daemon, Scratch};

use nwfilter_service::explain::PacketInput;
use nwfilter_service::{Op, Reply};
use support::Lab;

fn explain(scratch: &Scratch, spec: &str) -> serde_json::Value {
    let reply = call(
        scratch,
        Op::Explain {
            portdev: "vnet0".into(),
            direction: nwfilter_explain::Direction::Out,
            input: PacketInput::Packet(spec.into()),
            backend: None,
        },
    );
    let Reply::Explanation { text, explanation } = reply else {
        panic!("{reply:?}")
    };
    assert!(text.starts_with("port vnet0, direction out"), "{text}");
    explanation
}

#[test]
fn the_daemon_explains_a_live_port_as_the_kernel_filters_it() {
    if !support::can_run("the_daemon_explains_a_live_port_as_the_kernel_filters_it") {
        return;
    }
    let scratch = Scratch::new("explain");
    let lab = Lab::ready(2);
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let _daemon = start_daemon(&lab.host, &scratch, &["--backend", "nftables"]);
    call(
        &scratch,
        Op::BindingCreate {
            xml: a.binding_xml("clean-traffic"),
        },
    );
    let genuine = explain(&scratch, &format!("ip src={} dst={} icmp", a.ip, b.ip));
    assert_eq!(genuine["verdict"], "accept", "{genuine}");
    assert_eq!(genuine["backend"], "nftables");
    assert!(a.pings(&b.ip), "the kernel lets the genuine ping through");
    let spoofed = explain(&scratch, &format!("ip src=10.77.0.99 dst={} icmp", b.ip));
    assert_eq!(spoofed["verdict"], "drop", "{spoofed}");
    assert_eq!(spoofed["decisive"]["origin"]["filter"], "no-ip-spoofing");
    a.set_ip("10.77.0.99");
    assert!(!a.pings(&b.ip), "the kernel drops the spoofed ping");
    a.set_ip(&a.ip);
    // A port without a binding is an error naming it.
    let mut client = nwfilter_service::Client::connect(&scratch.socket()).unwrap();
    let err = client
        .call(Op::Explain {
            portdev: "vnet9".into(),
            direction: nwfilter_explain::Direction::In,
            input: PacketInput::Packet("arp".into()),
            backend: None,
        })
        .unwrap_err();
    assert!(
        err.to_string().contains("no binding for port vnet9"),
        "{err}"
    );
}
