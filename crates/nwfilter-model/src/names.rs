//! Validated names: what the kernel and the XML format can carry.
//!
//! Each newtype's constructor rejects bad values, so later stages (compile,
//! render, apply) never re-check and nothing malformed reaches a command.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    #[error("interface name {0:?} is invalid: {1}")]
    IfName(String, &'static str),
    #[error("chain name {0:?} is invalid: {1}")]
    Chain(String, String),
    #[error("filter name {0:?} is invalid: {1}")]
    Filter(String, &'static str),
}

/// A Linux network interface name (`vnet0`): 1..=15 bytes, not `.` or `..`,
/// no `/`, `:`, whitespace or control characters (the kernel's
/// `dev_valid_name`, minus `:` which iptables and ebtables treat specially),
/// and not starting with `-`: the kernel accepts `-j`, but as a tool's
/// argument it reads as an option.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IfName(String);

impl IfName {
    /// `IFNAMSIZ` minus the terminating NUL.
    pub const MAX_LEN: usize = 15;

    pub fn new(name: impl Into<String>) -> Result<IfName, NameError> {
        let name = name.into();
        let why = if name.starts_with('-') {
            Some(IfName::OPTION_LIKE)
        } else {
            IfName::why_invalid_otherwise(&name)
        };
        match why {
            Some(why) => Err(NameError::IfName(name, why)),
            None => Ok(IfName(name)),
        }
    }

    /// Why a name starting with `-` is refused.
    const OPTION_LIKE: &'static str =
        "it starts with '-', and a firewall tool would read it as an option";

    /// Whether `name` is refused only because it starts with `-`: versions
    /// before that rule stored bindings under such names, and those must
    /// stay removable (see `nwfilter_driver`'s binding delete).
    pub fn is_refused_only_as_option_like(name: &str) -> bool {
        name.starts_with('-') && IfName::why_invalid_otherwise(name).is_none()
    }

    /// Every rule but the leading `-` one.
    fn why_invalid_otherwise(name: &str) -> Option<&'static str> {
        if name.is_empty() {
            Some("it is empty")
        } else if name.len() > IfName::MAX_LEN {
            Some("it is longer than 15 bytes")
        } else if name == "." || name == ".." {
            Some("'.' and '..' are not interface names")
        } else if name.contains('/') {
            Some("it contains '/'")
        } else if name.contains(':') {
            Some("it contains ':'")
        } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Some("it contains whitespace or a control character")
        } else if name.contains(['\'', '"', '\\', '<', '>', '&', '!', '+']) {
            // '+' is the iptables wildcard suffix; quotes and markup never
            // belong in a device name we hand to a tool.
            Some("it contains a quote, markup, '!' or '+'")
        } else {
            None
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for IfName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for IfName {
    type Error = NameError;
    fn try_from(s: String) -> Result<IfName, NameError> {
        IfName::new(s)
    }
}

impl From<IfName> for String {
    fn from(n: IfName) -> String {
        n.0
    }
}

/// The protocol family a filter chain name selects by its prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChainKind {
    Root,
    Mac,
    Vlan,
    Stp,
    Arp,
    Rarp,
    Ipv4,
    Ipv6,
}

impl ChainKind {
    /// The chain priority libvirt 9.0 stores when a filter names a chain
    /// without a `priority`. `stp` is 0, not the documented -810: libvirt's
    /// lookup table lacks it (see docs/compatibility.md).
    pub fn default_priority(self) -> i32 {
        match self {
            ChainKind::Root => 0,
            ChainKind::Mac => -800,
            ChainKind::Vlan => -750,
            ChainKind::Stp => 0,
            ChainKind::Arp => -500,
            ChainKind::Rarp => -400,
            ChainKind::Ipv4 => -700,
            ChainKind::Ipv6 => -600,
        }
    }

    /// Prefixes in the order they are tested: `rarp` before `arp` is not
    /// needed (plain prefix test on distinct strings), but `ipv4`/`ipv6`
    /// must not be confused with each other.
    const PREFIXES: [(&'static str, ChainKind); 7] = [
        ("mac", ChainKind::Mac),
        ("vlan", ChainKind::Vlan),
        ("stp", ChainKind::Stp),
        ("arp", ChainKind::Arp),
        ("rarp", ChainKind::Rarp),
        ("ipv4", ChainKind::Ipv4),
        ("ipv6", ChainKind::Ipv6),
    ];
}

/// A filter's `chain` attribute: `root`, or up to 12 characters of
/// `[A-Za-z0-9_.:-]` starting with `mac`, `vlan`, `stp`, `arp`, `rarp`,
/// `ipv4` or `ipv6`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChainName(String);

impl ChainName {
    /// 32-byte chain name limit − `FO-` − 15-byte interface − `-` − NUL.
    pub const MAX_LEN: usize = 12;

    pub fn root() -> ChainName {
        ChainName("root".to_owned())
    }

    pub fn new(name: impl Into<String>) -> Result<ChainName, NameError> {
        let name = name.into();
        let fail = |why: String| Err(NameError::Chain(name.clone(), why));
        if name.len() > ChainName::MAX_LEN {
            return fail("it is longer than 12 characters".into());
        }
        if !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-'))
        {
            return fail("only [A-Za-z0-9_.:-] are allowed".into());
        }
        if name == "root" {
            return Ok(ChainName(name));
        }
        if name.starts_with("root") {
            return fail("a chain may be 'root' only, not a name starting with 'root'".into());
        }
        if ChainKind::PREFIXES
            .iter()
            .any(|(prefix, _)| name.starts_with(prefix))
        {
            Ok(ChainName(name))
        } else {
            fail(
                "use 'root' or a name starting with one of: mac, vlan, stp, arp, rarp, ipv4, ipv6"
                    .into(),
            )
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn kind(&self) -> ChainKind {
        if self.0 == "root" {
            return ChainKind::Root;
        }
        ChainKind::PREFIXES
            .iter()
            .find(|(prefix, _)| self.0.starts_with(prefix))
            .map(|(_, kind)| *kind)
            .expect("constructor admits only known prefixes")
    }

    pub fn is_root(&self) -> bool {
        self.0 == "root"
    }
}

impl fmt::Display for ChainName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for ChainName {
    type Error = NameError;
    fn try_from(s: String) -> Result<ChainName, NameError> {
        ChainName::new(s)
    }
}

impl From<ChainName> for String {
    fn from(n: ChainName) -> String {
        n.0
    }
}

/// A filter's name (also the target of `<filterref filter=…>`).
///
/// Stricter than libvirt, which accepts anything non-empty and prints it
/// unescaped: we refuse names that would break the XML we print or the
/// file name we store under (`/`, quotes, `<`, `&`, control characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct FilterName(String);

impl FilterName {
    /// A filter is stored as `NAME.xml` (and written through a temp file
    /// `.NAME.XXXXXX.tmp`); file names end at 255 bytes.
    pub const MAX_LEN: usize = 200;

    pub fn new(name: impl Into<String>) -> Result<FilterName, NameError> {
        let name = name.into();
        let why = if name.is_empty() {
            Some("it is empty")
        } else if name.len() > FilterName::MAX_LEN {
            Some("it is longer than 200 bytes (it names the filter's file, and file names end at 255)")
        } else if name == "." || name == ".." {
            Some("'.' and '..' are not filter names")
        } else if name.contains('/') {
            Some("it contains '/'")
        } else if name.contains(['\'', '"', '<', '>', '&']) {
            Some("it contains a quote, '<', '>' or '&'")
        } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Some("it contains whitespace or a control character")
        } else {
            None
        };
        match why {
            Some(why) => Err(NameError::Filter(name, why)),
            None => Ok(FilterName(name)),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FilterName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for FilterName {
    type Error = NameError;
    fn try_from(s: String) -> Result<FilterName, NameError> {
        FilterName::new(s)
    }
}

impl From<FilterName> for String {
    fn from(n: FilterName) -> String {
        n.0
    }
}

impl std::borrow::Borrow<str> for FilterName {
    fn borrow(&self) -> &str {
        &self.0
    }
}
