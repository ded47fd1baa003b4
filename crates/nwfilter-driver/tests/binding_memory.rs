//! A binding store kept in memory (the daemon's, issue 22): it answers
//! what a store reading the files would, reads the directory once, and
//! stays right through its own writes.

use nwfilter_driver::{BindingStore, Error};

fn binding(port: &str, filter: &str) -> String {
    format!(
        "<filterbinding>\
         <owner><name>guest</name><uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid></owner>\
         <portdev name='{port}'/><mac address='52:54:00:7b:35:93'/>\
         <filterref filter='{filter}'><parameter name='IP' value='10.0.0.1'/></filterref>\
         </filterbinding>"
    )
}

/// Ports listed, and each skipped file's report.
fn summary(store: &BindingStore) -> (Vec<String>, Vec<String>) {
    let listing = store.list().unwrap();
    let ports = (listing.items.iter())
        .map(|b| format!("{} {}", b.portdev, b.filterref.filter))
        .collect();
    let skipped = listing.skipped.iter().map(error_chain).collect();
    (ports, skipped)
}

fn error_chain(e: &Error) -> String {
    nwfilter_driver::engine::error_chain(e)
}

#[test]
fn it_lists_what_the_files_hold_unreadable_and_stray_files_included() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let on_disk = BindingStore::open(&dir);
    on_disk
        .create_xml(&binding("vnet0", "clean-traffic"))
        .unwrap();
    on_disk.create_xml(&binding("vnet2", "allow-arp")).unwrap();
    std::fs::write(dir.join("vnet1.xml"), b"\xff\x00junk").unwrap();
    std::fs::write(dir.join("vnet3.xml"), binding("vnet9", "allow-arp")).unwrap();
    std::fs::write(dir.join(".vnet4.Xy12ab.tmp"), "<filterbinding").unwrap();

    let kept = BindingStore::open(&dir).kept_in_memory();
    let expected = summary(&on_disk);
    assert_eq!(expected.0, ["vnet0 clean-traffic", "vnet2 allow-arp"]);
    assert_eq!(expected.1.len(), 3, "{:?}", expected.1);
    assert_eq!(summary(&kept), expected);
    for port in ["vnet0", "vnet1", "vnet3", "vnet5", "-bad"] {
        let (a, b) = (kept.get(port), on_disk.get(port));
        assert_eq!(
            a.as_ref().map_err(error_chain),
            b.as_ref().map_err(error_chain),
            "{port}"
        );
    }
    // Asked again: the same, from memory.
    assert_eq!(summary(&kept), expected);
    assert!(kept.uses().unwrap().len() == 2);

    // Sweeping forgets the temp file; deleting a corrupt binding removes
    // it, reporting why it could not be read.
    kept.sweep().unwrap();
    let err = kept.delete("vnet1").unwrap_err();
    assert!(error_chain(&err).contains("vnet1.xml"), "{err}");
    assert!(!dir.join("vnet1.xml").exists());
    assert_eq!(summary(&kept), summary(&on_disk));
    assert_eq!(summary(&kept).1.len(), 1);
}

#[test]
fn it_answers_from_memory_and_its_own_writes_keep_it_right() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let kept = BindingStore::open(&dir).kept_in_memory();
    assert!(kept.list().unwrap().items.is_empty());
    let vnet0 = kept.create_xml(&binding("vnet0", "clean-traffic")).unwrap();
    kept.create_xml(&binding("vnet1", "allow-arp")).unwrap();

    // Changed behind its back: not seen, the files are not read again.
    std::fs::remove_file(dir.join("vnet0.xml")).unwrap();
    std::fs::write(dir.join("vnet1.xml"), "junk").unwrap();
    std::fs::write(dir.join("vnet2.xml"), binding("vnet2", "allow-arp")).unwrap();
    let (ports, skipped) = summary(&kept);
    assert_eq!(ports, ["vnet0 clean-traffic", "vnet1 allow-arp"]);
    assert!(skipped.is_empty(), "{skipped:?}");
    assert_eq!(kept.get("vnet0").unwrap(), Some(vnet0.clone()));
    assert!(matches!(
        kept.create_xml(&binding("vnet0", "allow-arp")),
        Err(Error::BindingExists(_))
    ));

    // Its own writes: a replace, a delete (the file already gone), a
    // create; the files hold them too.
    let mut replaced = vnet0.clone();
    replaced.filterref.filter = nwfilter_model::FilterName::new("allow-arp").unwrap();
    kept.replace(&replaced).unwrap();
    assert!(dir.join("vnet0.xml").exists());
    assert_eq!(kept.delete("vnet1").unwrap().portdev.as_str(), "vnet1");
    assert!(!dir.join("vnet1.xml").exists());
    kept.create_xml(&binding("vnet3", "clean-traffic")).unwrap();
    let (ports, _) = summary(&kept);
    assert_eq!(ports, ["vnet0 allow-arp", "vnet3 clean-traffic"]);
    assert!(matches!(kept.delete("vnet1"), Err(Error::NoSuchBinding(_))));

    // Reading the directory again (start, reload) sees the file written
    // behind its back; a clone shares the memory.
    let clone = kept.clone();
    let read = kept.read_all().unwrap();
    assert_eq!(read.items.len(), 3);
    let (ports, _) = summary(&clone);
    assert_eq!(
        ports,
        ["vnet0 allow-arp", "vnet2 allow-arp", "vnet3 clean-traffic"]
    );
    assert_eq!(summary(&clone), summary(&BindingStore::open(&dir)));
}
