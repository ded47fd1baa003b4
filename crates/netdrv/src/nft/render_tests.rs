use super::*;

fn net(xml: &str) -> Network {
    crate::parse_network(xml).unwrap()
}

const NAT: &str = "<network><name>n</name><bridge name='virbr3'/>
    <forward mode='nat' dev='eth0'><nat><port start='2000' end='3000'/></nat></forward>
    <ip address='10.3.0.1' prefix='24'><dhcp><range start='10.3.0.2' end='10.3.0.9'/></dhcp></ip>
    <ip family='ipv6' address='fd03::1' prefix='64'/></network>";

#[test]
fn nat_network_script() {
    let cmds = start_batch(&net(NAT)).unwrap();
    let expected = r#"add table inet nwfilter-net
add chain inet nwfilter-net fwd-virbr3 { type filter hook forward priority 0; policy accept; }
flush chain inet nwfilter-net fwd-virbr3
add rule inet nwfilter-net fwd-virbr3 meta nfproto ipv4 iifname "virbr3" oifname "virbr3" accept
add rule inet nwfilter-net fwd-virbr3 meta nfproto ipv6 iifname "virbr3" oifname "virbr3" accept
add rule inet nwfilter-net fwd-virbr3 iifname "eth0" oifname "virbr3" ip6 daddr fd03::/64 accept
add rule inet nwfilter-net fwd-virbr3 iifname "eth0" oifname "virbr3" ip daddr 10.3.0.0/24 ct state established,related accept
add rule inet nwfilter-net fwd-virbr3 meta nfproto ipv4 oifname "virbr3" reject
add rule inet nwfilter-net fwd-virbr3 meta nfproto ipv6 oifname "virbr3" reject
add rule inet nwfilter-net fwd-virbr3 ip6 saddr fd03::/64 iifname "virbr3" oifname "eth0" accept
add rule inet nwfilter-net fwd-virbr3 ip saddr 10.3.0.0/24 iifname "virbr3" oifname "eth0" accept
add rule inet nwfilter-net fwd-virbr3 meta nfproto ipv4 iifname "virbr3" reject
add rule inet nwfilter-net fwd-virbr3 meta nfproto ipv6 iifname "virbr3" reject
add chain inet nwfilter-net nat-virbr3 { type nat hook postrouting priority 100; policy accept; }
flush chain inet nwfilter-net nat-virbr3
add rule inet nwfilter-net nat-virbr3 oifname "eth0" ip saddr 10.3.0.0/24 ip daddr 224.0.0.0/24 return
add rule inet nwfilter-net nat-virbr3 oifname "eth0" ip saddr 10.3.0.0/24 ip daddr 255.255.255.255/32 return
add rule inet nwfilter-net nat-virbr3 ip saddr 10.3.0.0/24 ip daddr != 10.3.0.0/24 oifname "eth0" meta l4proto tcp masquerade to :2000-3000
add rule inet nwfilter-net nat-virbr3 ip saddr 10.3.0.0/24 ip daddr != 10.3.0.0/24 oifname "eth0" meta l4proto udp masquerade to :2000-3000
add rule inet nwfilter-net nat-virbr3 ip saddr 10.3.0.0/24 ip daddr != 10.3.0.0/24 oifname "eth0" masquerade
"#;
    assert_eq!(script(&cmds), expected);
    // The JSON says the same: one command per line of the script.
    let tx = transaction(&cmds);
    let body: Value = serde_json::from_str(tx.stdin.as_deref().unwrap()).unwrap();
    assert_eq!(body["nftables"].as_array().unwrap().len(), cmds.len());
    assert_eq!(
        body["nftables"][1]["add"]["chain"],
        json!({"family": "inet", "table": "nwfilter-net", "name": "fwd-virbr3",
               "type": "filter", "hook": "forward", "prio": 0, "policy": "accept"})
    );
    assert_eq!(
        body["nftables"][3]["add"]["rule"]["chain"],
        json!("fwd-virbr3")
    );
}

#[test]
fn isolated_network_has_only_its_forward_chain_and_open_none() {
    let isolated = net("<network><name>i</name><bridge name='br1'/>
        <ip address='10.4.0.1' prefix='24'/></network>");
    let chains = chains(&isolated).unwrap();
    assert_eq!(chains.len(), 1);
    let texts: Vec<String> = chains[0].rules.iter().map(Rule::text).collect();
    assert_eq!(
        texts,
        [
            "meta nfproto ipv4 iifname \"br1\" oifname \"br1\" accept",
            "meta nfproto ipv4 oifname \"br1\" reject",
            "meta nfproto ipv4 iifname \"br1\" reject",
        ]
    );
    let open = net(
        "<network><name>o</name><bridge name='br2'/><forward mode='open'/>
        <ip address='10.5.0.1' prefix='24'/></network>",
    );
    assert!(start_batch(&open).unwrap().is_empty());
}

#[test]
fn routed_network_accepts_both_ways_without_nat() {
    let routed = net(
        "<network><name>r</name><bridge name='br1'/><forward mode='route'/>
        <ip address='10.4.0.1' prefix='24'/></network>",
    );
    let chains = chains(&routed).unwrap();
    assert_eq!(chains.len(), 1, "no nat chain");
    let texts: Vec<String> = chains[0].rules.iter().map(Rule::text).collect();
    assert!(texts.contains(&"oifname \"br1\" ip daddr 10.4.0.0/24 accept".to_owned()));
    assert!(texts.contains(&"ip saddr 10.4.0.0/24 iifname \"br1\" accept".to_owned()));
}

#[test]
fn snat_pool_is_ipv4_only_and_stop_removes_the_table_with_the_last_network() {
    let pool = net("<network><name>p</name><bridge name='br1'/><forward mode='nat'>
        <nat ipv6='yes'><address start='192.0.2.1' end='192.0.2.1'/></nat></forward>
        <ip address='10.4.0.1' prefix='24'/><ip family='ipv6' address='fd04::1' prefix='64'/></network>");
    let nat = &chains(&pool).unwrap()[1];
    let texts: Vec<String> = nat.rules.iter().map(Rule::text).collect();
    assert!(texts[2].ends_with("meta l4proto tcp snat ip to 192.0.2.1:1024-65535"));
    assert!(texts[4].ends_with("ip daddr != 10.4.0.0/24 snat ip to 192.0.2.1"));
    assert_eq!(texts[5], "ip6 saddr fd04::/64 ip6 daddr ff02::/16 return");
    assert!(texts[6].ends_with("meta l4proto tcp masquerade to :1024-65535"));

    let br = IfName::new("br1").unwrap();
    let mine = chain_names(&br).to_vec();
    let last = script(&stop_batch(&br, &mine));
    assert_eq!(
        last,
        "flush chain inet nwfilter-net fwd-br1\ndelete chain inet nwfilter-net fwd-br1\n\
         flush chain inet nwfilter-net nat-br1\ndelete chain inet nwfilter-net nat-br1\n\
         delete table inet nwfilter-net\n"
    );
    let with_other = [mine[0].clone(), "fwd-br9".to_owned()];
    let kept = script(&stop_batch(&br, &with_other));
    assert!(
        !kept.contains("nat-br1") && !kept.contains("delete table"),
        "{kept}"
    );
    assert!(stop_batch(&br, &[]).is_empty());
}
