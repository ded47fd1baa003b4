//! Differential test (issue 19): for the default filters and over 500
//! generated frames (ARP, RARP, IPv4/IPv6 with TCP/UDP/ICMP, other
//! EtherTypes; from and to the VM; genuine and spoofed), explain's verdict
//! equals what the kernel does to the same frame, on both backends.
//!
//! Lab: a bridge with the VM on vnet0 (filtered) and a peer on vnet1. A
//! frame from the VM is sent out of its eth0 and looked for at the peer;
//! a frame to the VM is sent by the peer and looked for at the VM. Each
//! frame carries a unique marker where no match reads (IP payload, after
//! the ARP body). Every disagreement fails the test, naming the packet.

#[path = "differential/packets.rs"]
mod packets;
#[path = "differential/wire.rs"]
mod wire;

use std::collections::HashSet;

use host_io::{ProcessRunner, Toolset};
use netns_lab::{can_run_with, Lab, Scratch};
use nwfilter_compile::ir::TracedProgram;
use nwfilter_compile::{compile_dag_traced, resolve, CompiledTraced, MemorySource};
use nwfilter_driver::{apply_once, Backend, Rendered};
use nwfilter_explain::{explain, Direction, PacketVerdict};
use nwfilter_model::{builtin_filters, parse_filter, FilterName, Params};

/// The default filters tested, each alone on the port (clean-traffic
/// brings most of the others with it), and two of our own: one where the
/// backends differ (a sub-chain that runs out of rules: ebtables accepts,
/// nft goes on in the root chain), one with IP-layer rules.
const FILTERS: &[&str] = &[
    "clean-traffic",
    "no-mac-spoofing",
    "allow-arp",
    "no-ip-spoofing",
    "backends-differ",
    "ip-layer",
];

const OURS: &[&str] = &[
    "<filter name='udp-only' chain='ipv4' priority='-700'>
       <rule action='accept' direction='inout'><ip protocol='udp'/></rule>
     </filter>",
    "<filter name='backends-differ' chain='root'>
       <filterref filter='udp-only'/>
       <rule action='accept' direction='inout' priority='500'><mac protocolid='arp'/></rule>
       <rule action='drop' direction='inout' priority='1000'/>
     </filter>",
    "<filter name='ip-layer' chain='root'>
       <rule action='drop' direction='out' priority='100'><tcp dstportstart='22'/></rule>
       <rule action='drop' direction='in' priority='110'><udp dstportstart='53'/></rule>
       <rule action='accept' direction='out' priority='120'><icmp type='8'/></rule>
       <rule action='drop' direction='out' priority='130'><icmp/></rule>
       <rule action='drop' direction='inout' priority='140'><ipv6 protocol='tcp'/></rule>
     </filter>",
];

#[test]
fn explain_agrees_with_the_kernel_on_both_backends() {
    if !can_run_with("differential", &["python3", "ebtables", "nft"]) {
        return;
    }
    let mut failures = Vec::new();
    let mut tally = Tally::default();
    for backend in [Backend::Xtables, Backend::Nftables] {
        let lab = Lab::ready(2);
        let scratch = Scratch::new("differential");
        for filter in FILTERS {
            failures.append(&mut one_filter(&lab, &scratch, backend, filter, &mut tally));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} verdicts differ from the kernel:\n{}",
        failures.len(),
        tally.delivered + tally.stopped,
        failures.join("\n")
    );
    // Not vacuous: each filter sees over 500 frames, plenty of them pass
    // and plenty are stopped, and the backends do disagree.
    assert!(
        tally.delivered + tally.stopped >= 2 * FILTERS.len() * 500,
        "{tally:?}"
    );
    assert!(tally.delivered >= 500 && tally.stopped >= 500, "{tally:?}");
    assert!(tally.backend_differences >= 50, "{tally:?}");
}

/// What the kernel did, over all frames.
#[derive(Debug, Default)]
struct Tally {
    delivered: usize,
    stopped: usize,
    /// Frames whose explanation notes the other backend decides otherwise.
    backend_differences: usize,
}

/// Applies `filter` to the VM's port with `backend`, sends every
/// generated frame and compares. Returns the disagreements.
fn one_filter(
    lab: &Lab,
    scratch: &Scratch,
    backend: Backend,
    filter: &str,
    tally: &mut Tally,
) -> Vec<String> {
    let (vm, peer) = (&lab.guests[0], &lab.guests[1]);
    let traced = compile(filter, vm);
    let rendered = Rendered::render(backend, &traced.program).expect("renders");
    let runner = ProcessRunner::new(Toolset::default()).in_netns(lab.host.name.clone());
    apply_once(backend, &runner, &[&rendered]).expect("applies");
    let parties = packets::Parties {
        vm_mac: vm.mac_bytes(),
        vm_ip: vm.ip.parse().unwrap(),
        peer_mac: peer.mac_bytes(),
        peer_ip: peer.ip.parse().unwrap(),
    };
    let generated = packets::generate(&parties);
    let ours = match backend {
        Backend::Xtables => nwfilter_explain::Backend::Xtables,
        Backend::Nftables => nwfilter_explain::Backend::Nftables,
    };
    let mut wrong = Vec::new();
    for (direction, from, to) in [(Direction::Out, vm, peer), (Direction::In, peer, vm)] {
        let batch: Vec<_> = generated
            .iter()
            .filter(|(d, _, _)| *d == direction)
            .collect();
        let frames: Vec<Vec<u8>> = (batch.iter().enumerate())
            .map(|(i, (_, text, p))| {
                let marker = [0xa5, (i >> 8) as u8, i as u8, 0x5a];
                nwfilter_explain::frame::build_with(p, &marker)
                    .unwrap_or_else(|e| panic!("{text}: {e}"))
            })
            .collect();
        let keys: HashSet<String> = frames.iter().map(|f| wire::key(f)).collect();
        assert_eq!(
            keys.len(),
            frames.len(),
            "markers make every frame distinct"
        );
        let arrived = wire::deliver(from, to, &frames, &scratch.0);
        for ((_, text, packet), frame) in batch.iter().zip(&frames) {
            let kernel = arrived.contains(&wire::key(frame));
            *(if kernel {
                &mut tally.delivered
            } else {
                &mut tally.stopped
            }) += 1;
            let said = explain(&traced, ours, direction, packet);
            if said
                .notes
                .iter()
                .any(|n| n.starts_with("backend difference"))
            {
                tally.backend_differences += 1;
            }
            if (said.verdict == PacketVerdict::Accept) != kernel {
                wrong.push(format!(
                    "{backend} {filter} {direction:?} [{text}]: explain says {:?} (decisive {:?}), \
                     the kernel {}",
                    said.verdict,
                    said.decisive.as_ref().map(|r| (&r.chain, r.position)),
                    if kernel { "delivered it" } else { "did not deliver it" }
                ));
            }
        }
    }
    wrong
}

/// The VM's filter with its MAC and IP, as the engine compiles it.
fn compile(filter: &str, vm: &netns_lab::Guest) -> TracedProgram {
    let ours = OURS
        .iter()
        .map(|xml| parse_filter(xml).expect("our filters parse"));
    let source = MemorySource::from_iter(builtin_filters().into_iter().chain(ours));
    let dag = resolve(&source, &FilterName::new(filter).unwrap()).expect("resolves");
    let mut params = Params::default();
    params.push("IP", vm.ip.clone());
    match compile_dag_traced(&dag, &params, vm.mac(), &vm.port()).expect("compiles") {
        CompiledTraced::Program(t) => t,
        other => panic!("{filter}: {other:?}"),
    }
}
