//! Plans against a known kernel state: what a change costs in commands.

use nwfilter_compile::{compile, Compiled, MemorySource};
use nwfilter_model::{builtin_filters, FilterName, FilterRef, IfName, MacAddr6, Params};

use super::*;
use crate::batch::Cmd;
use crate::term::Operand;

fn clean_traffic(port: &str, mac: u8, ips: &[&str]) -> PortRuleset {
    builtin("clean-traffic", port, mac, ips)
}

/// A filter with IPv4 rules (they need the inet table: conntrack).
const STATEFUL: &str = "<filter name='stateful' chain='root'>
  <rule action='accept' direction='in' priority='100'><tcp dstportstart='22'/></rule>
</filter>";

/// A built-in filter (or [`STATEFUL`]) bound to `port` with `ips` as `$IP`.
fn builtin(filter: &str, port: &str, mac: u8, ips: &[&str]) -> PortRuleset {
    let mut source = MemorySource::from_iter(builtin_filters());
    source.insert(nwfilter_model::parse_filter(STATEFUL).unwrap());
    let mut params = Params::default();
    for ip in ips {
        params.push("IP", *ip);
    }
    let top = FilterRef {
        filter: FilterName::new(filter).unwrap(),
        params,
    };
    let port = IfName::new(port).unwrap();
    let mac = MacAddr6::new(0x52, 0x54, 0, 0, 0, mac);
    let Compiled::Program(program) = compile(&source, &top, mac, &port).unwrap() else {
        panic!("{filter}: IP is bound");
    };
    crate::ruleset(&program).unwrap()
}

fn change(rules: &PortRuleset) -> [Change<'_>; 1] {
    [Change {
        ruleset: rules,
        recorded: None,
    }]
}

/// The commands of `batch` that are not the skeleton's (which every
/// transaction repeats: tables, maps, base chains and their dispatch).
fn own_commands(batch: &Batch) -> Vec<String> {
    let mut skeleton = Batch::default();
    skeleton.skeleton(true);
    let base: Vec<&String> = skeleton.cmds.iter().map(|c| &c.text).collect();
    batch
        .cmds
        .iter()
        .map(|c| c.text.clone())
        .filter(|t| !base.contains(&t))
        .collect()
}

#[test]
fn ports_of_one_filter_share_the_template() {
    let a = clean_traffic("vnet0", 1, &["10.0.0.1"]);
    let b = clean_traffic("vnet1", 2, &["10.0.0.2"]);
    assert_eq!(a.template, b.template);
    assert_eq!(a.chains, b.chains);
    let mut state = KernelState::default();
    plan_apply(&mut state, &change(&a)).unwrap();
    let (batch, report) = plan_apply(&mut state, &change(&b)).unwrap();
    assert_eq!(report.changed, std::slice::from_ref(&b.port));
    let cmds = own_commands(&batch);
    // Elements only: no template chain or rule, no chain of the port's own
    // (its RARP addresses are in `typeof` sets; clean-traffic has no
    // IP-layer chains: no tag). nft reads no chain for such a batch.
    let template_chains: Vec<&String> = cmds
        .iter()
        .filter(|c| c.contains(&format!("/{}", b.template)) && !c.contains("element"))
        .collect();
    assert!(template_chains.is_empty(), "{template_chains:#?}");
    assert!(cmds
        .iter()
        .any(|c| c.contains("{ \"vnet1\" . 10.0.0.2 }") && c.starts_with("create element")));
    assert!(
        cmds.iter().all(|c| c.starts_with("create element")),
        "{cmds:#?}"
    );
    assert!(
        cmds.iter()
            .any(|c| c
                .contains("{ \"vnet1\" . 52:54:00:00:00:02 . 90520730730498 . 90520730730498 }")),
        "{cmds:#?}"
    );
    assert_eq!(state.users(&a.template), 2);
}

#[test]
fn a_new_address_is_an_element_swap_in_one_transaction() {
    let old = clean_traffic("vnet0", 1, &["10.0.0.1"]);
    let new = clean_traffic("vnet0", 1, &["10.0.0.9"]);
    let mut state = KernelState::default();
    plan_apply(&mut state, &change(&old)).unwrap();
    let (batch, _) = plan_apply(&mut state, &change(&new)).unwrap();
    let cmds = own_commands(&batch);
    assert!(!cmds.is_empty());
    for c in &cmds {
        let element = c.starts_with("create element") || c.starts_with("delete element");
        assert!(element, "only elements change: {cmds:#?}");
        assert!(c.contains("10.0.0.1") || c.contains("10.0.0.9"), "{c}");
    }
    // Unchanged now: nothing to run at all.
    let (batch, report) = plan_apply(&mut state, &change(&new)).unwrap();
    assert!(batch.is_empty());
    assert_eq!(report.unchanged, std::slice::from_ref(&new.port));
}

#[test]
fn a_list_of_addresses_is_one_rule_with_an_element_per_address() {
    let one = clean_traffic("vnet0", 1, &["10.0.0.1"]);
    let two = clean_traffic("vnet0", 1, &["10.0.0.1", "10.0.0.2"]);
    assert_eq!(one.template, two.template);
    let ip_set = |r: &PortRuleset| {
        r.sets
            .iter()
            .find(|s| s.types == ["ipv4_addr"] && s.table == crate::names::Table::Bridge)
            .map(|s| s.elements.clone())
            .unwrap()
    };
    assert_eq!(ip_set(&one), [["10.0.0.1"]]);
    assert_eq!(ip_set(&two), [["10.0.0.1"], ["10.0.0.2"]]);
}

#[test]
fn the_last_user_takes_the_template_and_the_last_port_the_tables() {
    let a = clean_traffic("vnet0", 1, &["10.0.0.1"]);
    let b = clean_traffic("vnet1", 2, &["10.0.0.2"]);
    let mut state = KernelState::default();
    plan_apply(&mut state, &[change(&a)[0], change(&b)[0]]).unwrap();
    let (batch, report) = plan_remove(&mut state, std::slice::from_ref(&a.port));
    assert_eq!(report.changed, std::slice::from_ref(&a.port));
    let text = batch.text();
    assert!(
        text.lines().all(|l| l.starts_with("delete element")),
        "{text}"
    );
    assert!(state.templates.contains_key(&a.template));
    let (batch, _) = plan_remove(&mut state, std::slice::from_ref(&b.port));
    // clean-traffic has no IPv4/IPv6 chain: there never was an inet table.
    assert_eq!(batch.text(), "delete table bridge nwfilter\n");
    assert_eq!(state, KernelState::default());
}

#[test]
fn a_port_moving_to_another_template_leaves_no_unused_one() {
    let a = clean_traffic("vnet0", 1, &["10.0.0.1"]);
    let b = clean_traffic("vnet1", 2, &["10.0.0.2"]);
    let mut state = KernelState::default();
    plan_apply(&mut state, &[change(&a)[0], change(&b)[0]]).unwrap();
    // vnet1 gets a different filter: its old template still serves vnet0.
    let source = MemorySource::from_iter(builtin_filters());
    let top = FilterRef {
        filter: FilterName::new("no-mac-spoofing").unwrap(),
        params: Params::default(),
    };
    let Compiled::Program(p) = compile(
        &source,
        &top,
        MacAddr6::new(0x52, 0x54, 0, 0, 0, 2),
        &b.port,
    )
    .unwrap() else {
        panic!("bound");
    };
    let other = crate::ruleset(&p).unwrap();
    plan_apply(&mut state, &change(&other)).unwrap();
    assert_eq!(state.users(&a.template), 1);
    // And vnet0 too: now nothing uses the clean-traffic template.
    let mut moved = other.clone();
    moved.port = a.port.clone();
    let (batch, _) = plan_apply(&mut state, &change(&moved)).unwrap();
    assert!(!state.templates.contains_key(&a.template));
    assert!(batch
        .text()
        .contains(&format!("delete chain bridge nwfilter I/{}", a.template)));
}

#[test]
fn the_transaction_is_the_batch_in_nft_text_one_line_per_command() {
    let rules: Vec<PortRuleset> = (0..3)
        .map(|i| clean_traffic(&format!("vnet{i}"), i, &["10.0.0.1", "10.0.0.2"]))
        .collect();
    let changes: Vec<Change<'_>> = rules
        .iter()
        .map(|r| Change {
            ruleset: r,
            recorded: None,
        })
        .collect();
    let (batch, _) = plan_apply(&mut KernelState::default(), &changes).unwrap();
    let cmd = transaction(&batch);
    assert_eq!(cmd.args, ["-f", "-"]);
    let stdin = cmd.stdin.unwrap();
    assert_eq!(stdin, batch.text());
    assert_eq!(stdin.lines().count(), batch.cmds.len());
}

/// The commands of `batch` that build or tear down the IP path: the inet
/// table, the port tags and their base chains.
fn ip_path_commands(batch: &Batch) -> Vec<String> {
    let ip_path = [
        "inet nwfilter",
        "in-tag",
        "out-tag",
        "prerouting-tag",
        "bridge nwfilter forward",
    ];
    batch
        .cmds
        .iter()
        .map(|c| c.text.clone())
        .filter(|t| ip_path.iter().any(|p| t.contains(p)))
        .collect()
}

#[test]
fn ports_without_ip_rules_get_no_ip_path() {
    let a = clean_traffic("vnet0", 1, &["10.0.0.1"]);
    let mut state = KernelState::default();
    let (batch, _) = plan_apply(&mut state, &change(&a)).unwrap();
    assert_eq!(ip_path_commands(&batch), Vec::<String>::new());
    assert_eq!(state.tables, BTreeSet::from([Table::Bridge]));
    assert_eq!(state.skeleton, Skeleton::expected(false));
    assert!(batch
        .text()
        .contains("add rule bridge nwfilter prerouting iifname vmap @from-vm"));
}

#[test]
fn the_first_port_with_ip_rules_brings_the_ip_path_and_the_last_takes_it() {
    let plain = clean_traffic("vnet0", 1, &["10.0.0.1"]);
    let stateful = builtin("stateful", "vnet1", 2, &[]);
    assert!(stateful.needs_tag());
    let mut state = KernelState::default();
    plan_apply(&mut state, &change(&plain)).unwrap();

    // One transaction: the layout's IP path first, then the port.
    let (batch, _) = plan_apply(&mut state, &change(&stateful)).unwrap();
    let text = batch.text();
    let inet_table = text.find("add table inet nwfilter").expect(&text);
    let tag_chain = text
        .find("add chain bridge nwfilter prerouting-tag")
        .expect(&text);
    let port = text
        .find("create element bridge nwfilter in-tag")
        .expect(&text);
    assert!(inet_table < port && tag_chain < port, "{text}");
    assert!(
        !text.contains("flush chain bridge nwfilter prerouting\n"),
        "{text}"
    );
    assert_eq!(state.tables, BTreeSet::from([Table::Bridge, Table::Inet]));
    assert_eq!(state.skeleton, Skeleton::expected(true));
    let (again, _) = plan_apply(&mut state, &change(&stateful)).unwrap();
    assert!(again.is_empty(), "{}", again.text());

    // Its removal takes the IP path, after the port's elements.
    let (batch, _) = plan_remove(&mut state, std::slice::from_ref(&stateful.port));
    let text = batch.text();
    let port = text
        .find("delete element bridge nwfilter in-tag")
        .expect(&text);
    let table = text.find("delete table inet nwfilter").expect(&text);
    let map = text.find("delete map bridge nwfilter in-tag").expect(&text);
    assert!(port < table && port < map, "{text}");
    for chain in ["prerouting-tag", "forward"] {
        let delete = format!("delete chain bridge nwfilter {chain}\n");
        assert!(text.contains(&delete), "{text}");
    }
    assert!(!text.contains("prerouting\n"), "the dispatch stays: {text}");
    assert_eq!(state.tables, BTreeSet::from([Table::Bridge]));
    assert_eq!(state.skeleton, Skeleton::expected(false));
    assert!(state.seen_tags.is_empty());
    let (again, _) = plan_apply(&mut state, &change(&plain)).unwrap();
    assert!(again.is_empty(), "{}", again.text());
}

#[test]
fn a_port_losing_its_ip_rules_takes_the_ip_path_in_the_same_transaction() {
    let stateful = builtin("stateful", "vnet0", 1, &[]);
    let plain = clean_traffic("vnet0", 1, &["10.0.0.1"]);
    let mut state = KernelState::default();
    plan_apply(&mut state, &change(&stateful)).unwrap();
    let (batch, _) = plan_apply(&mut state, &change(&plain)).unwrap();
    let text = batch.text();
    assert!(text.contains("delete table inet nwfilter"), "{text}");
    assert!(
        text.contains("delete chain bridge nwfilter tag/vnet0"),
        "{text}"
    );
    assert_eq!(state.tables, BTreeSet::from([Table::Bridge]));
}

#[test]
fn a_kernel_with_an_unneeded_ip_path_converges_without_a_port_change() {
    // As the layout before the split left it: the in-tag rule in
    // prerouting, the inet table, no port with IPv4/IPv6 rules (and no
    // fast-path set, which came later).
    let plain = clean_traffic("vnet0", 1, &["10.0.0.1"]);
    let mut state = KernelState::default();
    plan_apply(&mut state, &change(&plain)).unwrap();
    let mut old = Skeleton::expected(true);
    old.sets.clear();
    old.chains
        .remove(&(Table::Bridge, "prerouting-tag".to_owned()));
    old.chains
        .insert((Table::Bridge, "prerouting".to_owned()), 2);
    state.skeleton = old;
    state.tables.insert(Table::Inet);
    let (batch, report) = plan_apply(&mut state, &change(&plain)).unwrap();
    assert_eq!(report.unchanged, std::slice::from_ref(&plain.port));
    let text = batch.text();
    assert!(
        text.contains("flush chain bridge nwfilter prerouting\n"),
        "{text}"
    );
    assert!(text.contains("delete table inet nwfilter"), "{text}");
    assert!(
        text.contains("delete map bridge nwfilter out-tag"),
        "{text}"
    );
    assert!(
        !text.contains("prerouting-tag"),
        "nothing deleted that is not there: {text}"
    );
    let (again, _) = plan_apply(&mut state, &change(&plain)).unwrap();
    assert!(again.is_empty(), "{}", again.text());
}

#[test]
fn many_ports_add_each_set_s_elements_in_one_command_after_their_chains() {
    let ports: Vec<PortRuleset> = (0..3)
        .map(|i| clean_traffic(&format!("vnet{i}"), i, &[&format!("10.0.0.{i}")]))
        .collect();
    let changes: Vec<Change<'_>> = ports
        .iter()
        .map(|p| Change {
            ruleset: p,
            recorded: None,
        })
        .collect();
    let mut state = KernelState::default();
    let (batch, report) = plan_apply(&mut state, &changes).unwrap();
    assert_eq!(report.changed.len(), 3);
    let creates: Vec<&Cmd> = batch
        .cmds
        .iter()
        .filter(|c| c.text.starts_with("create element"))
        .collect();
    let from_vm: Vec<&&Cmd> = creates
        .iter()
        .filter(|c| {
            c.text
                .starts_with("create element bridge nwfilter from-vm ")
        })
        .collect();
    assert_eq!(from_vm.len(), 1, "{creates:#?}");
    assert_eq!(
        from_vm[0].text,
        format!(
            "create element bridge nwfilter from-vm {{ \"vnet0\" : jump I/{t}, \"vnet1\" : jump I/{t}, \"vnet2\" : jump I/{t} }}",
            t = ports[0].template
        )
    );
    assert_eq!(
        from_vm[0].json["create"]["element"]["elem"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // Every chain an element jumps to is created before the element.
    let position = |prefix: &str| batch.cmds.iter().position(|c| c.text.starts_with(prefix));
    for own in ports.iter().flat_map(|p| &p.own) {
        let created = position(&format!("add chain bridge nwfilter {}", own.name)).unwrap();
        let jumped = batch
            .cmds
            .iter()
            .position(|c| {
                let jump = format!("jump {}", own.name);
                c.text.contains(&format!("{jump},")) || c.text.contains(&format!("{jump} }}"))
            })
            .unwrap();
        assert!(created < jumped, "{}", batch.text());
    }
    // The same batch, one port at a time: the same elements in the end.
    let mut one_by_one = KernelState::default();
    for change in &changes {
        plan_apply(&mut one_by_one, std::slice::from_ref(change)).unwrap();
    }
    assert_eq!(one_by_one.ports, state.ports);
}

#[test]
fn an_element_is_never_moved_past_a_command_about_its_set() {
    let mut batch = Batch::default();
    let port = |p: &str| Operand::quoted(p);
    batch.add_element(
        Table::Bridge,
        "from-vm",
        port("a"),
        Operand::symbol("accept"),
    );
    batch.delete_element(Table::Bridge, "from-vm", port("b"));
    batch.add_element(
        Table::Bridge,
        "from-vm",
        port("c"),
        Operand::symbol("accept"),
    );
    batch.add_element(Table::Bridge, "to-vm", port("d"), Operand::symbol("accept"));
    batch.add_element(
        Table::Bridge,
        "from-vm",
        port("e"),
        Operand::symbol("accept"),
    );
    batch.merge_element_creates();
    let text: Vec<&str> = batch.cmds.iter().map(|c| c.text.as_str()).collect();
    assert_eq!(
        text,
        [
            "create element bridge nwfilter from-vm { \"a\" : accept }",
            "delete element bridge nwfilter from-vm { \"b\" }",
            "create element bridge nwfilter to-vm { \"d\" : accept }",
            "create element bridge nwfilter from-vm { \"c\" : accept, \"e\" : accept }",
        ]
    );
}

/// A port created beside another of its template is elements only, and
/// each has its netlink step (the runner may commit them itself); a
/// batch with anything else, or of many ports merged, has none.
#[test]
fn a_port_beside_another_is_elements_only_as_netlink_steps() {
    let (a, b) = (
        clean_traffic("vnet0", 0, &["10.0.0.1"]),
        clean_traffic("vnet1", 1, &["10.0.0.2"]),
    );
    let change = |ruleset| {
        [Change {
            ruleset,
            recorded: None,
        }]
    };
    let mut state = KernelState::default();
    let (first, _) = plan_apply(&mut state, &change(&a)).unwrap();
    assert_eq!(first.element_change(), None, "tables and chains: nft's");
    let (beside, _) = plan_apply(&mut state, &change(&b)).unwrap();
    let steps = beside
        .element_change()
        .expect("elements only")
        .steps()
        .to_vec();
    let elements: usize = beside
        .cmds
        .iter()
        .filter(|c| c.text.contains(" element "))
        .count();
    assert_eq!(steps.len(), elements, "{:#?}", beside.cmds);
    assert!(steps.iter().all(|s| s.add));
    let jumps: Vec<_> = steps.iter().filter_map(|s| s.jump.as_deref()).collect();
    assert_eq!(
        jumps,
        [format!("I/{}", b.template), format!("O/{}", b.template)],
        "the dispatch maps' elements, last"
    );
    let (gone, _) = plan_remove(&mut state, std::slice::from_ref(&b.port));
    let removed = gone
        .element_change()
        .expect("elements only")
        .steps()
        .to_vec();
    assert_eq!(removed.len(), steps.len());
    assert!(removed.iter().all(|s| !s.add && s.jump.is_none()));

    let mut fresh = KernelState::default();
    let both = [
        Change {
            ruleset: &a,
            recorded: None,
        },
        Change {
            ruleset: &b,
            recorded: None,
        },
    ];
    plan_apply(
        &mut fresh,
        &change(&clean_traffic("vnet9", 9, &["10.0.0.9"])),
    )
    .unwrap();
    let (merged, _) = plan_apply(&mut fresh, &both).unwrap();
    assert_eq!(merged.element_change(), None, "merged: nft's");
}

/// The layouts of a template's sets go with the template: a daemon whose
/// filters are redefined again and again keeps none of the old ones.
#[test]
fn a_deleted_template_s_set_layouts_are_forgotten() {
    let a = clean_traffic("vnet0", 0, &["10.0.0.1"]);
    let b = builtin("no-mac-spoofing", "vnet1", 1, &[]);
    assert!(!b.sets.is_empty() && a.template != b.template);
    let mut state = KernelState::default();
    for ruleset in [&a, &b] {
        let change = [Change {
            ruleset,
            recorded: None,
        }];
        plan_apply(&mut state, &change).unwrap();
    }
    let known = |state: &KernelState, r: &PortRuleset| {
        r.sets.iter().all(|s| state.layouts.knows(s.table, &s.name))
    };
    assert!(known(&state, &a) && known(&state, &b));
    plan_remove(&mut state, std::slice::from_ref(&b.port));
    assert!(b
        .sets
        .iter()
        .all(|s| !state.layouts.knows(s.table, &s.name)));
    assert!(known(&state, &a), "the template still used keeps them");
}
