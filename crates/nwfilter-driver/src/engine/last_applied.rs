//! What the xtables backend last applied to each port, kept across
//! restarts: a `PORT.applied` file next to the binding holding the
//! SHA-256 of the port's rendered rules.
//!
//! Why: the kernel re-spells xtables rules (`-p tcp` comes back as `-p
//! tcp -m tcp`), so a process that does not know what it applied can only
//! tell whether a port's rules are in place by building them again under
//! temporary names and comparing the two listings (the applier's probe:
//! 4 s at 1000 ports, while the daemon serves nothing). With this record a
//! daemon's start trusts a port whose new rules are the ones it last
//! applied, and checks the kernel's chains the way a reload does (names,
//! hooks, rule counts; see `backend_xtables::apply::is_current`).
//!
//! The file only ever says what a commit of ours finished: it is removed
//! before any change of the port that could leave other rules (an update
//! to other rules, a removal) and written once the kernel took the
//! change. A process killed in between leaves no file, and the next start
//! probes that port as before. Written without a rename or fsync: an
//! empty or torn file reads as no record, and an OS crash, the only
//! thing an fsync guards against, empties the kernel's tables too.
//! nftables needs no such record (its rules come back as written).

use std::path::{Path, PathBuf};

use nwfilter_model::IfName;
use sha2::{Digest as _, Sha256};

use super::error::EngineError;
use super::state_file;
use crate::backend::Rendered;
use backend_xtables::PortRuleset;

const SUFFIX: &str = ".applied";

/// The SHA-256 of a port's rendered xtables rules, as lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Digest(String);

impl Digest {
    /// The digest of a port's rendered xtables rules.
    fn of(ruleset: &PortRuleset) -> Digest {
        let mut sha = Sha256::new();
        // Every field length-prefixed: no two rulesets encode alike. The
        // family and role by their names: renaming one costs each port
        // one probe at the next start, never a wrong match.
        let mut field = |bytes: &[u8]| {
            sha.update((bytes.len() as u64).to_le_bytes());
            sha.update(bytes);
        };
        field(ruleset.port.as_str().as_bytes());
        for chain in &ruleset.chains {
            field(format!("{:?} {:?}", chain.family, chain.role).as_bytes());
            field(chain.name.as_bytes());
            field(&(chain.rules.len() as u64).to_le_bytes());
            for rule in &chain.rules {
                field(&(rule.len() as u64).to_le_bytes());
                for word in rule {
                    field(word.as_bytes());
                }
            }
        }
        let hex = sha.finalize().iter().map(|b| format!("{b:02x}")).collect();
        Digest(hex)
    }

    fn parse(text: &str) -> Option<Digest> {
        let text = text.strip_suffix('\n')?;
        let hex = text.len() == 64
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        hex.then(|| Digest(text.to_owned()))
    }
}

/// What `port`'s file says was last applied; `None` when there is no file
/// or it cannot be read or parsed (the port is then probed).
fn read(dir: &Path, port: &IfName) -> Option<Digest> {
    let path = file(dir, port);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let digest = Digest::parse(&text);
            if digest.is_none() {
                tracing::debug!(path = %path.display(), "last-applied record unreadable: probing");
            }
            digest
        }
        Err(_) => None,
    }
}

/// Records that `digest`'s rules are now `port`'s, in the kernel.
fn write(dir: &Path, port: &IfName, digest: &Digest) -> Result<(), EngineError> {
    let path = file(dir, port);
    std::fs::write(&path, format!("{}\n", digest.0))
        .map_err(|source| EngineError::Record { path, source })
}

/// Removes `port`'s record, before a change that may leave other rules.
pub(crate) fn forget(dir: &Path, port: &IfName) -> Result<(), EngineError> {
    let path = file(dir, port);
    state_file::remove(&path).map_err(|source| EngineError::Record { path, source })
}

/// A port's rules next to its record of what was last applied (see
/// this module); xtables only.
pub(crate) struct LastApplied {
    /// The new rules' digest (`None`: rendered for nftables).
    new: Option<Digest>,
    on_disk: Option<Digest>,
}

impl LastApplied {
    pub(crate) fn of(dir: &Path, rendered: &Rendered) -> LastApplied {
        let new = match rendered {
            Rendered::Xtables(ruleset) => Some(Digest::of(ruleset)),
            Rendered::Nftables { .. } => None,
        };
        let on_disk = new.as_ref().and_then(|_| read(dir, rendered.port()));
        LastApplied { new, on_disk }
    }

    /// For rules that are not xtables': nothing to compare or record.
    pub(crate) fn none() -> LastApplied {
        LastApplied {
            new: None,
            on_disk: None,
        }
    }

    /// The record says these very rules.
    pub(crate) fn unchanged(&self) -> bool {
        self.new.is_some() && self.on_disk == self.new
    }

    /// The record says other rules: it goes before the kernel changes.
    pub(crate) fn stale(&self) -> bool {
        self.on_disk.is_some() && self.on_disk != self.new
    }

    /// Writes the new rules' digest once the kernel took them. A failure
    /// costs the next start a probe of the port, not this change.
    pub(crate) fn record(&self, dir: &Path, port: &IfName) {
        let Some(new) = self.new.as_ref().filter(|_| !self.unchanged()) else {
            return;
        };
        if let Err(e) = write(dir, port, new) {
            tracing::warn!(%port, error = %e, "last-applied record not written");
        }
    }
}

fn file(dir: &Path, port: &IfName) -> PathBuf {
    state_file::of_port(dir, port.as_str(), SUFFIX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use backend_xtables::{Family, Hook, PortRuleset, RenderedChain};

    fn ruleset(port: &str, rules: &[&[&str]]) -> PortRuleset {
        PortRuleset {
            port: IfName::new(port).unwrap(),
            chains: vec![RenderedChain {
                family: Family::Bridge,
                role: Hook::BridgeRootOut,
                name: format!("libvirt-I-{port}"),
                rules: rules
                    .iter()
                    .map(|r| r.iter().map(|w| w.to_string()).collect())
                    .collect(),
            }],
        }
    }

    #[test]
    fn a_written_digest_reads_back_and_a_forgotten_one_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let port = IfName::new("vnet0").unwrap();
        let digest = Digest::of(&ruleset("vnet0", &[&["-j", "ACCEPT"]]));
        assert_eq!(read(dir.path(), &port), None);
        write(dir.path(), &port, &digest).unwrap();
        assert_eq!(read(dir.path(), &port), Some(digest));
        forget(dir.path(), &port).unwrap();
        assert_eq!(read(dir.path(), &port), None);
        forget(dir.path(), &port).unwrap();
    }

    #[test]
    fn rules_that_differ_anywhere_have_different_digests() {
        let of = |port, rules| Digest::of(&ruleset(port, rules));
        let base = of("vnet0", &[&["-p", "IPv4", "-j", "ACCEPT"]]);
        assert_eq!(base, of("vnet0", &[&["-p", "IPv4", "-j", "ACCEPT"]]));
        // A word split differently, a rule split in two, another port.
        assert_ne!(base, of("vnet0", &[&["-p IPv4", "-j", "ACCEPT"]]));
        assert_ne!(base, of("vnet0", &[&["-p", "IPv4"], &["-j", "ACCEPT"]]));
        assert_ne!(base, of("vnet1", &[&["-p", "IPv4", "-j", "ACCEPT"]]));
        assert_ne!(base, of("vnet0", &[&["-p", "IPv4", "-j", "DROP"]]));
    }

    #[test]
    fn a_torn_or_foreign_file_is_no_record() {
        let dir = tempfile::tempdir().unwrap();
        let port = IfName::new("vnet0").unwrap();
        let digest = Digest::of(&ruleset("vnet0", &[&["-j", "ACCEPT"]]));
        let path = file(dir.path(), &port);
        for text in ["", &digest.0[..30], &digest.0, "not a digest\n"] {
            std::fs::write(&path, text).unwrap();
            assert_eq!(read(dir.path(), &port), None, "{text:?}");
        }
    }
}
