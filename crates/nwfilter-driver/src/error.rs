//! The driver's errors: each names the object (filter, port) or the file
//! it concerns, and why.

use std::path::{Path, PathBuf};

use uuid::Uuid;

/// Why a store operation failed. Nothing was changed when one is returned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A file-system call failed.
    #[error("cannot {op} {}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A document handed to `define`/`create` is not valid.
    #[error("invalid {what} document")]
    Invalid {
        what: &'static str,
        #[source]
        source: nwfilter_model::ParseError,
    },
    /// A file in a store directory cannot be used.
    #[error("{}: {reason}", path.display())]
    BadFile { path: PathBuf, reason: String },
    /// A document whose normalised form is larger than a document may be:
    /// stored, it could never be read back.
    #[error(
        "{what}: the normalised document is {size} bytes, over the limit of {limit} bytes \
         (16 MiB) that reading it back applies; nothing was stored"
    )]
    TooLarge {
        what: String,
        size: usize,
        limit: usize,
    },
    #[error("no filter with name or UUID '{0}'")]
    NoSuchFilter(String),
    /// libvirt: "filter with same UUID but different name ('OLD') already
    /// exists".
    #[error("cannot define filter '{name}': UUID {uuid} already belongs to filter '{owner}'")]
    UuidTaken {
        name: String,
        uuid: Uuid,
        owner: String,
    },
    /// An existing name redefined with an explicit, different UUID.
    #[error("filter '{name}' already exists with UUID {existing}, not {given}")]
    NameTaken {
        name: String,
        existing: Uuid,
        given: Uuid,
    },
    /// The definition's references lead back to itself.
    #[error("filter would introduce a loop: {}", path.join(" -> "))]
    Cycle { path: Vec<String> },
    /// Bindings still use the filter, directly or through references.
    #[error("filter '{name}' is in use by {}", users.join(", "))]
    InUse { name: String, users: Vec<String> },
    /// Built-in filters are part of the program; they can be overridden by
    /// defining a filter of the same name, not removed.
    #[error("filter '{0}' is built in and cannot be undefined (define it to override it)")]
    Builtin(String),
    #[error("port {0} already has a filter binding (binding-delete {0} first)")]
    BindingExists(String),
    #[error("no filter binding for port {0:?}")]
    NoSuchBinding(String),
    /// The caller's list of current bindings could not be produced.
    #[error("cannot list the current bindings")]
    Bindings(#[source] Box<Error>),
}

impl Error {
    pub(crate) fn io(op: &'static str, path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn bad_file(path: &Path, reason: impl std::fmt::Display) -> Error {
        Error::BadFile {
            path: path.to_path_buf(),
            reason: reason.to_string(),
        }
    }
}
