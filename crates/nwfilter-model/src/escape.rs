//! Escaping for the XML we print, so that what is printed reads back as
//! the same value. quick-xml's `escape` covers `<>&'"`; an XML parser also
//! normalises line ends (`\r\n` and `\r` become `\n`) everywhere, and in
//! attribute values turns `\n` and `\t` into spaces. Those characters are
//! therefore written as character references, which parsers keep as they
//! are (libvirt's `virBufferEscapeString` does the same).

use std::borrow::Cow;

use quick_xml::escape::escape;

/// Escapes an element's text: markup characters and `\r`.
pub fn escape_text(text: &str) -> Cow<'_, str> {
    escape_with(text, |c| c == '\r')
}

/// Escapes an attribute value: markup characters, `\r`, `\n` and `\t`.
pub fn escape_attr(value: &str) -> Cow<'_, str> {
    escape_with(value, |c| matches!(c, '\r' | '\n' | '\t'))
}

fn escape_with(value: &str, needs_reference: impl Fn(char) -> bool) -> Cow<'_, str> {
    let escaped = escape(value);
    if !escaped.contains(&needs_reference) {
        return escaped;
    }
    let mut out = String::with_capacity(escaped.len() + 8);
    for c in escaped.chars() {
        if needs_reference(c) {
            out.push_str(&format!("&#{};", u32::from(c)));
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_ends_and_tabs_become_references_where_a_parser_would_change_them() {
        assert_eq!(escape_text("a\r\nb\tc<"), "a&#13;\nb\tc&lt;");
        assert_eq!(escape_attr("a\r\nb\tc'"), "a&#13;&#10;b&#9;c&apos;");
        assert!(matches!(escape_attr("plain"), Cow::Borrowed("plain")));
    }
}
