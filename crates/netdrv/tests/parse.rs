//! Parsing, validation errors and formatting of `<network>` documents.

use std::net::{IpAddr, Ipv4Addr};

use netdrv::{format_network, parse_network, ForwardMode, Location, ParseError};

const DEFAULT: &str = "<network>
  <name>default</name>
  <bridge name=\"virbr0\"/>
  <forward/>
  <ip address=\"192.168.122.1\" netmask=\"255.255.255.0\">
    <dhcp>
      <range start=\"192.168.122.2\" end=\"192.168.122.254\"/>
    </dhcp>
  </ip>
</network>
";

/// The error for `xml`, with its location and message.
fn error(xml: &str) -> (Option<Location>, String) {
    let err = parse_network(xml).expect_err("must be refused");
    (err.location(), err.to_string())
}

fn assert_error(xml: &str, line: u32, needles: &[&str]) {
    let (at, msg) = error(xml);
    let at = at.unwrap_or_else(|| panic!("no location in: {msg}"));
    assert_eq!(at.line, line, "wrong line in: {msg}");
    for needle in needles {
        assert!(msg.contains(needle), "{needle:?} missing from: {msg}");
    }
}

/// `DEFAULT` with `from` replaced by `to`.
fn variant(from: &str, to: &str) -> String {
    assert!(
        DEFAULT.contains(from),
        "{from:?} not in the default network"
    );
    DEFAULT.replacen(from, to, 1)
}

#[test]
fn default_network_parses_to_the_expected_model() {
    let net = parse_network(DEFAULT).unwrap();
    assert_eq!(net.name.as_str(), "default");
    assert_eq!(net.forward.mode, ForwardMode::Nat);
    assert_eq!(net.bridge.name.as_ref().unwrap().as_str(), "virbr0");
    assert!(net.bridge.stp, "stp defaults to on");
    assert_eq!(net.ips.len(), 1);
    assert_eq!(net.ips[0].prefix_len(), 24);
    assert_eq!(net.ips[0].subnet().to_string(), "192.168.122.0/24");
    assert_eq!(
        net.ips[0].dhcp.ranges[0].start,
        IpAddr::V4(Ipv4Addr::new(192, 168, 122, 2))
    );
}

#[test]
fn format_prints_libvirts_layout() {
    let xml = "<network ipv6='yes'>
  <name>lab</name>
  <uuid>81ff0d90-c91e-6742-64da-4a736edb9a9b</uuid>
  <ip family='ipv6' address='2001:db8::1' prefix='64'/>
  <forward dev='eth1' mode='nat'><nat><address start='1.2.3.4' end='1.2.3.10'/><port start='500' end='1000'/></nat></forward>
  <bridge name='virbr9' stp='off' delay='2'/>
  <mac address='52:54:00:AB:cd:01'/>
  <domain name='lab.example' localOnly='yes'/>
  <dns forwardPlainNames='no'><forwarder addr='8.8.8.8'/><host ip='192.168.130.5'><hostname>db</hostname></host></dns>
  <ip address='192.168.130.1' prefix='24'>
    <tftp root='/srv/tftp'/>
    <dhcp>
      <range start='192.168.130.10' end='192.168.130.20'><lease expiry='2' unit='hours'/></range>
      <host mac='52:54:00:00:00:01' name='vm1' ip='192.168.130.5'/>
      <bootp file='pxelinux.0' server='192.168.130.1'/>
    </dhcp>
  </ip>
</network>";
    let want = "<network ipv6='yes'>
  <name>lab</name>
  <uuid>81ff0d90-c91e-6742-64da-4a736edb9a9b</uuid>
  <forward dev='eth1' mode='nat'>
    <nat>
      <address start='1.2.3.4' end='1.2.3.10'/>
      <port start='500' end='1000'/>
    </nat>
    <interface dev='eth1'/>
  </forward>
  <bridge name='virbr9' stp='off' delay='2'/>
  <mac address='52:54:00:ab:cd:01'/>
  <domain name='lab.example' localOnly='yes'/>
  <dns forwardPlainNames='no'>
    <forwarder addr='8.8.8.8'/>
    <host ip='192.168.130.5'>
      <hostname>db</hostname>
    </host>
  </dns>
  <ip family='ipv6' address='2001:db8::1' prefix='64'>
  </ip>
  <ip address='192.168.130.1' prefix='24'>
    <tftp root='/srv/tftp'/>
    <dhcp>
      <range start='192.168.130.10' end='192.168.130.20'>
        <lease expiry='2' unit='hours'/>
      </range>
      <host mac='52:54:00:00:00:01' name='vm1' ip='192.168.130.5'/>
      <bootp file='pxelinux.0' server='192.168.130.1'/>
    </dhcp>
  </ip>
</network>
";
    let net = parse_network(xml).unwrap();
    let out = format_network(&net);
    assert_eq!(out, want);
    assert_eq!(
        parse_network(&out).unwrap(),
        net,
        "format∘parse is lossless"
    );
}

#[test]
fn isolated_network_has_no_forward_element_and_a_default_bridge() {
    let net =
        parse_network("<network><name>iso</name><ip address='10.0.0.1' prefix='8'/></network>")
            .unwrap();
    assert_eq!(net.forward.mode, ForwardMode::Isolated);
    let out = format_network(&net);
    assert!(!out.contains("<forward"), "{out}");
    assert!(out.contains("<bridge stp='on' delay='0'/>"), "{out}");
}

#[test]
fn json_round_trip_keeps_the_model() {
    let net = parse_network(DEFAULT).unwrap();
    let json = serde_json::to_string(&net).unwrap();
    let back: netdrv::Network = serde_json::from_str(&json).unwrap();
    assert_eq!(back, net);
    assert!(back.validate().is_ok());
}

#[test]
fn json_with_a_bad_bridge_name_is_refused() {
    let net = parse_network(DEFAULT).unwrap();
    let json = serde_json::to_string(&net)
        .unwrap()
        .replace("\"virbr0\"", "\"a-bridge-name-too-long\"");
    assert!(serde_json::from_str::<netdrv::Network>(&json).is_err());
}

#[test]
fn bridge_name_must_be_an_interface_name() {
    assert_error(
        &variant("virbr0", "bridge-name-far-too-long"),
        3,
        &["<bridge>", "'name'", "bridge-name-far-too-long", "15 bytes"],
    );
    assert_error(
        &variant("virbr0", "vir br0"),
        3,
        &["<bridge>", "whitespace"],
    );
}

#[test]
fn range_outside_the_subnet_is_refused_at_the_range() {
    assert_error(
        &variant("192.168.122.254\"", "192.168.123.9\""),
        7,
        &[
            "<range>",
            "'end'",
            "192.168.123.9",
            "outside",
            "192.168.122.0/24",
        ],
    );
}

#[test]
fn range_ending_before_its_start_is_refused() {
    assert_error(
        &variant(
            "start=\"192.168.122.2\" end=\"192.168.122.254\"",
            "start=\"192.168.122.50\" end=\"192.168.122.10\"",
        ),
        7,
        &["'end'", "before start"],
    );
}

#[test]
fn overlapping_ranges_are_refused() {
    let xml = variant(
        "<range start=\"192.168.122.2\" end=\"192.168.122.254\"/>",
        "<range start=\"192.168.122.2\" end=\"192.168.122.100\"/>\n      <range start=\"192.168.122.90\" end=\"192.168.122.120\"/>",
    );
    assert_error(
        &xml,
        8,
        &["<range>", "overlaps", "192.168.122.2-192.168.122.100"],
    );
}

#[test]
fn range_may_not_hold_the_broadcast_address() {
    assert_error(
        &variant("192.168.122.254\"", "192.168.122.255\""),
        7,
        &["broadcast"],
    );
}

#[test]
fn static_host_outside_the_subnet_or_duplicated_is_refused() {
    let outside = variant(
        "</dhcp>",
        "  <host mac='52:54:00:00:00:01' ip='10.1.1.1'/>\n    </dhcp>",
    );
    assert_error(&outside, 8, &["<host>", "'ip'", "10.1.1.1", "outside"]);
    let twice = variant(
        "</dhcp>",
        "  <host mac='52:54:00:00:00:01' ip='192.168.122.5'/>\n<host mac='52:54:00:00:00:01' ip='192.168.122.6'/>\n    </dhcp>",
    );
    assert_error(&twice, 9, &["'mac'", "52:54:00:00:00:01", "earlier host"]);
    let multicast = variant(
        "</dhcp>",
        "  <host mac='01:00:5e:00:00:01' ip='192.168.122.5'/>\n    </dhcp>",
    );
    assert_error(&multicast, 8, &["multicast"]);
}

#[test]
fn netmask_and_prefix_together_are_refused() {
    assert_error(
        &variant(
            "netmask=\"255.255.255.0\"",
            "netmask=\"255.255.255.0\" prefix=\"24\"",
        ),
        5,
        &["<ip>", "not both"],
    );
    assert_error(
        &variant("255.255.255.0", "255.0.255.0"),
        5,
        &["'netmask'", "255.0.255.0", "contiguous"],
    );
}

#[test]
fn ipv6_address_needs_its_family() {
    let xml = variant(
        "</network>",
        "  <ip address='2001:db8::1' prefix='64'/>\n</network>",
    );
    assert_error(&xml, 10, &["'address'", "2001:db8::1", "family='ipv6'"]);
    let prefix = variant(
        "</network>",
        "  <ip family='ipv6' address='2001:db8::1' prefix='129'/>\n</network>",
    );
    assert_error(&prefix, 10, &["'prefix'", "129"]);
}

#[test]
fn nat_settings_belong_to_nat_mode_and_need_real_ranges() {
    assert_error(
        &variant(
            "<forward/>",
            "<forward mode='route'><nat><port start='1024' end='2000'/></nat></forward>",
        ),
        4,
        &["<nat>", "mode='nat'"],
    );
    assert_error(
        &variant(
            "<forward/>",
            "<forward><nat><port start='2000' end='2000'/></nat></forward>",
        ),
        4,
        &["<port>", "'end'", "2000", "greater than start"],
    );
    assert_error(
        &variant(
            "<forward/>",
            "<forward><nat><address start='1.2.3.9' end='1.2.3.4'/></nat></forward>",
        ),
        4,
        &["<address>", "before start"],
    );
}

#[test]
fn forwarding_without_an_address_is_refused() {
    assert_error(
        "<network><name>x</name><bridge name='br9'/>\n<forward mode='route'/></network>",
        2,
        &["<forward>", "route", "at least one <ip>"],
    );
}

#[test]
fn unknown_mode_element_and_attribute_are_refused_not_dropped() {
    assert_error(
        &variant("<forward/>", "<forward mode='vepa'/>"),
        4,
        &["'mode'", "vepa", "nat, route and open"],
    );
    assert_error(
        &variant("<forward/>", "<forward/><vlan/>"),
        4,
        &["<vlan>", "not supported"],
    );
    assert_error(
        &variant("<bridge name", "<bridge zone='trusted' name"),
        3,
        &["'zone'", "unknown attribute"],
    );
}

#[test]
fn dhcp_on_two_ipv4_addresses_is_refused() {
    let xml = variant(
        "</network>",
        "  <ip address='10.9.0.1' prefix='24'><dhcp><range start='10.9.0.2' end='10.9.0.9'/></dhcp></ip>\n</network>",
    );
    assert_error(&xml, 10, &["one IPv4 <ip>"]);
}

#[test]
fn names_that_would_break_paths_or_config_lines_are_refused() {
    assert_error(
        &variant("<name>default", "<name>a/b"),
        2,
        &["<name>", "'/'"],
    );
    assert_error(
        &variant(
            "<forward/>",
            "<forward/><domain name='evil&#10;dhcp-script=/bin/sh'/>",
        ),
        4,
        &["<domain>", "not a DNS name"],
    );
    assert_error(
        &variant(
            "<forward/>",
            "<forward/><dns enable='no'><forwarder addr='8.8.8.8'/></dns>",
        ),
        4,
        &["<dns>", "disabled"],
    );
}

#[test]
fn malformed_xml_and_wrong_documents_are_refused_with_a_position() {
    let (at, msg) = error("<network>\n  <name>x</name>\n  <bridge name='a'\n</network>");
    assert!(at.is_some_and(|l| l.line >= 3), "{msg}");
    assert!(msg.contains("not well-formed"), "{msg}");
    let err = parse_network("<filter name='x'/>").unwrap_err();
    assert!(matches!(err, ParseError::WrongRoot { .. }), "{err}");
    assert!(err.to_string().contains("<filter>"));
}

#[test]
fn oversized_documents_are_refused_before_parsing() {
    let huge = " ".repeat(netdrv::MAX_DOCUMENT_BYTES + 1);
    assert!(matches!(
        parse_network(&huge),
        Err(ParseError::TooLarge { .. })
    ));
}

#[test]
fn validate_catches_a_hand_built_network() {
    let mut net = parse_network(DEFAULT).unwrap();
    net.ips[0].dhcp.ranges[0].end = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
    let err = net.validate().unwrap_err();
    assert_eq!(err.element, "range");
    assert_eq!(err.attribute.as_deref(), Some("end"));
}

#[test]
fn truncated_and_corrupted_corpus_documents_never_panic() {
    let dir = std::env::var_os("LIBVIRT_CORPUS")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/conformance/libvirt-9.0.0")
        })
        .join("networkxml2firewall");
    let mut docs = vec![DEFAULT.to_owned()];
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            if entry.path().extension().is_some_and(|e| e == "xml") {
                docs.push(std::fs::read_to_string(entry.path()).unwrap());
            }
        }
    }
    for doc in docs {
        for (cut, _) in doc.char_indices() {
            let _ = parse_network(&doc[..cut]);
            // Replace one character by a quote, a '<' or a digit.
            for junk in ["'", "<", "9"] {
                let mut bad = doc.clone();
                let end = cut + doc[cut..].chars().next().map_or(0, char::len_utf8);
                bad.replace_range(cut..end, junk);
                if let Ok(net) = parse_network(&bad) {
                    // Whatever parses must format and re-parse to itself.
                    assert_eq!(parse_network(&format_network(&net)).unwrap(), net);
                }
            }
        }
    }
}

#[test]
fn a_network_filterref_parses_and_prints_after_the_addresses() {
    let xml = variant(
        "</network>",
        "  <filterref filter='clean-traffic'>\n    \
         <parameter name='CTRL_IP_LEARNING' value='dhcp'/>\n    \
         <parameter name='IP' value='192.168.122.9'/>\n    \
         <parameter name='IP' value='192.168.122.10'/>\n  \
         </filterref>\n</network>",
    );
    let net = parse_network(&xml).unwrap();
    let filterref = net.filterref.as_ref().expect("the filterref is kept");
    assert_eq!(filterref.filter.as_str(), "clean-traffic");
    let ips = filterref.params.get("IP").unwrap();
    assert_eq!(ips, ["192.168.122.9", "192.168.122.10"]);
    let printed = format_network(&net);
    let tail = "  </ip>\n  <filterref filter='clean-traffic'>\n    \
                <parameter name='CTRL_IP_LEARNING' value='dhcp'/>\n    \
                <parameter name='IP' value='192.168.122.9'/>\n    \
                <parameter name='IP' value='192.168.122.10'/>\n  \
                </filterref>\n</network>\n";
    assert!(printed.ends_with(tail), "{printed}");
    assert_eq!(parse_network(&printed).unwrap(), net, "format round-trips");
    let bare = parse_network(&variant("</network>", "<filterref filter='x'/></network>"));
    let printed = format_network(&bare.unwrap());
    assert!(
        printed.ends_with("  <filterref filter='x'/>\n</network>\n"),
        "{printed}"
    );
}

#[test]
fn a_network_without_a_filterref_prints_none() {
    let printed = format_network(&parse_network(DEFAULT).unwrap());
    assert!(!printed.contains("filterref"), "{printed}");
}

#[test]
fn a_bad_network_filterref_is_refused_naming_the_attribute() {
    let xml = variant("</network>", "<filterref/></network>");
    assert_error(&xml, 10, &["<filterref>", "'filter'"]);
    let xml = variant(
        "</network>",
        "<filterref filter='f'>\n<parameter name='I-P' value='1'/></filterref></network>",
    );
    assert_error(&xml, 11, &["<parameter>", "'name'", "I-P"]);
    let xml = variant(
        "</network>",
        "<filterref filter='f'>\n<parameter name='IP' value='a b'/></filterref></network>",
    );
    assert_error(&xml, 11, &["<parameter>", "'value'", "a b"]);
    let xml = variant(
        "</network>",
        "<filterref filter='f'><rule/></filterref></network>",
    );
    assert_error(&xml, 10, &["<rule>", "not supported"]);
    let twice = "<filterref filter='f'/><filterref filter='g'/></network>";
    assert_error(&variant("</network>", twice), 10, &["may appear only once"]);
}

#[test]
fn portgroups_parse_with_their_filters_and_print_before_the_networks() {
    let xml = variant(
        "</network>",
        "  <portgroup name='web' default='yes'>\n    \
         <filterref filter='clean-traffic'/>\n  </portgroup>\n  \
         <portgroup name='admin'/>\n  \
         <filterref filter='no-mac-spoofing'/>\n</network>",
    );
    let net = parse_network(&xml).unwrap();
    assert_eq!(net.portgroups.len(), 2);
    let filter = |group| net.port_filter(group).map(|f| f.filter.to_string());
    assert_eq!(
        filter(None).as_deref(),
        Some("clean-traffic"),
        "the default group's"
    );
    assert_eq!(filter(Some("web")).as_deref(), Some("clean-traffic"));
    assert_eq!(
        filter(Some("admin")).as_deref(),
        Some("no-mac-spoofing"),
        "the network's"
    );
    assert_eq!(
        filter(Some("typo")).as_deref(),
        Some("no-mac-spoofing"),
        "never unfiltered"
    );
    let printed = format_network(&net);
    let tail = "  </ip>\n  <portgroup name='web' default='yes'>\n    \
                <filterref filter='clean-traffic'/>\n  </portgroup>\n  \
                <portgroup name='admin'/>\n  \
                <filterref filter='no-mac-spoofing'/>\n</network>\n";
    assert!(printed.ends_with(tail), "{printed}");
    assert_eq!(parse_network(&printed).unwrap(), net, "format round-trips");
}

#[test]
fn bad_portgroups_are_refused_naming_the_attribute() {
    let twice = "<portgroup name='a'/><portgroup name='a'/></network>";
    assert_error(
        &variant("</network>", twice),
        10,
        &["<portgroup>", "'name'", "second"],
    );
    let defaults =
        "<portgroup name='a' default='yes'/><portgroup name='b' default='yes'/></network>";
    assert_error(
        &variant("</network>", defaults),
        10,
        &["'default'", "second default"],
    );
    let bad_name = "<portgroup name='a=b'/></network>";
    assert_error(
        &variant("</network>", bad_name),
        10,
        &["<portgroup>", "'name'", "a=b"],
    );
    let vlan = "<portgroup name='a'><vlan/></portgroup></network>";
    assert_error(
        &variant("</network>", vlan),
        10,
        &["<vlan>", "not supported"],
    );
    let missing = "<portgroup default='yes'/></network>";
    assert_error(
        &variant("</network>", missing),
        10,
        &["<portgroup>", "'name'"],
    );
}
