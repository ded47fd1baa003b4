//! Reading XML safely: size and depth limits checked before the parser
//! runs, and helpers that turn a node or attribute into an error location.

use roxmltree::{Document, Node};

use crate::error::{ErrorKind, Location, ParseError};

/// Documents larger than this are refused unread.
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024;
/// Element nesting deeper than this is refused before parsing (real
/// documents nest 4 levels; the limit keeps recursion and memory bounded).
pub const MAX_DEPTH: usize = 64;

/// Elements with more attributes than this are refused before parsing.
/// The most any valid element has is about 30 (a `<tcp>` with every
/// match; libvirt's ignored extras add a few): the limit leaves room, and
/// keeps the XML parser's duplicate-attribute check (which compares each
/// attribute with every earlier one of its element) bounded, so that
/// parsing stays linear in the document's size.
pub const MAX_ATTRIBUTES: usize = 64;

/// Checks the limits, then parses. DTDs stay disabled (roxmltree's
/// default), so entity expansion bombs cannot happen.
pub(crate) fn parse_xml(text: &str) -> Result<Document<'_>, ParseError> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(ParseError::new(
            Location::default(),
            ErrorKind::TooLarge(text.len()),
        ));
    }
    if let Some((offset, problem)) = prescan(text.as_bytes()) {
        let (line, column) = line_col(text, offset);
        let location = Location {
            line,
            column,
            element: problem.element,
            ..Location::default()
        };
        return Err(ParseError::new(location, problem.kind));
    }
    Document::parse(text).map_err(|e| {
        let pos = e.pos();
        let location = Location {
            line: pos.row,
            column: pos.col,
            ..Location::default()
        };
        ParseError::new(location, ErrorKind::Xml(e.to_string()))
    })
}

/// A limit the pre-scan found exceeded.
struct Exceeded {
    kind: ErrorKind,
    element: Option<String>,
}

/// A lexical pre-scan, linear in the document: the byte offset of the
/// first start tag nested deeper than [`MAX_DEPTH`] or carrying more than
/// [`MAX_ATTRIBUTES`] attributes, skipping comments, CDATA, processing
/// instructions, declarations and quoted attribute values. Malformed
/// input is left for the real parser to report.
fn prescan(bytes: &[u8]) -> Option<(usize, Exceeded)> {
    prescan_with(bytes, MAX_DEPTH, MAX_ATTRIBUTES)
}

fn prescan_with(bytes: &[u8], max_depth: usize, max_attrs: usize) -> Option<(usize, Exceeded)> {
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(rel) = bytes[i..].iter().position(|&b| b == b'<') {
        let start = i + rel;
        let rest = &bytes[start..];
        let skip_to = |end: &[u8]| find(rest, end).map_or(bytes.len(), |p| start + p + end.len());
        if rest.starts_with(b"<!--") {
            i = skip_to(b"-->");
        } else if rest.starts_with(b"<![CDATA[") {
            i = skip_to(b"]]>");
        } else if rest.starts_with(b"<?") {
            i = skip_to(b"?>");
        } else if rest.starts_with(b"<!") || rest.starts_with(b"</") {
            depth = depth.saturating_sub(usize::from(rest[1] == b'/'));
            i = skip_to(b">");
        } else {
            let tag = start_tag(bytes, start + 1);
            if tag.attributes > max_attrs {
                let name = String::from_utf8_lossy(tag_name(&bytes[start + 1..])).into_owned();
                let why = format!(
                    "{} attributes; no valid element has more than {max_attrs}",
                    tag.attributes
                );
                let exceeded = Exceeded {
                    kind: ErrorKind::Invalid(why),
                    element: Some(name),
                };
                return Some((start, exceeded));
            }
            if bytes.get(tag.end.wrapping_sub(1)) != Some(&b'/') {
                depth += 1;
                if depth > max_depth {
                    let exceeded = Exceeded {
                        kind: ErrorKind::TooDeep(max_depth),
                        element: None,
                    };
                    return Some((start, exceeded));
                }
            }
            i = tag.end + 1;
        }
        if i >= bytes.len() {
            break;
        }
    }
    None
}

/// A start tag as the pre-scan sees it.
struct StartTag {
    /// The offset of its closing `>` (the end of input if there is none).
    end: usize,
    /// How many attributes it has: `=` signs outside quoted values.
    attributes: usize,
}

/// Reads a start tag from just after its `<`, honouring quoted values.
fn start_tag(bytes: &[u8], mut i: usize) -> StartTag {
    let mut quote = None;
    let mut attributes = 0;
    while i < bytes.len() {
        match (quote, bytes[i]) {
            (None, b'>') => return StartTag { end: i, attributes },
            (None, b'=') => attributes += 1,
            (None, q @ (b'\'' | b'"')) => quote = Some(q),
            (Some(q), b) if b == q => quote = None,
            _ => {}
        }
        i += 1;
    }
    StartTag {
        end: bytes.len(),
        attributes,
    }
}

/// The element name at the start of a start tag (after `<`), at most 64
/// bytes of it (for messages).
fn tag_name(bytes: &[u8]) -> &[u8] {
    let end = (bytes.iter())
        .take(64)
        .position(|b| b.is_ascii_whitespace() || matches!(b, b'/' | b'>'))
        .unwrap_or(bytes.len().min(64));
    &bytes[..end]
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn line_col(text: &str, offset: usize) -> (u32, u32) {
    let before = &text.as_bytes()[..offset];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |p| p + 1);
    let column = text[line_start..offset].chars().count() + 1;
    (line as u32, column as u32)
}

/// Error locations for nodes of one parsed document.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ctx<'a, 'input> {
    pub(crate) xml: &'a Document<'input>,
}

impl<'a, 'input> Ctx<'a, 'input> {
    pub(crate) fn at(&self, node: Node, pos: usize) -> Location {
        let p = self.xml.text_pos_at(pos);
        Location {
            doc: None,
            line: p.row,
            column: p.col,
            element: Some(node.tag_name().name().to_owned()),
            attr: None,
            value: None,
        }
    }

    /// An error about an element as a whole.
    pub(crate) fn err(&self, node: Node, kind: impl Into<ErrorKind>) -> ParseError {
        ParseError::new(self.at(node, node.range().start), kind)
    }

    /// An error about one attribute of `node` (present or missing).
    pub(crate) fn attr_err(
        &self,
        node: Node,
        name: &str,
        kind: impl Into<ErrorKind>,
    ) -> ParseError {
        let attr = node.attributes().find(|a| a.name() == name);
        let pos = attr.map_or(node.range().start, |a| a.range().start);
        let mut location = self.at(node, pos);
        location.attr = Some(name.to_owned());
        location.value = attr.map(|a| a.value().to_owned());
        ParseError::new(location, kind)
    }

    pub(crate) fn required(
        &self,
        node: Node<'a, 'input>,
        name: &str,
    ) -> Result<&'a str, ParseError> {
        node.attribute(name)
            .ok_or_else(|| self.attr_err(node, name, ErrorKind::MissingAttr))
    }

    /// Refuses attributes outside `allowed` (libvirt ignores them, which
    /// hides typos such as `dstport=`).
    pub(crate) fn only_attrs(&self, node: Node, allowed: &[&str]) -> Result<(), ParseError> {
        match node
            .attributes()
            .find(|a| a.namespace().is_some() || !allowed.contains(&a.name()))
        {
            Some(a) => Err(self.attr_err(node, a.name(), ErrorKind::UnknownAttr)),
            None => Ok(()),
        }
    }
}

/// The element children of `node` (text and comments are ignored, as in
/// libvirt).
pub(crate) fn elements<'a, 'input>(
    node: Node<'a, 'input>,
) -> impl Iterator<Item = Node<'a, 'input>> {
    node.children().filter(Node::is_element)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(depth: usize) -> String {
        format!("{}{}", "<a x='>'>".repeat(depth), "</a>".repeat(depth))
    }

    #[test]
    fn depth_limit_is_checked_before_parsing() {
        assert!(parse_xml(&nested(MAX_DEPTH)).is_ok());
        let err = parse_xml(&nested(MAX_DEPTH + 1)).unwrap_err();
        assert_eq!(err.kind, ErrorKind::TooDeep(MAX_DEPTH));
        assert_eq!(err.location.line, 1);
    }

    #[test]
    fn self_closing_comments_and_cdata_do_not_count() {
        let text = format!(
            "<r>{}<!-- <a><a> --><![CDATA[<b><b>]]><?pi <c>?></r>",
            "<e/>".repeat(100)
        );
        assert!(prescan_with(text.as_bytes(), 1, MAX_ATTRIBUTES).is_none());
    }

    fn attributes(n: usize) -> String {
        let attrs: String = (0..n).map(|i| format!(" a{i}='=>{i}'")).collect();
        format!("<filter name='f'>\n  <rule{attrs}/>\n</filter>")
    }

    #[test]
    fn attribute_limit_is_checked_before_parsing() {
        // Quoted `=` and `>` do not count; the limit itself is allowed.
        assert!(prescan(attributes(MAX_ATTRIBUTES).as_bytes()).is_none());
        let err = parse_xml(&attributes(MAX_ATTRIBUTES + 1)).unwrap_err();
        assert!(matches!(err.kind, ErrorKind::Invalid(_)), "{err}");
        assert_eq!((err.location.line, err.location.column), (2, 3));
        let text = err.to_string();
        assert!(
            text.contains("<rule>") && text.contains("65 attributes") && text.contains("64"),
            "{text}"
        );
    }

    #[test]
    fn size_limit() {
        let text = format!("<a>{}</a>", " ".repeat(MAX_DOCUMENT_BYTES));
        let err = parse_xml(&text).unwrap_err();
        assert!(matches!(err.kind, ErrorKind::TooLarge(_)));
        assert!(err.to_string().contains("16 MiB"), "{err}");
    }

    #[test]
    fn malformed_xml_has_a_position() {
        let err = parse_xml("<a>\n  <b>\n</a>").unwrap_err();
        assert!(matches!(err.kind, ErrorKind::Xml(_)));
        assert_eq!(err.location.line, 3);
    }
}
