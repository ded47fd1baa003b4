//! The network-namespace lab every crate's kernel tests use.
//!
//! A [`Lab`] is a "host" namespace with a bridge `br0` (10.77.0.1/24) and
//! one `vnetN` veth port per [`Guest`]; each guest is its own namespace
//! whose `eth0` is the other end. Everything is created under unique names
//! (test pid and a counter) and removed by `Drop`, also when the test
//! panics. Only processes the lab started are killed, by their PID.
//! Nothing ever runs in this machine's own namespace except `ip netns
//! add/del`: firewall tools run through [`Netns::run`] or a runner told
//! the namespace's name.
//!
//! Tests first ask [`can_run`] (root and `ip netns` available, plus any
//! programs they need): outside CI a test that cannot run is skipped with
//! the reason printed; under CI (`CI=true`) that is a failure.
//!
//! A dev-only crate. It depends only on `nwfilter-model` and
//! `nwfilter-compile` (to compile a filter for a guest, [`program`]) and
//! names no backend, so every crate above the compiler can use it from
//! `[dev-dependencies]`.

mod compile;
mod lab;
mod listing;
mod netns;
mod prereq;
mod scratch;
mod threads;
mod traffic;

pub use compile::{golden_case, golden_dir, program};
pub use lab::{Guest, Lab, HOST_IP};
pub use listing::{add_admin_rules, chains_sorted, lines_naming, without_counters};
pub use netns::{Background, Netns};
pub use prereq::{can_run, can_run_with, note_skip, on_path};
pub use scratch::Scratch;
pub use threads::wakeups;
pub use traffic::{arrivals, assert_old_rules_filter, count_arrivals, SPOOFED_IP};
