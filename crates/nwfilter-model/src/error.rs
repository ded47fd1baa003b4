//! Parse errors that say what is wrong and where: document, line:column,
//! element, attribute and offending value.

use std::fmt;

use crate::names::NameError;
use crate::values_parse::ValueError;

/// Where in a document a problem was found. Empty fields are unknown.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Location {
    /// The document's name (usually its file name), when the caller gave one.
    pub doc: Option<String>,
    /// 1-based line and column; 0 when unknown.
    pub line: u32,
    pub column: u32,
    pub element: Option<String>,
    pub attr: Option<String>,
    pub value: Option<String>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.doc.as_deref().unwrap_or("<input>"))?;
        if self.line > 0 {
            write!(f, ":{}:{}", self.line, self.column)?;
        }
        f.write_str(": ")?;
        if let Some(element) = &self.element {
            write!(f, "<{element}>")?;
            match (&self.attr, &self.value) {
                (Some(attr), Some(value)) => write!(f, " attribute {attr}={value:?}")?,
                (Some(attr), None) => write!(f, " attribute {attr}")?,
                _ => {}
            }
            f.write_str(": ")?;
        }
        Ok(())
    }
}

/// What is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ErrorKind {
    #[error("the document is {0} bytes; the limit is 16 MiB")]
    TooLarge(usize),
    #[error("elements are nested more than {0} levels deep")]
    TooDeep(usize),
    #[error("malformed XML: {0}")]
    Xml(String),
    /// `expected` lists the acceptable roots, e.g. `<filter>`.
    #[error("expected root element {expected}, found <{found}>")]
    WrongRoot { expected: String, found: String },
    #[error("required attribute is missing")]
    MissingAttr,
    #[error("required element <{0}> is missing")]
    MissingElement(&'static str),
    #[error("unknown element (expected {0})")]
    UnknownElement(&'static str),
    #[error("unknown attribute")]
    UnknownAttr,
    #[error("{0}")]
    Value(#[from] ValueError),
    #[error("{0}")]
    Name(#[from] NameError),
    /// Any other rule of the format, explained in words.
    #[error("{0}")]
    Invalid(String),
}

/// A document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}{kind}")]
pub struct ParseError {
    /// Boxed to keep `Result<_, ParseError>` small.
    pub location: Box<Location>,
    pub kind: ErrorKind,
}

impl ParseError {
    pub(crate) fn new(location: Location, kind: impl Into<ErrorKind>) -> ParseError {
        ParseError {
            location: Box::new(location),
            kind: kind.into(),
        }
    }

    /// Names the document (e.g. its file name) in the message.
    pub fn in_doc(mut self, doc: impl Into<String>) -> ParseError {
        self.location.doc = Some(doc.into());
        self
    }

    /// The attribute the error is about, if any.
    pub fn attr(&self) -> Option<&str> {
        self.location.attr.as_deref()
    }
}
