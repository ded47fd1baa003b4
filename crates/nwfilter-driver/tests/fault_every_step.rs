//! Fault injection at every step (issue 18, item 3), in a real kernel
//! (network namespaces the test creates).
//!
//! For each operation — binding-create, define (rebuilding every user),
//! reload, a switch of backend, binding-delete — and each backend, the
//! operation is first run without a fault to learn how many commands it
//! runs and what "old" and "new" are: the kernel's ruleset and the files
//! of the store, before and after. Then, for every N, the same operation
//! starts again from the same state with the Nth command failing (the
//! recording runner wrapping the real one: that command is not run). After
//! each: an operation that reported success left the new ruleset and the
//! new files, one that failed left the old ruleset and the old files —
//! never a mix of the two, never no rules. For a sample of N, packets
//! check the rules in force: old rules let a guest ping but drop its
//! spoofed address, new ones drop its ICMP too, none would let both pass.

use netns_lab as support;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use host_io::{ProcessRunner, RecordingRunner, Toolset};
use nwfilter_driver::{Backend, BindingStore, Engine, FilterStore};
use support::{Guest, Lab, Scratch, SPOOFED_IP};

type TestEngine = Engine<Arc<RecordingRunner>>;

const NO_SMTP: &str = "<filter name='no-smtp' chain='root'>
  <uuid>7c3f5d2e-9a41-4c8b-b1f0-3d2e6a7b8c91</uuid>
  <rule action='drop' direction='out' priority='400'><tcp dstportstart='25'/></rule>
</filter>";

/// The redefinition: also drops every ICMP packet the guest sends.
const NO_SMTP_NO_ICMP: &str = "<filter name='no-smtp' chain='root'>
  <uuid>7c3f5d2e-9a41-4c8b-b1f0-3d2e6a7b8c91</uuid>
  <rule action='drop' direction='out' priority='400'><tcp dstportstart='25'/></rule>
  <rule action='drop' direction='out' priority='410'><icmp/></rule>
</filter>";

const GUEST: &str = "<filter name='guest' chain='root'>
  <uuid>0b9d0a52-5f0c-4a53-8e0e-5d1a0c7e2f11</uuid>
  <filterref filter='clean-traffic'/>
  <filterref filter='no-smtp'/>
</filter>";

/// What one operation starts from and does.
struct Case {
    name: &'static str,
    backend: Backend,
    /// Brings a fresh engine to the "old" state.
    setup: fn(&TestEngine, &Lab),
    /// The operation under test.
    op: fn(&TestEngine, &Lab) -> Result<(), String>,
}

/// Two guests bound to `guest` (their ICMP allowed).
fn two_bound(engine: &TestEngine, lab: &Lab) {
    engine.define(NO_SMTP).unwrap();
    engine.define(GUEST).unwrap();
    for g in &lab.guests {
        engine.binding_create(&g.binding_xml("guest")).unwrap();
    }
}

fn one_bound(engine: &TestEngine, lab: &Lab) {
    engine.define(NO_SMTP).unwrap();
    engine.define(GUEST).unwrap();
    engine
        .binding_create(&lab.guests[0].binding_xml("guest"))
        .unwrap();
}

fn text<E: std::fmt::Display>(r: Result<impl Sized, E>) -> Result<(), String> {
    r.map(|_| ()).map_err(|e| e.to_string())
}

fn cases(backend: Backend) -> Vec<Case> {
    vec![
        Case {
            name: "binding-create",
            backend,
            setup: one_bound,
            op: |e, lab| text(e.binding_create(&lab.guests[1].binding_xml("guest"))),
        },
        Case {
            name: "define",
            backend,
            setup: two_bound,
            op: |e, _| text(e.define(NO_SMTP_NO_ICMP)),
        },
        Case {
            name: "reload",
            backend,
            setup: |e, lab| {
                two_bound(e, lab);
                // An admin edits the file; the reload puts it in force.
                let path = e.filters().dir().join("no-smtp.xml");
                std::fs::write(path, NO_SMTP_NO_ICMP).unwrap();
            },
            op: |e, _| {
                let report = e.reapply_all().map_err(|e| e.to_string())?;
                assert!(report.failed.is_empty(), "{report:?}");
                Ok(())
            },
        },
        Case {
            name: "backend switch",
            backend,
            setup: two_bound,
            op: |e, _| {
                let other = Backend::ALL
                    .into_iter()
                    .find(|b| *b != e.backend())
                    .unwrap();
                e.set_backend(other);
                text(e.reapply_all())
            },
        },
        Case {
            name: "binding-delete",
            backend,
            setup: two_bound,
            op: |e, lab| text(e.binding_delete(&lab.guests[1].port)),
        },
    ]
}

/// The kernel's ruleset in the lab's host namespace, ordered so that only
/// what filters counts: chains sorted (the tools list them in creation
/// order), each chain's rules in their order.
fn kernel(lab: &Lab) -> String {
    let mut out = String::new();
    for tool in ["ebtables-save", "iptables-save", "ip6tables-save"] {
        let listing = support::without_counters(&lab.host.ok(&[tool]));
        let mut table = String::new();
        let mut chains: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for line in listing.lines().filter(|l| !l.starts_with('#')) {
            if let Some(decl) = line.strip_prefix(':') {
                let name = decl.split(' ').next().unwrap_or_default().to_owned();
                // The policy, without the chain's position.
                chains.entry(name).or_default().insert(0, line.to_owned());
            } else if let Some(rule) = line.strip_prefix("-A ") {
                let name = rule.split(' ').next().unwrap_or_default().to_owned();
                chains.entry(name).or_default().push(line.to_owned());
            } else if line.starts_with('*') {
                end_table(&mut out, &table, &mut chains);
                table = line.to_owned();
            }
        }
        end_table(&mut out, &table, &mut chains);
    }
    let nft = lab.host.ok(&["nft", "list", "ruleset"]);
    // Tables iptables-nft and ebtables-nft own are listed above already.
    let ours = nft_tables_of_ours(&nft);
    out.push_str(&support::without_counters(&support::chains_sorted(&ours)));
    out
}

/// Prints `table` and its `chains` (taken), unless it filters nothing.
fn end_table(out: &mut String, table: &str, chains: &mut BTreeMap<String, Vec<String>>) {
    let chains = std::mem::take(chains);
    if chains.iter().all(|(chain, rules)| neutral(chain, rules)) {
        return;
    }
    out.push_str(table);
    out.push('\n');
    for (chain, rules) in chains {
        out.push_str(&chain);
        out.push('\n');
        for rule in rules {
            out.push_str(&rule);
            out.push('\n');
        }
    }
}

/// A built-in chain without rules that accepts: what a table the tools
/// create on first use holds. Such a table filters nothing, so whether it
/// exists does not count (a batch that failed may have created it).
fn neutral(chain: &str, rules: &[String]) -> bool {
    const BUILT_IN: [&str; 6] = [
        "INPUT",
        "OUTPUT",
        "FORWARD",
        "PREROUTING",
        "POSTROUTING",
        "BROUTING",
    ];
    BUILT_IN.contains(&chain) && rules.len() == 1 && rules[0] == format!(":{chain} ACCEPT")
}

/// The `table … nwfilter { … }` blocks of an `nft list ruleset`.
fn nft_tables_of_ours(listing: &str) -> String {
    let table = backend_nftables::names::TABLE;
    let mut out = String::new();
    let mut inside = false;
    for line in listing.lines() {
        if line.starts_with("table ") {
            inside = line.split_whitespace().nth(2) == Some(table);
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
        if line == "}" {
            inside = false;
        }
    }
    out
}

/// Every file of the store (filters, bindings, records), by path.
fn store(dirs: &Scratch) -> BTreeMap<String, String> {
    fn walk(dir: &Path, base: &Path, out: &mut BTreeMap<String, String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(&path, base, out);
            } else {
                let name = path.strip_prefix(base).unwrap().display().to_string();
                out.insert(name, std::fs::read_to_string(&path).unwrap_or_default());
            }
        }
    }
    let mut files = BTreeMap::new();
    walk(&dirs.0, &dirs.0, &mut files);
    files
}

/// Removes every rule from the lab's host namespace.
fn reset(lab: &Lab) {
    lab.host.ok(&["nft", "flush", "ruleset"]);
}

fn engine(lab: &Lab, dirs: &Scratch, backend: Backend) -> (TestEngine, Arc<RecordingRunner>) {
    let real = ProcessRunner::new(Toolset::default()).in_netns(&lab.host.name);
    let runner = Arc::new(RecordingRunner::wrapping(real));
    let engine = Engine::new(
        FilterStore::open(dirs.etc()),
        BindingStore::open(dirs.run()),
        Arc::clone(&runner),
    )
    .with_backend(backend);
    (engine, runner)
}

/// The state after `case`'s setup and (with `fail`: the op's Nth command
/// failing) its operation: the op's result and its number of commands.
struct Outcome {
    result: Result<(), String>,
    commands: usize,
    kernel: String,
    store: BTreeMap<String, String>,
    /// After a failed backend switch: the kernel and the store once a
    /// fault-free reload has run.
    after_reload: Option<(String, BTreeMap<String, String>)>,
}

fn run(lab: &Lab, case: &Case, fail: Option<usize>) -> (Outcome, String, BTreeMap<String, String>) {
    reset(lab);
    let tag = format!("fault-{}-{}", case.backend, case.name.replace(' ', "-"));
    let dirs = Scratch::new(&tag);
    let (engine, runner) = engine(lab, &dirs, case.backend);
    (case.setup)(&engine, lab);
    let (old_kernel, old_store) = (kernel(lab), store(&dirs));
    let before = runner.calls().len();
    if let Some(n) = fail {
        runner.fail_call(before + n);
    }
    let result = (case.op)(&engine, lab);
    let commands = runner.calls().len() - before;
    let (kernel_now, store_now) = (kernel(lab), store(&dirs));
    let after_reload = (result.is_err() && case.name == "backend switch").then(|| {
        engine.reapply_all().unwrap();
        (kernel(lab), store(&dirs))
    });
    let outcome = Outcome {
        result,
        commands,
        kernel: kernel_now,
        store: store_now,
        after_reload,
    };
    (outcome, old_kernel, old_store)
}

/// What the guests' packets say is in force on both ports.
#[derive(Debug, PartialEq, Eq)]
enum InForce {
    Old,
    New,
    /// One port with one, the other with the other.
    Mixed,
    /// A port lets a spoofed address through.
    Unfiltered,
}

fn in_force(lab: &Lab, bound: &[&Guest]) -> InForce {
    let mut seen = Vec::new();
    for g in bound {
        let pings = g.pings("10.77.0.1");
        g.set_ip(SPOOFED_IP);
        let spoofed = g.pings("10.77.0.1");
        g.set_ip(&g.ip);
        seen.push(match (pings, spoofed) {
            (_, true) => InForce::Unfiltered,
            (true, false) => InForce::Old,
            (false, false) => InForce::New,
        });
    }
    let _ = lab;
    if seen.contains(&InForce::Unfiltered) {
        InForce::Unfiltered
    } else if seen.iter().all(|s| *s == seen[0]) {
        seen.remove(0)
    } else {
        InForce::Mixed
    }
}

/// Runs `case` failing each of its commands in turn; returns the failures
/// (empty: every N passed).
fn check_every_step(lab: &Lab, case: &Case) -> Vec<String> {
    let (clean, old_kernel, old_store) = run(lab, case, None);
    assert_eq!(clean.result, Ok(()), "{}: without a fault", case.name);
    assert_ne!(
        clean.kernel, old_kernel,
        "{}: the op changes rules",
        case.name
    );
    let mut problems = Vec::new();
    let mut tally = [0usize; 3]; // succeeded, failed (old state), leftovers
                                 // Packets for a sample of N: the first, the middle and the last.
    let sample = [1, clean.commands.div_ceil(2), clean.commands];
    // Every N until the fault is past the last command: a failure may make
    // the operation run more commands than without one (the nftables
    // applier reads and plans again when a transaction is refused), and
    // those are failed in turn too.
    let mut n = 0;
    let mut injected = 0;
    loop {
        n += 1;
        let (outcome, kernel_before, store_before) = run(lab, case, Some(n));
        assert_eq!(kernel_before, old_kernel, "the setup is repeatable");
        assert_eq!(store_before, old_store, "the setup is repeatable");
        if outcome.commands < n {
            assert_eq!(outcome.result, Ok(()), "{}: no fault hit", case.name);
            break;
        }
        injected += 1;
        let what = format!(
            "{} ({}), command {n} failing ({} without a fault)",
            case.name, case.backend, clean.commands
        );
        if leftovers_then_removed(&outcome, &clean) {
            tally[2] += 1;
            continue;
        }
        tally[usize::from(outcome.result.is_err())] += 1;
        let (want_kernel, want_store, label) = match &outcome.result {
            Ok(()) => (&clean.kernel, &clean.store, "succeeded"),
            Err(_) => (&old_kernel, &old_store, "failed"),
        };
        if outcome.kernel != *want_kernel {
            let other = if outcome.kernel == clean.kernel {
                "the new rules"
            } else if outcome.kernel == old_kernel {
                "the old rules"
            } else {
                "neither the old nor the new rules"
            };
            problems.push(format!(
                "{what}: {label} ({:?}) but the kernel holds {other}:\n{}",
                outcome.result, outcome.kernel
            ));
        }
        if !same_store(&outcome.store, want_store) {
            problems.push(format!(
                "{what}: {label} ({:?}) but the store is not as it should be: {:?}",
                outcome.result, outcome.store
            ));
        }
        if sample.contains(&n) && case.name != "binding-create" && case.name != "binding-delete" {
            let bound: Vec<&Guest> = lab.guests.iter().collect();
            let seen = in_force(lab, &bound);
            let want = match (&outcome.result, case.name) {
                (Err(_), _) | (Ok(()), "backend switch") => InForce::Old,
                (Ok(()), _) => InForce::New,
            };
            if seen != want {
                problems.push(format!(
                    "{what}: packets show {seen:?} rules, expected {want:?}"
                ));
            }
        }
    }
    #[allow(clippy::print_stderr)] // the figures docs/RELIABILITY.md quotes
    {
        eprintln!(
            "{} ({}): {} commands without a fault; {injected} runs, each failing one command: \
             {} still succeeded, {} failed leaving the old state, {} left the old backend's \
             rules until the next reload",
            case.name, case.backend, clean.commands, tally[0], tally[1], tally[2]
        );
    }
    problems
}

/// A backend switch whose new rules are in place but whose removal of the
/// old backend's rules failed: it says so, the store records the new
/// backend and the old one's leftovers (so store and kernel agree), the
/// port is filtered by the same filter twice (both backends' rules: never
/// less than before), and the next reload removes the leftovers. The one
/// outcome besides "old" and "new".
fn leftovers_then_removed(outcome: &Outcome, clean: &Outcome) -> bool {
    let Err(message) = &outcome.result else {
        return false;
    };
    let recorded = outcome
        .store
        .iter()
        .filter(|(path, _)| path.ends_with(".backend"))
        .all(|(_, record)| record.contains("leftover = "));
    message.contains("removed at the next reload")
        && recorded
        && outcome
            .after_reload
            .as_ref()
            .is_some_and(|(kernel, store)| {
                *kernel == clean.kernel && same_store(store, &clean.store)
            })
}

/// Whether `seen` is the store `want`: the same filters, bindings and
/// backend records; a record of what xtables last applied (`.applied`)
/// may be missing (a failed change removes it first: the next start
/// probes the port) but, where present, says what `want` says.
fn same_store(seen: &BTreeMap<String, String>, want: &BTreeMap<String, String>) -> bool {
    let applied = |path: &String| path.ends_with(".applied");
    let main = |store: &BTreeMap<String, String>| {
        store
            .iter()
            .filter(|(path, _)| !applied(path))
            .map(|(p, t)| (p.clone(), t.clone()))
            .collect::<BTreeMap<_, _>>()
    };
    main(seen) == main(want)
        && seen
            .iter()
            .filter(|(path, _)| applied(path))
            .all(|(path, text)| want.get(path) == Some(text))
}

fn check_backend(backend: Backend, test: &str) {
    if !support::can_run(test) {
        return;
    }
    let lab = Lab::ready(2);
    let mut problems = Vec::new();
    for case in cases(backend) {
        problems.extend(check_every_step(&lab, &case));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}

#[test]
fn every_failing_command_leaves_old_or_new_rules_xtables() {
    check_backend(
        Backend::Xtables,
        "every_failing_command_leaves_old_or_new_rules_xtables",
    );
}

#[test]
fn every_failing_command_leaves_old_or_new_rules_nftables() {
    check_backend(
        Backend::Nftables,
        "every_failing_command_leaves_old_or_new_rules_nftables",
    );
}
