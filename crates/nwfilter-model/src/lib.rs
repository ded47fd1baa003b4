//! Typed model of libvirt's network-filter documents.
//!
//! Data flow: XML text → [`parse_filter`] / [`parse_binding`] → typed
//! [`Filter`] / [`Binding`] (validated) → [`format_filter`] /
//! [`format_binding`] → libvirt's normalised XML. Nothing here does I/O
//! beyond reading the text it is handed.

mod addr;
mod attr;
mod binding;
mod builtin;
mod error;
mod escape;
mod filter;
mod format;
mod lenient;
mod names;
mod parse_binding;
mod parse_filter;
mod parse_rule;
mod protocol;
mod value;
mod values_parse;
mod var;
mod xml;

pub use addr::parse_mac;
pub use attr::{Attr, AttrSpec, ValueKind};
pub use binding::{Binding, Owner};
pub use builtin::{
    builtin_filter_source, builtin_filter_sources, builtin_filters, dualstack_filter_sources,
};
pub use error::{ErrorKind, Location, ParseError};
pub use escape::{escape_attr, escape_text};
pub use filter::{
    Action, AttrValue, Direction, Entry, Filter, FilterRef, Params, ProtocolMatch, Rule,
    DEFAULT_RULE_PRIORITY, PRIORITY_RANGE,
};
pub use format::{format_binding, format_filter};
pub use lenient::{ParseOptions, Parsed, Warning};
pub use names::{ChainKind, ChainName, FilterName, IfName, NameError};
pub use parse_binding::{
    parse_binding, parse_binding_with, parse_document, parse_document_with, root_element, Document,
};
pub use parse_filter::{parse_filter, parse_filter_with};
pub use protocol::{Layer, Protocol};
pub use value::{IpsetDir, Number, StateSet, TcpFlags, Value};
pub use values_parse::{
    format_kind, format_value, format_var, parse_kind, parse_value, parse_var, valid_param_name,
    valid_param_value, ValueError, MAX_COMMENT_BYTES, MAX_IPSET_NAME,
};
pub use var::{VarAccess, VarRef, MAX_ITERATOR_ID};
pub use xml::{MAX_ATTRIBUTES, MAX_DEPTH, MAX_DOCUMENT_BYTES};

pub use macaddr::MacAddr6;
pub use uuid::Uuid;
