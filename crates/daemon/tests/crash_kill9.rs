//! Crash safety of `nwfilterd` (issue 18, item 4), in a network namespace:
//! several clients send mixed operations (define, binding-create,
//! binding-delete, reload) while the daemon is killed with SIGKILL at
//! random instants. After each restart:
//! * every stored file parses (the daemon starts and lists them; each file
//!   in the config and state directories is read back),
//! * every acknowledged operation is in effect and no refused one is (the
//!   one in flight at the kill may have happened or not),
//! * the kernel holds exactly the rules of the stored bindings: the
//!   ruleset after the restart equals the one a reload rebuilds from the
//!   store on an empty kernel.
//!
//! `CRASH_OPS` sets the number of operations (default 100; the 1 000-op
//! run is `scripts/crash-soak`). `CRASH_SEED` repeats a run.

// The seed and the figures docs/RELIABILITY.md quotes go to stderr.
#![allow(clippy::print_stderr)]

use netns_lab as support;

mod daemon_lab;
use daemon_lab::{start_daemon, Scratch};

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nwfilter_service::{Client, ClientError, Op, Reply};
use support::{without_counters, Background, Lab};

const CLIENTS: usize = 3;
/// Ports and filters each client owns (so that each client's view of its
/// own objects is exact: its operations are sequential).
const PER_CLIENT: usize = 2;

/// A small deterministic generator: a failing run repeats with its seed.
#[derive(Debug, Clone)]
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn filter_name(client: usize, i: usize) -> String {
    format!("crash-c{client}-f{i}")
}

fn port(client: usize, i: usize) -> String {
    format!("cr{client}p{i}")
}

/// Version `v` of a filter: its content differs with `v` (a torn or stale
/// file shows as the wrong port number).
fn filter_xml(name: &str, v: u64) -> String {
    format!(
        "<filter name='{name}' chain='root'>\n  <filterref filter='clean-traffic'/>\n  \
         <rule action='drop' direction='out' priority='500'>\n    \
         <tcp dstportstart='{}'/>\n  </rule>\n</filter>\n",
        1000 + v
    )
}

/// A definition the daemon must refuse (a port number out of range).
fn bad_filter_xml(name: &str) -> String {
    format!(
        "<filter name='{name}' chain='root'><rule action='drop' direction='out'>\
         <tcp dstportstart='70000'/></rule></filter>"
    )
}

fn binding_xml(port: &str, filter: &str, n: u64) -> String {
    format!(
        "<filterbinding><owner><name>vm-{port}</name>\
         <uuid>c7a5fdbd-edaf-9455-926a-d65c16db1809</uuid></owner>\
         <portdev name='{port}'/><mac address='52:54:00:00:01:{:02x}'/>\
         <filterref filter='{filter}'><parameter name='IP' value='10.78.0.{}'/>\
         </filterref></filterbinding>",
        n % 256,
        n % 250 + 2
    )
}

/// What a client knows of its own objects: for each, the state its last
/// acknowledged operation left, and the state the operation in flight at
/// the kill would leave (either may be what the restarted daemon has).
#[derive(Debug, Default, Clone)]
struct Model {
    /// Filter name → stored XML version (None: never defined).
    filters: BTreeMap<String, Option<u64>>,
    /// Port → the filter its binding uses (None: no binding).
    bindings: BTreeMap<String, Option<String>>,
    /// The operation in flight when the daemon died: (object, state it
    /// would leave).
    in_flight: Option<(String, Pending)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    Filter(Option<u64>),
    Binding(Option<String>),
}

/// Counts of what happened, for the report.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    acknowledged: usize,
    refused: usize,
    cut: usize,
}

/// One client's run until the daemon dies (or `budget` is spent).
fn client(
    socket: std::path::PathBuf,
    me: usize,
    model: Arc<Mutex<Model>>,
    tally: Arc<Mutex<Tally>>,
    budget: Arc<Mutex<usize>>,
    mut rng: Lcg,
) {
    loop {
        {
            let mut left = budget.lock().unwrap();
            if *left == 0 {
                return;
            }
            *left -= 1;
        }
        let Ok(mut conn) = Client::connect(&socket) else {
            return;
        };
        let i = rng.below(PER_CLIENT as u64) as usize;
        let (fname, pname) = (filter_name(me, i), port(me, i));
        let version = rng.below(60_000);
        let (op, object, on_ok, refusal_expected) = {
            let m = model.lock().unwrap();
            let defined = m.filters.get(&fname).copied().flatten().is_some();
            let bound = m.bindings.get(&pname).cloned().flatten().is_some();
            match rng.below(6) {
                0 | 1 => (
                    Op::Define {
                        xml: filter_xml(&fname, version),
                    },
                    fname.clone(),
                    Pending::Filter(Some(version)),
                    false,
                ),
                2 => (
                    Op::Define {
                        xml: bad_filter_xml(&fname),
                    },
                    fname.clone(),
                    Pending::Filter(m.filters.get(&fname).copied().flatten()),
                    true,
                ),
                3 => (
                    Op::BindingCreate {
                        xml: binding_xml(&pname, &fname, version),
                    },
                    pname.clone(),
                    Pending::Binding(Some(fname.clone())),
                    !defined || bound,
                ),
                4 => (
                    Op::BindingDelete {
                        portdev: pname.clone(),
                    },
                    pname.clone(),
                    Pending::Binding(None),
                    !bound,
                ),
                _ => (Op::Reload, String::new(), Pending::Binding(None), false),
            }
        };
        let reload = object.is_empty();
        if !reload {
            model.lock().unwrap().in_flight = Some((object.clone(), on_ok.clone()));
        }
        let result = conn.call(op.clone());
        let mut m = model.lock().unwrap();
        match result {
            Ok(_) => {
                assert!(!refusal_expected, "{op:?} was accepted");
                tally.lock().unwrap().acknowledged += 1;
                m.in_flight = None;
                match on_ok {
                    Pending::Filter(v) => {
                        m.filters.insert(object, v);
                    }
                    Pending::Binding(b) if !reload => {
                        m.bindings.insert(object, b);
                    }
                    Pending::Binding(_) => {}
                }
            }
            Err(ClientError::Refused(message)) => {
                assert!(refusal_expected, "{op:?} refused: {message}");
                tally.lock().unwrap().refused += 1;
                m.in_flight = None;
            }
            Err(_) => {
                // Cut by the kill: in_flight stays.
                tally.lock().unwrap().cut += 1;
                return;
            }
        }
    }
}

/// Sends SIGKILL to the daemon (a process this test started).
fn kill9(daemon: &Background) {
    let pid = daemon.pid().to_string();
    let ok = std::process::Command::new("kill")
        .args(["-9", &pid])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -9 {pid}");
}

fn call(socket: &std::path::Path, op: Op) -> Reply {
    Client::connect(socket)
        .unwrap()
        .call(op.clone())
        .unwrap_or_else(|e| panic!("{op:?}: {e}"))
}

/// Every file in the config and state directories parses as what it is.
fn files_parse(scratch: &Scratch) {
    for entry in std::fs::read_dir(scratch.etc()).unwrap().flatten() {
        let path = entry.path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !(name.starts_with('.') && name.ends_with(".tmp")),
            "a temporary file is left: {}",
            path.display()
        );
        if path.extension().is_some_and(|e| e == "xml") {
            let text = std::fs::read_to_string(&path).unwrap();
            nwfilter_model::parse_filter(&text)
                .unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()));
        }
    }
    let mut stack = vec![scratch.run()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            // A writer's temp file (`.KEY.random.tmp`) left by the kill is
            // swept when the daemon starts.
            assert!(
                !(name.starts_with('.') && name.ends_with(".tmp")),
                "a temporary file is left: {}",
                path.display()
            );
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            if name.ends_with(".xml") {
                nwfilter_model::parse_binding(&text)
                    .unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()));
            } else if name.ends_with(".json") {
                serde_json::from_str::<serde_json::Value>(&text)
                    .unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()));
            }
        }
    }
}

/// The restarted daemon's filters and bindings agree with every client's
/// model (the in-flight operation either way). Settles the model.
fn check_store(socket: &std::path::Path, models: &[Arc<Mutex<Model>>]) {
    let Reply::Bindings { bindings } = call(socket, Op::BindingList) else {
        panic!("binding-list answers bindings");
    };
    let actual_bindings: BTreeMap<String, String> = bindings
        .into_iter()
        .map(|b| (b.portdev, b.filter))
        .collect();
    for model in models {
        let mut m = model.lock().unwrap();
        let in_flight = m.in_flight.take();
        for (name, version) in m.filters.clone() {
            let stored = match call_result(
                socket,
                Op::Dumpxml {
                    filter: name.clone(),
                },
            ) {
                Ok(Reply::Xml { xml }) => Some(xml),
                _ => None,
            };
            let matches = |v: Option<u64>| match (&stored, v) {
                (None, None) => true,
                (Some(xml), Some(v)) => xml.contains(&format!("dstportstart='{}'", 1000 + v)),
                _ => false,
            };
            let settled = match &in_flight {
                Some((o, Pending::Filter(v))) if *o == name && matches(*v) => *v,
                _ if matches(version) => version,
                _ => panic!("filter {name}: stored {stored:?}, acknowledged version {version:?}, in flight {in_flight:?}"),
            };
            m.filters.insert(name, settled);
        }
        if let Some((o, Pending::Filter(v))) = &in_flight {
            if !m.filters.contains_key(o) {
                let stored = call_result(socket, Op::Dumpxml { filter: o.clone() }).is_ok();
                m.filters.insert(o.clone(), if stored { *v } else { None });
            }
        }
        let ports: Vec<String> = m.bindings.keys().cloned().collect();
        let mut ports = ports;
        if let Some((o, Pending::Binding(_))) = &in_flight {
            if !ports.contains(o) {
                ports.push(o.clone());
            }
        }
        for p in ports {
            let acked = m.bindings.get(&p).cloned().flatten();
            let actual = actual_bindings.get(&p).cloned();
            let settled = match &in_flight {
                Some((o, Pending::Binding(b))) if *o == p && *b == actual => actual.clone(),
                _ if acked == actual => acked,
                _ => panic!("binding {p}: the daemon has {actual:?}, acknowledged {acked:?}, in flight {in_flight:?}"),
            };
            m.bindings.insert(p, settled);
        }
    }
    // No binding of ours that no client knows of.
    for p in actual_bindings.keys() {
        assert!(
            models.iter().any(|m| m
                .lock()
                .unwrap()
                .bindings
                .get(p)
                .cloned()
                .flatten()
                .is_some()),
            "binding {p} exists but was never acknowledged"
        );
    }
}

fn call_result(socket: &std::path::Path, op: Op) -> Result<Reply, ClientError> {
    Client::connect(socket)?.call(op)
}

/// Chains whose rules each send one port's packets to that port's chains:
/// they are disjoint, so their order does not filter anything (it is the
/// order the ports were applied in).
const DISPATCH: [&str; 9] = [
    "PREROUTING",
    "POSTROUTING",
    "INPUT",
    "OUTPUT",
    "FORWARD",
    "libvirt-in",
    "libvirt-out",
    "libvirt-in-post",
    "libvirt-host-in",
];

/// What filters in the lab's host namespace: each xtables table's own
/// chains and every rule, grouped by chain (chains sorted: the tools list
/// them in creation order; dispatch chains' rules sorted, see
/// [`DISPATCH`]), then our nftables tables with their chains sorted.
/// Built-in chains without rules (a table the tools created) do not count.
fn filtering(lab: &Lab) -> String {
    let mut out = String::new();
    for tool in ["ebtables-save", "iptables-save", "ip6tables-save"] {
        let listing = without_counters(&lab.host.ok(&[tool]));
        let mut table = "";
        let mut chains: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
        for line in listing.lines() {
            if let Some(name) = line.strip_prefix('*') {
                table = name;
            } else if let Some(decl) = line.strip_prefix(':') {
                let chain = decl.split(' ').next().unwrap_or_default();
                if !DISPATCH[..5].contains(&chain) {
                    chains.entry((table.into(), chain.into())).or_default();
                }
            } else if let Some(rule) = line.strip_prefix("-A ") {
                let chain = rule.split(' ').next().unwrap_or_default();
                chains
                    .entry((table.into(), chain.into()))
                    .or_default()
                    .push(line.to_owned());
            }
        }
        for ((table, chain), mut rules) in chains {
            if DISPATCH.contains(&chain.as_str()) {
                rules.sort_unstable();
            }
            out.push_str(&format!("{tool} {table} {chain}\n"));
            for rule in rules {
                out.push_str(&format!("  {rule}\n"));
            }
        }
    }
    let nft = lab.host.ok(&["nft", "list", "ruleset"]);
    let mut ours = String::new();
    let mut inside = false;
    for line in nft.lines() {
        if line.starts_with("table ") {
            inside =
                line.split_whitespace().nth(2) == Some(nwfilter_driver::backend::nftables::TABLE);
        }
        if inside {
            ours.push_str(line);
            ours.push('\n');
        }
    }
    out.push_str(&without_counters(&support::chains_sorted(&ours)));
    out
}

/// The kernel holds exactly the stored bindings' rules: what the restart
/// left equals what a reload builds from the store on an empty kernel.
fn check_kernel(lab: &Lab, socket: &std::path::Path) {
    let after_restart = filtering(lab);
    lab.host.ok(&["nft", "flush", "ruleset"]);
    call(socket, Op::Reload);
    let from_store = filtering(lab);
    assert_eq!(
        after_restart, from_store,
        "the rules after the restart are not the stored bindings' rules"
    );
}

#[test]
fn kill_9_at_random_instants_loses_nothing_acknowledged() {
    if !support::can_run("kill_9_at_random_instants_loses_nothing_acknowledged") {
        return;
    }
    let total: usize = std::env::var("CRASH_OPS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let seed: u64 = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
        });
    eprintln!("crash_kill9: {total} operations, CRASH_SEED={seed}");
    let mut rng = Lcg(seed);
    let lab = Lab::new(0);
    let scratch = Scratch::new("crash-kill9");
    let socket = scratch.socket();
    let models: Vec<Arc<Mutex<Model>>> = (0..CLIENTS).map(|_| Arc::default()).collect();
    let tally = Arc::new(Mutex::new(Tally::default()));
    let budget = Arc::new(Mutex::new(total));
    let started = Instant::now();
    let mut kills = 0;
    while *budget.lock().unwrap() > 0 {
        let daemon = start_daemon(&lab.host, &scratch, &[]);
        files_parse(&scratch);
        check_store(&socket, &models);
        check_kernel(&lab, &socket);
        // At most half of what is left per daemon's life, so that however
        // fast the operations are there are several kills (the kill below
        // may otherwise come after the whole budget was spent).
        let left = *budget.lock().unwrap();
        let this_round = left.div_ceil(2);
        let round = Arc::new(Mutex::new(this_round));
        let threads: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (socket, model, tally, budget) = (
                    socket.clone(),
                    Arc::clone(&models[c]),
                    Arc::clone(&tally),
                    Arc::clone(&round),
                );
                let rng = Lcg(rng.next() ^ c as u64);
                std::thread::spawn(move || client(socket, c, model, tally, budget, rng))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(10 + rng.below(300)));
        kill9(&daemon);
        kills += 1;
        drop(daemon);
        for t in threads {
            t.join().expect("client thread");
        }
        let spent = this_round - *round.lock().unwrap();
        *budget.lock().unwrap() -= spent;
    }
    let daemon = start_daemon(&lab.host, &scratch, &[]);
    files_parse(&scratch);
    check_store(&socket, &models);
    check_kernel(&lab, &socket);
    drop(daemon);
    let t = *tally.lock().unwrap();
    eprintln!(
        "crash_kill9: {total} operations in {:.1} s: {} acknowledged, {} refused, {} cut by \
         {kills} kills; every restart consistent",
        started.elapsed().as_secs_f64(),
        t.acknowledged,
        t.refused,
        t.cut
    );
    assert!(t.acknowledged > 0 && kills > 1);
}
