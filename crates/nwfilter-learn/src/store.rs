//! Leases on disk, so that a daemon restart neither forgets a guest's
//! address nor keeps one whose lease ended meanwhile.
//!
//! One JSON file in the state directory holds every guest's leases, keyed
//! as libvirt keys them (`<owner-uuid>-<mac>`, see [`LeaseKey`]). Every
//! change rewrites it atomically (temporary file, fsync, rename, fsync of
//! the directory): after a crash at any moment the file is the old or the
//! new version, never a mix. Expired leases are dropped when loading.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use nwfilter_model::MacAddr6;
use serde::{Deserialize, Serialize};

use crate::lease::{Lease, Leases};

/// Whose leases: the owner (a VM's UUID or name) and the NIC's MAC, so a
/// guest restarted with the same identity gets its leases back even on
/// another port name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LeaseKey(String);

impl LeaseKey {
    pub fn new(owner: impl fmt::Display, mac: MacAddr6) -> LeaseKey {
        LeaseKey(format!("{owner}-{}", mac.to_string().to_ascii_lowercase()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for LeaseKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Why the lease file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("lease file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("lease file {path} is not valid: {source}")]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// The file's contents. `version` lets a later format be told apart.
#[derive(Debug, Default, Serialize, Deserialize)]
struct FileContents {
    version: u32,
    leases: BTreeMap<LeaseKey, Vec<Lease>>,
}

const VERSION: u32 = 1;

/// The persisted leases of every guest.
#[derive(Debug)]
pub struct LeaseStore {
    path: PathBuf,
    leases: Mutex<BTreeMap<LeaseKey, Vec<Lease>>>,
}

impl LeaseStore {
    /// The file's name inside the state directory.
    pub const FILE_NAME: &'static str = "leases.json";

    /// Loads `state_dir/leases.json` (creating the directory; no file is
    /// an empty store), drops what expired by `now` (seconds since the
    /// epoch) and writes the compacted file back.
    pub fn open(state_dir: &Path, now: u64) -> Result<LeaseStore, StoreError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { path, source }
        };
        fs::create_dir_all(state_dir).map_err(io(state_dir))?;
        let path = state_dir.join(Self::FILE_NAME);
        let contents = match fs::read(&path) {
            Ok(bytes) => serde_json::from_slice::<FileContents>(&bytes).map_err(|source| {
                StoreError::Parse {
                    path: path.clone(),
                    source,
                }
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => FileContents::default(),
            Err(e) => return Err(io(&path)(e)),
        };
        let mut leases = BTreeMap::new();
        for (key, list) in contents.leases {
            let live = Leases::restore(list, now);
            if !live.is_empty() {
                leases.insert(key, live.list().to_vec());
            }
        }
        let store = LeaseStore {
            path,
            leases: Mutex::new(leases),
        };
        store.write(&store.lock())?;
        Ok(store)
    }

    /// The stored leases of `key` (possibly expired since loading).
    pub fn leases(&self, key: &LeaseKey) -> Vec<Lease> {
        self.lock().get(key).cloned().unwrap_or_default()
    }

    /// Replaces `key`'s leases (none: forgets the key) and writes the file.
    pub fn record(&self, key: &LeaseKey, leases: &[Lease]) -> Result<(), StoreError> {
        let mut map = self.lock();
        if leases.is_empty() {
            if map.remove(key).is_none() {
                return Ok(());
            }
        } else if map.get(key).map(Vec::as_slice) == Some(leases) {
            return Ok(());
        } else {
            map.insert(key.clone(), leases.to_vec());
        }
        self.write(&map)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<LeaseKey, Vec<Lease>>> {
        // The map is only ever replaced whole; a panicking writer leaves it valid.
        self.leases.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Temporary file, fsync, rename over the old file, fsync the directory.
    fn write(&self, map: &BTreeMap<LeaseKey, Vec<Lease>>) -> Result<(), StoreError> {
        let contents = FileContents {
            version: VERSION,
            leases: map.clone(),
        };
        let bytes = serde_json::to_vec_pretty(&contents).expect("leases serialise");
        let tmp = self.path.with_extension("json.tmp");
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError::Io { path, source }
        };
        let mut file = File::create(&tmp).map_err(io(&tmp))?;
        file.write_all(&bytes).map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))?;
        drop(file);
        fs::rename(&tmp, &self.path).map_err(io(&self.path))?;
        let dir = self.path.parent().unwrap_or(Path::new("."));
        File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io(dir))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn key(n: u8) -> LeaseKey {
        LeaseKey::new("vm", MacAddr6::new(0x52, 0x54, 0, 0, 0, n))
    }

    fn lease(last: u8, expires: Option<u64>) -> Lease {
        Lease {
            addr: Ipv4Addr::new(10, 0, 0, last),
            server: Ipv4Addr::new(10, 0, 0, 1),
            expires,
        }
    }

    #[test]
    fn leases_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = LeaseStore::open(dir.path(), 1000).unwrap();
        store
            .record(&key(1), &[lease(50, Some(2000)), lease(51, None)])
            .unwrap();
        store.record(&key(2), &[lease(60, Some(3000))]).unwrap();
        drop(store);
        let store = LeaseStore::open(dir.path(), 1500).unwrap();
        assert_eq!(
            store.leases(&key(1)),
            vec![lease(50, Some(2000)), lease(51, None)]
        );
        assert_eq!(store.leases(&key(2)), vec![lease(60, Some(3000))]);
    }

    #[test]
    fn expired_leases_are_dropped_on_load_and_from_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = LeaseStore::open(dir.path(), 1000).unwrap();
        store
            .record(&key(1), &[lease(50, Some(1100)), lease(51, Some(5000))])
            .unwrap();
        store.record(&key(2), &[lease(60, Some(1100))]).unwrap();
        drop(store);
        let store = LeaseStore::open(dir.path(), 2000).unwrap();
        assert_eq!(store.leases(&key(1)), vec![lease(51, Some(5000))]);
        assert_eq!(store.leases(&key(2)), Vec::new());
        let text = fs::read_to_string(store.path()).unwrap();
        assert!(!text.contains("10.0.0.60"), "compacted on load:\n{text}");
    }

    #[test]
    fn recording_no_leases_forgets_the_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = LeaseStore::open(dir.path(), 0).unwrap();
        store.record(&key(1), &[lease(50, None)]).unwrap();
        store.record(&key(1), &[]).unwrap();
        drop(store);
        let store = LeaseStore::open(dir.path(), 0).unwrap();
        assert!(store.leases(&key(1)).is_empty());
    }

    #[test]
    fn no_temporary_file_is_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = LeaseStore::open(dir.path(), 0).unwrap();
        store.record(&key(1), &[lease(50, None)]).unwrap();
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, vec![LeaseStore::FILE_NAME.to_string()]);
    }

    #[test]
    fn a_corrupt_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(LeaseStore::FILE_NAME), "{not json").unwrap();
        let err = LeaseStore::open(dir.path(), 0).unwrap_err().to_string();
        assert!(err.contains("leases.json"), "{err}");
    }

    #[test]
    fn keys_are_owner_and_lowercase_mac() {
        let k = LeaseKey::new("3f0c", MacAddr6::new(0x52, 0x54, 0, 0xAB, 0, 1));
        assert_eq!(k.as_str(), "3f0c-52:54:00:ab:00:01");
    }
}
