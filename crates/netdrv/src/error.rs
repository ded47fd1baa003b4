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
