//! Addresses learned for ports whose binding leaves `IP` unset: kept in
//! memory, and in `PORT.learned` files in the state directory so that a
//! restarted daemon binds the same address (a learned address in `any`
//! mode is not a DHCP lease; nothing else remembers it).

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use nwfilter_model::{Binding, IfName};

use super::error::EngineError;
use super::state_file;

const SUFFIX: &str = ".learned";

/// The learned addresses of every port.
#[derive(Debug, Default)]
pub(crate) struct Learned {
    by_port: HashMap<IfName, Vec<Ipv4Addr>>,
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
/// binding does not set `IP` itself.
pub(crate) fn with_learned(binding: &Binding, learned: Option<&[Ipv4Addr]>) -> Binding {
    let mut binding = binding.clone();
    if let Some(addrs) = learned {
        if binding.filterref.params.get("IP").is_none() {
            for addr in addrs {
                binding.filterref.params.push("IP", addr.to_string());
            }
        }
    }
    binding
}

fn file(dir: &Path, port: &IfName) -> PathBuf {
    dir.join(format!("{port}{SUFFIX}"))
}
