//! libvirt's object rules for filters and bindings (reference §2.6, §7.2,
//! §8.1), on a store in a temporary directory.

use nwfilter_driver::{BindingStore, BindingUse, Error, FilterStore, Origin};
use nwfilter_model::{FilterName, IfName, Uuid};

fn store() -> (tempfile::TempDir, FilterStore) {
    let tmp = tempfile::tempdir().unwrap();
    let store = FilterStore::open(tmp.path().join("nwfilter"));
    (tmp, store)
}

fn filter(name: &str, uuid: Option<&str>, refs: &[&str]) -> String {
    let uuid = uuid.map_or(String::new(), |u| format!("<uuid>{u}</uuid>"));
    let refs: String = refs
        .iter()
        .map(|r| format!("<filterref filter='{r}'/>"))
        .collect();
    format!("<filter name='{name}' chain='root'>{uuid}<rule action='accept' direction='out'/>{refs}</filter>")
}

/// Every file of the store directory with its contents.
fn dir_state(store: &FilterStore) -> Vec<(String, String)> {
    let mut files: Vec<(String, String)> = std::fs::read_dir(store.dir())
        .map(|entries| {
            entries
                .map(|e| e.unwrap().path())
                .map(|p| {
                    let text = std::fs::read_to_string(&p).unwrap();
                    (p.file_name().unwrap().to_string_lossy().into_owned(), text)
                })
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

fn uses(list: &[(&str, &str)]) -> Vec<BindingUse> {
    list.iter()
        .map(|(port, filter)| BindingUse {
            portdev: IfName::new(*port).unwrap(),
            filter: FilterName::new(*filter).unwrap(),
        })
        .collect()
}

const U1: &str = "11111111-2222-4333-8444-555555555555";
const U2: &str = "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee";

#[test]
fn the_builtin_set_is_there_out_of_the_box() {
    let (_tmp, store) = store();
    let listing = store.list().unwrap();
    // libvirt's 24 defaults and our dual-stack filters (docs/ipv6.md).
    assert_eq!(listing.items.len(), nwfilter_model::builtin_filters().len());
    assert!(listing.items.len() > 24);
    assert!(listing.skipped.is_empty());
    assert!(listing.items.iter().all(|f| f.origin == Origin::Builtin));
    let clean = store.lookup("clean-traffic").unwrap();
    assert_eq!(store.lookup(&clean.uuid.to_string()).unwrap(), clean);
    assert!(
        !store.dir().exists(),
        "reading must not create the directory"
    );
}

#[test]
fn a_new_name_gets_a_uuid_that_redefinitions_keep() {
    let (_tmp, store) = store();
    let first = store.define(&filter("web", None, &[])).unwrap();
    assert!(first.created);
    let uuid = first.filter.uuid;
    assert_eq!(store.lookup("web").unwrap().uuid, uuid);
    // Without <uuid> (libvirt would refuse): the existing UUID is taken.
    let again = store.define(&filter("web", None, &["allow-arp"])).unwrap();
    assert!(!again.created && again.changed);
    assert_eq!(again.filter.uuid, uuid);
    // With its own UUID: fine.
    let same = store.define(&filter("web", Some(&uuid.to_string()), &["allow-arp"]));
    assert!(
        !same.unwrap().changed,
        "identical definition reports no change"
    );
    let stored = std::fs::read_to_string(store.dir().join("web.xml")).unwrap();
    assert!(stored.contains(&uuid.to_string()), "{stored}");
}

#[test]
fn a_new_name_keeps_the_uuid_its_document_gives() {
    let (_tmp, store) = store();
    let defined = store.define(&filter("web", Some(U1), &[])).unwrap();
    assert_eq!(defined.filter.uuid, Uuid::parse_str(U1).unwrap());
    assert_eq!(store.lookup(U1).unwrap().name.as_str(), "web");
}

#[test]
fn redefining_with_another_uuid_is_refused_and_changes_nothing() {
    let (_tmp, store) = store();
    store.define(&filter("web", Some(U1), &[])).unwrap();
    let before = dir_state(&store);
    let err = store.define(&filter("web", Some(U2), &[])).unwrap_err();
    assert!(matches!(err, Error::NameTaken { .. }), "{err}");
    assert_eq!(
        err.to_string(),
        format!("filter 'web' already exists with UUID {U1}, not {U2}")
    );
    assert_eq!(dir_state(&store), before);
}

#[test]
fn a_uuid_of_another_name_is_refused() {
    let (_tmp, store) = store();
    store.define(&filter("web", Some(U1), &[])).unwrap();
    let before = dir_state(&store);
    let err = store.define(&filter("db", Some(U1), &[])).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!("cannot define filter 'db': UUID {U1} already belongs to filter 'web'")
    );
    // A built-in filter's UUID belongs to it too.
    let builtin = store.lookup("allow-arp").unwrap().uuid.to_string();
    let err = store
        .define(&filter("db", Some(&builtin), &[]))
        .unwrap_err();
    assert!(
        matches!(err, Error::UuidTaken { ref owner, .. } if owner == "allow-arp"),
        "{err}"
    );
    assert_eq!(dir_state(&store), before);
}

#[test]
fn an_invalid_document_changes_nothing() {
    let (_tmp, store) = store();
    store.define(&filter("web", Some(U1), &[])).unwrap();
    let before = dir_state(&store);
    for bad in [
        "<filter name='web' chain='nonsense'/>",
        "<filter name='web'><rule action='explode' direction='out'/></filter>",
        "<filter name='web'",
        "",
    ] {
        let err = store.define(bad).unwrap_err();
        assert!(
            matches!(err, Error::Invalid { what: "filter", .. }),
            "{bad}: {err}"
        );
    }
    assert_eq!(dir_state(&store), before);
}

#[test]
fn overriding_a_builtin_keeps_its_uuid_and_undefine_brings_it_back() {
    let (_tmp, store) = store();
    let builtin = store.lookup("no-other-l2-traffic").unwrap();
    let xml = "<filter name='no-other-l2-traffic' chain='root'>\
               <rule action='drop' direction='out' priority='1000'/></filter>";
    let defined = store.define(xml).unwrap();
    assert!(!defined.created && defined.changed);
    assert_eq!(defined.filter.uuid, builtin.uuid);
    let info = store.list().unwrap().items;
    let entry = info
        .iter()
        .find(|f| f.name.as_str() == "no-other-l2-traffic")
        .unwrap();
    assert_eq!(entry.origin, Origin::Override);

    let undefined = store
        .undefine("no-other-l2-traffic", || Ok(vec![]))
        .unwrap();
    assert_eq!(undefined.builtin_uuid, Some(builtin.uuid));
    assert_eq!(store.lookup("no-other-l2-traffic").unwrap(), builtin);
}

#[test]
fn a_builtin_cannot_be_undefined() {
    let (_tmp, store) = store();
    let err = store.undefine("clean-traffic", || Ok(vec![])).unwrap_err();
    assert!(
        matches!(err, Error::Builtin(ref n) if n == "clean-traffic"),
        "{err}"
    );
    let err = store.undefine("nope", || Ok(vec![])).unwrap_err();
    assert_eq!(err.to_string(), "no filter with name or UUID 'nope'");
}

#[test]
fn a_self_reference_is_a_loop() {
    let (_tmp, store) = store();
    let err = store.define(&filter("d", None, &["d"])).unwrap_err();
    assert_eq!(err.to_string(), "filter would introduce a loop: d -> d");
    assert!(!store.dir().join("d.xml").exists());
}

#[test]
fn a_loop_through_other_filters_is_refused_with_its_path() {
    let (_tmp, store) = store();
    store
        .define(&filter("a", None, &["allow-arp", "b"]))
        .unwrap();
    store.define(&filter("b", None, &["c"])).unwrap();
    let before = dir_state(&store);
    let err = store
        .define(&filter("c", None, &["allow-ipv4", "a"]))
        .unwrap_err();
    match &err {
        Error::Cycle { path } => assert_eq!(path, &["c", "a", "b", "c"]),
        other => panic!("not a cycle: {other}"),
    }
    assert_eq!(
        err.to_string(),
        "filter would introduce a loop: c -> a -> b -> c"
    );
    assert_eq!(dir_state(&store), before);
    // A redefinition that closes a loop is refused too.
    let err = store.define(&filter("b", None, &["a"])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "filter would introduce a loop: b -> a -> b"
    );
}

#[test]
fn a_loop_that_closes_later_is_caught_when_it_closes() {
    let (_tmp, store) = store();
    store.define(&filter("e", None, &["x"])).unwrap(); // x missing: fine
    let err = store.define(&filter("x", None, &["e"])).unwrap_err();
    assert_eq!(
        err.to_string(),
        "filter would introduce a loop: x -> e -> x"
    );
}

#[test]
fn shared_references_are_not_loops() {
    let (_tmp, store) = store();
    store.define(&filter("leaf", None, &[])).unwrap();
    store.define(&filter("left", None, &["leaf"])).unwrap();
    store.define(&filter("right", None, &["leaf"])).unwrap();
    store
        .define(&filter("top", None, &["left", "right", "leaf"]))
        .unwrap();
}

#[test]
fn undefine_is_refused_while_bindings_use_the_filter_and_names_them() {
    let (_tmp, store) = store();
    store.define(&filter("leaf", None, &[])).unwrap();
    store.define(&filter("mid", None, &["leaf"])).unwrap();
    store
        .define(&filter("top", None, &["allow-arp", "mid"]))
        .unwrap();
    let bindings = || {
        Ok(uses(&[
            ("vnet0", "top"),
            ("vnet1", "leaf"),
            ("vnet2", "allow-ipv4"),
        ]))
    };
    let before = dir_state(&store);
    let err = store.undefine("leaf", bindings).unwrap_err();
    assert_eq!(
        err.to_string(),
        "filter 'leaf' is in use by vnet0 (via top -> mid -> leaf), vnet1"
    );
    assert_eq!(dir_state(&store), before);
    // A filter referenced only by filters no binding uses can go, leaving
    // a dangling reference (as libvirt).
    let only_top = || Ok(uses(&[("vnet2", "allow-ipv4")]));
    let gone = store.undefine("mid", only_top).unwrap();
    assert_eq!(gone.name.as_str(), "mid");
    assert_eq!(gone.builtin_uuid, None);
    assert!(matches!(store.lookup("mid"), Err(Error::NoSuchFilter(_))));
}

#[test]
fn undefine_sees_uses_through_builtin_filters() {
    let (_tmp, store) = store();
    let xml = "<filter name='no-arp-ip-spoofing' chain='arp-ip' priority='-510'>\
               <rule action='drop' direction='out'/></filter>";
    store.define(xml).unwrap();
    let err = store
        .undefine("no-arp-ip-spoofing", || {
            Ok(uses(&[("vnet7", "clean-traffic")]))
        })
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "filter 'no-arp-ip-spoofing' is in use by \
         vnet7 (via clean-traffic -> no-arp-spoofing -> no-arp-ip-spoofing)"
    );
}

#[test]
fn undefine_by_uuid_and_a_failing_binding_list() {
    let (_tmp, store) = store();
    store.define(&filter("web", Some(U1), &[])).unwrap();
    let err = store
        .undefine(U1, || Err(Error::NoSuchBinding("vnet9".into())))
        .unwrap_err();
    assert!(matches!(err, Error::Bindings(_)), "{err}");
    assert!(store.lookup("web").is_ok(), "nothing removed on error");
    assert_eq!(
        store.undefine(U1, || Ok(vec![])).unwrap().name.as_str(),
        "web"
    );
    assert!(!store.dir().join("web.xml").exists());
}

#[test]
fn undo_define_restores_the_previous_state() {
    let (_tmp, store) = store();
    let created = store.define(&filter("web", Some(U1), &[])).unwrap();
    let before = dir_state(&store);
    let changed = store.define(&filter("web", None, &["allow-arp"])).unwrap();
    store.undo_define(&changed).unwrap();
    assert_eq!(dir_state(&store), before);
    store.undo_define(&created).unwrap();
    assert!(matches!(store.lookup("web"), Err(Error::NoSuchFilter(_))));
}

#[test]
fn stray_temp_and_broken_files_are_reported_not_fatal() {
    let (_tmp, store) = store();
    store.define(&filter("web", Some(U1), &[])).unwrap();
    let dir = store.dir().to_path_buf();
    std::fs::write(dir.join(".web.Xy12ab.tmp"), "<filter name='web'").unwrap();
    std::fs::write(dir.join("broken.xml"), "<filter name='broken'").unwrap();
    std::fs::write(dir.join("misnamed.xml"), filter("other", None, &[])).unwrap();
    std::fs::write(dir.join("notes.txt"), "not a filter").unwrap();

    let listing = store.list().unwrap();
    let names: Vec<&str> = listing.items.iter().map(|f| f.name.as_str()).collect();
    assert!(names.contains(&"web") && !names.contains(&"broken"));
    // The built-ins and web.
    assert_eq!(names.len(), nwfilter_model::builtin_filters().len() + 1);
    let reports: Vec<String> = listing.skipped.iter().map(|e| e.to_string()).collect();
    assert_eq!(reports.len(), 3, "{reports:#?}");
    assert!(reports.iter().any(|r| r.contains("broken.xml")));
    assert!(reports
        .iter()
        .any(|r| r.contains("misnamed.xml") && r.contains("'other'")));
    assert!(reports
        .iter()
        .any(|r| r.contains(".web.Xy12ab.tmp") && r.contains("temp")));

    let err = store.lookup("broken").unwrap_err();
    assert!(err.to_string().contains("broken.xml"), "{err}");
    assert_eq!(store.sweep().unwrap(), vec![dir.join(".web.Xy12ab.tmp")]);
    assert_eq!(store.list().unwrap().skipped.len(), 2);
}

const BINDING: &str = "<filterbinding>\
  <owner><name>guest</name><uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid></owner>\
  <portdev name='vnet0'/><mac address='52:54:00:7b:35:93'/>\
  <filterref filter='clean-traffic'><parameter name='IP' value='10.0.0.1'/></filterref>\
  </filterbinding>";

#[test]
fn bindings_are_created_once_per_port_and_deleted() {
    let tmp = tempfile::tempdir().unwrap();
    let store = BindingStore::open(tmp.path().join("run"));
    assert!(store.list().unwrap().items.is_empty());
    let created = store.create_xml(BINDING).unwrap();
    assert_eq!(store.get("vnet0").unwrap(), Some(created.clone()));
    let err = store.create_xml(BINDING).unwrap_err();
    assert_eq!(
        err.to_string(),
        "port vnet0 already has a filter binding (binding-delete vnet0 first)"
    );

    let second = BINDING
        .replace("vnet0", "vnet1")
        .replace("clean-traffic", "allow-arp");
    store.create_xml(&second).unwrap();
    let ports: Vec<String> = (store.list().unwrap().items.iter())
        .map(|b| b.portdev.to_string())
        .collect();
    assert_eq!(ports, ["vnet0", "vnet1"]);
    assert_eq!(
        store.uses().unwrap(),
        uses(&[("vnet0", "clean-traffic"), ("vnet1", "allow-arp")])
    );

    assert_eq!(store.delete("vnet0").unwrap(), created);
    assert_eq!(store.get("vnet0").unwrap(), None);
    let err = store.delete("vnet0").unwrap_err();
    assert_eq!(err.to_string(), "no filter binding for port \"vnet0\"");
    assert!(matches!(
        store.delete("../etc"),
        Err(Error::NoSuchBinding(_))
    ));
}

#[test]
fn an_invalid_binding_is_refused_and_stores_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let store = BindingStore::open(tmp.path().join("run"));
    let bad = BINDING.replace("<portdev name='vnet0'/>", "");
    let err = store.create_xml(&bad).unwrap_err();
    assert!(
        matches!(
            err,
            Error::Invalid {
                what: "filterbinding",
                ..
            }
        ),
        "{err}"
    );
    assert!(store.list().unwrap().items.is_empty());
}

#[test]
fn the_binding_store_is_what_undefine_asks() {
    let tmp = tempfile::tempdir().unwrap();
    let bindings = BindingStore::open(tmp.path().join("run"));
    let filters = FilterStore::open(tmp.path().join("etc"));
    filters.define(&filter("mine", None, &[])).unwrap();
    let uses_mine = BINDING.replace("clean-traffic", "mine");
    bindings.create_xml(&uses_mine).unwrap();
    let err = filters.undefine("mine", || bindings.uses()).unwrap_err();
    assert_eq!(err.to_string(), "filter 'mine' is in use by vnet0");
    bindings.delete("vnet0").unwrap();
    filters.undefine("mine", || bindings.uses()).unwrap();
}

#[test]
fn the_store_is_a_filter_source_for_the_compiler() {
    use nwfilter_compile::FilterSource;
    let (_tmp, store) = store();
    store
        .define(&filter("web", Some(U1), &["clean-traffic"]))
        .unwrap();
    let live: &dyn FilterSource = &store;
    assert_eq!(live.get("web").unwrap().unwrap().uuid.to_string(), U1);
    assert!(
        live.get("clean-traffic").unwrap().is_some(),
        "built-ins too"
    );
    assert!(live.get("nope").unwrap().is_none());
    assert!(live.get("../etc/passwd").unwrap().is_none());
    std::fs::write(store.dir().join("broken.xml"), "<filter").unwrap();
    let err = live.get("broken").unwrap_err();
    assert!(format!("{err}").contains("broken.xml"), "{err}");

    let snapshot = store.source().unwrap();
    assert_eq!(
        snapshot.len(),
        nwfilter_model::builtin_filters().len() + 1,
        "the built-ins and web; broken left out"
    );
    assert!(snapshot.get("web").unwrap().is_some());
}

#[test]
fn garbage_and_huge_files_are_skipped_naming_the_file_and_why() {
    let (_tmp, store) = store();
    store.define(&filter("web", Some(U1), &[])).unwrap();
    let dir = store.dir().to_path_buf();
    std::fs::write(dir.join("garbage.xml"), b"\xff\xd8\xff\xe0 not text").unwrap();
    let huge = std::fs::File::create(dir.join("huge.xml")).unwrap();
    huge.set_len(nwfilter_model::MAX_DOCUMENT_BYTES as u64 + 1)
        .unwrap();

    let listing = store.list().unwrap();
    assert!(listing.items.iter().any(|f| f.name.as_str() == "web"));
    let reports: Vec<String> = listing.skipped.iter().map(|e| e.to_string()).collect();
    assert_eq!(reports.len(), 2, "{reports:#?}");
    assert!(reports
        .iter()
        .any(|r| r.contains("garbage.xml") && r.contains("UTF-8")));
    assert!(reports
        .iter()
        .any(|r| r.contains("huge.xml") && r.contains("larger than")));
    assert_eq!(store.lookup("web").unwrap().uuid.to_string(), U1);
    store.define(&filter("other", Some(U2), &["web"])).unwrap();
    // Defining the broken name replaces the file.
    store.define(&filter("garbage", None, &[])).unwrap();
    assert_eq!(store.list().unwrap().skipped.len(), 1);
}

#[test]
fn a_filter_whose_normalised_form_exceeds_the_read_limit_is_refused() {
    let (_tmp, store) = store();
    // A compact rule that normalises to a longer line.
    let rule = "<rule action='accept' direction='out'/>";
    let one = nwfilter_model::format_filter(
        &nwfilter_model::parse_filter(&format!("<filter name='big'>{rule}</filter>")).unwrap(),
    );
    let empty = nwfilter_model::format_filter(
        &nwfilter_model::parse_filter("<filter name='big'></filter>").unwrap(),
    );
    let grown = one.len() - empty.len();
    assert!(grown > rule.len(), "{one}");
    let count = nwfilter_model::MAX_DOCUMENT_BYTES / grown + 1;
    let xml = format!("<filter name='big'>{}</filter>", rule.repeat(count));
    assert!(
        xml.len() <= nwfilter_model::MAX_DOCUMENT_BYTES,
        "input is within the limit"
    );

    let err = store.define(&xml).unwrap_err();
    assert!(matches!(err, Error::TooLarge { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("'big'") && text.contains("16 MiB"), "{text}");
    assert!(matches!(store.lookup("big"), Err(Error::NoSuchFilter(_))));
    assert!(store.list().unwrap().skipped.is_empty());
}

#[test]
fn a_file_without_uuid_has_the_same_uuid_at_every_read() {
    let (_tmp, store) = store();
    store.define(&filter("web", Some(U1), &[])).unwrap();
    let dir = store.dir().to_path_buf();
    std::fs::write(dir.join("handmade.xml"), filter("handmade", None, &[])).unwrap();
    std::fs::write(
        dir.join("clean-traffic.xml"),
        filter("clean-traffic", None, &[]),
    )
    .unwrap();

    let uuid_in_list = |name: &str| {
        let listing = store.list().unwrap();
        listing
            .items
            .iter()
            .find(|f| f.name.as_str() == name)
            .unwrap()
            .uuid
    };
    let first = uuid_in_list("handmade");
    assert_eq!(uuid_in_list("handmade"), first, "list twice");
    assert_eq!(store.lookup("handmade").unwrap().uuid, first, "dumpxml");
    let other = FilterStore::open(store.dir());
    assert_eq!(
        other.lookup("handmade").unwrap().uuid,
        first,
        "another process"
    );
    assert_eq!(
        store.lookup(&first.to_string()).unwrap().name.as_str(),
        "handmade"
    );
    // An override of a built-in keeps the built-in's UUID.
    let builtin = nwfilter_model::builtin_filters()
        .into_iter()
        .find(|f| f.name.as_str() == "clean-traffic")
        .unwrap();
    assert_eq!(uuid_in_list("clean-traffic"), builtin.uuid);
    // A define without <uuid> stores the UUID it was shown with.
    store.define(&filter("handmade", None, &["web"])).unwrap();
    assert_eq!(store.lookup("handmade").unwrap().uuid, first);
    let text = std::fs::read_to_string(dir.join("handmade.xml")).unwrap();
    assert!(text.contains(&first.to_string()), "{text}");
}
