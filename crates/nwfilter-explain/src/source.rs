//! Where a filter's rule is written: the line of its N-th `<rule>`
//! element, for the decisive rule's "file:line".

/// The 1-based line of the `<rule>` at `rule_index` (0-based, counting
/// `<rule>` elements only, as the compiler does) of the `<filter>`
/// document `xml`; `None` if the text has no such rule.
pub fn rule_line(xml: &str, rule_index: usize) -> Option<u32> {
    let doc = roxmltree::Document::parse(xml).ok()?;
    let rule = doc
        .root_element()
        .children()
        .filter(|n| n.has_tag_name("rule"))
        .nth(rule_index)?;
    Some(doc.text_pos_at(rule.range().start).row)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_line_of_the_nth_rule_skipping_filterrefs_and_comments() {
        let xml = "<filter name='f' chain='root'>\n  <!-- c -->\n  <rule action='accept' direction='out'/>\n  <filterref filter='g'/>\n\n  <rule action='drop'\n        direction='in'/>\n</filter>\n";
        assert_eq!(rule_line(xml, 0), Some(3));
        assert_eq!(rule_line(xml, 1), Some(6));
        assert_eq!(rule_line(xml, 2), None);
        assert_eq!(rule_line("not xml", 0), None);
    }
}
