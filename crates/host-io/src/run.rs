//! The I/O boundary: running [`Command`]s.
//!
//! [`Runner`] is the only way the workspace starts firewall tools.
//! [`ProcessRunner`] runs the real tools (argv and stdin, never a shell),
//! optionally inside a named network namespace;
//! [`RecordingRunner`](crate::RecordingRunner) records commands for tests
//! and can be told to fail the Nth call; [`DryRun`](crate::DryRun) writes
//! what would run.

use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};

use crate::command::{Command, OnError};
use crate::commit_watch::{collect, CommitWatch, WatchPool};
use crate::nft_elements::ElementChange;
use crate::nft_removal::{Removal, Remover, Transaction};
use crate::nft_socket::{TableFamily, TableSeen};
use crate::quote::shell_line;
use crate::standby::{worth_a_standby, Standbys};
use crate::started::Started;
use crate::tools::{missing, MissingTool, Toolset};

/// What a finished command printed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Output {
    /// Exit status; `None` when killed by a signal.
    pub status: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status == Some(0)
    }
}

/// A command that could not be run or failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Missing(#[from] MissingTool),
    #[error("cannot start {program}: {source}")]
    Spawn {
        program: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{}` failed ({}): {}{}", shell_line(.program, .args), status_text(.status), .stderr.trim_end(), offending_line(.stderr, .stdin.as_deref()))]
    Failed {
        program: String,
        args: Vec<String>,
        /// Exit status; `None` when killed by a signal.
        status: Option<i32>,
        stderr: String,
        /// The restore input, if any (the error quotes the line it names).
        stdin: Option<String>,
    },
}

/// Runs commands. Implementations decide what "running" means.
pub trait Runner {
    /// Runs `cmd`. A non-zero exit is `Err(RunError::Failed)` when the
    /// command's policy is [`OnError::Fail`], and `Ok` (with the status)
    /// when it is [`OnError::Ignore`].
    fn run(&self, cmd: &Command) -> Result<Output, RunError>;

    /// Starts `cmd` to run while the caller does other work (a read of
    /// the kernel's tables while the bindings compile); [`Started::finish`]
    /// waits for its result. Runners that have nothing to run in the
    /// background (recording, dry run) run it at once, which is the
    /// default.
    fn start(&self, cmd: &Command) -> Started {
        Started::finished(self.run(cmd))
    }

    /// Commits `removal` itself, by the kernel's rule handles, as one
    /// transaction (see `nft_removal`); false when it did not (nothing
    /// changed): the caller then commits the same deletions through its
    /// tool. Only [`ProcessRunner::removing_by_handle`] does; recording
    /// and dry runs never, so they show the tool's command.
    fn remove_by_handle(&self, removal: &Removal) -> bool {
        let _ = removal;
        false
    }

    /// Commits `change` itself, as one transaction of set and map
    /// elements (see `nft_elements`); false when it did not (nothing
    /// changed): the caller then commits the same change through `nft`.
    /// Only a runner [`ProcessRunner::removing_by_handle`] does.
    fn change_elements(&self, change: &ElementChange) -> bool {
        let _ = change;
        false
    }

    /// The nf_tables ruleset generation of the namespace this runner's
    /// commands change (`NFT_MSG_GETGEN`): every commit, by anyone, makes
    /// a new one. `None` when this runner cannot tell (the default; only
    /// a runner [`ProcessRunner::removing_by_handle`] can).
    fn ruleset_generation(&self) -> Option<u32> {
        None
    }

    /// What the kernel says of nf_tables table `name` of `family` in the
    /// namespace this runner's commands change (`NFT_MSG_GETTABLE`).
    /// `None` when this runner cannot tell (as for
    /// [`Runner::ruleset_generation`]).
    fn nft_table(&self, family: TableFamily, name: &str) -> Option<TableSeen> {
        let _ = (family, name);
        None
    }
}

/// A shared runner (e.g. one the caller keeps to inspect afterwards).
impl<R: Runner + ?Sized> Runner for std::sync::Arc<R> {
    fn run(&self, cmd: &Command) -> Result<Output, RunError> {
        (**self).run(cmd)
    }

    fn start(&self, cmd: &Command) -> Started {
        (**self).start(cmd)
    }

    fn remove_by_handle(&self, removal: &Removal) -> bool {
        (**self).remove_by_handle(removal)
    }

    fn change_elements(&self, change: &ElementChange) -> bool {
        (**self).change_elements(change)
    }

    fn ruleset_generation(&self) -> Option<u32> {
        (**self).ruleset_generation()
    }

    fn nft_table(&self, family: TableFamily, name: &str) -> Option<TableSeen> {
        (**self).nft_table(family, name)
    }
}

/// Turns a finished process into the result the command's policy asks for.
pub(crate) fn judge(program: String, cmd: &Command, output: Output) -> Result<Output, RunError> {
    if output.success() || cmd.on_error == OnError::Ignore {
        return Ok(output);
    }
    Err(RunError::Failed {
        program,
        args: cmd.args.clone(),
        status: output.status,
        stderr: output.stderr,
        stdin: cmd.stdin.clone(),
    })
}

/// The largest batch whose commit is watched for (a few ports' changes).
/// While a watch listens the kernel builds a notice for every object a
/// transaction touches: for a restore of 1000 ports (38 000 rules) that
/// cost more than the 10–20 ms the watch can save.
const WATCHED_BATCH_MAX: usize = 64 << 10;

/// How many of the last started tools' PIDs are remembered.
const SPAWNED_REMEMBERED: usize = 256;

/// The PIDs of the tools this process started last (any runner): the
/// kernel names the committing process in each nf_tables change
/// notification, and the daemon's rule check ignores its own commits.
static SPAWNED: std::sync::Mutex<std::collections::VecDeque<u32>> =
    std::sync::Mutex::new(std::collections::VecDeque::new());

fn remember_spawned(pid: u32) {
    let mut pids = SPAWNED.lock().unwrap_or_else(|e| e.into_inner());
    if pids.contains(&pid) {
        return;
    }
    if pids.len() == SPAWNED_REMEMBERED {
        pids.pop_front();
    }
    pids.push_back(pid);
}

/// Whether `pid` is one of the last tools this process started.
pub fn spawned_recently(pid: u32) -> bool {
    let pids = SPAWNED.lock().unwrap_or_else(|e| e.into_inner());
    pids.contains(&pid)
}

/// Runs the real programs.
#[derive(Debug, Default)]
pub struct ProcessRunner {
    toolset: Toolset,
    /// Run inside this named network namespace (`ip netns exec NS ...`).
    netns: Option<String>,
    starts: AtomicUsize,
    /// Batch tools started ahead of need (see [`ProcessRunner::with_standby`]).
    standbys: Option<Standbys>,
    /// Commit watches between batches (see
    /// [`ProcessRunner::watching_commits`]), one per batch run at once.
    watches: Option<WatchPool>,
    /// Removals by rule handle (see [`ProcessRunner::removing_by_handle`]);
    /// `None` inside until its socket is opened.
    remover: Option<std::sync::Mutex<Option<Remover>>>,
}

impl ProcessRunner {
    pub fn new(toolset: Toolset) -> ProcessRunner {
        ProcessRunner {
            toolset,
            ..ProcessRunner::default()
        }
    }

    /// Runs every command inside the named network namespace, through
    /// `ip netns exec NAME` (an argv, still no shell).
    pub fn in_netns(mut self, name: impl Into<String>) -> ProcessRunner {
        self.netns = Some(name.into());
        self
    }

    /// Keeps one process of each batch tool (`nft -f -`, `*-restore`)
    /// started and waiting for its next input, so a change does not wait
    /// for the tool to start (about 2 ms of a 3 ms `nft` run). For a
    /// long-lived caller (the daemon): each standby is an idle process
    /// until the runner is dropped. Decides exactly as without (the
    /// tools read the kernel only once their input is complete; see
    /// `standby.rs`).
    pub fn with_standby(mut self) -> ProcessRunner {
        self.standbys = Some(Standbys::default());
        self
    }

    /// Reports a one-transaction batch ([`Command::one_transaction`]) of
    /// a few ports (up to 64 KiB of input; a whole restore is not worth
    /// the kernel's notices) applied as soon as the kernel announces its
    /// tool's commit, instead of when the tool exits: after a removal, a
    /// tool's exit waits an RCU grace period (10–20 ms here) that the
    /// change does not (see `commit_watch.rs`). For a long-lived caller (the daemon): the
    /// notice sockets are kept open, as closing one waits the same way.
    /// Not with [`ProcessRunner::in_netns`] (the tool's namespace is not
    /// the runner's); failures are reported as before, from the tool.
    pub fn watching_commits(mut self) -> ProcessRunner {
        self.watches = Some(Default::default());
        self
    }

    /// Commits the removal of a port's chains from an xtables-nft table
    /// itself ([`Runner::remove_by_handle`]), deleting its hook rules by
    /// their kernel handles: the restore tools delete them by their
    /// words, reading and decoding every rule of the hook chain, which
    /// grows with every other port (see `nft_removal.rs`). The handles
    /// are read once and kept while no one else commits. On the same
    /// netlink socket it also commits nftables changes made only of set
    /// and map elements ([`Runner::change_elements`], `nft_elements.rs`).
    /// Not with [`ProcessRunner::in_netns`] (the tables are the tools'
    /// namespace's).
    pub fn removing_by_handle(mut self) -> ProcessRunner {
        self.remover = Some(Default::default());
        self
    }

    /// How many times a removal by handle read a hook chain's rules (the
    /// handles are otherwise kept, and followed through our own commits).
    pub fn hook_chain_reads(&self) -> usize {
        let Some(remover) = &self.remover else {
            return 0;
        };
        let remover = remover.lock().unwrap_or_else(|e| e.into_inner());
        remover.as_ref().map_or(0, Remover::reads)
    }

    /// How many processes this runner has started so far (standbys too).
    pub fn process_starts(&self) -> usize {
        self.starts.load(Ordering::Relaxed)
    }

    /// Starts `program` with `cmd`'s arguments (inside the namespace, if
    /// any), its standard streams piped as `cmd` needs them.
    fn spawn(&self, cmd: &Command, program: &str) -> std::io::Result<std::process::Child> {
        let mut process = match &self.netns {
            Some(ns) => {
                let mut p = std::process::Command::new("ip");
                p.args(["netns", "exec", ns, program]);
                p
            }
            None => std::process::Command::new(program),
        };
        process
            .args(&cmd.args)
            .stdin(if cmd.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let child = process.spawn()?;
        self.starts.fetch_add(1, Ordering::Relaxed);
        remember_spawned(child.id());
        Ok(child)
    }

    fn spawn_output(&self, cmd: &Command, program: &str) -> std::io::Result<Output> {
        match &self.standbys {
            Some(standbys) if worth_a_standby(cmd) => self.run_on_standby(standbys, cmd, program),
            _ => {
                let child = self.spawn(cmd, program)?;
                self.collect(child, cmd)
            }
        }
    }

    /// Feeds `child` its input and waits for its result: its exit, or for
    /// a small command that is one transaction, its commit (with a watch
    /// from the pool, in the nf_tables group from before the input is
    /// written until the result is known).
    fn collect(&self, child: std::process::Child, cmd: &Command) -> std::io::Result<Output> {
        let small = cmd
            .stdin
            .as_ref()
            .is_some_and(|s| s.len() <= WATCHED_BATCH_MAX);
        let mut joined = match &self.watches {
            Some(pool) if cmd.one_transaction && small && self.netns.is_none() => pool.join(),
            _ => None,
        };
        let mut watch = joined.as_mut().and_then(|j| j.watch());
        let output = collect(child, cmd.stdin.as_deref(), watch.as_deref_mut());
        // A create's new hook rules: their handles, for a later removal.
        if let Some(transaction) = watch.and_then(CommitWatch::take_committed) {
            self.learn(transaction);
        }
        output
    }

    /// Follows our tool's `transaction` in the handles kept for removals.
    fn learn(&self, transaction: Transaction) {
        let Some(remover) = &self.remover else { return };
        let mut remover = remover.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(remover) = remover.as_mut() {
            remover.learn(transaction);
        }
    }

    /// Runs `cmd` in the process waiting for it (or a new one), then
    /// starts the next one.
    fn run_on_standby(
        &self,
        standbys: &Standbys,
        cmd: &Command,
        program: &str,
    ) -> std::io::Result<Output> {
        let child = match standbys.take(program, cmd) {
            Some(child) => {
                // Its commit is ours (the rule check tells ours by PID),
                // however many tools started since it did.
                remember_spawned(child.id());
                child
            }
            None => self.spawn(cmd, program)?,
        };
        let output = self.collect(child, cmd);
        // Started once this one is done, not beside it: its start would
        // take a core from the batch being applied.
        match self.spawn(cmd, program) {
            Ok(next) => standbys.keep(program, cmd, next),
            Err(e) => tracing::debug!("{program} not started ahead: {e}"),
        }
        output
    }
}

impl Runner for ProcessRunner {
    fn run(&self, cmd: &Command) -> Result<Output, RunError> {
        // One `tool` span per process (debug level): with the daemon's
        // `--log-timings`, each process's time shows beside the operation's
        // other parts, whoever started it (driver, networks, learner).
        let _span = tracing::debug_span!("tool", tool = ?cmd.tool).entered();
        self.run_as(cmd, self.toolset.program(cmd.tool))
    }

    fn start(&self, cmd: &Command) -> Started {
        self.start_as(cmd, self.toolset.program(cmd.tool))
    }

    fn remove_by_handle(&self, removal: &Removal) -> bool {
        let _span = tracing::debug_span!("removal by handle").entered();
        self.commit_by_netlink(|remover| remover.remove(removal))
    }

    fn change_elements(&self, change: &ElementChange) -> bool {
        let _span = tracing::debug_span!("elements by netlink").entered();
        self.commit_by_netlink(|remover| change.commit(remover.socket()))
    }

    fn ruleset_generation(&self) -> Option<u32> {
        self.with_kept_socket(|remover| remover.socket().generation())?
            .inspect_err(|e| tracing::debug!("no ruleset generation: {e}"))
            .ok()
    }

    fn nft_table(&self, family: TableFamily, name: &str) -> Option<TableSeen> {
        self.with_kept_socket(|remover| remover.socket().table(family, name))?
            .inspect_err(|e| tracing::debug!("no answer about table {name}: {e}"))
            .ok()
    }
}

impl ProcessRunner {
    /// Runs `commit` on the netlink socket kept for our own transactions
    /// (opened at the first); false when this runner makes none or it did
    /// not commit (nothing changed: the caller's tool decides then).
    fn commit_by_netlink(
        &self,
        commit: impl FnOnce(&mut Remover) -> Result<(), crate::nft_socket::NotCommitted>,
    ) -> bool {
        self.with_kept_socket(|remover| {
            // The kernel names the committing thread in its notice of the
            // commit: the daemon's rule check must know it for ours.
            remember_spawned(rustix::thread::gettid().as_raw_nonzero().get() as u32);
            commit(remover)
                .inspect_err(|why| tracing::debug!("committing through the tool: {why}"))
                .is_ok()
        })
        .unwrap_or(false)
    }

    /// Runs `use_it` on the netlink socket kept for our own transactions
    /// (opened at the first use); `None` when this runner keeps none, its
    /// tools change another namespace, or it cannot be opened.
    fn with_kept_socket<T>(&self, use_it: impl FnOnce(&mut Remover) -> T) -> Option<T> {
        let remover = self.remover.as_ref()?;
        if self.netns.is_some() {
            return None;
        }
        let mut opened = remover.lock().unwrap_or_else(|e| e.into_inner());
        let remover = match opened.take().map_or_else(Remover::open, Ok) {
            Ok(remover) => opened.insert(remover),
            Err(e) => {
                tracing::debug!("no netlink socket: {e}");
                return None;
            }
        };
        Some(use_it(remover))
    }
}

impl ProcessRunner {
    fn run_as(&self, cmd: &Command, program: String) -> Result<Output, RunError> {
        match self.spawn_output(cmd, &program) {
            Ok(output) => judge(program, cmd, output),
            Err(e) => Err(spawn_error(cmd, program, e)),
        }
    }

    /// As [`Runner::start`]: the process is started here and a thread of
    /// its own feeds it and drains its output, so a tool that prints more
    /// than a pipe holds never waits for the caller.
    fn start_as(&self, cmd: &Command, program: String) -> Started {
        let child = match self.spawn(cmd, &program) {
            Ok(child) => child,
            Err(e) => return Started::finished(Err(spawn_error(cmd, program, e))),
        };
        let cmd = cmd.clone();
        let waiting = std::thread::Builder::new()
            .name("tool-output".into())
            .spawn(move || {
                let _span = tracing::debug_span!("tool", tool = ?cmd.tool).entered();
                match collect(child, cmd.stdin.as_deref(), None) {
                    Ok(output) => judge(program, &cmd, output),
                    Err(source) => Err(RunError::Spawn { program, source }),
                }
            });
        match waiting {
            Ok(handle) => Started::running(handle),
            // No thread to spare: the process runs on, and its output is
            // collected by whoever finishes it.
            Err(e) => Started::finished(Err(RunError::Spawn {
                program: "a thread to read a tool's output".into(),
                source: e,
            })),
        }
    }
}

fn spawn_error(cmd: &Command, program: String, e: std::io::Error) -> RunError {
    if e.kind() == std::io::ErrorKind::NotFound {
        missing(cmd.tool, program).into()
    } else {
        RunError::Spawn { program, source: e }
    }
}

fn status_text(status: &Option<i32>) -> String {
    match status {
        Some(code) => format!("exit status {code}"),
        None => "killed by a signal".to_string(),
    }
}

/// Restore tools say "Error occurred at line: N" or "line N: ...": quote
/// that line of the input, which is what the reader needs to see.
fn offending_line(stderr: &str, stdin: Option<&str>) -> String {
    let Some(input) = stdin else {
        return String::new();
    };
    let number = stderr.split("line").skip(1).find_map(|rest| {
        let digits: String = rest
            .trim_start_matches([':', ' '])
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse::<usize>().ok()
    });
    match number.and_then(|n| input.lines().nth(n.checked_sub(1)?)) {
        Some(line) => format!("\n  input line: {line}"),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::Tool;
    use crate::{DryRun, RecordingRunner};

    fn restore(input: &str) -> Command {
        Command::new(Tool::IptablesRestore, ["--noflush"]).with_stdin(input)
    }

    #[test]
    fn recording_runner_fails_the_chosen_call_with_its_details() {
        let runner = RecordingRunner::new();
        runner.fail_call(2);
        assert!(runner.run(&restore("*filter\nCOMMIT\n")).is_ok());
        let err = runner
            .run(&Command::new(Tool::Ebtables, ["-t", "nat", "-L"]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "`ebtables -t nat -L` failed (exit status 1): injected failure"
        );
        assert_eq!(runner.calls().len(), 2);
    }

    #[test]
    fn ignored_failures_return_their_status() {
        let runner = RecordingRunner::new();
        runner.fail_call(1);
        let cmd = Command::new(Tool::Iptables, ["-X", "FI-vnet0"]).ignoring_errors();
        assert_eq!(runner.run(&cmd).unwrap().status, Some(1));
    }

    #[test]
    fn failure_quotes_the_restore_line_it_names() {
        let cmd = restore("*filter\n-A X -p bogus\nCOMMIT\n");
        let output = Output {
            status: Some(2),
            stdout: String::new(),
            stderr: "iptables-restore: unknown protocol\nError occurred at line: 2\n".into(),
        };
        let err = judge("iptables-restore".into(), &cmd, output).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("`iptables-restore --noflush` failed (exit status 2)"));
        assert!(text.ends_with("\n  input line: -A X -p bogus"), "{text}");
    }

    #[test]
    fn missing_program_is_named_with_its_package() {
        let runner = ProcessRunner::default();
        let cmd = Command::new(Tool::EbtablesRestore, ["--noflush"]).with_stdin("");
        let err = runner
            .run_as(&cmd, "nwfilter-test-no-such-program".into())
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "nwfilter-test-no-such-program not found: install the ebtables package"
        );
        assert_eq!(runner.process_starts(), 0);
    }

    #[test]
    fn dry_run_reads_through_and_prints_the_rest() {
        let reads = RecordingRunner::new();
        reads.answer(Tool::IptablesSave, "*filter\nCOMMIT\n");
        let dry = DryRun::new(Vec::new()).reading_through(reads);
        let read = dry.run(&Command::new(Tool::IptablesSave, ["-t", "filter"]));
        assert_eq!(read.unwrap().stdout, "*filter\nCOMMIT\n");
        dry.run(&restore("*filter\nCOMMIT\n")).unwrap();
        let text = String::from_utf8(dry.into_inner()).unwrap();
        assert_eq!(
            text,
            "iptables-restore --noflush <<'EOF'\n*filter\nCOMMIT\nEOF\n"
        );
    }

    #[test]
    fn dry_run_prints_commands_and_here_documents() {
        let dry = DryRun::new(Vec::new());
        dry.run(&Command::new(
            Tool::Iptables,
            ["-A", "X", "--comment", "a b"],
        ))
        .unwrap();
        dry.run(&restore("*filter\nCOMMIT\n")).unwrap();
        let text = String::from_utf8(dry.into_inner()).unwrap();
        assert_eq!(
            text,
            "iptables -A X --comment 'a b'\niptables-restore --noflush <<'EOF'\n*filter\nCOMMIT\nEOF\n"
        );
    }

    #[test]
    fn a_started_process_runs_beside_the_caller_and_keeps_all_it_printed() {
        let runner = ProcessRunner::default();
        // More than a pipe holds: the caller does not read until finish.
        let cmd = Command::new(Tool::Nft, ["1", "200000"]);
        let started = runner.start_as(&cmd, "seq".into());
        let out = started.finish().unwrap();
        assert_eq!(out.stdout.lines().count(), 200000);
        assert_eq!(out.stdout.lines().last(), Some("200000"));
        assert_eq!(runner.process_starts(), 1);
    }

    #[test]
    fn a_started_missing_program_is_named_with_its_package() {
        let runner = ProcessRunner::default();
        let cmd = Command::new(Tool::Nft, ["-j", "list", "ruleset"]);
        let err = runner
            .start_as(&cmd, "nwfilter-test-no-such-program".into())
            .finish()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "nwfilter-test-no-such-program not found: install the nftables package"
        );
    }

    #[test]
    fn a_started_failure_is_judged_as_run_judges_it() {
        let runner = ProcessRunner::default();
        let cmd = Command::new(Tool::Nft, Vec::<String>::new());
        let err = runner.start_as(&cmd, "false".into()).finish().unwrap_err();
        assert_failed_with(&err, 1);
    }

    fn shell_batch(script: &str, input: &str) -> Command {
        Command::new(Tool::Nft, ["-c", script])
            .with_stdin(input)
            .one_transaction()
    }

    #[test]
    fn watching_commits_a_batch_that_announces_none_is_judged_by_its_exit() {
        // No commit notice names `sh` (a failed batch commits nothing):
        // its exit, status and output are what the caller gets.
        let runner = ProcessRunner::default().watching_commits();
        let ok = shell_batch("cat; seq 1 100000 >&2", "add element\n");
        let out = runner.run_as(&ok, "sh".into()).unwrap();
        assert_eq!(out.stdout, "add element\n");
        assert_eq!(out.stderr.lines().count(), 100000, "both streams drained");
        let refused = shell_batch(
            "cat >/dev/null; echo 'Error: No such file' >&2; exit 1",
            "x\n",
        );
        let err = runner.run_as(&refused, "sh".into()).unwrap_err();
        assert_failed_with(&err, 1);
        assert!(err.to_string().contains("Error: No such file"), "{err}");
        let pool = runner.watches.as_ref().unwrap();
        assert!(pool.kept().len() <= 1, "one watch, kept for the next batch");
    }

    /// The multicast groups (`/proc/net/netlink`'s hex bitmap) of the
    /// socket with `inode`, in listings of that file (a listing may stop
    /// early while the kernel resizes its table: read it a few times).
    fn groups_of(listing: &str, inode: u64) -> Option<String> {
        listing.lines().find_map(|line| {
            let cols: Vec<&str> = line.split_whitespace().collect();
            (cols.get(9)? == &inode.to_string().as_str()).then(|| cols[3].to_owned())
        })
    }

    fn watch_inode(runner: &ProcessRunner) -> u64 {
        use std::os::fd::AsRawFd;
        let kept = runner.watches.as_ref().unwrap().kept();
        let fd = kept.first().expect("a watch kept").fd().as_raw_fd();
        let link = std::fs::read_link(format!("/proc/self/fd/{fd}")).unwrap();
        let text = link.to_string_lossy();
        text.trim_start_matches("socket:[")
            .trim_end_matches(']')
            .parse()
            .unwrap()
    }

    #[test]
    // Says on the test's stderr why it did not run (as netns-lab's skips).
    #[allow(clippy::print_stderr)]
    fn the_watch_listens_only_while_a_small_batch_runs() {
        // While any socket is in the nf_tables group the kernel builds a
        // notice per object committed: the watch is in it only for the
        // batch it waits for, and never for a big one.
        if crate::commit_watch::CommitWatch::open().is_none() {
            eprintln!("skipped: not allowed to watch nf_tables commits (CAP_NET_ADMIN)");
            return;
        }
        let runner = ProcessRunner::default().watching_commits();
        let list = "for i in 1 2 3 4 5 6 7 8 9 10; do cat /proc/net/netlink; done; cat >/dev/null";
        let during = runner
            .run_as(&shell_batch(list, "x\n"), "sh".into())
            .unwrap()
            .stdout;
        let inode = watch_inode(&runner);
        assert_eq!(
            groups_of(&during, inode).as_deref(),
            Some("00000040"),
            "{during}"
        );
        let after: String = (0..10)
            .map(|_| std::fs::read_to_string("/proc/net/netlink").unwrap())
            .collect();
        assert_eq!(
            groups_of(&after, inode).as_deref(),
            Some("00000000"),
            "{after}"
        );
        let big = "x".repeat(WATCHED_BATCH_MAX + 1);
        let during_big = runner
            .run_as(&shell_batch(list, &big), "sh".into())
            .unwrap()
            .stdout;
        assert_eq!(groups_of(&during_big, inode).as_deref(), Some("00000000"));
    }

    fn assert_failed_with(err: &RunError, code: i32) {
        assert!(
            matches!(err, RunError::Failed { status: Some(s), .. } if *s == code),
            "{err}"
        );
    }

    /// A batch tool stand-in that prints its own PID, then its input.
    fn pid_then_input(input: &str) -> Command {
        Command::new(Tool::Nft, ["/proc/self/stat", "-"]).with_stdin(input)
    }

    fn pid_of(output: &Output) -> u32 {
        let pid = output.stdout.split_whitespace().next().unwrap();
        pid.parse().unwrap()
    }

    fn is_running(pid: u32) -> bool {
        std::path::Path::new(&format!("/proc/{pid}")).exists()
    }

    #[test]
    fn with_standby_the_next_batch_runs_in_the_process_started_during_the_last() {
        let runner = ProcessRunner::default().with_standby();
        let first = runner
            .run_as(&pid_then_input("one\n"), "cat".into())
            .unwrap();
        assert!(first.stdout.ends_with("one\n"), "{first:?}");
        let waiting = runner.standbys.as_ref().unwrap().pids();
        assert_eq!(waiting.len(), 1);
        assert_ne!(waiting[0], pid_of(&first));
        let second = runner
            .run_as(&pid_then_input("two\n"), "cat".into())
            .unwrap();
        assert!(second.stdout.ends_with("two\n"), "{second:?}");
        assert_eq!(pid_of(&second), waiting[0]);
        assert!(spawned_recently(pid_of(&second)));
        assert_eq!(runner.process_starts(), 3);
    }

    #[test]
    fn a_standby_that_was_ended_is_replaced_and_the_batch_still_runs() {
        let runner = ProcessRunner::default().with_standby();
        runner
            .run_as(&pid_then_input("one\n"), "cat".into())
            .unwrap();
        let standbys = runner.standbys.as_ref().unwrap();
        let killed = standbys.pids()[0];
        standbys.kill_all();
        let out = runner
            .run_as(&pid_then_input("two\n"), "cat".into())
            .unwrap();
        assert!(out.stdout.ends_with("two\n"), "{out:?}");
        assert_ne!(pid_of(&out), killed);
    }

    #[test]
    fn dropping_the_runner_ends_its_standbys() {
        let runner = ProcessRunner::default().with_standby();
        runner
            .run_as(&pid_then_input("one\n"), "cat".into())
            .unwrap();
        let waiting = runner.standbys.as_ref().unwrap().pids();
        assert!(is_running(waiting[0]));
        drop(runner);
        assert!(!is_running(waiting[0]));
    }

    #[test]
    fn only_batch_tools_fed_on_stdin_are_started_ahead() {
        let runner = ProcessRunner::default().with_standby();
        // A read (no input) and a single-rule tool: started on demand.
        runner
            .run_as(&Command::new(Tool::Nft, ["/dev/null"]), "cat".into())
            .unwrap();
        let single = Command::new(Tool::Iptables, ["-"]).with_stdin("x\n");
        runner.run_as(&single, "cat".into()).unwrap();
        assert!(runner.standbys.as_ref().unwrap().pids().is_empty());
        assert_eq!(runner.process_starts(), 2);
        // Without `with_standby`, nothing is started ahead.
        let plain = ProcessRunner::default();
        plain
            .run_as(&pid_then_input("one\n"), "cat".into())
            .unwrap();
        assert_eq!(plain.process_starts(), 1);
    }

    #[test]
    fn a_failing_batch_on_standby_is_judged_as_on_demand() {
        let runner = ProcessRunner::default().with_standby();
        let cmd = Command::new(Tool::Nft, ["/nonexistent-nwfilter-test", "-"]).with_stdin("x\n");
        for _ in 0..2 {
            let err = runner.run_as(&cmd, "cat".into()).unwrap_err();
            assert_failed_with(&err, 1);
        }
    }

    #[test]
    fn process_runner_counts_starts_and_reports_stderr() {
        if !std::path::Path::new("/usr/sbin/iptables-save").exists()
            && !std::path::Path::new("/sbin/iptables-save").exists()
        {
            return;
        }
        let runner = ProcessRunner::new(Toolset::default());
        // `--version` touches no firewall; a bogus option fails cleanly.
        let ok = runner.run(&Command::new(Tool::IptablesSave, ["--version"]));
        assert!(ok.is_ok(), "{ok:?}");
        let err = runner
            .run(&Command::new(Tool::IptablesSave, ["--no-such-option"]))
            .unwrap_err();
        assert!(matches!(err, RunError::Failed { status: Some(s), .. } if s != 0));
        assert_eq!(runner.process_starts(), 2);
    }
}
