//! The one error type of the entry point: which kind of failure, and the
//! whole cause chain as text (the lower crates' error types stay private,
//! so that they can change without breaking embedders).

use nwfilter_driver::engine::error_chain;
use nwfilter_driver::EngineError;

use crate::binding::BindingError;

/// Why a [`Host`](crate::Host) call failed.
///
/// Unless the variant says otherwise, nothing stored or applied changed:
/// every call is all or nothing. Each `message` is the full cause chain
/// (file, element, attribute, line, port), ready to show to a user.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A `<filter>` or `<filterbinding>` document is not valid.
    #[error("{message}")]
    InvalidDocument {
        /// What is wrong and where (element, attribute, line).
        message: String,
    },
    /// A typed binding was refused (see [`BindingBuilder`](crate::BindingBuilder)).
    #[error(transparent)]
    InvalidBinding(#[from] BindingError),
    /// No filter or binding of that name (or UUID).
    #[error("{message}")]
    NotFound {
        /// Which object was looked for.
        message: String,
    },
    /// The request contradicts what is stored: the port already has a
    /// binding, the filter is in use or built in, a UUID or name belongs
    /// to another filter, a definition would form a loop.
    #[error("{message}")]
    Conflict {
        /// What conflicts with what.
        message: String,
    },
    /// The rules of a port could not be built: a filter it references is
    /// missing, it needs a variable (such as `IP`) nobody sets, or a
    /// redefinition would break a binding (the definition was not stored).
    #[error("{message}")]
    Rules {
        /// The port and why.
        message: String,
    },
    /// The kernel refused the rules, a firewall tool is missing, or the
    /// tables lock could not be taken. The message says whether putting
    /// things back failed too.
    #[error("{message}")]
    Firewall {
        /// The tool, its arguments and what it said.
        message: String,
    },
    /// A file of the config or state directory could not be read or
    /// written.
    #[error("{message}")]
    Storage {
        /// The file and why.
        message: String,
    },
    /// Learning the port's IP address could not start; the binding was
    /// removed again.
    #[error("{message}")]
    Learning {
        /// The port and why.
        message: String,
    },
    /// [`HostConfig::open`](crate::HostConfig::open) failed: a settings
    /// file, a missing firewall tool, the lease file, a thread.
    #[error("{message}")]
    Setup {
        /// What could not be set up.
        message: String,
    },
}

impl Error {
    pub(crate) fn setup(message: impl Into<String>) -> Error {
        Error::Setup {
            message: message.into(),
        }
    }
}

impl From<EngineError> for Error {
    fn from(e: EngineError) -> Error {
        let message = error_chain(&e);
        match e {
            EngineError::Store(store) => Error::from_store(store, message),
            EngineError::InvalidBinding(_) => Error::InvalidDocument { message },
            EngineError::Compile { .. }
            | EngineError::NeedsIp { .. }
            | EngineError::Rebuild { .. }
            | EngineError::BadPort(..) => Error::Rules { message },
            EngineError::Lock { .. }
            | EngineError::Apply { .. }
            | EngineError::RemoveOld { .. }
            | EngineError::Undo { .. } => Error::Firewall { message },
            // Records, learned addresses and anything added later: files.
            _ => Error::Storage { message },
        }
    }
}

impl From<nwfilter_driver::Error> for Error {
    fn from(e: nwfilter_driver::Error) -> Error {
        let message = error_chain(&e);
        Error::from_store(e, message)
    }
}

impl Error {
    fn from_store(e: nwfilter_driver::Error, message: String) -> Error {
        use nwfilter_driver::Error as Store;
        match e {
            Store::Invalid { .. } => Error::InvalidDocument { message },
            Store::NoSuchFilter(_) | Store::NoSuchBinding(_) => Error::NotFound { message },
            Store::UuidTaken { .. }
            | Store::NameTaken { .. }
            | Store::Cycle { .. }
            | Store::InUse { .. }
            | Store::Builtin(_)
            | Store::BindingExists(_) => Error::Conflict { message },
            _ => Error::Storage { message },
        }
    }

    /// Classifies an error of the service's string-or-typed verbs: an
    /// engine or store error keeps its kind; anything else is the
    /// learner's (the only other failure of `binding-create`).
    pub(crate) fn from_service(e: Box<dyn std::error::Error>) -> Error {
        let e = match e.downcast::<EngineError>() {
            Ok(engine) => return Error::from(*engine),
            Err(e) => e,
        };
        match e.downcast::<nwfilter_driver::Error>() {
            Ok(store) => Error::from(*store),
            Err(other) => Error::Learning {
                message: error_chain(other.as_ref()),
            },
        }
    }
}
