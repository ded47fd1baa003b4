//! One directory of small XML objects (`KEY.xml`), written so that a crash
//! at any moment leaves each object either old or new.
//!
//! A write is: temp file in the same directory, fsync, rename over the
//! object, fsync the directory — all while holding an exclusive `flock` on
//! `DIR/.lock`. Reads hold a shared lock, so a reader never mistakes a
//! writer's in-flight temp file for a leftover of a crash.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use rustix::fs::{flock, FlockOperation};

use crate::error::Error;

/// The largest object file read: the documents' own limit, so that what
/// is stored can always be parsed again (writers check it too).
pub(crate) const MAX_OBJECT_BYTES: usize = nwfilter_model::MAX_DOCUMENT_BYTES;

/// The lock file every store keeps in its directory.
const LOCK_FILE: &str = ".lock";
/// Object files end with this; anything else in the directory is ignored.
const OBJECT_SUFFIX: &str = ".xml";
/// Temp files are `.KEY.<random>.tmp`; one seen under the lock is a crash
/// leftover.
const TEMP_SUFFIX: &str = ".tmp";

/// A directory of `KEY.xml` objects.
#[derive(Debug, Clone)]
pub(crate) struct ObjectDir {
    dir: PathBuf,
}

/// Proof that the directory's lock is held; dropping it releases the lock
/// (closing the descriptor ends the `flock`).
#[derive(Debug)]
pub(crate) struct DirLock {
    _file: Option<File>,
}

/// What a directory scan found.
#[derive(Debug, Default)]
pub(crate) struct Scan {
    /// `(key, path)` of each object file, sorted by key.
    pub objects: Vec<(String, PathBuf)>,
    /// Temp files left by a writer that died before its rename.
    pub stray: Vec<PathBuf>,
}

impl ObjectDir {
    pub fn new(dir: PathBuf) -> ObjectDir {
        ObjectDir { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where object `key` lives.
    pub fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}{OBJECT_SUFFIX}"))
    }

    /// Takes the exclusive lock, creating the directory if needed.
    pub fn lock_exclusive(&self) -> Result<DirLock, Error> {
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io("create", &self.dir, e))?;
        let path = self.dir.join(LOCK_FILE);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| Error::io("open lock file", &path, e))?;
        lock(&file, FlockOperation::LockExclusive).map_err(|e| Error::io("lock", &path, e))?;
        Ok(DirLock { _file: Some(file) })
    }

    /// Takes the shared lock for reading. A directory that does not exist
    /// yet, or whose lock file this user may not create (a read-only
    /// config directory), is read without one: renames are atomic, so the
    /// only cost is that a writer's temp file may be reported as stray.
    pub fn lock_shared(&self) -> Result<DirLock, Error> {
        let path = self.dir.join(LOCK_FILE);
        let file = match OpenOptions::new().read(true).open(&path) {
            Ok(file) => file,
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::PermissionDenied) => {
                return Ok(DirLock { _file: None })
            }
            Err(e) => return Err(Error::io("open lock file", &path, e)),
        };
        lock(&file, FlockOperation::LockShared).map_err(|e| Error::io("lock", &path, e))?;
        Ok(DirLock { _file: Some(file) })
    }

    /// Lists object files and stray temp files. A missing directory is
    /// empty.
    pub fn scan(&self, _lock: &DirLock) -> Result<Scan, Error> {
        let mut scan = Scan::default();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(scan),
            Err(e) => return Err(Error::io("read directory", &self.dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| Error::io("read directory", &self.dir, e))?;
            let Some(file_name) = entry.file_name().to_str().map(str::to_owned) else {
                continue;
            };
            if file_name.starts_with('.') && file_name.ends_with(TEMP_SUFFIX) {
                scan.stray.push(entry.path());
            } else if let Some(key) = file_name.strip_suffix(OBJECT_SUFFIX) {
                if !key.is_empty() {
                    scan.objects.push((key.to_owned(), entry.path()));
                }
            }
        }
        scan.objects.sort();
        scan.stray.sort();
        Ok(scan)
    }

    /// The text of object `key`, or `None` when there is no such file.
    /// A file that cannot be an object (larger than any document may be,
    /// not UTF-8 text, unreadable) is an error naming the file and why;
    /// listings skip it and go on with the rest.
    pub fn read(&self, _lock: &DirLock, key: &str) -> Result<Option<String>, Error> {
        let path = self.path(key);
        let file = match File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("read", &path, e)),
        };
        // Never more than the limit (plus one byte to see it is exceeded):
        // a huge file must not fill memory before it is refused.
        let mut bytes = Vec::new();
        (file.take(MAX_OBJECT_BYTES as u64 + 1))
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io("read", &path, e))?;
        if bytes.len() > MAX_OBJECT_BYTES {
            let reason = format!("larger than {MAX_OBJECT_BYTES} bytes, the limit of a document");
            return Err(Error::bad_file(&path, reason));
        }
        String::from_utf8(bytes).map(Some).map_err(|e| {
            let at = e.utf8_error().valid_up_to();
            Error::bad_file(&path, format!("not UTF-8 text (bad byte at offset {at})"))
        })
    }

    /// Replaces (or creates) object `key` with `text`, durably. A text
    /// that [`ObjectDir::read`] would refuse is refused here, before
    /// anything is written.
    pub fn write(&self, lock: &DirLock, key: &str, text: &str) -> Result<(), Error> {
        let path = self.path(key);
        if text.len() > MAX_OBJECT_BYTES {
            return Err(Error::TooLarge {
                what: format!("{}", path.display()),
                size: text.len(),
                limit: MAX_OBJECT_BYTES,
            });
        }
        self.write_bytes(lock, key, text.as_bytes())
    }

    /// The bytes of object `key` as they are, whatever they hold (`None`:
    /// no such file): what [`ObjectDir::write_bytes`] puts back on undo.
    pub fn read_bytes(&self, _lock: &DirLock, key: &str) -> Result<Option<Vec<u8>>, Error> {
        let path = self.path(key);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io("read", &path, e)),
        }
    }

    /// Replaces (or creates) object `key` with `bytes`, durably, unchecked.
    pub fn write_bytes(&self, _lock: &DirLock, key: &str, bytes: &[u8]) -> Result<(), Error> {
        let path = self.path(key);
        let mut temp = tempfile::Builder::new()
            .prefix(&format!(".{key}."))
            .suffix(TEMP_SUFFIX)
            .tempfile_in(&self.dir)
            .map_err(|e| Error::io("create temp file for", &path, e))?;
        temp.write_all(bytes)
            .and_then(|()| temp.as_file().sync_all())
            .map_err(|e| Error::io("write temp file for", &path, e))?;
        // On failure the temp file is removed when `PersistError` drops.
        temp.persist(&path)
            .map_err(|e| Error::io("rename temp file onto", &path, e.error))?;
        self.sync_dir()
    }

    /// Removes object `key`, durably. `false` when it did not exist.
    pub fn remove(&self, _lock: &DirLock, key: &str) -> Result<bool, Error> {
        let path = self.path(key);
        match std::fs::remove_file(&path) {
            Ok(()) => self.sync_dir().map(|()| true),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(false),
            Err(e) => Err(Error::io("remove", &path, e)),
        }
    }

    /// Deletes stray temp files (only safe under the exclusive lock, which
    /// no writer can hold at the same time).
    pub fn sweep(&self, lock: &DirLock) -> Result<Vec<PathBuf>, Error> {
        let stray = self.scan(lock)?.stray;
        for path in &stray {
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("remove", path, e)),
            }
        }
        if !stray.is_empty() {
            self.sync_dir()?;
        }
        Ok(stray)
    }

    /// Makes renames and unlinks in the directory durable.
    fn sync_dir(&self) -> Result<(), Error> {
        File::open(&self.dir)
            .and_then(|dir| dir.sync_all())
            .map_err(|e| Error::io("sync directory", &self.dir, e))
    }
}

/// `flock`, retried when a signal interrupts the wait.
fn lock(file: &File, operation: FlockOperation) -> std::io::Result<()> {
    loop {
        match flock(file, operation) {
            Err(rustix::io::Errno::INTR) => continue,
            other => return other.map_err(std::io::Error::from),
        }
    }
}
