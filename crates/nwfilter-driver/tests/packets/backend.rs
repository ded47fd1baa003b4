//! The two backends behind one face, so every packet scenario runs
//! unchanged against both. What legitimately differs (how a ruleset is
//! represented, how the kernel is made to refuse an update, what counts as
//! touching live rules, what an operation costs) lives here; the packet
//! assertions live in the scenarios.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::fmt::Debug;

use host_io::{Command, Output, ProcessRunner, RecordingRunner, RunError, Runner, Toolset};
use nwfilter_compile::ir::Program;
use nwfilter_model::IfName;

use crate::support::{Guest, Lab};

/// What an operation did, in the terms both backends report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub changed: Vec<IfName>,
    pub unchanged: Vec<IfName>,
}

/// Processes an operation started: reads (no input) and writes (a
/// restore batch or an nft transaction on stdin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cost {
    pub reads: usize,
    pub writes: usize,
}

impl Cost {
    const fn new(reads: usize, writes: usize) -> Cost {
        Cost { reads, writes }
    }

    fn of(calls: &[Command]) -> Cost {
        let writes = calls.iter().filter(|c| c.stdin.is_some()).count();
        Cost {
            reads: calls.len() - writes,
            writes,
        }
    }
}

/// One firewall backend as the packet scenarios see it.
pub trait Backend {
    /// What one port's rules are, rendered.
    type Ruleset: Clone + PartialEq + Debug;
    /// Instantiating a first port whose filter has bridge and IPv4 rules.
    const FIRST_APPLY: Cost;
    /// Re-applying a port's recorded ruleset.
    const RECORDED_REAPPLY: Cost;

    fn render(program: &Program) -> Self::Ruleset;
    fn port(rules: &Self::Ruleset) -> &IfName;
    fn apply(
        runner: &dyn Runner,
        changes: &[(&Self::Ruleset, Option<&Self::Ruleset>)],
    ) -> Result<Outcome, String>;
    fn remove(runner: &dyn Runner, ports: &[IfName]) -> Result<Outcome, String>;
    /// Updates `old` to `new` in a way the kernel refuses (part of the
    /// update is fine, part is not); checks the error says the previous
    /// rules are in place and returns its text.
    fn refused_update(runner: &dyn Runner, new: &Self::Ruleset, old: &Self::Ruleset) -> String;
    /// Whether `call` changed rules packets were passing through.
    fn touches_live_rules(call: &Command) -> bool;
}

/// The operations both backend crates spell alike (`ruleset`, `Applier`,
/// `Change`, `Report`), for a backend's `impl`.
macro_rules! common_operations {
    ($krate:ident) => {
        fn render(program: &Program) -> Self::Ruleset {
            $krate::ruleset(program).expect(concat!("renders for ", stringify!($krate)))
        }

        fn port(rules: &Self::Ruleset) -> &IfName {
            &rules.port
        }

        fn apply(
            runner: &dyn Runner,
            changes: &[(&Self::Ruleset, Option<&Self::Ruleset>)],
        ) -> Result<Outcome, String> {
            let changes: Vec<_> = changes
                .iter()
                .map(|&(ruleset, recorded)| $krate::Change { ruleset, recorded })
                .collect();
            let report = $krate::Applier::new(runner)
                .apply(&changes)
                .map_err(|e| e.to_string())?;
            Ok(Outcome {
                changed: report.changed,
                unchanged: report.unchanged,
            })
        }

        fn remove(runner: &dyn Runner, ports: &[IfName]) -> Result<Outcome, String> {
            let report = $krate::Applier::new(runner)
                .remove(ports)
                .map_err(|e| e.to_string())?;
            Ok(Outcome {
                changed: report.changed,
                unchanged: report.unchanged,
            })
        }
    };
}

/// The xtables backend: ebtables, iptables, ip6tables restore batches.
pub struct Xtables;

impl Backend for Xtables {
    type Ruleset = backend_xtables::PortRuleset;
    // Three save-tool reads; one batch per family with rules.
    const FIRST_APPLY: Cost = Cost::new(3, 2);
    const RECORDED_REAPPLY: Cost = Cost::new(3, 0);

    common_operations!(backend_xtables);

    fn refused_update(runner: &dyn Runner, new: &Self::Ruleset, old: &Self::Ruleset) -> String {
        use backend_xtables::{ApplyError, Change, Family, Hook};
        // The bridge half is fine (and must be switched back); the kernel
        // refuses the IPv4 half: a TCP reset for UDP fails the REJECT
        // target's check at commit.
        let mut bad = new.clone();
        let words = |rule: &str| rule.split(' ').map(String::from).collect::<Vec<_>>();
        let mut halves = 0;
        for chain in &mut bad.chains {
            match (chain.family, chain.role) {
                (Family::Bridge, Hook::BridgeRootOut) => {
                    chain.rules.insert(0, words("-p 0x88b5 -j DROP"));
                    halves += 1;
                }
                (Family::Ipv4, Hook::ForwardFromVm) => {
                    chain
                        .rules
                        .push(words("-p udp -j REJECT --reject-with tcp-reset"));
                    halves += 1;
                }
                _ => {}
            }
        }
        assert_eq!(halves, 2, "the update needs bridge and IPv4 rules");
        let change = Change {
            ruleset: &bad,
            recorded: Some(old),
        };
        let err = backend_xtables::Applier::new(runner)
            .apply(&[change])
            .expect_err("the kernel refuses a TCP reset for UDP");
        let text = err.to_string();
        assert!(
            matches!(err, ApplyError::Refused { ref restore_errors, .. } if restore_errors.is_empty()),
            "{text}"
        );
        assert!(text.contains("iptables-restore"), "{text}");
        text
    }

    fn touches_live_rules(call: &Command) -> bool {
        // Building and dropping temporary chains is fine; renaming
        // (-E) or deleting (-D) a rule packets pass through is not.
        let input = call.stdin.as_deref().unwrap_or_default();
        input.contains("-E ") || input.contains("-D ")
    }
}

/// The nftables backend: one `nft -f -` transaction per operation.
pub struct Nftables;

impl Backend for Nftables {
    type Ruleset = backend_nftables::PortRuleset;
    // One listing of our maps and ONE transaction.
    const FIRST_APPLY: Cost = Cost::new(1, 1);
    const RECORDED_REAPPLY: Cost = Cost::new(1, 0);

    common_operations!(backend_nftables);

    fn refused_update(runner: &dyn Runner, new: &Self::Ruleset, old: &Self::Ruleset) -> String {
        // The update's own commands are all fine; the kernel refuses the
        // rule appended after them (a jump to no chain), and with it the
        // whole transaction.
        let sabotage = RefusedTransaction { inner: runner };
        let change = backend_nftables::Change {
            ruleset: new,
            recorded: Some(old),
        };
        let err = backend_nftables::Applier::new(&sabotage)
            .apply(&[change])
            .expect_err("the kernel refuses a jump to no chain");
        let text = err.to_string();
        assert!(
            matches!(err, backend_nftables::ApplyError::Refused(_)),
            "{text}"
        );
        assert!(text.contains("nft -f -"), "{text}");
        text
    }

    fn touches_live_rules(call: &Command) -> bool {
        // Any transaction changes the live ruleset.
        call.stdin.is_some()
    }
}

/// Passes every call through, appending to each transaction a chain of
/// our inet table with a rule that jumps to a chain that does not exist.
struct RefusedTransaction<'r> {
    inner: &'r dyn Runner,
}

impl Runner for RefusedTransaction<'_> {
    fn run(&self, cmd: &Command) -> Result<Output, RunError> {
        let Some(input) = &cmd.stdin else {
            return self.inner.run(cmd);
        };
        let table = backend_nftables::names::TABLE;
        let chain = "refused-probe";
        let mut sabotaged = cmd.clone();
        sabotaged.stdin = Some(format!(
            "{input}add chain inet {table} {chain}\n\
             add rule inet {table} {chain} jump no-such-chain\n"
        ));
        self.inner.run(&sabotaged)
    }
}

/// A backend applying in a lab's host namespace, keeping each port's last
/// applied ruleset as a daemon's records do.
pub struct Firewall<B: Backend> {
    runner: RecordingRunner,
    records: RefCell<BTreeMap<IfName, B::Ruleset>>,
}

impl<B: Backend> Firewall<B> {
    pub fn new(lab: &Lab) -> Self {
        let real = ProcessRunner::new(Toolset::default()).in_netns(lab.host.name.clone());
        Firewall {
            runner: RecordingRunner::wrapping(real),
            records: RefCell::default(),
        }
    }

    /// Applies each program over its port's record; panics if refused.
    pub fn apply(&self, programs: &[&Program]) -> Outcome {
        let rendered: Vec<B::Ruleset> = programs.iter().map(|p| B::render(p)).collect();
        let records = self.records.borrow().clone();
        let changes: Vec<_> = rendered
            .iter()
            .map(|r| (r, records.get(B::port(r))))
            .collect();
        let outcome = B::apply(&self.runner, &changes).unwrap_or_else(|e| panic!("apply: {e}"));
        self.keep(rendered);
        outcome
    }

    /// Applies `program` as after a restart that lost the records.
    pub fn apply_unrecorded(&self, program: &Program) -> Outcome {
        let rendered = B::render(program);
        let outcome =
            B::apply(&self.runner, &[(&rendered, None)]).unwrap_or_else(|e| panic!("apply: {e}"));
        self.keep(vec![rendered]);
        outcome
    }

    /// Tries to update to `program` in a way the kernel refuses; returns
    /// the error. The record stays the old ruleset.
    pub fn refused_update(&self, program: &Program) -> String {
        let new = B::render(program);
        let old = self.records.borrow()[B::port(&new)].clone();
        B::refused_update(&self.runner, &new, &old)
    }

    /// Removes the guests' ports.
    pub fn remove(&self, guests: &[&Guest]) -> Outcome {
        let ports = ports(guests);
        let outcome = B::remove(&self.runner, &ports).unwrap_or_else(|e| panic!("remove: {e}"));
        let mut records = self.records.borrow_mut();
        for port in &ports {
            records.remove(port);
        }
        outcome
    }

    /// The commands run so far.
    pub fn calls(&self) -> Vec<Command> {
        self.runner.calls()
    }

    /// What the commands after the first `since` cost.
    pub fn cost_since(&self, since: usize) -> Cost {
        Cost::of(&self.calls()[since..])
    }

    fn keep(&self, rendered: Vec<B::Ruleset>) {
        let mut records = self.records.borrow_mut();
        for rules in rendered {
            records.insert(B::port(&rules).clone(), rules);
        }
    }
}

/// The port names of `guests`, for reports.
pub fn ports(guests: &[&Guest]) -> Vec<IfName> {
    guests
        .iter()
        .map(|g| IfName::new(g.port.clone()).unwrap())
        .collect()
}
