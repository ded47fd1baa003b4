//! Checks on values before they become arguments.

use super::RenderError;

/// Where a rule is, for error messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct At<'a> {
    pub(crate) chain: &'a str,
    pub(crate) rule: usize,
}

impl At<'_> {
    pub(crate) fn bad(&self, what: impl Into<String>) -> RenderError {
        RenderError::BadValue {
            chain: self.chain.to_owned(),
            rule: self.rule,
            what: what.into(),
        }
    }

    /// Free text goes verbatim into one argument (and one restore line):
    /// a line break would split a restore line and a control character
    /// has no business in a kernel comment or set name.
    pub(crate) fn text(&self, field: &str, text: &str) -> Result<(), RenderError> {
        if let Some(c) = text.chars().find(|c| c.is_control()) {
            return Err(self.bad(format!(
                "{field} {text:?} contains the control character {c:?} (line breaks and \
                 control characters cannot be passed to the firewall tools)"
            )));
        }
        Ok(())
    }

    /// An ipset name: also no quotes or backslashes, which no valid set
    /// name has (`ipset` allows letters, digits and `_.:+ -`).
    pub(crate) fn ipset_name(&self, name: &str) -> Result<(), RenderError> {
        self.text("ipset name", name)?;
        if name.is_empty() || name.len() > 31 || name.contains(['\'', '"', '\\']) {
            return Err(self.bad(format!(
                "ipset name {name:?} is not a valid set name (1 to 31 characters, no quotes)"
            )));
        }
        Ok(())
    }

    /// A number that must not exceed `max` for its field.
    pub(crate) fn at_most(&self, field: &str, value: u32, max: u32) -> Result<(), RenderError> {
        if value > max {
            return Err(self.bad(format!("{field} {value} is out of range (at most {max})")));
        }
        Ok(())
    }
}
