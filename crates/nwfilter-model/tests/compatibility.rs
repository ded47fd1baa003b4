//! Pins every decision recorded in docs/compatibility.md: where we match
//! libvirt 9.0 and where we deliberately differ. Test names are the ones
//! the table cites.

use nwfilter_model::{
    format_binding, format_filter, parse_binding, parse_filter, parse_filter_with, Attr, Entry,
    ParseError, ParseOptions,
};

const UUID: &str = "5c6d49af-b071-6127-b4ec-6f8ed4b55335";

fn filter_doc(head: &str, body: &str) -> String {
    format!("<filter {head}><uuid>{UUID}</uuid>{body}</filter>")
}

/// A root filter with one `accept out` rule holding `elements`.
fn rule_doc(elements: &str) -> String {
    filter_doc(
        "name='f'",
        &format!("<rule action='accept' direction='out'>{elements}</rule>"),
    )
}

fn format(xml: &str) -> String {
    format_filter(&parse_filter(xml).unwrap_or_else(|e| panic!("{e}\n{xml}")))
}

/// The protocol element lines libvirt's formatter would print for a rule.
fn rule_out(elements: &str) -> String {
    let out = format(&rule_doc(elements));
    out.lines()
        .filter(|l| l.starts_with("    <"))
        .map(str::trim)
        .collect::<Vec<_>>()
        .join("\n")
}

fn error(xml: &str) -> ParseError {
    match parse_filter(xml) {
        Ok(f) => panic!("accepted:\n{xml}\nas\n{}", format_filter(&f)),
        Err(e) => e,
    }
}

/// The document is refused, naming `attr` (or, with `None`, no attribute).
fn refused(xml: &str, attr: Option<&str>) -> String {
    let e = error(xml);
    assert_eq!(e.attr(), attr, "{e}");
    e.to_string()
}

fn first_line(xml: &str) -> String {
    format(xml).lines().next().unwrap().to_owned()
}

// §12.1
#[test]
fn stp_chain_default_priority_is_zero_as_in_libvirt() {
    let f = parse_filter(&filter_doc("name='f' chain='stp-x'", "")).unwrap();
    assert_eq!(f.priority, 0);
    assert_eq!(
        first_line(&filter_doc("name='f' chain='stp-x'", "")),
        "<filter name='f' chain='stp-x'>"
    );
}

// §12.2
#[test]
fn destination_ports_keep_their_own_negation() {
    // libvirt loses this negation (srcportstart is absent).
    assert_eq!(
        rule_out("<udp match='no' dstportstart='53'/>"),
        "<udp match='no' dstportstart='53'/>"
    );
    // libvirt invents a negation of dstportstart here.
    assert_eq!(
        rule_out("<tcp dstportstart='80'/><tcp match='no' srcportstart='1'/>"),
        "<tcp match='no' srcportstart='1'/>\n<tcp dstportstart='80'/>"
    );
    // An end follows its own start.
    assert_eq!(
        rule_out("<tcp match='no' dstportstart='80'/><tcp dstportend='90'/>"),
        "<tcp match='no' dstportstart='80' dstportend='90'/>"
    );
}

#[test]
fn companions_follow_their_source_like_libvirt() {
    // mask ← address, as libvirt: the pair is one match.
    assert_eq!(
        rule_out("<tcp srcipaddr='1.2.3.4'/><tcp match='no' srcipmask='24'/>"),
        "<tcp srcipaddr='1.2.3.4' srcipmask='24'/>"
    );
    // ICMP code ← type: iptables' --icmp-type type/code is one match.
    assert_eq!(
        rule_out("<icmp match='no' type='8'/><icmp code='0'/>"),
        "<icmp match='no' type='8' code='0'/>"
    );
    // Without the source, a companion keeps its own flag (libvirt clears it).
    assert_eq!(
        rule_out("<icmp match='no' code='0'/>"),
        "<icmp match='no' code='0'/>"
    );
}

// §12.3
#[test]
fn ipset_and_flags_are_kept_on_every_l4_element() {
    assert_eq!(
        rule_out("<tcp ipset='s' ipsetflags='src,dst'/>"),
        "<tcp ipset='s' ipsetflags='src,dst'/>"
    );
    assert_eq!(
        rule_out("<udp ipset='s'/>"),
        "<udp ipset='s' ipsetflags='src'/>"
    );
    assert_eq!(
        rule_out("<all ipset='s'/>"),
        "<all ipset='s' ipsetflags='src'/>"
    );
    refused(&rule_doc("<tcp ipsetflags='src'/>"), Some("ipsetflags"));
    // The flags take the set's negation: they form one match.
    assert_eq!(
        rule_out("<tcp match='no' ipset='s'/><tcp ipsetflags='dst'/>"),
        "<tcp match='no' ipset='s' ipsetflags='dst'/>"
    );
}

#[test]
fn ipset_round_trip_is_a_fixed_point() {
    let once = format(&rule_doc("<tcp ipset='s'/>"));
    assert_eq!(format(&once), once);
}

// §12.4
#[test]
fn dstipto_is_ipv6_on_ipv6_elements() {
    assert_eq!(
        rule_out("<tcp-ipv6 dstipfrom='::1' dstipto='::4'/>"),
        "<tcp-ipv6 dstipfrom='::1' dstipto='::4'/>"
    );
    refused(&rule_doc("<tcp-ipv6 dstipto='1.2.3.4'/>"), Some("dstipto"));
}

// §12.5 and the ignored attributes of §11
#[test]
fn unknown_attributes_are_ignored_with_a_warning_or_refused_when_strict() {
    let cases = [
        ("<tcp-ipv6 flags='SYN/SYN'/>", "tcp-ipv6", "flags"),
        ("<ipv6 dscp='2'/>", "ipv6", "dscp"),
        ("<stp dstmacaddr='1:2:3:4:5:6'/>", "stp", "dstmacaddr"),
        ("<tcp dstmacaddr='1:2:3:4:5:6'/>", "tcp", "dstmacaddr"),
        ("<stp port_hi='1'/>", "stp", "port_hi"),
        ("<stp msg-age='1'/>", "stp", "msg-age"),
        ("<ip state='NEW'/>", "ip", "state"),
        ("<tcp dstport='22'/>", "tcp", "dstport"),
    ];
    for (element, name, attr) in cases {
        let doc = rule_doc(element);
        let strict = parse_filter_with(&doc, ParseOptions::STRICT).unwrap_err();
        assert_eq!(strict.attr(), Some(attr), "{strict}");
        assert!(strict.to_string().contains("unknown attribute"), "{strict}");
        let parsed = parse_filter_with(&doc, ParseOptions::default()).unwrap();
        assert_eq!(parsed.warnings.len(), 1, "{doc}");
        let warning = &parsed.warnings[0];
        assert_eq!(warning.location.element.as_deref(), Some(name));
        assert_eq!(warning.location.attr.as_deref(), Some(attr));
        assert_eq!(warning.location.line, 1);
        let out = format_filter(&parsed.value);
        assert!(!out.contains(attr), "the attribute vanishes:\n{out}");
    }
    for doc in [
        filter_doc("name='f' colour='red'", ""),
        filter_doc("name='f'", "<rule action='drop' direction='in' prio='1'/>"),
    ] {
        let strict = parse_filter_with(&doc, ParseOptions::STRICT).unwrap_err();
        assert!(strict.to_string().contains("unknown attribute"), "{strict}");
        assert_eq!(parse_filter(&doc).map(|_| ()), Ok(()));
    }
}

/// libvirt-tck's `arp-test` puts `protocolid` on `<arp>` (libvirt reads
/// only the attributes `arp` has); the filter loads, the attribute goes.
#[test]
fn libvirt_tck_arp_filter_with_protocolid_loads_with_a_warning_naming_line_and_attribute() {
    let doc = "<filter name='tck-testcase' chain='root'>
  <uuid>0a5288ea-612c-834a-6bbf-82a03a1a7244</uuid>
  <rule action='accept' direction='out'>
      <arp srcmacaddr='1:2:3:4:5:6' srcmacmask='ff:ff:ff:ff:ff:ff'
           protocolid='arp'
           opcode='Request'/>
  </rule>
</filter>";
    let parsed = parse_filter_with(doc, ParseOptions::default()).unwrap();
    let warnings: Vec<String> = (parsed.warnings.iter())
        .map(|w| w.clone().in_doc("arp-test.xml").to_string())
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    assert!(
        warnings[0].starts_with("arp-test.xml:5:12: <arp> attribute protocolid=\"arp\": "),
        "{warnings:?}"
    );
    let out = format_filter(&parsed.value);
    assert!(
        out.contains("opcode='Request'") && !out.contains("protocolid"),
        "{out}"
    );
    let strict = parse_filter_with(doc, ParseOptions::STRICT).unwrap_err();
    assert_eq!(strict.attr(), Some("protocolid"));
}

// §12.6
#[test]
fn names_too_long_for_a_file_name_are_refused_with_a_reason() {
    let long = "f".repeat(300);
    let message = refused(&filter_doc(&format!("name='{long}'"), ""), Some("name"));
    assert!(message.contains("longer than 200 bytes"), "{message}");
    let longest = "f".repeat(200);
    assert!(parse_filter(&filter_doc(&format!("name='{longest}'"), "")).is_ok());
}

#[test]
fn names_that_would_break_xml_or_paths_are_refused() {
    for name in ["a/b", "a&apos;b", "a&amp;b", "a&lt;b", "a b", ""] {
        refused(&filter_doc(&format!("name='{name}'"), ""), Some("name"));
        let r = format!("<filterref filter='{name}'/>");
        refused(&filter_doc("name='f'", &r), Some("filter"));
    }
}

#[test]
fn root_prefixed_chain_gets_a_message() {
    let message = refused(&filter_doc("name='f' chain='root-x'", ""), Some("chain"));
    assert!(message.contains("'root' only"), "{message}");
}

// §12.7
#[test]
fn filter_without_uuid_gets_a_random_one() {
    let a = parse_filter("<filter name='f'/>").unwrap();
    let b = parse_filter("<filter name='f'/>").unwrap();
    assert_ne!(a.uuid, b.uuid);
    assert_eq!(a.uuid.get_version_num(), 4);
}

// §12.8
#[test]
fn explicit_zero_priority_on_a_non_root_chain_round_trips() {
    let xml = filter_doc("name='f' chain='ipv4-x' priority='0'", "");
    let once = format(&xml);
    assert!(
        once.starts_with("<filter name='f' chain='ipv4-x' priority='0'>"),
        "{once}"
    );
    assert_eq!(parse_filter(&once).unwrap().priority, 0);
    // The default is still printed as libvirt does.
    assert_eq!(
        first_line(&filter_doc("name='f' chain='ipv4-x'", "")),
        "<filter name='f' chain='ipv4-x' priority='-700'>"
    );
}

// §12.10 and §6.2
#[test]
fn bad_parameters_are_errors_not_dropped() {
    for (param, attr) in [
        ("name='a-b' value='1'", "name"),
        ("name='' value='1'", "name"),
        ("name='A' value='10.0.0.0/8'", "value"),
        ("name='A' value=''", "value"),
        ("name='A' value='src,dst'", "value"),
        ("value='1'", "name"),
    ] {
        let r = format!("<filterref filter='g'><parameter {param}/></filterref>");
        refused(&filter_doc("name='f'", &r), Some(attr));
    }
}

#[test]
fn parameters_sorted_by_name_values_in_order() {
    let r = "<filterref filter='g'><parameter name='b' value='2'/><parameter name='IP' value='1'/>\
             <parameter name='b' value='1'/><parameter name='b' value='2'/></filterref>";
    let out = format(&filter_doc("name='f'", r));
    let params: Vec<&str> = out
        .lines()
        .filter(|l| l.contains("<parameter"))
        .map(str::trim)
        .collect();
    assert_eq!(
        params,
        [
            "<parameter name='IP' value='1'/>",
            "<parameter name='b' value='2'/>",
            "<parameter name='b' value='1'/>",
            "<parameter name='b' value='2'/>"
        ]
    );
}

// §12.11: the code, not the docs, is the reference.
#[test]
fn code_wins_over_docs() {
    refused(&rule_doc("<icmp type='256'/>"), Some("type"));
    assert_eq!(
        rule_out("<mac protocolid='vlan'/>"),
        "<mac protocolid='vlan'/>"
    );
    assert_eq!(
        rule_out("<vlan encap-protocol='0xffff'/>"),
        "<vlan encap-protocol='0xffff'/>"
    );
    assert_eq!(
        rule_out("<ipv6 type='1' typeend='2' code='3' codeend='4'/>"),
        "<ipv6 type='1' typeend='2' code='3' codeend='4'/>"
    );
}

// §11: what libvirt silently accepts.
#[test]
fn unknown_and_extra_elements_are_refused() {
    let unknown = refused(&rule_doc("<TCP dstportstart='22'/>"), None);
    assert!(unknown.contains("<TCP>"), "{unknown}");
    let second = refused(&rule_doc("<tcp/><udp/>"), None);
    assert!(second.contains("<tcp> came first"), "{second}");
    refused(&filter_doc("name='f'", "<rules/>"), None);
    refused(
        &filter_doc("name='f'", "<filterref filter='g'><param/></filterref>"),
        None,
    );
    refused(
        &filter_doc("name='f'", &format!("<uuid>{UUID}</uuid>")),
        None,
    );
}

#[test]
fn repeated_attribute_in_one_rule_is_refused() {
    refused(
        &rule_doc("<tcp srcportstart='1'/><tcp srcportstart='2'/>"),
        Some("srcportstart"),
    );
}

#[test]
fn bad_rule_priority_is_an_error_not_500() {
    for p in ["abc", "0x10", "2000", "-1001", ""] {
        let xml = filter_doc(
            "name='f'",
            &format!("<rule action='drop' direction='in' priority='{p}'/>"),
        );
        refused(&xml, Some("priority"));
    }
    let xml = filter_doc(
        "name='f'",
        "<rule action='drop' direction='in' priority=' +7'/>",
    );
    assert!(format(&xml).contains("priority='7'"));
}

#[test]
fn statematch_and_match_take_only_unambiguous_values() {
    for s in ["no", "yes", "off", ""] {
        let xml = filter_doc(
            "name='f'",
            &format!("<rule action='drop' direction='in' statematch='{s}'/>"),
        );
        refused(&xml, Some("statematch"));
    }
    let off = filter_doc(
        "name='f'",
        "<rule action='drop' direction='in' statematch='FALSE'/>",
    );
    assert!(format(&off).contains("statematch='false'"));
    let on = filter_doc(
        "name='f'",
        "<rule action='drop' direction='in' statematch='1'/>",
    );
    assert!(!format(&on).contains("statematch"));
    refused(
        &rule_doc("<tcp match='NO' srcportstart='1'/>"),
        Some("match"),
    );
    assert_eq!(
        rule_out("<mac match='yes' srcmacaddr='1:2:3:4:5:6'/>"),
        "<mac srcmacaddr='01:02:03:04:05:06'/>"
    );
}

#[test]
fn filter_priority_without_chain_is_kept_on_root() {
    assert_eq!(
        first_line(&filter_doc("name='f' priority='-100'", "")),
        "<filter name='f' chain='root' priority='-100'>"
    );
    refused(&filter_doc("name='f' priority='x'", ""), Some("priority"));
    refused(
        &filter_doc("name='f' chain='ipv4' priority='1001'", ""),
        Some("priority"),
    );
}

#[test]
fn bool_other_than_true_or_false_is_refused() {
    refused(&rule_doc("<arp gratuitous='YES'/>"), Some("gratuitous"));
    assert_eq!(
        rule_out("<arp gratuitous='no'/>"),
        "<arp gratuitous='false'/>"
    );
}

#[test]
fn long_comment_is_truncated_at_a_character_boundary() {
    let comment = format!("{}éé", "x".repeat(255));
    let out = rule_out(&format!("<tcp comment='{comment}'/>"));
    assert_eq!(out, format!("<tcp comment='{}'/>", "x".repeat(255)));
    refused(&rule_doc("<tcp comment='a&#10;b'/>"), Some("comment"));
    // Markup in comments is escaped, never pasted.
    assert_eq!(
        rule_out("<tcp comment='&lt;b&gt; &amp; &quot;q&quot; &apos;a&apos;'/>"),
        "<tcp comment='&lt;b&gt; &amp; &quot;q&quot; &apos;a&apos;'/>"
    );
}

#[test]
fn junk_after_values_is_refused_but_blanks_after_brackets_are_not() {
    refused(
        &rule_doc("<mac srcmacaddr='1:2:3:4:5:6 junk'/>"),
        Some("srcmacaddr"),
    );
    refused(&rule_doc("<tcp srcipaddr='$A[3]xyz'/>"), Some("srcipaddr"));
    assert_eq!(
        rule_out("<tcp srcipaddr='$A[ 3 ] '/>"),
        "<tcp srcipaddr='$A[3]'/>"
    );
    refused(&rule_doc("<tcp srcipaddr='$'/>"), Some("srcipaddr"));
    refused(&rule_doc("<tcp state=''/>"), Some("state"));
    refused(&rule_doc("<all ipset=''/>"), Some("ipset"));
    refused(
        &rule_doc("<tcp-ipv6 srcipaddr='fe80::1%eth0'/>"),
        Some("srcipaddr"),
    );
    refused(&rule_doc("<stp root-cost='-1'/>"), Some("root-cost"));
}

#[test]
fn inet_aton_forms_and_reversed_port_ranges_are_accepted_like_libvirt() {
    assert_eq!(
        rule_out("<ip srcipaddr='010.1'/>"),
        "<ip srcipaddr='8.0.0.1'/>"
    );
    assert_eq!(
        rule_out("<tcp dstportstart='100' dstportend='50'/>"),
        "<tcp dstportstart='100' dstportend='50'/>"
    );
}

#[test]
fn ip_port_check_does_not_depend_on_element_order() {
    assert_eq!(
        rule_out("<ip dstportstart='80'/><ip protocol='tcp'/>"),
        "<ip protocol='tcp' dstportstart='80'/>"
    );
    refused(&rule_doc("<ip dstportstart='80'/>"), Some("dstportstart"));
    refused(
        &rule_doc("<ipv6 protocol='$P' dstportstart='80'/>"),
        Some("dstportstart"),
    );
}

#[test]
fn negation_splits_elements_in_canonical_order() {
    assert_eq!(
        rule_out("<tcp match='no' srcipaddr='1.1.1.1'/><tcp srcmacaddr='1:2:3:4:5:6' dstipaddr='2.2.2.2'/>"),
        "<tcp srcmacaddr='01:02:03:04:05:06'/>\n<tcp match='no' srcipaddr='1.1.1.1'/>\n<tcp dstipaddr='2.2.2.2'/>"
    );
}

#[test]
fn rule_and_reference_order_is_kept() {
    let body = "<filterref filter='a'/><rule action='drop' direction='in'/><filterref filter='b'/>";
    let f = parse_filter(&filter_doc("name='f'", body)).unwrap();
    let kinds: Vec<&str> = f
        .entries
        .iter()
        .map(|e| match e {
            Entry::Rule(_) => "rule",
            Entry::Ref(r) => r.filter.as_str(),
        })
        .collect();
    assert_eq!(kinds, ["a", "rule", "b"]);
}

#[test]
fn the_last_bad_attribute_of_an_element_is_reported_as_libvirt_does() {
    let e = error(&rule_doc("<icmp type='256' code='256'/>"));
    assert_eq!(e.attr(), Some(Attr::Code.name()));
}

#[test]
fn binding_names_are_escaped_and_devices_validated() {
    let doc = |owner: &str, port: &str| {
        format!(
            "<filterbinding><owner><name>{owner}</name><uuid>{UUID}</uuid></owner>\
             <portdev name='{port}'/><mac address='52:54:0:1:2:3'/><filterref filter='clean-traffic'/>\
             </filterbinding>"
        )
    };
    let b = parse_binding(&doc("a&amp;b&lt;c", "vnet0")).unwrap();
    assert_eq!(b.owner.name, "a&b<c");
    let out = format_binding(&b);
    assert!(out.contains("<name>a&amp;b&lt;c</name>"), "{out}");
    assert!(out.contains("<mac address='52:54:00:01:02:03'/>"), "{out}");
    for port in ["", "a/b", "averyveryverylongname", "a b"] {
        let e = parse_binding(&doc("vm", port)).unwrap_err();
        assert_eq!(e.attr(), Some("name"), "{e}");
    }
    let e = parse_binding("<filterbinding/>").unwrap_err();
    assert!(e.to_string().contains("<owner>"), "{e}");
}

#[test]
fn port_names_a_tool_would_read_as_options_are_refused() {
    let doc = format!(
        "<filterbinding><owner><name>vm</name><uuid>{UUID}</uuid></owner>\
         <portdev name='-j'/><mac address='52:54:0:1:2:3'/><filterref filter='clean-traffic'/>\
         </filterbinding>"
    );
    let e = parse_binding(&doc).unwrap_err();
    assert_eq!(e.attr(), Some("name"), "{e}");
    let text = e.to_string();
    assert!(
        text.contains("\"-j\"") && text.contains("read it as an option"),
        "{text}"
    );
    for name in ["-j", "--help", "-"] {
        assert!(nwfilter_model::IfName::new(name).is_err(), "{name}");
    }
    assert!(nwfilter_model::IfName::new("vnet-j").is_ok());
    assert!(nwfilter_model::IfName::is_refused_only_as_option_like("-j"));
    assert!(!nwfilter_model::IfName::is_refused_only_as_option_like(
        "-a/b"
    ));
    assert!(!nwfilter_model::IfName::is_refused_only_as_option_like(
        "vnet0"
    ));
}

#[test]
fn wrong_root_element_is_named() {
    let e = nwfilter_model::parse_document("<network/>").unwrap_err();
    assert!(
        e.to_string()
            .contains("expected root element <filter> or <filterbinding>, found <network>"),
        "{e}"
    );
    let e = parse_binding("<filter name='f'/>").unwrap_err();
    assert!(
        e.to_string()
            .contains("expected root element <filterbinding>, found <filter>"),
        "{e}"
    );
}
