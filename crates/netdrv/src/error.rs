//! Errors: what is wrong with a network document, and where.

use std::fmt;

/// A position in the XML text, 1-based.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    pub line: u32,
    pub column: u32,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// A problem with one element or attribute of a network, independent of
/// where it was written (the parser adds the [`Location`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct Invalid {
    /// The element's name, e.g. `range`.
    pub element: String,
    pub attribute: Option<String>,
    /// The offending value as written.
    pub value: Option<String>,
    pub reason: String,
}

impl Invalid {
    /// A problem with a whole element.
    pub fn element(element: &str, reason: impl Into<String>) -> Invalid {
        Invalid {
            element: element.to_owned(),
            attribute: None,
            value: None,
            reason: reason.into(),
        }
    }

    /// A problem with an attribute's value.
    pub fn value(
        element: &str,
        attribute: &str,
        value: impl fmt::Display,
        reason: impl Into<String>,
    ) -> Invalid {
        Invalid {
            element: element.to_owned(),
            attribute: Some(attribute.to_owned()),
            value: Some(value.to_string()),
            reason: reason.into(),
        }
    }

    /// A required attribute that is absent.
    pub fn missing(element: &str, attribute: &str) -> Invalid {
        Invalid {
            element: element.to_owned(),
            attribute: Some(attribute.to_owned()),
            value: None,
            reason: "this attribute is required".to_owned(),
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.attribute, &self.value) {
            (Some(attr), Some(value)) => write!(
                f,
                "<{}> attribute '{}'='{}': {}",
                self.element, attr, value, self.reason
            ),
            (Some(attr), None) => {
                write!(
                    f,
                    "<{}> attribute '{}': {}",
                    self.element, attr, self.reason
                )
            }
            _ => write!(f, "<{}>: {}", self.element, self.reason),
        }
    }
}

/// Why a network document was refused.
#[derive(Debug, thiserror::Error)]
pub enum ParseError {
    #[error("the document is {size} bytes; documents over {limit} bytes are refused")]
    TooLarge { size: usize, limit: usize },
    #[error("not well-formed XML: {0}")]
    Xml(#[from] roxmltree::Error),
    #[error("{at}: expected a <network> document, found <{found}>")]
    WrongRoot { found: String, at: Location },
    #[error("{at}: {problem}")]
    Invalid { at: Location, problem: Invalid },
}

impl ParseError {
    /// Where the problem is, when it is tied to one place in the text.
    pub fn location(&self) -> Option<Location> {
        match self {
            ParseError::WrongRoot { at, .. } | ParseError::Invalid { at, .. } => Some(*at),
            ParseError::Xml(e) => {
                let pos = e.pos();
                Some(Location {
                    line: pos.row,
                    column: pos.col,
                })
            }
            ParseError::TooLarge { .. } => None,
        }
    }
}

/// Why firewall rules or a dnsmasq configuration cannot be produced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FirewallError {
    #[error("network '{0}' has no bridge name; define it first (define picks a free virbrN) or add <bridge name='…'/>")]
    NoBridgeName(String),
}

/// Why a network could not be defined, started, stopped or listed.
#[derive(Debug, thiserror::Error)]
pub enum LifecycleError {
    #[error(transparent)]
    Parse(Box<ParseError>),
    #[error("stored definition {path} is invalid: {source}")]
    Stored {
        path: std::path::PathBuf,
        #[source]
        source: Box<ParseError>,
    },
    #[error("{path}: {reason}")]
    Corrupt {
        path: std::path::PathBuf,
        reason: String,
    },
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("no network named '{0}'")]
    NoSuchNetwork(String),
    #[error("network '{0}' is running; destroy it first")]
    Running(String),
    #[error("network '{0}' is already running")]
    AlreadyRunning(String),
    #[error("network '{0}' is not running")]
    NotRunning(String),
    #[error("bridge '{bridge}' is already used by network '{by}'")]
    BridgeTaken { bridge: String, by: String },
    #[error("cannot create bridge '{0}': an interface of that name already exists")]
    InterfaceExists(String),
    #[error("UUID {uuid} already belongs to network '{by}'")]
    UuidTaken { uuid: uuid::Uuid, by: String },
    #[error("network '{name}' has UUID {old}; the document gives {new}")]
    UuidChanged {
        name: String,
        old: uuid::Uuid,
        new: uuid::Uuid,
    },
    #[error("no free bridge name (virbr0 to virbr255 are all taken)")]
    NoFreeBridgeName,
    #[error("subnet {subnet} overlaps the existing route {route} (dev {device}): the network would cut this host off from it")]
    RouteOverlap {
        subnet: ipnet::IpNet,
        route: ipnet::IpNet,
        device: String,
    },
    #[error(transparent)]
    Firewall(#[from] FirewallError),
    #[error("firewall: {0}")]
    Run(#[from] host_io::RunError),
    #[error("nftables: {0}")]
    Nft(String),
    #[error("netlink: {0}")]
    Netlink(String),
    #[error("dnsmasq: {0}")]
    Dnsmasq(String),
    #[error("network '{name}' was not fully destroyed: {}", .failures.join("; "))]
    Teardown { name: String, failures: Vec<String> },
    #[error("{error}; and undoing the partial start failed: {}", .undo.join("; "))]
    Rollback {
        #[source]
        error: Box<LifecycleError>,
        undo: Vec<String>,
    },
}

impl LifecycleError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> LifecycleError {
        LifecycleError::Io {
            path: path.to_owned(),
            source,
        }
    }
}
