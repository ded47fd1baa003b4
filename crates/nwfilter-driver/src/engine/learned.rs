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
        let fail = |source| EngineError::Learned {
            port: port.clone(),
            path: path.clone(),
            source,
        };
        if addrs.is_empty() {
            state_file::remove(&path).map_err(fail)?;
            self.by_port.remove(port);
            return Ok(());
        }
        let text: String = addrs.iter().map(|a| format!("{a}\n")).collect();
        state_file::write_atomically(dir, &path, "learned", &text).map_err(fail)?;
        self.by_port.insert(port.clone(), addrs);
        Ok(())
    }

    /// Loads the file of `port`, if there is one and it is readable; a
    /// damaged file is ignored (the port learns again).
    pub(crate) fn load(&mut self, dir: &Path, port: &IfName) {
        let Ok(text) = std::fs::read_to_string(file(dir, port)) else {
            return;
        };
        let addrs: Option<Vec<Ipv4Addr>> = text.lines().map(|l| l.trim().parse().ok()).collect();
        if let Some(addrs) = addrs.filter(|a| !a.is_empty()) {
            self.by_port.insert(port.clone(), addrs);
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
        let fail = |source| EngineError::Learned {
            port: port.clone(),
            path: path.clone(),
            source,
        };
        if addrs.is_empty() {
            state_file::remove(&path).map_err(fail)?;
            self.v6.remove(port);
            return Ok(());
        }
        let text: String = addrs
            .iter()
            .map(|(a, until)| match until {
                Some(t) => format!("{a} {t}\n"),
                None => format!("{a}\n"),
            })
            .collect();
        state_file::write_atomically(dir, &path, "learned6", &text).map_err(fail)?;
        self.v6.insert(port.clone(), addrs);
        Ok(())
    }

    /// Loads `port`'s IPv6 file, if there is one; a damaged file is
    /// ignored (the port learns again).
    pub(crate) fn load6(&mut self, dir: &Path, port: &IfName) {
        let Ok(text) = std::fs::read_to_string(file6(dir, port)) else {
            return;
        };
        let addrs: Option<Vec<Learned6>> = text.lines().map(parse6).collect();
        if let Some(addrs) = addrs.filter(|a| !a.is_empty()) {
            self.v6.insert(port.clone(), addrs);
        }
    }
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
    dir.join(format!("{port}{SUFFIX}"))
}

fn file6(dir: &Path, port: &IfName) -> PathBuf {
    dir.join(format!("{port}{SUFFIX_V6}"))
}
