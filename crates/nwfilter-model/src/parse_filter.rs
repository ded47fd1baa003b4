//! `<filter>` documents: filter attributes, `<uuid>`, entries, and the
//! `<filterref>`/`<parameter>` element shared with bindings (reference §2,
//! §6.2, §7.1). Rules live in `parse_rule`.

use roxmltree::Node;
use uuid::Uuid;

use crate::error::{ErrorKind, ParseError};
use crate::filter::{Entry, Filter, FilterRef, Params, PRIORITY_RANGE};
use crate::lenient::{Ignored, ParseOptions, Parsed, Reader};
use crate::names::{ChainName, FilterName};
use crate::parse_rule::parse_rule;
use crate::values_parse::{valid_param_name, valid_param_value};
use crate::xml::{elements, parse_xml, Ctx};

/// Parses a `<filter>` document.
///
/// Use [`ParseError::in_doc`] to put a file name into the error.
/// Unknown attributes are ignored as libvirt ignores them; use
/// [`parse_filter_with`] to see them (or refuse them).
pub fn parse_filter(text: &str) -> Result<Filter, ParseError> {
    parse_filter_with(text, ParseOptions::default()).map(|parsed| parsed.value)
}

/// Parses a `<filter>` document, returning what was ignored with it; in
/// strict mode unknown attributes are errors.
pub fn parse_filter_with(text: &str, options: ParseOptions) -> Result<Parsed<Filter>, ParseError> {
    let xml = parse_xml(text)?;
    let ignored = Ignored::new(options);
    let ctx = Reader::new(Ctx { xml: &xml }, &ignored);
    let root = xml.root_element();
    expect_root(*ctx, root, "filter")?;
    let filter = filter_from(ctx, root)?;
    Ok(ignored.into_parsed(filter))
}

pub(crate) fn expect_root(ctx: Ctx, node: Node, expected: &str) -> Result<(), ParseError> {
    let found = node.tag_name().name();
    if found == expected {
        Ok(())
    } else {
        Err(ctx.err(
            node,
            ErrorKind::WrongRoot {
                expected: format!("<{expected}>"),
                found: found.to_owned(),
            },
        ))
    }
}

pub(crate) fn filter_from(ctx: Reader, node: Node) -> Result<Filter, ParseError> {
    ctx.only_attrs(node, &["name", "chain", "priority"])?;
    let name = ctx.required(node, "name")?;
    let name = FilterName::new(name).map_err(|e| ctx.attr_err(node, "name", e))?;
    let chain = match node.attribute("chain").filter(|c| !c.is_empty()) {
        Some(c) => ChainName::new(c).map_err(|e| ctx.attr_err(node, "chain", e))?,
        None => ChainName::root(),
    };
    // libvirt drops a priority given without `chain`; we keep it (it then
    // belongs to the root chain, exactly as an explicit chain='root' would).
    let priority = match node.attribute("priority").filter(|p| !p.is_empty()) {
        Some(p) => parse_priority(p).map_err(|why| ctx.attr_err(node, "priority", why))?,
        None => chain.kind().default_priority(),
    };
    let mut uuid = None;
    let mut entries = Vec::new();
    for child in elements(node) {
        match child.tag_name().name() {
            "uuid" if uuid.is_some() => {
                return Err(ctx.err(child, ErrorKind::Invalid("more than one <uuid>".into())))
            }
            "uuid" => uuid = Some(parse_uuid_element(ctx, child)?),
            "rule" => entries.push(Entry::Rule(parse_rule(ctx, child)?)),
            "filterref" => entries.push(Entry::Ref(parse_filterref(ctx, child)?)),
            _ => {
                return Err(ctx.err(
                    child,
                    ErrorKind::UnknownElement("<uuid>, <rule> or <filterref>"),
                ))
            }
        }
    }
    Ok(Filter {
        name,
        // As libvirt: a filter without a UUID gets a random one.
        uuid: uuid.unwrap_or_else(Uuid::new_v4),
        chain,
        priority,
        entries,
    })
}

/// A priority as C `strtol` base 10 reads it (leading blanks and a sign
/// allowed, nothing trailing), within [-1000, 1000].
pub(crate) fn parse_priority(text: &str) -> Result<i32, ErrorKind> {
    let trimmed = text.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    let digits = trimmed.strip_prefix(['+', '-']).unwrap_or(trimmed);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ErrorKind::Invalid("a priority is a decimal integer".into()));
    }
    trimmed
        .trim_start_matches('+')
        .parse::<i32>()
        .ok()
        .filter(|v| PRIORITY_RANGE.contains(v))
        .ok_or_else(|| ErrorKind::Invalid("a priority must be within [-1000, 1000]".into()))
}

fn parse_uuid_element(ctx: Reader, node: Node) -> Result<Uuid, ParseError> {
    let text: String = node
        .children()
        .filter(Node::is_text)
        .filter_map(|n| n.text())
        .collect();
    parse_uuid_lenient(&text).ok_or_else(|| {
        let mut location = ctx.at(node, node.range().start);
        location.value = Some(text.clone());
        ParseError::new(
            location,
            ErrorKind::Invalid(format!(
                "malformed UUID {text:?}: expected 32 hex digits (dashes allowed)"
            )),
        )
    })
}

/// libvirt's UUID syntax: surrounding blanks, 32 hex digits, `-` or a blank
/// allowed between digit pairs.
pub(crate) fn parse_uuid_lenient(text: &str) -> Option<Uuid> {
    let mut digits = String::with_capacity(32);
    let mut after_separator = false;
    for c in text.trim().chars() {
        if c.is_ascii_hexdigit() {
            digits.push(c);
            after_separator = false;
        } else if matches!(c, '-' | ' ') && !digits.is_empty() && digits.len().is_multiple_of(2) {
            after_separator = true;
        } else {
            return None;
        }
        if digits.len() > 32 {
            return None;
        }
    }
    if digits.len() != 32 || after_separator {
        return None;
    }
    Uuid::parse_str(&digits).ok()
}

/// `<filterref filter='NAME'>` with `<parameter name= value=/>` children.
/// Unlike libvirt, a parameter with a bad name or value is an error rather
/// than silently dropped.
pub(crate) fn parse_filterref(ctx: Reader, node: Node) -> Result<FilterRef, ParseError> {
    ctx.only_attrs(node, &["filter"])?;
    let filter = ctx.required(node, "filter")?;
    let filter = FilterName::new(filter).map_err(|e| ctx.attr_err(node, "filter", e))?;
    let mut params = Params::default();
    for child in elements(node) {
        if child.tag_name().name() != "parameter" {
            return Err(ctx.err(child, ErrorKind::UnknownElement("<parameter>")));
        }
        ctx.only_attrs(child, &["name", "value"])?;
        let name = ctx.required(child, "name")?;
        if !valid_param_name(name) {
            let why = "a parameter name is one or more of [A-Za-z0-9_]";
            return Err(ctx.attr_err(child, "name", ErrorKind::Invalid(why.into())));
        }
        let value = ctx.required(child, "value")?;
        if !valid_param_value(value) {
            let why = "a parameter value is one or more of [A-Za-z0-9_.:]";
            return Err(ctx.attr_err(child, "value", ErrorKind::Invalid(why.into())));
        }
        params.push(name, value);
    }
    Ok(FilterRef { filter, params })
}
