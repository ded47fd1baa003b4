//! The entry point's calls that touch no kernel state, through the public
//! API only: filters, refused bindings and the kind of each error. (What
//! changes the kernel is tested in a namespace: `netns_vm_cycle.rs`.)

use nwfilter::{BindingBuilder, Error, Firewall, Host, HostConfig, Uuid};

const NO_SMTP: &str = "<filter name='no-smtp' chain='root'>\
    <rule action='drop' direction='out'><tcp dstportstart='25'/></rule></filter>";

fn host(dir: &tempfile::TempDir, learning: bool) -> Host {
    HostConfig::new(dir.path().join("etc"), dir.path().join("run"))
        .firewall(Firewall::Nftables)
        .tables_lock(Some(dir.path().join("tables.lock")))
        .learning(learning)
        .rule_check_every(None)
        .open()
        .unwrap()
}

fn binding_xml(filter: &str, params: &str) -> String {
    format!(
        "<filterbinding><owner><name>vm</name>\
         <uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner>\
         <portdev name='vnet0'/><mac address='52:54:00:12:34:56'/>\
         <filterref filter='{filter}'>{params}</filterref></filterbinding>"
    )
}

#[test]
fn filters_are_defined_listed_dumped_and_undefined() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(&dir, false);
    assert_eq!(host.firewall(), Firewall::Nftables);
    let defined = host.define_filter(NO_SMTP).unwrap();
    assert!(defined.created && defined.warnings.is_empty());
    let again = host.define_filter(NO_SMTP).unwrap();
    assert!(!again.created);
    assert_eq!(again.uuid, defined.uuid, "a redefinition keeps the UUID");
    let xml = host.filter_xml(&defined.uuid.to_string()).unwrap();
    assert!(
        xml.contains("name='no-smtp'") && xml.contains("dstportstart='25'"),
        "{xml}"
    );
    assert!(host
        .filters()
        .unwrap()
        .filters
        .iter()
        .any(|f| f.name == "no-smtp" && !f.builtin));
    host.undefine_filter("no-smtp").unwrap();
    assert!(matches!(
        host.filter_xml("no-smtp"),
        Err(Error::NotFound { .. })
    ));
}

#[test]
fn each_refusal_has_its_kind_and_names_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let host = host(&dir, false);
    let err = host
        .define_filter("<filter name='x' chain='root'><rule/></filter>")
        .unwrap_err();
    assert!(matches!(err, Error::InvalidDocument { .. }), "{err:?}");
    assert!(err.to_string().contains("rule"), "{err}");
    let err = host.undefine_filter("clean-traffic").unwrap_err();
    assert!(matches!(err, Error::Conflict { .. }), "{err:?}");
    let err = host.delete_binding("vnet9").unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err:?}");
    let err = host.create_binding_xml("<filterbinding/>").unwrap_err();
    assert!(matches!(err, Error::InvalidDocument { .. }), "{err:?}");
    assert!(err.to_string().contains("owner"), "{err}");

    // Refused before anything reaches the kernel: a missing filter, and
    // a filter that needs IP while nobody learns it.
    let err = host
        .create_binding_xml(&binding_xml("missing", ""))
        .unwrap_err();
    assert!(matches!(err, Error::Rules { .. }), "{err:?}");
    assert!(err.to_string().contains("missing"), "{err}");
    let err = host
        .create_binding_xml(&binding_xml("clean-traffic", ""))
        .unwrap_err();
    assert!(matches!(err, Error::Rules { .. }), "{err:?}");
    assert!(err.to_string().contains("IP"), "{err}");
    assert!(host.bindings().unwrap().is_empty(), "nothing was recorded");

    let vm = Uuid::parse_str("d54df46f-1ab5-4a22-8618-4560ef5fac2c").unwrap();
    let bad = BindingBuilder::new("vm", vm, "vnet0", "52:54:00:12:34:56", "f")
        .parameter("IP", "1.2.3.4/24")
        .build()
        .unwrap_err();
    assert_eq!(bad.field, "parameter value");
    let err: Error = bad.into();
    assert!(matches!(err, Error::InvalidBinding(_)));
}

#[test]
fn a_bad_settings_file_stops_open_with_a_setup_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("etc")).unwrap();
    std::fs::write(dir.path().join("etc/nwfilter.conf"), "backend = pf\n").unwrap();
    let err = HostConfig::new(dir.path().join("etc"), dir.path().join("run"))
        .tables_lock(None)
        .open()
        .unwrap_err();
    assert!(matches!(err, Error::Setup { .. }), "{err:?}");
    assert!(err.to_string().contains("nwfilter.conf"), "{err}");
}

#[test]
fn a_host_is_send_and_sync() {
    fn shareable<T: Send + Sync>() {}
    shareable::<Host>();
}
