//! A network namespace we created, and the processes we start in it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A network namespace we created; deleted on drop.
#[derive(Debug)]
pub struct Netns {
    /// `nwft-PID-N-TAG`: unique among tests running at the same time.
    pub name: String,
}

impl Netns {
    /// A new namespace, or `None` when `ip netns add` fails.
    pub fn try_new(tag: &str) -> Option<Netns> {
        let n = COUNTER.fetch_add(1, Ordering::SeqCst);
        let name = format!("nwft-{}-{n}-{tag}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Netns { name })
    }

    pub fn new(tag: &str) -> Netns {
        Netns::try_new(tag).expect("ip netns add")
    }

    /// The namespace's file, for setns(2).
    pub fn path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.name)
    }

    /// Runs `f` on a thread of its own moved into this namespace: what it
    /// opens (netlink sockets) and starts (processes) is in here.
    pub fn inside<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        use std::os::fd::AsFd;
        std::thread::scope(|s| {
            s.spawn(|| {
                let ns = std::fs::File::open(self.path()).expect("the namespace's file");
                nix::sched::setns(ns.as_fd(), nix::sched::CloneFlags::CLONE_NEWNET)
                    .expect("setns into the test's namespace");
                f()
            })
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    }

    fn exec(&self, argv: &[&str]) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.name]).args(argv);
        command
    }

    /// Runs `argv` inside the namespace.
    pub fn run(&self, argv: &[&str]) -> Output {
        self.exec(argv)
            .stdin(Stdio::null())
            .output()
            .expect("ip netns exec")
    }

    /// Runs `argv` inside the namespace; panics with its output on failure.
    pub fn ok(&self, argv: &[&str]) -> String {
        checked(&self.name, argv, self.run(argv))
    }

    /// Runs `argv` inside the namespace with `input` on stdin.
    pub fn run_stdin(&self, argv: &[&str], input: &str) -> Output {
        let mut child = self
            .exec(argv)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs `argv` with `input` on stdin; panics with its output on failure.
    pub fn ok_stdin(&self, argv: &[&str], input: &str) -> String {
        checked(&self.name, argv, self.run_stdin(argv, input))
    }

    /// Starts `argv` in the background, its output kept for
    /// [`Background::wait`]; the guard kills it by PID.
    pub fn spawn(&self, argv: &[&str]) -> Background {
        self.spawn_with(argv, Stdio::null(), Stdio::piped)
    }

    /// Starts `argv` in the background with its output discarded (a server
    /// that runs until the test ends must not fill a pipe nobody reads).
    pub fn spawn_quiet(&self, argv: &[&str]) -> Background {
        self.spawn_with(argv, Stdio::null(), Stdio::null)
    }

    /// Like [`Netns::spawn_quiet`], with `/dev/zero` as standard input (an
    /// endless source for a flood).
    pub fn spawn_with_zero_stdin(&self, argv: &[&str]) -> Background {
        let zero = std::fs::File::open("/dev/zero").expect("/dev/zero");
        self.spawn_with(argv, Stdio::from(zero), Stdio::null)
    }

    fn spawn_with(&self, argv: &[&str], stdin: Stdio, output: fn() -> Stdio) -> Background {
        let child = self
            .exec(argv)
            .stdin(stdin)
            .stdout(output())
            .stderr(output())
            .spawn()
            .expect("spawn");
        Background { child: Some(child) }
    }
}

fn checked(ns: &str, argv: &[&str], out: Output) -> String {
    assert!(
        out.status.success(),
        "in {ns}: {argv:?} failed: {}{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

/// A process we started (`ip netns exec` execs the program, so this PID
/// is the program's); killed by that PID when dropped.
#[derive(Debug)]
pub struct Background {
    child: Option<Child>,
}

impl Background {
    /// The process id (to signal it).
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("still running").id()
    }

    /// Waits for it to exit on its own and returns its output.
    pub fn wait(mut self) -> Output {
        self.child.take().unwrap().wait_with_output().unwrap()
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
