//! Defined networks on disk: `CONFIG/NAME.xml` plus an `autostart/NAME`
//! marker, and the run state of started networks in `STATE/NAME.json`.
//!
//! libvirt's object semantics: a new name gets a UUID, redefining a name
//! keeps it, a UUID belonging to another name is refused, and define picks
//! a free `virbrN` when the document names no bridge. Every write is
//! atomic (temporary file, fsync, rename, directory fsync), so a crash
//! leaves each file either old or new.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nwfilter_model::IfName;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{LifecycleError, ParseError};
use crate::firewall::Created;
use crate::network::Network;
use crate::{format_network, parse_network};

/// One row of `net-list`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkInfo {
    pub name: String,
    pub uuid: Option<Uuid>,
    pub bridge: Option<String>,
    pub active: bool,
    pub autostart: bool,
}

/// What a started network left on the host, so destroy can undo it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunState {
    /// The definition the network was started with.
    pub network: Network,
    /// The dnsmasq we started, if any.
    pub dnsmasq_pid: Option<u32>,
    /// The firewall holding the network's rules (states written before
    /// the nftables backend existed: iptables).
    #[serde(default)]
    pub firewall: crate::firewall::Backend,
    /// iptables `filter` chains holding the network's accepts (nftables
    /// backend, see [`crate::coexist`]).
    #[serde(default)]
    pub coexistence: Vec<crate::coexist::Target>,
}

/// The network directories.
#[derive(Debug, Clone)]
pub struct Store {
    config: PathBuf,
    state: PathBuf,
}

impl Store {
    /// `config` holds definitions, `state` what runs (both created on
    /// first write).
    pub fn new(config: impl Into<PathBuf>, state: impl Into<PathBuf>) -> Store {
        Store {
            config: config.into(),
            state: state.into(),
        }
    }

    pub fn state_dir(&self) -> &Path {
        &self.state
    }

    fn xml_path(&self, name: &str) -> PathBuf {
        self.config.join(format!("{name}.xml"))
    }

    fn autostart_path(&self, name: &str) -> PathBuf {
        self.config.join("autostart").join(name)
    }

    fn state_path(&self, name: &str) -> PathBuf {
        self.state.join(format!("{name}.json"))
    }

    /// Defines (or redefines) the network in `xml`; `interface_exists`
    /// tells which bridge names are taken on the host.
    pub fn define(
        &self,
        xml: &str,
        interface_exists: &dyn Fn(&IfName) -> bool,
    ) -> Result<Network, LifecycleError> {
        let mut net =
            parse_network(xml).map_err(|e: ParseError| LifecycleError::Parse(Box::new(e)))?;
        let others: Vec<Network> = self
            .definitions()?
            .into_iter()
            .filter(|n| n.name != net.name)
            .collect();
        let previous = self.get(net.name.as_str()).ok();
        net.uuid = Some(pick_uuid(&net, previous.as_ref(), &others)?);
        match &net.bridge.name {
            Some(bridge) => {
                if let Some(other) = others
                    .iter()
                    .find(|o| o.bridge.name.as_ref() == Some(bridge))
                {
                    return Err(LifecycleError::BridgeTaken {
                        bridge: bridge.to_string(),
                        by: other.name.to_string(),
                    });
                }
            }
            None => {
                let kept = previous.and_then(|p| p.bridge.name);
                net.bridge.name = Some(match kept {
                    Some(name) => name,
                    None => free_bridge_name(&others, interface_exists)?,
                });
            }
        }
        write_atomic(
            &self.xml_path(net.name.as_str()),
            format_network(&net).as_bytes(),
        )?;
        Ok(net)
    }

    /// The stored definition of `name`.
    pub fn get(&self, name: &str) -> Result<Network, LifecycleError> {
        let path = self.xml_path(name);
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(LifecycleError::NoSuchNetwork(name.to_owned()))
            }
            Err(e) => return Err(LifecycleError::io(&path, e)),
        };
        parse_network(&text).map_err(|e| LifecycleError::Stored {
            path,
            source: Box::new(e),
        })
    }

    /// Removes a definition; refused while the network runs.
    pub fn undefine(&self, name: &str) -> Result<(), LifecycleError> {
        self.get(name)?;
        if self.run_state(name)?.is_some() {
            return Err(LifecycleError::Running(name.to_owned()));
        }
        remove_if_present(&self.autostart_path(name))?;
        remove_if_present(&self.xml_path(name))?;
        sync_dir(&self.config)
    }

    pub fn set_autostart(&self, name: &str, on: bool) -> Result<(), LifecycleError> {
        self.get(name)?;
        let marker = self.autostart_path(name);
        if on {
            write_atomic(&marker, b"")
        } else {
            remove_if_present(&marker)
        }
    }

    pub fn autostart(&self, name: &str) -> bool {
        self.autostart_path(name).exists()
    }

    /// Every stored definition, sorted by name.
    pub fn definitions(&self) -> Result<Vec<Network>, LifecycleError> {
        let entries = match fs::read_dir(&self.config) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(LifecycleError::io(&self.config, e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| LifecycleError::io(&self.config, e))?;
            let file = entry.file_name().to_string_lossy().into_owned();
            if let Some(name) = file.strip_suffix(".xml") {
                names.push(name.to_owned());
            }
        }
        names.sort();
        names.iter().map(|n| self.get(n)).collect()
    }

    /// The `net-list` table.
    pub fn list(&self) -> Result<Vec<NetworkInfo>, LifecycleError> {
        let mut out = Vec::new();
        for net in self.definitions()? {
            let name = net.name.to_string();
            out.push(NetworkInfo {
                active: self.run_state(&name)?.is_some(),
                autostart: self.autostart(&name),
                uuid: net.uuid,
                bridge: net.bridge.name.as_ref().map(ToString::to_string),
                name,
            });
        }
        Ok(out)
    }

    /// The run state of `name`, if it is running.
    pub fn run_state(&self, name: &str) -> Result<Option<RunState>, LifecycleError> {
        let path = self.state_path(name);
        match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| LifecycleError::Corrupt {
                        path,
                        reason: e.to_string(),
                    })
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(LifecycleError::io(&path, e)),
        }
    }

    pub(crate) fn save_run_state(&self, state: &RunState) -> Result<(), LifecycleError> {
        let json = serde_json::to_vec_pretty(state).expect("run state serialises");
        write_atomic(&self.state_path(state.network.name.as_str()), &json)
    }

    pub(crate) fn clear_run_state(&self, name: &str) -> Result<(), LifecycleError> {
        remove_if_present(&self.state_path(name))
    }

    /// `STATE/firewall/private-chains.json`: a directory no network's
    /// `NAME.*` files can collide with.
    fn created_chains_path(&self) -> PathBuf {
        self.state.join("firewall").join("private-chains.json")
    }

    /// The private chains and jumps our set-ups created and nobody has
    /// removed since (empty when there is no record).
    pub(crate) fn created_chains(&self) -> Result<Vec<Created>, LifecycleError> {
        let path = self.created_chains_path();
        match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| LifecycleError::Corrupt {
                path,
                reason: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
            Err(e) => Err(LifecycleError::io(&path, e)),
        }
    }

    pub(crate) fn save_created_chains(&self, created: &[Created]) -> Result<(), LifecycleError> {
        let path = self.created_chains_path();
        if created.is_empty() {
            return remove_if_present(&path);
        }
        let json = serde_json::to_vec_pretty(created).expect("chain records serialise");
        write_atomic(&path, &json)
    }
}

/// Keep the UUID of a redefined name; refuse one that names another network.
fn pick_uuid(
    net: &Network,
    previous: Option<&Network>,
    others: &[Network],
) -> Result<Uuid, LifecycleError> {
    if let Some(uuid) = net.uuid {
        if let Some(other) = others.iter().find(|o| o.uuid == Some(uuid)) {
            return Err(LifecycleError::UuidTaken {
                uuid,
                by: other.name.to_string(),
            });
        }
        if let Some(old) = previous.and_then(|p| p.uuid).filter(|old| *old != uuid) {
            return Err(LifecycleError::UuidChanged {
                name: net.name.to_string(),
                old,
                new: uuid,
            });
        }
        return Ok(uuid);
    }
    Ok(previous.and_then(|p| p.uuid).unwrap_or_else(Uuid::new_v4))
}

/// The first `virbrN` neither another network nor the host uses.
fn free_bridge_name(
    others: &[Network],
    interface_exists: &dyn Fn(&IfName) -> bool,
) -> Result<IfName, LifecycleError> {
    for n in 0..256 {
        let name = IfName::new(format!("virbr{n}")).expect("virbrN is a valid interface name");
        let used = others.iter().any(|o| o.bridge.name.as_ref() == Some(&name));
        if !used && !interface_exists(&name) {
            return Ok(name);
        }
    }
    Err(LifecycleError::NoFreeBridgeName)
}

fn remove_if_present(path: &Path) -> Result<(), LifecycleError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LifecycleError::io(path, e)),
    }
}

fn sync_dir(dir: &Path) -> Result<(), LifecycleError> {
    match fs::File::open(dir) {
        Ok(d) => d.sync_all().map_err(|e| LifecycleError::io(dir, e)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(LifecycleError::io(dir, e)),
    }
}

/// Writes `bytes` to `path` (mode 0644) so that a crash leaves the old or
/// the new content, never a mix: temporary file in the same directory,
/// fsync, rename over, fsync the directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), LifecycleError> {
    let dir = path.parent().expect("store paths have a parent");
    fs::create_dir_all(dir).map_err(|e| LifecycleError::io(dir, e))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| LifecycleError::io(dir, e))?;
    // Readable by all: nothing stored here is secret.
    tmp.as_file()
        .set_permissions(fs::Permissions::from_mode(0o644))
        .map_err(|e| LifecycleError::io(path, e))?;
    tmp.write_all(bytes)
        .map_err(|e| LifecycleError::io(path, e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| LifecycleError::io(path, e))?;
    tmp.persist(path)
        .map_err(|e| LifecycleError::io(path, e.error))?;
    sync_dir(dir)
}
