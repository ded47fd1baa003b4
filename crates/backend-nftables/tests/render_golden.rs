//! The rendered transaction per case (golden `nft -f` text, one small
//! snapshot each), every built-in filter renders, and what nft cannot
//! express is refused with the port, chain and rule named.

use backend_nftables::layout::Part;
use backend_nftables::{instantiate, ruleset, RenderError, Unsupported};
use nwfilter_compile::{compile, Compiled, MemorySource};
use nwfilter_model::{builtin_filters, parse_filter, FilterName, FilterRef, IfName, Params};

fn render(extra: &[&str], filter: &str, params: &[(&str, &str)]) -> Result<String, RenderError> {
    let mut source = MemorySource::from_iter(builtin_filters());
    for xml in extra {
        source.insert(parse_filter(xml).unwrap());
    }
    let mut p = Params::default();
    for (name, value) in params {
        p.push(*name, *value);
    }
    let top = FilterRef {
        filter: FilterName::new(filter).unwrap(),
        params: p,
    };
    let port = IfName::new("vnet0").unwrap();
    let mac = "52:54:00:12:34:56".parse().unwrap();
    let Compiled::Program(program) = compile(&source, &top, mac, &port).unwrap() else {
        panic!("{filter}: unbound $IP");
    };
    Ok(instantiate(&ruleset(&program)?).text())
}

/// The port's own commands: the skeleton (the same for every port, with
/// snapshots of its own) stripped; a line says whether the port brings
/// the IP path.
fn port_part(script: &str) -> String {
    let rest = script
        .strip_prefix(skeleton(Part::Dispatch).as_str())
        .unwrap();
    match rest.strip_prefix(skeleton(Part::IpPath).as_str()) {
        Some(port) => format!("# with the IP path\n{port}"),
        None => format!("# without the IP path\n{rest}"),
    }
}

fn skeleton(part: Part) -> String {
    let mut batch = backend_nftables::Batch::default();
    batch.part(part);
    batch.text()
}

#[test]
fn skeleton_script() {
    insta::assert_snapshot!(skeleton(Part::Dispatch));
}

#[test]
fn ip_path_skeleton_script() {
    insta::assert_snapshot!(skeleton(Part::IpPath));
}

#[test]
fn clean_traffic_script() {
    let script = render(&[], "clean-traffic", &[("IP", "10.0.0.5")]).unwrap();
    insta::assert_snapshot!(port_part(&script));
}

#[test]
fn clean_traffic_with_a_list_of_addresses_script() {
    let script = render(
        &[],
        "clean-traffic",
        &[("IP", "10.0.0.5"), ("IP", "10.0.0.6")],
    )
    .unwrap();
    insta::assert_snapshot!(port_part(&script));
}

const STATEFUL: &str = "<filter name='stateful' chain='root'>
  <rule action='accept' direction='in' priority='100'><tcp dstportstart='22'/></rule>
  <rule action='accept' direction='in' priority='200'><icmp/></rule>
  <rule action='accept' direction='out' priority='300'><all/></rule>
  <rule action='reject' direction='out' priority='400'><tcp dstportstart='25' comment='no mail'/></rule>
  <rule action='reject' direction='out' priority='400'><udp-ipv6 dstportstart='53'/></rule>
  <rule action='drop' direction='inout' priority='1000'><all/></rule>
</filter>";

#[test]
fn stateful_ipv4_and_ipv6_script() {
    let script = render(&[STATEFUL], "stateful", &[]).unwrap();
    insta::assert_snapshot!(port_part(&script));
}

/// The `add rule` lines of `script` for the inet chain `role/…`.
fn inet_rules<'s>(script: &'s str, role: &str) -> Vec<&'s str> {
    let head = format!("add rule inet nwfilter {role}/");
    script.lines().filter(|l| l.starts_with(&head)).collect()
}

/// IPv6-only rules that need conntrack: they stay in the inet table.
const STATEFUL_IPV6: &str = "<filter name='stateful-ipv6' chain='root'>
  <rule action='accept' direction='out' priority='100'><icmpv6 state='NEW,ESTABLISHED'/></rule>
  <rule action='drop' direction='out' priority='200'><tcp-ipv6 dstportstart='25'/></rule>
  <rule action='accept' direction='out' priority='300'><all-ipv6/></rule>
</filter>";

#[test]
fn an_inet_chain_of_one_ip_version_tests_it_once() {
    let script = render(&[STATEFUL_IPV6], "stateful-ipv6", &[]).unwrap();
    for role in ["FI", "HI"] {
        let rules = inet_rules(&script, role);
        assert!(rules.len() > 2, "{script}");
        assert!(
            rules[0].ends_with(" meta nfproto != ipv6 return"),
            "{rules:#?}"
        );
        assert!(
            rules[1..].iter().all(|r| !r.contains("nfproto")),
            "{rules:#?}"
        );
    }
    // Both versions in one chain: each rule says which it is.
    let script = render(&[STATEFUL], "stateful", &[]).unwrap();
    let rules = inet_rules(&script, "FO");
    assert!(
        rules.iter().all(|r| r.contains(" meta nfproto ipv")),
        "{rules:#?}"
    );
}

/// The `add rule` lines of `script` for the bridge chain `name/…`.
fn bridge_rules<'s>(script: &'s str, name: &str) -> Vec<&'s str> {
    let head = format!("add rule bridge nwfilter {name}/");
    script.lines().filter(|l| l.starts_with(&head)).collect()
}

#[test]
fn stateless_ip_rules_run_in_the_bridge_table_without_the_ip_path() {
    let params = [("IP", "10.0.0.5"), ("IPV6", "fd00::5")];
    let script = render(&[], "clean-traffic-dualstack", &params).unwrap();
    assert!(
        port_part(&script).starts_with("# without the IP path\n"),
        "{script}"
    );
    assert!(!script.contains(" inet "), "{script}");
    // The neighbour-discovery checks, once (forwarded and host-bound
    // frames alike pass bridge prerouting), entered by IPv6 frames only,
    // in the template's chain: the port's target and link-layer values
    // are looked up in sets declared by `typeof` (raw ICMPv6 fields).
    let ip = bridge_rules(&script, "FI");
    assert_eq!(ip.len(), 8, "{script}");
    assert!(ip.iter().all(|r| r.contains("icmpv6 type")), "{ip:#?}");
    assert!(ip.iter().all(|r| !r.contains("nfproto")), "{ip:#?}");
    assert!(
        ip[0].contains(" ip6 nexthdr ipv6-icmp iifname . @th,64,128 @s"),
        "{ip:#?}"
    );
    assert!(
        script.contains(" { typeof iifname . @th,64,128 . @th,208,48; }"),
        "{script}"
    );
    assert!(!script.contains("add chain bridge nwfilter r"), "{script}");
    assert!(bridge_rules(&script, "HI").is_empty(), "{script}");
    // In the root: after the IPv4 accept (an IPv4 frame never meets the
    // jump), before anything that could let an IPv6 frame out (the DHCPv6
    // sub-chain accepts); before it only checks that drop or return.
    let root = bridge_rules(&script, "I");
    let rule_at = |text: &str| root.iter().position(|r| r.contains(text)).unwrap();
    let entry = rule_at(" ether type ip6 jump FI/");
    assert!(rule_at(" ether type 0x0800 accept") < entry, "{root:#?}");
    assert!(entry < rule_at(" jump I-ipv6-dhcp/"), "{root:#?}");
    assert!(entry < rule_at(" ether type 0x86dd accept"), "{root:#?}");
    let chains: Vec<&str> = script
        .lines()
        .filter(|l| l.starts_with("add chain bridge nwfilter "))
        .collect();
    let at = |name: &str| chains.iter().position(|l| l.contains(&format!(" {name}/")));
    assert!(
        at("FI") < at("I"),
        "a chain comes before its caller: {chains:#?}"
    );
}

#[test]
fn an_ip_layer_accept_in_the_bridge_table_leaves_the_chain_behind_a_root_dropping_tagged_frames() {
    // Stateless IPv4 rules for what the VM sends (ICMP: no reply-direction
    // rules for packets to the VM): accept ends the IP layer's say only,
    // so the port's Ethernet rules still decide.
    const PING_ONLY: &str = "<filter name='ping-only' chain='root'>
  <rule action='accept' direction='out' priority='100' statematch='false'><icmp type='8'/></rule>
  <rule action='drop' direction='out' priority='200' statematch='false'><icmp type='13'/></rule>
  <rule action='drop' direction='out' priority='300'><mac srcmacaddr='02:00:00:00:00:01'/></rule>
  <rule action='accept' direction='out' priority='400'><mac protocolid='ipv4'/></rule>
  <rule action='drop' direction='out' priority='500'/>
</filter>";
    let script = render(&[PING_ONLY], "ping-only", &[]).unwrap();
    let ip = bridge_rules(&script, "FI");
    assert_eq!(ip.len(), 2, "{script}");
    assert!(ip[0].ends_with(" icmp type 8 return"), "{ip:#?}");
    assert!(ip[1].ends_with(" icmp type 13 drop"), "{ip:#?}");
    assert!(!script.contains(" inet "), "{script}");

    // Without the final drop a VLAN-tagged frame (EtherType 802.1Q, so
    // not entering the moved rules) would leave the port unchecked: the
    // IP path stays.
    let open = PING_ONLY.replace(
        "  <rule action='drop' direction='out' priority='500'/>\n",
        "",
    );
    assert_ne!(open, PING_ONLY);
    let script = render(&[&open], "ping-only", &[]).unwrap();
    assert!(bridge_rules(&script, "FI").is_empty(), "{script}");
    assert_eq!(inet_rules(&script, "FI").len(), 3, "{script}");
}

#[test]
fn sub_chains_that_only_check_a_lookup_are_written_into_the_root() {
    let script = render(&[], "clean-traffic", &[("IP", "10.0.0.5")]).unwrap();
    for chain in ["I-mac/", "I-arp-mac/", "I-arp-ip/"] {
        assert!(!script.contains(&format!(" {chain}")), "{chain}: {script}");
    }
    let root: Vec<&str> = script
        .lines()
        .filter(|l| l.starts_with("add rule bridge nwfilter I/"))
        .map(|l| l.split_once(' ').unwrap().1)
        .collect();
    let first = root[0];
    assert!(
        first.contains(" iifname . ether saddr != @s0/") && first.ends_with(" drop"),
        "{root:#?}"
    );
    let arp_ip = root
        .iter()
        .filter(|r| r.contains("arp saddr ip != @"))
        .count();
    assert_eq!(arp_ip, 1, "{root:#?}");
}

#[test]
fn every_builtin_filter_renders() {
    let v4 = [
        ("IP", "10.0.0.5"),
        ("DHCPSERVER", "10.0.0.1"),
        ("GATEWAY_MAC", "52:54:00:00:00:01"),
        // For the dual-stack filters (clean-traffic-dualstack).
        ("IPV6", "fd00::5"),
    ];
    let v6 = [
        ("IPV6", "fd00::5"),
        ("IP", "fd00::5"),
        ("DHCPSERVER", "fd00::1"),
    ];
    for filter in builtin_filters() {
        let name = filter.name.as_str();
        let params: &[(&str, &str)] = if name.contains("v6") { &v6 } else { &v4 };
        let result = render(&[], name, params);
        assert!(result.is_ok(), "{}: {result:?}", filter.name);
    }
}

#[test]
fn what_nft_cannot_express_names_port_chain_and_rule() {
    let ipset = "<filter name='sets' chain='root'>
      <rule action='drop' direction='out' priority='500'><all ipset='bad' ipsetflags='src'/></rule>
    </filter>";
    let err = render(&[ipset], "sets", &[]).unwrap_err();
    assert!(matches!(
        &err,
        RenderError::Rule { port, chain, rule: 1, source: Unsupported::Ipset(name) }
            if port == "vnet0" && chain.starts_with("FI/t") && name == "bad"
    ));
    assert!(err.to_string().contains("use the xtables backend"), "{err}");

    let gratuitous = "<filter name='garp' chain='arp'>
      <rule action='drop' direction='out' priority='500'><arp gratuitous='true'/></rule>
    </filter>";
    let err = render(&[gratuitous], "garp", &[]).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("port vnet0, chain I-arp/t")
            && text.ends_with(
                ", rule 1: arp gratuitous (sender IP = target IP) cannot be expressed in nftables"
            ),
        "{text}"
    );
}

#[test]
fn comments_nft_cannot_store_are_refused() {
    let quoted = "<filter name='q' chain='root'>
      <rule action='drop' direction='out' priority='500'><tcp dstportstart='1' comment='say &quot;hi&quot;'/></rule>
    </filter>";
    let err = render(&[quoted], "q", &[]).unwrap_err();
    assert!(err.to_string().contains("double quote"), "{err}");
}

/// The template id of a rendered script (its from-VM root is `I/tHASH`).
fn template_of(script: &str) -> &str {
    script
        .lines()
        .find_map(|l| l.strip_prefix("add chain bridge nwfilter I/"))
        .unwrap()
}

#[test]
fn dual_stack_ports_share_one_template_whatever_their_addresses() {
    let a = render(
        &[],
        "clean-traffic-dualstack",
        &[("IP", "10.0.0.5"), ("IPV6", "fd00::5")],
    )
    .unwrap();
    let b = render(
        &[],
        "clean-traffic-dualstack",
        &[("IP", "10.0.0.6"), ("IPV6", "fd00::6")],
    )
    .unwrap();
    assert_eq!(template_of(&a), template_of(&b));
    // The targets, fd00::5 and fd00::6, as the numbers the sets hold.
    let target = |n: u128| format!(" . {} }}", 0xfd00_u128 << 112 | n);
    assert!(a.contains(&target(5)), "{a}");
    assert!(b.contains(&target(6)), "{b}");
}

/// A `return` whose values need a chain of the port's own takes the rest
/// of its chain along: in a chain of its own alone it would leave only
/// that chain, and the template's next rule would still run.
#[test]
fn a_per_port_return_takes_the_rest_of_its_chain_into_the_port_s_chain() {
    const MASKED: &str = "<filter name='masked' chain='ipv4'>
  <rule action='return' direction='out' priority='100'><ip srcipaddr='$IP' srcipmask='24'/></rule>
  <rule action='drop' direction='out' priority='200'><ip/></rule>
</filter>";
    let script = render(&[MASKED], "masked", &[("IP", "10.0.0.5")]).unwrap();
    let template = bridge_rules(&script, "I-ipv4");
    assert_eq!(template.len(), 1, "{script}");
    assert!(template[0].contains(" iifname vmap @v0/"), "{script}");
    let own: Vec<&str> = (script.lines())
        .filter(|l| l.starts_with("add rule bridge nwfilter r0-"))
        .collect();
    assert_eq!(own.len(), 2, "{script}");
    assert!(
        own[0].contains("ip saddr 10.0.0.0/24") && own[0].ends_with(" return"),
        "{own:#?}"
    );
    assert!(own[1].ends_with(" drop"), "{own:#?}");
}

/// Ports of one filter usually decide alike which rules need a chain of
/// their own, and the renderer reuses that decision; but a negated lookup
/// of a list is no lookup, so the list's length can change it, and then
/// the port gets its own template all the same.
#[test]
fn a_list_length_that_changes_the_decision_changes_the_template() {
    const NOT_MINE: &str = "<filter name='not-mine' chain='root'>
  <rule action='drop' direction='out' priority='100'><ip match='no' srcipaddr='$IP'/></rule>
</filter>";
    let one = || render(&[NOT_MINE], "not-mine", &[("IP", "10.0.0.5")]).unwrap();
    let two = || {
        let ips = [("IP", "10.0.0.5"), ("IP", "10.0.0.6")];
        render(&[NOT_MINE], "not-mine", &ips).unwrap()
    };
    let first = one();
    assert!(!first.contains("add chain bridge nwfilter r0-"), "{first}");
    let listed = two();
    assert!(listed.contains("add chain bridge nwfilter r0-"), "{listed}");
    assert_ne!(template_of(&first), template_of(&listed));
    // Each shape's decision, whichever was remembered last.
    assert_eq!(one(), first);
    assert_eq!(two(), listed);
}
