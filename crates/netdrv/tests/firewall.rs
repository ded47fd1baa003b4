//! Firewall rules for cases the libvirt corpus does not cover; expected
//! commands from the reference (§8.6, verified against libvirt 9.0).

use host_io::{OnError, Tool};
use netdrv::firewall::{add_commands, remove_commands};
use netdrv::{parse_network, FirewallError};

/// `tool args…` without `-w`, one string per command.
fn lines(xml: &str) -> Vec<String> {
    let net = parse_network(xml).expect("valid network");
    add_commands(&net)
        .expect("rules")
        .iter()
        .map(|c| {
            let args: Vec<&str> = c
                .args
                .iter()
                .map(String::as_str)
                .filter(|a| *a != "-w")
                .collect();
            format!("{} {}", c.tool.program(), args.join(" "))
        })
        .collect()
}

#[test]
fn snat_pool_uplink_and_port_range() {
    let got = lines(
        "<network><name>n9</name><bridge name='virbr9'/>
           <forward mode='nat' dev='eth1'><nat><address start='1.2.3.4' end='1.2.3.10'/><port start='500' end='1000'/></nat></forward>
           <ip address='192.168.130.1' prefix='24'/></network>",
    );
    let per_ip: Vec<&str> = got[11..].iter().map(String::as_str).collect();
    assert_eq!(
        per_ip,
        [
            "iptables --table filter --insert LIBVIRT_FWO --source 192.168.130.0/24 --in-interface virbr9 --out-interface eth1 --jump ACCEPT",
            "iptables --table filter --insert LIBVIRT_FWI --destination 192.168.130.0/24 --in-interface eth1 --out-interface virbr9 --match conntrack --ctstate ESTABLISHED,RELATED --jump ACCEPT",
            "iptables --table nat --insert LIBVIRT_PRT --source 192.168.130.0/24 ! --destination 192.168.130.0/24 --out-interface eth1 --jump SNAT --to-source 1.2.3.4-1.2.3.10",
            "iptables --table nat --insert LIBVIRT_PRT --source 192.168.130.0/24 -p udp ! --destination 192.168.130.0/24 --out-interface eth1 --jump SNAT --to-source 1.2.3.4-1.2.3.10:500-1000",
            "iptables --table nat --insert LIBVIRT_PRT --source 192.168.130.0/24 -p tcp ! --destination 192.168.130.0/24 --out-interface eth1 --jump SNAT --to-source 1.2.3.4-1.2.3.10:500-1000",
            "iptables --table nat --insert LIBVIRT_PRT --out-interface eth1 --source 192.168.130.0/24 --destination 255.255.255.255/32 --jump RETURN",
            "iptables --table nat --insert LIBVIRT_PRT --out-interface eth1 --source 192.168.130.0/24 --destination 224.0.0.0/24 --jump RETURN",
        ]
    );
    assert_eq!(got.len(), 18, "no DHCP, so no checksum rule");
}

#[test]
fn isolated_ipv6_without_gateway_gets_ipv6_isolation_only() {
    let got = lines(
        "<network ipv6='yes'><name>iso</name><bridge name='virbr3'/>
           <ip address='10.3.0.1' prefix='24'><dhcp><host mac='52:54:00:00:00:03' ip='10.3.0.3'/></dhcp></ip></network>",
    );
    let v6: Vec<&String> = got.iter().filter(|l| l.starts_with("ip6tables")).collect();
    assert_eq!(v6.len(), 3, "reject out, reject in, cross: {v6:?}");
    assert!(!got
        .iter()
        .any(|l| l.contains("--source") || l.contains("--destination ")));
    assert!(
        got.last().unwrap().contains("CHECKSUM"),
        "a static host is DHCP service"
    );
}

#[test]
fn open_network_adds_nothing() {
    let net = parse_network(
        "<network><name>o</name><bridge name='virbr4'/><forward mode='open'/><ip address='10.4.0.1' prefix='24'/></network>",
    )
    .unwrap();
    assert!(add_commands(&net).unwrap().is_empty());
    assert!(remove_commands(&net).unwrap().is_empty());
}

#[test]
fn checksum_rule_failure_is_tolerated_but_no_other() {
    let net = parse_network(
        "<network><name>d</name><bridge name='virbr5'/><forward/>
           <ip address='10.5.0.1' prefix='24'><dhcp><range start='10.5.0.2' end='10.5.0.9'/></dhcp></ip></network>",
    )
    .unwrap();
    let cmds = add_commands(&net).unwrap();
    let (last, rest) = cmds.split_last().unwrap();
    assert_eq!(last.on_error, OnError::Ignore);
    assert_eq!(last.tool, Tool::Iptables);
    assert!(rest.iter().all(|c| c.on_error == OnError::Fail));
}

#[test]
fn a_network_without_a_bridge_name_cannot_be_rendered() {
    let net =
        parse_network("<network><name>nobr</name><ip address='10.6.0.1' prefix='24'/></network>")
            .unwrap();
    assert_eq!(
        add_commands(&net),
        Err(FirewallError::NoBridgeName("nobr".into()))
    );
}
