//! Attributes libvirt ignores. libvirt 9.0 reads only the attributes an
//! element has and skips the rest, and real filters rely on it (libvirt-tck
//! puts `protocolid` on `<arp>`). By default we do the same, but never
//! silently: each skipped attribute becomes a [`Warning`] returned with the
//! parsed document. Strict mode refuses them instead (docs/compatibility.md).

use std::cell::RefCell;
use std::fmt;
use std::ops::Deref;

use roxmltree::Node;

use crate::error::{Location, ParseError};
use crate::xml::Ctx;

/// How a document is read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// Refuse unknown attributes (an error) instead of ignoring them with a
    /// warning, as libvirt does.
    pub strict: bool,
}

impl ParseOptions {
    /// Unknown attributes are errors.
    pub const STRICT: ParseOptions = ParseOptions { strict: true };
}

/// A document and what was ignored while reading it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed<T> {
    pub value: T,
    /// In document order.
    pub warnings: Vec<Warning>,
}

/// Something in a document that was ignored, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Warning {
    /// Document, line:column, element, attribute and value.
    pub location: Location,
}

impl Warning {
    /// Names the document (e.g. its file name) in the message.
    pub fn in_doc(mut self, doc: impl Into<String>) -> Warning {
        self.location.doc = Some(doc.into());
        self
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}unknown attribute ignored (as libvirt does; strict mode refuses it)",
            self.location
        )
    }
}

/// Collects the warnings of one parse; strict mode has none to collect.
#[derive(Debug, Default)]
pub(crate) struct Ignored {
    strict: bool,
    found: RefCell<Vec<Warning>>,
}

impl Ignored {
    pub(crate) fn new(options: ParseOptions) -> Ignored {
        Ignored {
            strict: options.strict,
            found: RefCell::default(),
        }
    }

    pub(crate) fn into_parsed<T>(self, value: T) -> Parsed<T> {
        Parsed {
            value,
            warnings: self.found.into_inner(),
        }
    }
}

/// A [`Ctx`] that also knows what to do with unknown attributes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reader<'a, 'input> {
    ctx: Ctx<'a, 'input>,
    ignored: &'a Ignored,
}

impl<'a, 'input> Deref for Reader<'a, 'input> {
    type Target = Ctx<'a, 'input>;
    fn deref(&self) -> &Ctx<'a, 'input> {
        &self.ctx
    }
}

impl<'a, 'input> Reader<'a, 'input> {
    pub(crate) fn new(ctx: Ctx<'a, 'input>, ignored: &'a Ignored) -> Reader<'a, 'input> {
        Reader { ctx, ignored }
    }

    /// Attributes outside `allowed` (or in a namespace): refused in strict
    /// mode, else skipped with a warning each.
    pub(crate) fn only_attrs(&self, node: Node, allowed: &[&str]) -> Result<(), ParseError> {
        if self.ignored.strict {
            return self.ctx.only_attrs(node, allowed);
        }
        let unknown = node
            .attributes()
            .filter(|a| a.namespace().is_some() || !allowed.contains(&a.name()));
        for attr in unknown {
            let location = *self
                .ctx
                .attr_err(node, attr.name(), crate::ErrorKind::UnknownAttr)
                .location;
            self.ignored.found.borrow_mut().push(Warning { location });
        }
        Ok(())
    }
}
