//! Addresses learned for ports whose binding leaves `IP` unset: kept in
//! memory, and in `PORT.learned` files in the state directory so that a
//! restarted daemon binds the same address (a learned address in `any`
//! mode is not a DHCP lease; nothing else remembers it).
//!
//! Learned IPv6 addresses (`IPV6`, issue 16) are kept the same way, in
//! `PORT.learned6`, one address a line with the second it expires (for
//! addresses from DHCPv6 Replies) or without (claimed ones never expire).

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use nwfilter_model::{Binding, IfName};

use super::error::EngineError;
use super::state_file;

const SUFFIX: &str = ".learned";
const SUFFIX_V6: &str = ".learned6";

/// One learned IPv6 address and when it expires (seconds since the Unix
/// epoch; `None`: never).
pub type Learned6 = (Ipv6Addr, Option<u64>);

/// The learned addresses of every port.
#[derive(Debug, Default)]
pub(crate) struct Learned {
    by_port: HashMap<IfName, Vec<Ipv4Addr>>,
    v6: HashMap<IfName, Vec<Learned6>>,
}

impl Learned {
    pub(crate) fn get(&self, port: &IfName) -> Option<&[Ipv4Addr]> {
        self.by_port.get(port).map(Vec::as_slice)
    }

    /// Records `addrs` (none: forget the port), on disk first.
    pub(crate) fn set(
        &mut self,
        dir: &Path,
        port: &IfName,
        addrs: Vec<Ipv4Addr>,
    ) -> Result<(), EngineError> {
        let path = file(dir, port);
        record(&mut self.by_port, dir, path, "learned", port, addrs, |a| {
            a.to_string()
        })
    }

    /// Loads the file of `port`, if there is one and it is readable; a
    /// damaged file is ignored (the port learns again).
    pub(crate) fn load(&mut self, dir: &Path, port: &IfName) {
        if let Some(addrs) = read4(dir, port) {
            self.by_port.insert(port.clone(), addrs);
        }
    }
}

/// A port's learned-address files as read from the state directory
/// (nothing where a file is missing or damaged: the port learns again).
#[derive(Debug)]
pub(crate) struct Stored {
    v4: Option<Vec<Ipv4Addr>>,
    v6: Option<Vec<Learned6>>,
}

impl Stored {
    /// Reads `port`'s files; touches no [`Learned`], so that a restart
    /// reads every port's files on several cores.
    pub(crate) fn read(dir: &Path, port: &IfName) -> Stored {
        Stored {
            v4: read4(dir, port),
            v6: read(&file6(dir, port), parse6),
        }
    }
}

impl Learned {
    /// What [`Learned::load`] and [`Learned::load6`] do, with the files
    /// read already.
    pub(crate) fn add(&mut self, port: &IfName, stored: Stored) {
        if let Some(addrs) = stored.v4 {
            self.by_port.insert(port.clone(), addrs);
        }
        if let Some(addrs) = stored.v6 {
            self.v6.insert(port.clone(), addrs);
        }
    }
}

/// `binding` with the learned addresses as its `IP` parameter, when the
/// binding does not set `IP` itself, and the learned IPv6 addresses as
/// `IPV6` when it does not set `IPV6`.
pub(crate) fn with_learned(
    binding: &Binding,
    learned: Option<&[Ipv4Addr]>,
    learned6: Option<&[Learned6]>,
) -> Binding {
    let mut binding = binding.clone();
    if let Some(addrs) = learned {
        if binding.filterref.params.get("IP").is_none() {
            for addr in addrs {
                binding.filterref.params.push("IP", addr.to_string());
            }
        }
    }
    if let Some(addrs) = learned6 {
        if binding.filterref.params.get("IPV6").is_none() {
            for (addr, _) in addrs {
                binding.filterref.params.push("IPV6", addr.to_string());
            }
        }
    }
    binding
}

impl Learned {
    pub(crate) fn get6(&self, port: &IfName) -> Option<&[Learned6]> {
        self.v6.get(port).map(Vec::as_slice)
    }

    /// Records `addrs` as `port`'s IPv6 addresses (none: forget them), on
    /// disk first.
    pub(crate) fn set6(
        &mut self,
        dir: &Path,
        port: &IfName,
        addrs: Vec<Learned6>,
    ) -> Result<(), EngineError> {
        let path = file6(dir, port);
        record(
            &mut self.v6,
            dir,
            path,
            "learned6",
            port,
            addrs,
            |(a, until)| match until {
                Some(t) => format!("{a} {t}"),
                None => a.to_string(),
            },
        )
    }

    /// Loads `port`'s IPv6 file, if there is one; a damaged file is
    /// ignored (the port learns again).
    pub(crate) fn load6(&mut self, dir: &Path, port: &IfName) {
        if let Some(addrs) = read(&file6(dir, port), parse6) {
            self.v6.insert(port.clone(), addrs);
        }
    }
}

/// Records `addrs` as `port`'s entry in `map` and in the file at `path`,
/// one line each (`line`), the file first; none: removes both.
fn record<T>(
    map: &mut HashMap<IfName, Vec<T>>,
    dir: &Path,
    path: PathBuf,
    what: &str,
    port: &IfName,
    addrs: Vec<T>,
    line: impl Fn(&T) -> String,
) -> Result<(), EngineError> {
    let fail = |source| EngineError::Learned {
        port: port.clone(),
        path: path.clone(),
        source,
    };
    if addrs.is_empty() {
        state_file::remove(&path).map_err(fail)?;
        map.remove(port);
        return Ok(());
    }
    let text: String = addrs.iter().map(|a| line(a) + "\n").collect();
    state_file::write_atomically(dir, &path, what, &text).map_err(fail)?;
    map.insert(port.clone(), addrs);
    Ok(())
}

/// The lines of the file at `path`, each read by `parse`; `None` when it
/// is missing, empty, or any line is damaged.
fn read<T>(path: &Path, parse: impl Fn(&str) -> Option<T>) -> Option<Vec<T>> {
    let text = std::fs::read_to_string(path).ok()?;
    let addrs: Vec<T> = text.lines().map(parse).collect::<Option<_>>()?;
    (!addrs.is_empty()).then_some(addrs)
}

/// `port`'s IPv4 file: an address a line.
fn read4(dir: &Path, port: &IfName) -> Option<Vec<Ipv4Addr>> {
    read(&file(dir, port), |l| l.trim().parse().ok())
}

/// `ADDR` or `ADDR UNTIL`.
fn parse6(line: &str) -> Option<Learned6> {
    let mut words = line.split_whitespace();
    let addr = words.next()?.parse().ok()?;
    let until = match words.next() {
        Some(t) => Some(t.parse().ok()?),
        None => None,
    };
    words.next().is_none().then_some((addr, until))
}

fn file(dir: &Path, port: &IfName) -> PathBuf {
    state_file::of_port(dir, port.as_str(), SUFFIX)
}

fn file6(dir: &Path, port: &IfName) -> PathBuf {
    state_file::of_port(dir, port.as_str(), SUFFIX_V6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_read_ahead_and_added_give_what_loading_gives() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, none) = (
            IfName::new("vnet1").unwrap(),
            IfName::new("vnet2").unwrap(),
            IfName::new("vnet3").unwrap(),
        );
        std::fs::write(file(dir.path(), &a), "192.0.2.1\n192.0.2.2\n").unwrap();
        std::fs::write(file6(dir.path(), &a), "2001:db8::1 1900000000\n").unwrap();
        // Damaged: ignored either way.
        std::fs::write(file(dir.path(), &b), "not an address\n").unwrap();
        std::fs::write(file6(dir.path(), &b), "2001:db8::2\n").unwrap();
        let (mut loaded, mut added) = (Learned::default(), Learned::default());
        for port in [&a, &b, &none] {
            loaded.load(dir.path(), port);
            loaded.load6(dir.path(), port);
            added.add(port, Stored::read(dir.path(), port));
        }
        assert_eq!(added.by_port, loaded.by_port);
        assert_eq!(added.v6, loaded.v6);
        assert_eq!(added.get(&a).unwrap().len(), 2);
        assert!(added.get(&b).is_none() && added.get6(&b).is_some());
        assert!(added.get(&none).is_none() && added.get6(&none).is_none());
    }
}
