//! The walk over real compiled filters (the built-in set and small
//! filters of our own), on both backends.

use nwfilter_compile::ir::TracedProgram;
use nwfilter_compile::{compile_dag_traced, resolve, CompiledTraced, LayeredSource, MemorySource};
use nwfilter_model::{builtin_filters, parse_filter, FilterName, IfName, MacAddr6, Params};

use super::*;
use crate::spec::parse;

const VM: [u8; 6] = [0x52, 0x54, 0, 0, 0, 1];

fn compiled(top: &str, extra: &[&str], params: &[(&str, &str)]) -> TracedProgram {
    let mut source = LayeredSource::new();
    source.push(MemorySource::from_iter(
        extra.iter().map(|xml| parse_filter(xml).unwrap()),
    ));
    source.push(MemorySource::from_iter(builtin_filters()));
    let dag = resolve(&source, &FilterName::new(top).unwrap()).unwrap();
    let mut p = Params::default();
    for (k, v) in params {
        p.push(*k, *v);
    }
    let port = IfName::new("vnet0").unwrap();
    match compile_dag_traced(&dag, &p, MacAddr6::from(VM), &port).unwrap() {
        CompiledTraced::Program(t) => t,
        other => panic!("{other:?}"),
    }
}

fn clean() -> TracedProgram {
    compiled("clean-traffic", &[], &[("IP", "10.0.0.5")])
}

fn run(t: &TracedProgram, b: Backend, d: Direction, spec: &str) -> Explanation {
    explain(t, b, d, &parse(spec, d, VM).unwrap())
}

fn origin(e: &Explanation) -> (String, usize) {
    let o = e.decisive.as_ref().unwrap().origin.as_ref().unwrap();
    (o.filter.as_str().to_owned(), o.rule_index)
}

const BOTH: [Backend; 2] = [Backend::Xtables, Backend::Nftables];

#[test]
fn clean_traffic_accepts_genuine_ipv4_by_its_own_rule() {
    for b in BOTH {
        let e = run(
            &clean(),
            b,
            Direction::Out,
            "ip src=10.0.0.5 dst=10.0.0.1 udp dport=53",
        );
        assert_eq!(e.verdict, PacketVerdict::Accept);
        assert_eq!(origin(&e), ("clean-traffic".into(), 0));
        let chains: Vec<&str> = e.path.iter().map(|s| s.chain.as_str()).collect();
        assert_eq!(
            chains,
            [
                "bridge from-vm root",
                "bridge from-vm sub mac",
                "bridge from-vm root",
                "bridge from-vm sub ipv4-ip",
                "bridge from-vm root"
            ],
            "{e:#?}"
        );
        assert!(e.notes.is_empty(), "{:?}", e.notes);
    }
}

#[test]
fn clean_traffic_drops_a_spoofed_mac_and_names_the_rule() {
    for b in BOTH {
        let e = run(
            &clean(),
            b,
            Direction::Out,
            "mac src=52:54:00:00:00:99 ip src=10.0.0.5 dst=10.0.0.1",
        );
        assert_eq!(e.verdict, PacketVerdict::Drop);
        assert_eq!(origin(&e), ("no-mac-spoofing".into(), 1));
        let d = e.decisive.unwrap();
        assert_eq!(
            (d.chain.as_str(), d.position),
            ("bridge from-vm sub mac", 2)
        );
    }
}

#[test]
fn clean_traffic_drops_spoofed_ip_and_arp_but_not_genuine_arp() {
    for b in BOTH {
        let ip = run(&clean(), b, Direction::Out, "ip src=10.0.0.6 dst=10.0.0.1");
        assert_eq!(
            (ip.verdict, origin(&ip)),
            (PacketVerdict::Drop, ("no-ip-spoofing".into(), 2))
        );
        let arp = run(&clean(), b, Direction::Out, "arp spa=10.0.0.6 tpa=10.0.0.1");
        assert_eq!(
            (arp.verdict, origin(&arp)),
            (PacketVerdict::Drop, ("no-arp-ip-spoofing".into(), 1))
        );
        let arp_mac = run(
            &clean(),
            b,
            Direction::Out,
            "arp sha=52:54:00:00:00:02 spa=10.0.0.5",
        );
        assert_eq!(origin(&arp_mac), ("no-arp-mac-spoofing".into(), 1));
        let good = run(&clean(), b, Direction::Out, "arp spa=10.0.0.5 tpa=10.0.0.1");
        assert_eq!(
            (good.verdict, origin(&good)),
            (PacketVerdict::Accept, ("clean-traffic".into(), 1))
        );
    }
}

#[test]
fn clean_traffic_incoming_ipv4_is_accepted_and_ipv6_dropped() {
    for b in BOTH {
        let e = run(
            &clean(),
            b,
            Direction::In,
            "ip src=10.0.0.1 dst=10.0.0.5 tcp dport=22",
        );
        assert_eq!(
            (e.verdict, origin(&e)),
            (PacketVerdict::Accept, ("allow-incoming-ipv4".into(), 0))
        );
        let v6 = run(
            &clean(),
            b,
            Direction::In,
            "ipv6 src=fe80::1 dst=ff02::1 icmpv6",
        );
        assert_eq!(
            (v6.verdict, origin(&v6)),
            (PacketVerdict::Drop, ("no-other-l2-traffic".into(), 0))
        );
    }
}

const SUB_ONLY_UDP: &str = "<filter name='udp-only' chain='ipv4' priority='-700'>
  <rule action='accept' direction='out'><ip protocol='udp'/></rule>
</filter>";
const TOP: &str = "<filter name='top' chain='root'>
  <filterref filter='udp-only'/>
  <rule action='drop' direction='out' priority='1000'/>
</filter>";

#[test]
fn a_sub_chain_that_runs_out_accepts_on_xtables_and_returns_on_nftables() {
    let t = compiled("top", &[SUB_ONLY_UDP, TOP], &[]);
    let spec = "ip src=10.0.0.5 dst=10.0.0.1 tcp dport=25";
    let x = run(&t, Backend::Xtables, Direction::Out, spec);
    assert_eq!(x.verdict, PacketVerdict::Accept, "{x:#?}");
    assert_eq!(x.decisive, None);
    assert!(x
        .path
        .last()
        .unwrap()
        .note
        .as_ref()
        .unwrap()
        .contains("policy is ACCEPT"));
    assert!(
        x.notes
            .iter()
            .any(|n| n.contains("with nftables this packet is dropped")),
        "{:?}",
        x.notes
    );
    let n = run(&t, Backend::Nftables, Direction::Out, spec);
    assert_eq!(
        (n.verdict, origin(&n)),
        (PacketVerdict::Drop, ("top".into(), 0))
    );
    assert!(n
        .notes
        .iter()
        .any(|n| n.contains("with xtables this packet is accepted")));
    // UDP is accepted in the sub-chain on both: no difference to report.
    let udp = run(
        &t,
        Backend::Nftables,
        Direction::Out,
        "ip src=10.0.0.5 dst=10.0.0.1 udp dport=53",
    );
    assert_eq!(udp.verdict, PacketVerdict::Accept);
    assert!(udp.notes.is_empty());
}

const NO_SMTP: &str = "<filter name='no-smtp' chain='root'>
  <rule action='drop' direction='out' priority='100'><tcp dstportstart='25'/></rule>
  <rule action='accept' direction='in' priority='200'><tcp dstportstart='22'/></rule>
  <rule action='drop' direction='in' priority='300'><all/></rule>
  <rule action='continue' direction='out' priority='50'><udp/></rule>
</filter>";

#[test]
fn ip_layer_chains_decide_after_the_bridge_from_the_vm_and_before_it_towards_it() {
    let t = compiled("no-smtp", &[NO_SMTP], &[]);
    for b in BOTH {
        let smtp = run(
            &t,
            b,
            Direction::Out,
            "ip src=10.0.0.5 dst=192.0.2.1 tcp dport=25",
        );
        assert_eq!(
            (smtp.verdict, origin(&smtp)),
            (PacketVerdict::Drop, ("no-smtp".into(), 0))
        );
        assert_eq!(smtp.path[0].chain, "ipv4 forward-from-vm");
        // An `in` drop rule also has a swapped instance in the from-VM
        // chain (libvirt's lowering): it stops the VM's side as well.
        let web = run(
            &t,
            b,
            Direction::Out,
            "ip src=10.0.0.5 dst=192.0.2.1 tcp dport=80",
        );
        assert_eq!(
            (web.verdict, origin(&web)),
            (PacketVerdict::Drop, ("no-smtp".into(), 2))
        );
        let udp = run(
            &t,
            b,
            Direction::Out,
            "ip src=10.0.0.5 dst=192.0.2.1 udp dport=53",
        );
        assert_eq!(udp.path[0].continued.len(), 1, "{udp:#?}");
        let ssh = run(
            &t,
            b,
            Direction::In,
            "ip src=192.0.2.1 dst=10.0.0.5 tcp dport=22",
        );
        assert_eq!(
            (ssh.verdict, origin(&ssh)),
            (PacketVerdict::Accept, ("no-smtp".into(), 1))
        );
        assert!(
            ssh.notes.iter().any(|n| n.contains("conntrack")),
            "{:?}",
            ssh.notes
        );
        // An established reply is not NEW: the implicit state match of
        // the accept rule's instance decides otherwise.
        let other = run(
            &t,
            b,
            Direction::In,
            "ip src=192.0.2.1 dst=10.0.0.5 udp dport=9",
        );
        assert_eq!(
            (other.verdict, origin(&other)),
            (PacketVerdict::Drop, ("no-smtp".into(), 2))
        );
        // ARP is not seen by the IP layer.
        let arp = run(&t, b, Direction::In, "arp");
        assert!(arp.path.is_empty());
        assert_eq!(arp.verdict, PacketVerdict::Accept);
    }
}

#[test]
fn locate_fills_in_the_source_of_every_rule_met() {
    let mut e = run(
        &clean(),
        Backend::Xtables,
        Direction::Out,
        "ip src=10.0.0.6 dst=10.0.0.1",
    );
    e.locate(|o| {
        Some(SourcePos {
            file: format!("{}.xml", o.filter.as_str()),
            line: o.rule_index as u32 + 10,
        })
    });
    let d = e.decisive.as_ref().unwrap().source.as_ref().unwrap();
    assert_eq!((d.file.as_str(), d.line), ("no-ip-spoofing.xml", 12));
    let text = crate::report::text(&e);
    assert!(text.contains("verdict: dropped"), "{text}");
    assert!(
        text.contains(
            "filter no-ip-spoofing, rule 3 (priority 1000, chain ipv4-ip) at no-ip-spoofing.xml:12"
        ),
        "{text}"
    );
    let json = serde_json::to_value(&e).unwrap();
    assert_eq!(json["verdict"], "drop");
    assert_eq!(json["decisive"]["origin"]["filter"], "no-ip-spoofing");
    assert_eq!(json["decisive"]["source"]["line"], 12);
}
