//! Issue 22: `nwfilterd` answers binding-list and binding-dumpxml from
//! what it holds in memory (like libvirt, it reads its binding files at
//! start and reload only): a file changed behind its back is not seen,
//! its own creates and deletes are, and a reload reads the files again.

use netns_lab as support;

mod daemon_lab;
use daemon_lab::{call, start_daemon, Scratch};

use nwfilter_service::{Client, Op, Reply};
use support::Lab;

/// Each listed port with its filter, or its state when it has one (an
/// unreadable binding: closed).
fn listed(scratch: &Scratch) -> Vec<(String, String)> {
    match call(scratch, Op::BindingList) {
        Reply::Bindings { bindings } => (bindings.into_iter())
            .map(|b| (b.portdev, b.state.unwrap_or(b.filter)))
            .collect(),
        other => panic!("binding-list: {other:?}"),
    }
}

fn entry(port: &str, filter: &str) -> (String, String) {
    (port.to_owned(), filter.to_owned())
}

#[test]
fn binding_list_is_answered_from_memory_and_follows_create_delete_and_reload() {
    if !support::can_run(
        "binding_list_is_answered_from_memory_and_follows_create_delete_and_reload",
    ) {
        return;
    }
    let scratch = Scratch::new("bindlist");
    let lab = Lab::ready(2);
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let _daemon = start_daemon(&lab.host, &scratch, &[]);
    for (guest, filter) in [(a, "clean-traffic"), (b, "allow-arp")] {
        let xml = guest.binding_xml(filter);
        call(&scratch, Op::BindingCreate { xml });
    }
    let both = [entry(&a.port, "clean-traffic"), entry(&b.port, "allow-arp")];
    assert_eq!(listed(&scratch), both);

    // Behind the daemon's back: one file removed, one spoiled. The list
    // and the dump do not read them.
    let run = scratch.run();
    std::fs::remove_file(run.join(format!("{}.xml", a.port))).unwrap();
    std::fs::write(run.join(format!("{}.xml", b.port)), "junk").unwrap();
    assert_eq!(listed(&scratch), both);
    let Reply::Xml { xml } = call(
        &scratch,
        Op::BindingDumpxml {
            portdev: a.port.clone(),
        },
    ) else {
        panic!("binding-dumpxml")
    };
    assert!(xml.contains("clean-traffic"), "{xml}");

    // The daemon's own writes are seen.
    call(
        &scratch,
        Op::BindingDelete {
            portdev: a.port.clone(),
        },
    );
    assert_eq!(listed(&scratch), [entry(&b.port, "allow-arp")]);
    let xml = a.binding_xml("allow-arp");
    call(&scratch, Op::BindingCreate { xml });
    let recreated = [entry(&a.port, "allow-arp"), entry(&b.port, "allow-arp")];
    assert_eq!(listed(&scratch), recreated);

    // A reload reads the files: the spoiled one closes its port (the
    // reload says so, and fails), and is listed so.
    let mut client = Client::connect(&scratch.socket()).unwrap();
    let reload = client.call(Op::Reload);
    assert!(
        reload
            .as_ref()
            .is_err_and(|e| e.to_string().contains("closed")),
        "{reload:?}"
    );
    let now = listed(&scratch);
    assert_eq!(now[0], entry(&a.port, "allow-arp"));
    assert_eq!(now[1].0, b.port);
    assert!(now[1].1.starts_with("closed"), "{now:?}");
    call(
        &scratch,
        Op::BindingDelete {
            portdev: b.port.clone(),
        },
    );
    assert_eq!(listed(&scratch), [entry(&a.port, "allow-arp")]);
}
