//! The doctor on rulesets captured with `nft -j list ruleset` from
//! namespaces set up as Docker and ufw leave iptables-nft (with and
//! without a running nftables network) and as a NixOS-style nft firewall.

use super::*;

const DOCKER_UFW: &str = include_str!("fixtures/docker_ufw.json");
const DOCKER_UFW_RUNNING: &str = include_str!("fixtures/docker_ufw_running.json");
const NIXOS_LIKE: &str = include_str!("fixtures/nixos_like.json");

fn subject(running: Option<Backend>) -> Subject {
    let net = crate::parse_network(
        "<network><name>default</name><bridge name='virbr0'/><forward mode='nat' dev='up0'/>
         <ip address='192.168.122.1' prefix='24'><dhcp>
           <range start='192.168.122.2' end='192.168.122.254'/></dhcp></ip></network>",
    )
    .unwrap();
    Subject::of(&net, running).unwrap()
}

fn examine_json(json: &str, running: Option<Backend>) -> Report {
    examine(&Ruleset::parse(json).unwrap(), &[subject(running)])
}

fn finding<'r>(report: &'r Report, table: &str, chain: &str, probe: Probe) -> &'r Finding {
    report
        .chains
        .iter()
        .find(|c| c.table == table && c.chain == chain)
        .unwrap_or_else(|| panic!("no chain {table} {chain}"))
        .findings
        .iter()
        .find(|f| f.probe == probe)
        .unwrap_or_else(|| panic!("no {probe:?} finding in {table} {chain}"))
}

#[test]
fn docker_and_ufw_drop_a_network_that_is_not_started_yet_and_we_handle_it() {
    let report = examine_json(DOCKER_UFW, None);
    let input = finding(&report, "filter", "INPUT", Probe::Dhcp);
    assert_eq!(input.outcome.decision, eval::Decision::DroppedByPolicy);
    // ufw's `-m conntrack` is an xt match the JSON does not show.
    assert!(!input.outcome.certain);
    let forward = finding(&report, "filter", "FORWARD", Probe::Forward);
    assert_eq!(forward.outcome.decision, eval::Decision::DroppedByPolicy);
    assert!(forward.outcome.certain);
    // Not running: its accepts go in when it starts.
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let chain = report.chains.iter().find(|c| c.chain == "INPUT").unwrap();
    assert!(chain.owner.starts_with("iptables"), "{}", chain.owner);
    assert!(
        chain.remedy.contains("inserted at the top"),
        "{}",
        chain.remedy
    );
}

#[test]
fn a_running_nftables_network_is_accepted_by_its_own_accepts() {
    let report = examine_json(DOCKER_UFW_RUNNING, Some(Backend::Nftables));
    let dhcp = finding(&report, "filter", "INPUT", Probe::Dhcp);
    assert_eq!(dhcp.outcome.decision, eval::Decision::Accepted);
    let rule = dhcp.outcome.rule.as_ref().unwrap();
    assert_eq!(rule.text, "iifname \"virbr0\" udp dport 67 accept");
    assert!(rule.handle.is_some());
    let dns = finding(&report, "filter", "INPUT", Probe::Dns);
    assert_eq!(dns.outcome.decision, eval::Decision::Accepted);
    let fwd = finding(&report, "filter", "FORWARD", Probe::Forward);
    assert_eq!(fwd.outcome.decision, eval::Decision::Accepted);
    assert_eq!(
        fwd.outcome.rule.as_ref().unwrap().text,
        "iifname \"virbr0\" oifname \"up0\" ip saddr 192.168.122.0/24 accept"
    );
    // Our own chain lets the guest out too.
    let ours = finding(&report, "nwfilter-net", "fwd-virbr0", Probe::Forward);
    assert_eq!(ours.outcome.decision, eval::Decision::Accepted);
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    // nat chains are listed, without probes.
    let nat = report
        .chains
        .iter()
        .find(|c| c.chain == "nat-virbr0")
        .unwrap();
    assert!(nat.findings.is_empty() && nat.kind == "nat");
}

#[test]
fn a_running_network_dropped_all_the_same_is_a_problem() {
    // Started, but the accepts are gone (someone flushed and rebuilt).
    let report = examine_json(DOCKER_UFW, Some(Backend::Nftables));
    assert_eq!(report.problems.len(), 3, "{:#?}", report.problems);
    assert!(report.problems[0].contains("ip filter FORWARD (hook forward) drops network default's forwarded traffic on virbr0 by its policy drop"), "{}", report.problems[0]);
}

#[test]
fn another_nft_table_that_drops_is_named_with_its_rule() {
    let report = examine_json(NIXOS_LIKE, Some(Backend::Nftables));
    let dhcp = finding(&report, "nixos-fw", "input", Probe::Dhcp);
    assert_eq!(dhcp.outcome.decision, eval::Decision::DroppedByRule);
    // Through `jump input-allow` (which returns) to the final drop.
    assert_eq!(dhcp.outcome.rule.as_ref().unwrap().text, "drop");
    let fwd = finding(&report, "nixos-fw", "forward", Probe::Forward);
    assert_eq!(fwd.outcome.decision, eval::Decision::DroppedByPolicy);
    assert_eq!(report.problems.len(), 3, "{:#?}", report.problems);
    assert!(report
        .problems
        .iter()
        .all(|p| p.contains("nothing from another table can overrule")));
    let text = render_text(&report);
    assert!(
        text.contains(
            "inet nixos-fw input: type filter hook input priority 0 policy drop — another program"
        ),
        "{text}"
    );
    assert!(text.contains("default DHCP: DROPPED by `drop`"), "{text}");
    assert!(text.contains("3 problem(s)"), "{text}");
}

#[test]
fn our_own_rejects_and_an_isolated_networks_forwarding_are_no_problems() {
    let isolated = crate::parse_network(
        "<network><name>iso</name><bridge name='virbr0'/>
         <ip address='192.168.122.1' prefix='24'/></network>",
    )
    .unwrap();
    let subject = Subject::of(&isolated, Some(Backend::Nftables)).unwrap();
    let report = examine(&Ruleset::parse(DOCKER_UFW_RUNNING).unwrap(), &[subject]);
    assert!(report.problems.is_empty(), "{:#?}", report.problems);
    assert!(report
        .chains
        .iter()
        .flat_map(|c| &c.findings)
        .all(|f| f.probe != Probe::Forward));
    // A NAT network whose guest sends from outside its subnet is
    // rejected by our chain: shown, but ours.
    let mut stray = subject_for_nat();
    stray.guest = Some("10.9.9.9".parse().unwrap());
    let report = examine(&Ruleset::parse(DOCKER_UFW_RUNNING).unwrap(), &[stray]);
    let ours = finding(&report, "nwfilter-net", "fwd-virbr0", Probe::Forward);
    assert_eq!(ours.outcome.decision, eval::Decision::DroppedByRule);
    assert_eq!(
        ours.outcome.rule.as_ref().unwrap().text,
        "iifname \"virbr0\" reject with icmp port-unreachable"
    );
    assert!(report.problems.iter().all(|p| !p.contains("nwfilter-net")));
}

fn subject_for_nat() -> Subject {
    subject(Some(Backend::Nftables))
}

#[test]
fn an_undecidable_rule_makes_a_drop_uncertain() {
    let json = r#"{"nftables": [
      {"table": {"family": "inet", "name": "x"}},
      {"chain": {"family": "inet", "table": "x", "name": "in", "type": "filter",
                 "hook": "input", "prio": 0, "policy": "accept"}},
      {"rule": {"family": "inet", "table": "x", "chain": "in", "handle": 4, "expr": [
        {"match": {"op": "==", "left": {"meta": {"key": "mark"}}, "right": 7}},
        {"drop": null}]}},
      {"rule": {"family": "inet", "table": "x", "chain": "in", "handle": 5, "expr": [
        {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "eth*"}},
        {"drop": null}]}}]}"#;
    let report = examine_json(json, None);
    let dns = finding(&report, "x", "in", Probe::Dns);
    assert_eq!(dns.outcome.decision, eval::Decision::DroppedByRule);
    assert!(!dns.outcome.certain);
    assert_eq!(dns.outcome.rule.as_ref().unwrap().handle, Some(4));
    assert!(
        report.problems[0].contains("may drop"),
        "{}",
        report.problems[0]
    );
}
