//! The firewall backends, behind one small interface: which one applies
//! rules is a setting ([`Backend`]), a port's rendered rules are a
//! [`Rendered`] of that backend, and applying or removing them goes to
//! that backend's applier.
//!
//! Both backends take the same chain IR ([`Program`]) and run their tools
//! through `host_io`'s [`Runner`], so everything above this module
//! (the engine, the learner's rules) is written once.

use std::fmt;
use std::str::FromStr;

use host_io::Runner;
use nwfilter_compile::ir::Program;
use nwfilter_model::IfName;
use serde::{Deserialize, Serialize};

use crate::settled::{Begun, Settled};

/// Which firewall implementation applies the rules.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// ebtables, iptables and ip6tables in libvirt's layout (what every
    /// version before the nftables backend applied).
    #[default]
    Xtables,
    /// Tables of our own in nftables, one transaction per change.
    Nftables,
}

impl Backend {
    pub const ALL: [Backend; 2] = [Backend::Xtables, Backend::Nftables];

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Xtables => "xtables",
            Backend::Nftables => "nftables",
        }
    }

    /// One line for a user choosing a backend (the CLI's `--backend`
    /// help).
    pub fn summary(self) -> &'static str {
        match self {
            Backend::Xtables => {
                "ebtables, iptables and ip6tables (libvirt's layout), through their restore tools"
            }
            Backend::Nftables => "Tables of our own in nftables, one transaction per change",
        }
    }
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not a backend.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown firewall backend '{0}' (known: xtables, nftables)")]
pub struct UnknownBackend(pub String);

impl FromStr for Backend {
    type Err = UnknownBackend;

    fn from_str(s: &str) -> Result<Backend, UnknownBackend> {
        Backend::ALL
            .into_iter()
            .find(|b| b.as_str() == s)
            .ok_or_else(|| UnknownBackend(s.to_owned()))
    }
}

/// One port's rules as one backend renders them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rendered {
    Xtables(backend_xtables::PortRuleset),
    Nftables {
        port: IfName,
        rules: backend_nftables::PortRuleset,
    },
}

/// Why a program could not be rendered by a backend.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error(transparent)]
    Xtables(#[from] backend_xtables::RenderError),
    #[error(transparent)]
    Nftables(#[from] backend_nftables::RenderError),
}

impl Rendered {
    /// Renders `program` for `backend`.
    pub fn render(backend: Backend, program: &Program) -> Result<Rendered, RenderError> {
        Ok(match backend {
            Backend::Xtables => Rendered::Xtables(backend_xtables::port_ruleset(program)?),
            Backend::Nftables => Rendered::Nftables {
                port: program.port.clone(),
                rules: backend_nftables::ruleset(program)?,
            },
        })
    }

    pub fn port(&self) -> &IfName {
        match self {
            Rendered::Xtables(rs) => &rs.port,
            Rendered::Nftables { port, .. } => port,
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Rendered::Xtables(_) => Backend::Xtables,
            Rendered::Nftables { .. } => Backend::Nftables,
        }
    }
}

/// Why a backend did not apply or remove rules.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Xtables(#[from] backend_xtables::ApplyError),
    #[error(transparent)]
    Nftables(#[from] backend_nftables::ApplyError),
}

/// What an apply or remove did, whichever backend ran it (both backends
/// report in this one shape).
pub type Report = host_io::Report<IfName>;

/// One port to bring to its rendered rules; `recorded` is what this
/// process applied last (lets a backend skip a port whose rules are still
/// in place).
pub(crate) type Change<'a> = host_io::Change<'a, Rendered>;

/// What our tables hold in the kernel as far as this process knows, per
/// backend (`None`: unknown, read by the next operation). Planning against
/// it makes an operation cost its own change, not a read of every port;
/// the appliers read again when the kernel refuses a plan made on it.
#[derive(Debug, Default)]
pub(crate) struct Kept {
    nft: Option<backend_nftables::KernelState>,
    xtables: Option<backend_xtables::apply::Tables>,
    /// A reading made just now for the next apply ([`Kept::start_read`]):
    /// a refusal planned on it is final, as after the applier's own read.
    fresh: Option<FreshRead>,
    /// Up to which generation each backend's kept tables are proven the
    /// kernel's (see `settled`): a reload then needs no read.
    settled: Settled,
}

#[derive(Debug)]
struct FreshRead {
    tables: Fresh,
    /// The ruleset generation before the reading started.
    from: Option<u32>,
}

#[derive(Debug)]
enum Fresh {
    Nft(backend_nftables::KernelState),
    Xtables(backend_xtables::apply::Tables),
}

impl Fresh {
    fn backend(&self) -> Backend {
        match self {
            Fresh::Nft(_) => Backend::Nftables,
            Fresh::Xtables(_) => Backend::Xtables,
        }
    }
}

impl Kept {
    /// Forgets everything: the next operation reads the kernel (reload,
    /// repair: someone else may have changed it).
    pub(crate) fn forget(&mut self) {
        *self = Kept::default();
    }

    /// Whether `backend`'s tables are kept (else the next operation on
    /// them reads them).
    fn knows(&self, backend: Backend) -> bool {
        match backend {
            Backend::Nftables => self.nft.is_some(),
            Backend::Xtables => self.xtables.is_some(),
        }
    }

    /// Forgets everything unless `backend`'s kept tables are proven to be
    /// the kernel's still: nothing at all committed to nf_tables since
    /// this engine's last operation left them, by the ruleset generation
    /// (never for the legacy xtables tools, whose changes it does not
    /// count). A reload then plans on them instead of reading every table.
    /// The other backend's kept tables (its leftovers' removals plan on
    /// them) stay only if they are proven too.
    pub(crate) fn forget_unless_settled<R: Runner + ?Sized>(
        &mut self,
        backend: Backend,
        runner: &R,
    ) {
        let now = self
            .fresh
            .is_none()
            .then(|| runner.ruleset_generation())
            .flatten();
        if !self.proven(backend, now) {
            self.forget();
            return;
        }
        tracing::debug!(
            generation = now,
            "kept tables unchanged since our last commit: not read"
        );
        for other in Backend::ALL.into_iter().filter(|&b| b != backend) {
            if !self.proven(other, now) {
                match other {
                    Backend::Nftables => self.nft = None,
                    Backend::Xtables => self.xtables = None,
                }
            }
        }
    }

    /// The kept xtables tables and the generation now, if they are proven
    /// the kernel's at it (what a stopping engine hands over).
    pub(crate) fn xtables_settled_now<R: Runner + ?Sized>(
        &self,
        runner: &R,
    ) -> Option<(&backend_xtables::apply::Tables, u32)> {
        if self.fresh.is_some() {
            return None;
        }
        let now = runner.ruleset_generation()?;
        let tables = self.xtables.as_ref()?;
        self.proven(Backend::Xtables, Some(now))
            .then_some((tables, now))
    }

    /// Keeps `tables` as the kernel's xtables tables at `generation`
    /// (handed over by the process before, and proven still so).
    pub(crate) fn take_over_xtables(
        &mut self,
        tables: backend_xtables::apply::Tables,
        generation: u32,
    ) {
        self.xtables = Some(tables);
        self.settled.resume(Backend::Xtables, generation);
    }

    /// Whether `backend`'s kept tables are the kernel's at generation
    /// `now`: settled there, and listed by tools whose changes the
    /// generation counts.
    fn proven(&self, backend: Backend, now: Option<u32>) -> bool {
        let counted = match backend {
            Backend::Nftables => self.nft.is_some(),
            Backend::Xtables => self.xtables.as_ref().is_some_and(|t| t.through_nf_tables),
        };
        counted && self.settled.holds(backend, now)
    }

    /// Drops a reading [`Kept::finish_read`] left that no apply used (an
    /// operation with nothing to apply): it is only fresh for the
    /// operation it was made for.
    pub(crate) fn drop_unused_read(&mut self) {
        self.fresh = None;
    }

    /// Before an operation on `backend`: what it plans on, from which
    /// generation (a reading of its tables started earlier counts from
    /// its start).
    fn begin<R: Runner + ?Sized>(&self, backend: Backend, runner: &R) -> Begun {
        match &self.fresh {
            Some(fresh) if fresh.tables.backend() == backend => {
                self.settled.begin(backend, fresh.from, true)
            }
            _ => self
                .settled
                .begin(backend, runner.ruleset_generation(), !self.knows(backend)),
        }
    }

    /// After it: the generation it left, if it succeeded.
    fn end<R: Runner + ?Sized>(&mut self, begun: Begun, runner: &R, done: bool) {
        let after = done.then(|| runner.ruleset_generation()).flatten();
        self.settled.end(begun, after, done);
    }

    /// Starts reading `backend`'s tables when they are unknown, to run
    /// while the caller compiles; [`Kept::finish_read`] takes the result.
    pub(crate) fn start_read<R: Runner + ?Sized>(
        &self,
        backend: Backend,
        runner: &R,
    ) -> PendingRead {
        if self.knows(backend) {
            return PendingRead::Known;
        }
        let from = runner.ruleset_generation();
        match backend {
            Backend::Nftables => {
                PendingRead::Nft(backend_nftables::Applier::new(runner).start_read(), from)
            }
            Backend::Xtables => PendingRead::Xtables(
                Box::new(backend_xtables::Applier::new(runner).start_read_tables()),
                from,
            ),
        }
    }

    /// Keeps what a read started by [`Kept::start_read`] found. A failed
    /// read leaves the tables unknown: the next operation reads them
    /// again and reports what goes wrong as its own error.
    pub(crate) fn finish_read(&mut self, pending: PendingRead) {
        let (tables, from) = match pending {
            PendingRead::Nft(read, from) => (read.finish().ok().map(Fresh::Nft), from),
            PendingRead::Xtables(read, from) => (read.finish().ok().map(Fresh::Xtables), from),
            PendingRead::Known => (None, None),
        };
        self.fresh = tables.map(|tables| FreshRead { tables, from });
    }
}

/// A read of one backend's tables under way ([`Kept::start_read`]), with
/// the ruleset generation before it started.
#[derive(Debug)]
pub(crate) enum PendingRead {
    Nft(backend_nftables::apply::PendingRead, Option<u32>),
    Xtables(Box<backend_xtables::apply::PendingTables>, Option<u32>),
    /// Nothing to read: the tables were known.
    Known,
}

/// Applies `changes`, all rendered for `backend`, in that backend's one
/// batch (nftables: one transaction), planned against `kept`, which is
/// kept up to date.
///
/// # Panics
/// If a change was rendered for another backend: the engine renders every
/// change for the backend it applies with.
pub(crate) fn apply<R: Runner + ?Sized>(
    backend: Backend,
    runner: &R,
    kept: &mut Kept,
    changes: &[Change<'_>],
) -> Result<Report, ApplyError> {
    let begun = kept.begin(backend, runner);
    let result = apply_planned(backend, runner, kept, changes);
    kept.end(begun, runner, result.is_ok());
    result
}

fn apply_planned<R: Runner + ?Sized>(
    backend: Backend,
    runner: &R,
    kept: &mut Kept,
    changes: &[Change<'_>],
) -> Result<Report, ApplyError> {
    match backend {
        Backend::Xtables => {
            let changes: Vec<backend_xtables::Change<'_>> = changes
                .iter()
                .map(|c| backend_xtables::Change {
                    ruleset: xtables(c.ruleset),
                    recorded: c.recorded.and_then(as_xtables),
                })
                .collect();
            let applier = backend_xtables::Applier::new(runner);
            Ok(match kept.fresh.take().map(|f| f.tables) {
                Some(Fresh::Xtables(read)) => {
                    applier.apply_on_read(&mut kept.xtables, read, &changes)?
                }
                _ => applier.apply_kept(&mut kept.xtables, &changes)?,
            })
        }
        Backend::Nftables => {
            let changes: Vec<backend_nftables::Change<'_>> = changes
                .iter()
                .map(|c| backend_nftables::Change {
                    ruleset: nftables(c.ruleset),
                    recorded: c.recorded.and_then(as_nftables),
                })
                .collect();
            let applier = backend_nftables::Applier::new(runner);
            Ok(match kept.fresh.take().map(|f| f.tables) {
                Some(Fresh::Nft(read)) => applier.apply_on_read(&mut kept.nft, read, &changes)?,
                _ => applier.apply_tracked(&mut kept.nft, &changes)?,
            })
        }
    }
}

/// Removes everything `backend` has of ours for `ports` (`kept` as in
/// [`apply`]).
pub(crate) fn remove<R: Runner + ?Sized>(
    backend: Backend,
    runner: &R,
    kept: &mut Kept,
    ports: &[IfName],
) -> Result<Report, ApplyError> {
    let begun = kept.begin(backend, runner);
    let result: Result<Report, ApplyError> = match backend {
        Backend::Xtables => backend_xtables::Applier::new(runner)
            .remove_kept(&mut kept.xtables, ports)
            .map_err(Into::into),
        Backend::Nftables => backend_nftables::Applier::new(runner)
            .remove_tracked(&mut kept.nft, ports)
            .map_err(Into::into),
    };
    kept.end(begun, runner, result.is_ok());
    result
}

/// Applies `rules`, all rendered for `backend`, in one batch, planned
/// against a fresh reading of the kernel (nothing kept between calls): for
/// callers that apply outside the [`Engine`](crate::Engine), such as the
/// learner's own tests.
///
/// # Panics
/// If a ruleset was rendered for another backend.
pub fn apply_once<R: Runner + ?Sized>(
    backend: Backend,
    runner: &R,
    rules: &[&Rendered],
) -> Result<Report, ApplyError> {
    let changes: Vec<Change<'_>> = rules
        .iter()
        .map(|&ruleset| Change {
            ruleset,
            recorded: None,
        })
        .collect();
    apply(backend, runner, &mut Kept::default(), &changes)
}

/// What front ends need of the xtables backend beyond [`Rendered`]: its
/// text forms (`nwfilter render`). Only the driver names the backend
/// crates; everything above reaches them through here.
pub mod xtables {
    pub use backend_xtables::apply::tools_through_nf_tables;
    pub use backend_xtables::render::{command_lines, commands, restore_text, ruleset};
}

/// What front ends need of the nftables backend beyond [`Rendered`]: its
/// transaction as text or JSON and the name of its table.
pub mod nftables {
    pub use backend_nftables::names::TABLE;
    pub use backend_nftables::{instantiate, ruleset, PortRuleset};
}

fn as_xtables(rendered: &Rendered) -> Option<&backend_xtables::PortRuleset> {
    match rendered {
        Rendered::Xtables(rs) => Some(rs),
        Rendered::Nftables { .. } => None,
    }
}

fn as_nftables(rendered: &Rendered) -> Option<&backend_nftables::PortRuleset> {
    match rendered {
        Rendered::Nftables { rules, .. } => Some(rules),
        Rendered::Xtables(_) => None,
    }
}

fn xtables(rendered: &Rendered) -> &backend_xtables::PortRuleset {
    as_xtables(rendered).expect("rendered for the backend that applies it")
}

fn nftables(rendered: &Rendered) -> &backend_nftables::PortRuleset {
    as_nftables(rendered).expect("rendered for the backend that applies it")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_unknown_names_are_refused() {
        for b in Backend::ALL {
            assert_eq!(b.to_string().parse::<Backend>(), Ok(b));
            assert_eq!(
                serde_json::to_string(&b).unwrap(),
                format!("\"{}\"", b.as_str())
            );
        }
        let err = "iptables".parse::<Backend>().unwrap_err().to_string();
        assert!(
            err.contains("'iptables'") && err.contains("nftables"),
            "{err}"
        );
        assert_eq!(Backend::default(), Backend::Xtables);
    }
}
