//! `<filterbinding>` documents (reference §8.1), and choosing the document
//! type by its root element.

use roxmltree::Node;

use crate::addr::parse_mac;
use crate::binding::{Binding, Owner};
use crate::error::{ErrorKind, ParseError};
use crate::filter::Filter;
use crate::lenient::{Ignored, ParseOptions, Parsed, Reader};
use crate::names::IfName;
use crate::parse_filter::{expect_root, filter_from, parse_filterref, parse_uuid_lenient};
use crate::xml::{elements, parse_xml, Ctx};

/// A document this crate understands, chosen by its root element.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Document {
    Filter(Filter),
    Binding(Binding),
}

/// Parses a `<filter>` or `<filterbinding>` document.
/// Unknown attributes are ignored as libvirt ignores them; use
/// [`parse_document_with`] to see them (or refuse them).
pub fn parse_document(text: &str) -> Result<Document, ParseError> {
    parse_document_with(text, ParseOptions::default()).map(|parsed| parsed.value)
}

/// [`parse_document`], returning what was ignored; in strict mode unknown
/// attributes are errors.
pub fn parse_document_with(
    text: &str,
    options: ParseOptions,
) -> Result<Parsed<Document>, ParseError> {
    let xml = parse_xml(text)?;
    let ignored = Ignored::new(options);
    let ctx = Reader::new(Ctx { xml: &xml }, &ignored);
    let root = xml.root_element();
    let document = match root.tag_name().name() {
        "filterbinding" => binding_from(ctx, root).map(Document::Binding),
        "filter" => filter_from(ctx, root).map(Document::Filter),
        found => Err(ctx.err(
            root,
            ErrorKind::WrongRoot {
                expected: "<filter> or <filterbinding>".into(),
                found: found.into(),
            },
        )),
    }?;
    Ok(ignored.into_parsed(document))
}

/// The name of a document's root element (`filter`, `filterbinding`,
/// `network`, ...), so callers can dispatch to the right parser.
pub fn root_element(text: &str) -> Result<String, ParseError> {
    let xml = parse_xml(text)?;
    Ok(xml.root_element().tag_name().name().to_owned())
}

/// Parses a `<filterbinding>` document.
///
/// Unknown attributes are ignored as libvirt ignores them; use
/// [`parse_binding_with`] to see them (or refuse them).
pub fn parse_binding(text: &str) -> Result<Binding, ParseError> {
    parse_binding_with(text, ParseOptions::default()).map(|parsed| parsed.value)
}

/// [`parse_binding`], returning what was ignored; in strict mode unknown
/// attributes are errors.
pub fn parse_binding_with(
    text: &str,
    options: ParseOptions,
) -> Result<Parsed<Binding>, ParseError> {
    let xml = parse_xml(text)?;
    let ignored = Ignored::new(options);
    let ctx = Reader::new(Ctx { xml: &xml }, &ignored);
    let root = xml.root_element();
    expect_root(*ctx, root, "filterbinding")?;
    let binding = binding_from(ctx, root)?;
    Ok(ignored.into_parsed(binding))
}

fn binding_from(ctx: Reader, node: Node) -> Result<Binding, ParseError> {
    ctx.only_attrs(node, &[])?;
    let mut owner = None;
    let mut portdev = None;
    let mut linkdev = None;
    let mut mac = None;
    let mut filterref = None;
    for child in elements(node) {
        let name = child.tag_name().name();
        let twice = || ctx.err(child, ErrorKind::Invalid(format!("<{name}> given twice")));
        match name {
            "owner" if owner.is_some() => return Err(twice()),
            "owner" => owner = Some(parse_owner(ctx, child)?),
            "portdev" if portdev.is_some() => return Err(twice()),
            "portdev" => portdev = Some(parse_dev(ctx, child)?),
            "linkdev" if linkdev.is_some() => return Err(twice()),
            "linkdev" => linkdev = Some(parse_dev(ctx, child)?),
            "mac" if mac.is_some() => return Err(twice()),
            "mac" => {
                ctx.only_attrs(child, &["address"])?;
                let text = ctx.required(child, "address")?;
                let why = "expected a MAC address xx:xx:xx:xx:xx:xx";
                let value = parse_mac(text).ok_or_else(|| {
                    ctx.attr_err(child, "address", ErrorKind::Invalid(why.into()))
                })?;
                mac = Some(value);
            }
            "filterref" if filterref.is_some() => return Err(twice()),
            "filterref" => filterref = Some(parse_filterref(ctx, child)?),
            _ => {
                let expected = "<owner>, <portdev>, <linkdev>, <mac> or <filterref>";
                return Err(ctx.err(child, ErrorKind::UnknownElement(expected)));
            }
        }
    }
    let missing = |what| ctx.err(node, ErrorKind::MissingElement(what));
    Ok(Binding {
        owner: owner.ok_or_else(|| missing("owner"))?,
        portdev: portdev.ok_or_else(|| missing("portdev"))?,
        linkdev,
        mac: mac.ok_or_else(|| missing("mac"))?,
        filterref: filterref.ok_or_else(|| missing("filterref"))?,
    })
}

fn parse_dev(ctx: Reader, node: Node) -> Result<IfName, ParseError> {
    ctx.only_attrs(node, &["name"])?;
    let name = ctx.required(node, "name")?;
    IfName::new(name).map_err(|e| ctx.attr_err(node, "name", e))
}

fn parse_owner(ctx: Reader, node: Node) -> Result<Owner, ParseError> {
    ctx.only_attrs(node, &[])?;
    let mut name = None;
    let mut uuid = None;
    for child in elements(node) {
        let text: String = child
            .children()
            .filter(Node::is_text)
            .filter_map(|n| n.text())
            .collect();
        match child.tag_name().name() {
            "name" if !text.is_empty() => name = Some(text),
            "name" => {
                let why = "the owner name is empty";
                return Err(ctx.err(child, ErrorKind::Invalid(why.into())));
            }
            "uuid" => {
                let why = format!("malformed UUID {text:?}");
                uuid = Some(
                    parse_uuid_lenient(&text)
                        .ok_or_else(|| ctx.err(child, ErrorKind::Invalid(why)))?,
                );
            }
            _ => return Err(ctx.err(child, ErrorKind::UnknownElement("<name> or <uuid>"))),
        }
    }
    Ok(Owner {
        name: name.ok_or_else(|| ctx.err(node, ErrorKind::MissingElement("name")))?,
        uuid: uuid.ok_or_else(|| ctx.err(node, ErrorKind::MissingElement("uuid")))?,
    })
}
