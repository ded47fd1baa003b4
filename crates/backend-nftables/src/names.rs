//! Names of our tables, maps, sets and chains.
//!
//! A template's chains and sets are named `ROLE/TEMPLATE` and `sN/TEMPLATE`
//! (the template id is `t` and 16 hex digits); the per-port chains are
//! `tag/PORT` (writes the port's out-tag) and `rN-HASH/PORT` (values no
//! set holds). Interface names cannot contain `/`, so what follows the last
//! `/` says whose an object is. `/` is also one of the few punctuation
//! characters `nft -f` accepts in an unquoted name, and every name here is
//! one `nft -f` can read ([`port_part`]): the applier speaks nft's text.

use nwfilter_compile::ir::BridgeDir;
use nwfilter_model::{ChainName, IfName};
use serde::Serialize;
use std::borrow::Cow;
use std::sync::{Arc, OnceLock};

/// Both tables are called this; they differ by family.
pub const TABLE: &str = "nwfilter";

/// Which of our two tables a chain lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Table {
    /// `table bridge nwfilter`: Ethernet-layer rules, port tagging.
    Bridge,
    /// `table inet nwfilter`: IPv4 and IPv6 rules (seen through
    /// br_netfilter), dispatched by the port tag.
    Inet,
}

impl Table {
    pub fn family(self) -> &'static str {
        match self {
            Table::Bridge => "bridge",
            Table::Inet => "inet",
        }
    }

    pub fn nf_family(self) -> nftables::types::NfFamily {
        match self {
            Table::Bridge => nftables::types::NfFamily::Bridge,
            Table::Inet => nftables::types::NfFamily::INet,
        }
    }
}

/// What a per-port chain is for (and so which map leads to it).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Bridge root chain, frames from the VM (`iifname` map).
    FromVmL2,
    /// Bridge root chain, frames to the VM (`oifname` map).
    ToVmL2,
    /// A bridge protocol sub-chain, entered by a jump from a root.
    Sub,
    /// IPv4/IPv6 forwarded from the VM (`from-vm` map, by in-port tag).
    FromVm,
    /// IPv4/IPv6 forwarded to the VM (`to-vm` map, by out-port tag).
    ToVm,
    /// IPv4/IPv6 from the VM to the host (`host-from-vm` map).
    HostFromVm,
}

/// The chain name of `role` in `template`.
pub fn chain(role: &Role, template: &str) -> String {
    let prefix = match role {
        Role::FromVmL2 => "I",
        Role::ToVmL2 => "O",
        Role::FromVm => "FI",
        Role::ToVm => "FO",
        Role::HostFromVm => "HI",
        Role::Sub => unreachable!("sub-chains are named by sub_chain()"),
    };
    format!("{prefix}/{template}")
}

/// The `n`th set of `template`.
pub fn set(n: usize, template: &str) -> String {
    format!("s{n}/{template}")
}

/// The `n`th verdict map of `template` (leading to ports' own chains).
pub fn own_map(n: usize, template: &str) -> String {
    format!("v{n}/{template}")
}

/// A chain of `port`'s own for its template's `n`th verdict map, named by
/// a hash of its content.
pub fn own_chain(n: usize, content: &str, port: &IfName) -> String {
    format!("r{n}-{content}/{}", port_part(port.as_str()))
}

/// The port an own chain belongs to: `rN-HASH/PORT`.
pub fn own_chain_port(name: &str) -> Option<Cow<'_, str>> {
    let (head, part) = name.split_once('/')?;
    let (n, hash) = head.strip_prefix('r')?.split_once('-')?;
    if n.bytes().all(|b| b.is_ascii_digit()) && hash.len() == 8 {
        port_of_part(part)
    } else {
        None
    }
}

/// The port a tag chain (`tag/PORT`) belongs to.
pub fn tag_chain_port(name: &str) -> Option<Cow<'_, str>> {
    port_of_part(name.strip_prefix("tag/")?)
}

/// How `port` appears in its chains' names. `nft -f` cannot quote a chain
/// name, and an interface name may hold characters an unquoted name cannot
/// (`vnet@0`), so such a name is written as `_x` and its bytes in hex; so is
/// one that starts with `_x`, so that reading a name back is unambiguous.
/// Ordinary names (`vnet0`, `tap1a2b-3c`) stay as they are.
pub fn port_part(port: &str) -> Cow<'_, str> {
    let plain = port.chars().all(|c| c != '/' && is_name_char(c));
    if plain && !port.starts_with(HEX_PORT) {
        return Cow::Borrowed(port);
    }
    let mut out = String::from(HEX_PORT);
    for b in port.bytes() {
        out.push_str(&format!("{b:02x}"));
    }
    Cow::Owned(out)
}

/// The port named by [`port_part`]'s spelling; `None` for a spelling it
/// never writes.
pub fn port_of_part(part: &str) -> Option<Cow<'_, str>> {
    let Some(hex) = part.strip_prefix(HEX_PORT) else {
        return Some(Cow::Borrowed(part));
    };
    if hex.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    String::from_utf8(bytes?).ok().map(Cow::Owned)
}

/// Marks a port name written in hex ([`port_part`]).
const HEX_PORT: &str = "_x";

/// The template a chain or set of a template belongs to.
pub fn template_of(name: &str) -> Option<&str> {
    name.rsplit_once('/').map(|(_, t)| t).filter(|t| {
        t.len() == 17 && t.starts_with('t') && t[1..].bytes().all(|b| b.is_ascii_hexdigit())
    })
}

/// A bridge sub-chain: `I-arp/vnet0`. `:` (allowed in filter chain names)
/// is not an nft identifier character and becomes `_`.
pub fn sub_chain(dir: BridgeDir, name: &ChainName, template: &str) -> String {
    let prefix = match dir {
        BridgeDir::FromVm => "I",
        BridgeDir::ToVm => "O",
    };
    format!("{prefix}-{}/{template}", name.as_str().replace(':', "_"))
}

/// The per-port chain that writes the out-port tag into the mark.
pub fn tag_chain(port: &str) -> String {
    format!("tag/{}", port_part(port))
}

/// Whether `nft -f` text can name this without quoting (it cannot quote
/// chain names): `[A-Za-z_.][A-Za-z0-9/\-_.]*`.
pub fn is_nft_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '.')
        && chars.all(is_name_char)
}

/// A character an unquoted `nft -f` name may hold after its first.
fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "/-_.".contains(c)
}

/// Serializes a shared name as the string it is (serde's `rc` feature is
/// not enabled in the workspace).
pub fn serialize_arc<S: serde::Serializer>(name: &Arc<str>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(name)
}

/// A dispatch map's name (`from-vm`, `to-vm`, `host-from-vm`) as one
/// `Arc` for all ports: every port's kept kernel objects name the maps it
/// is in (see [`crate::kernel::PortObjects::dispatch`]).
pub fn dispatch_map(name: &'static str) -> Arc<str> {
    static NAMES: OnceLock<[Arc<str>; 3]> = OnceLock::new();
    let names = NAMES.get_or_init(|| ["from-vm", "to-vm", "host-from-vm"].map(Arc::from));
    match names.iter().find(|n| &***n == name) {
        Some(n) => Arc::clone(n),
        None => name.into(),
    }
}

/// The name of `crate::layout::FAST_FROM` as port states key their
/// elements: one shared `Arc` for every port (issue 22 item 5).
pub(crate) fn fast_from_set() -> Arc<str> {
    static NAME: OnceLock<Arc<str>> = OnceLock::new();
    Arc::clone(NAME.get_or_init(|| crate::layout::FAST_FROM.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_end_with_their_template_or_port() {
        let t = "t0123456789abcdef";
        let name = sub_chain(BridgeDir::FromVm, &ChainName::new("arp:x").unwrap(), t);
        assert_eq!(name, "I-arp_x/t0123456789abcdef");
        assert_eq!(template_of(&name), Some(t));
        assert_eq!(template_of(&set(3, t)), Some(t));
        assert_eq!(chain(&Role::FromVm, t), "FI/t0123456789abcdef");
        assert_eq!(template_of(&tag_chain("vnet0")), None);
        assert_eq!(template_of("prerouting"), None);
    }

    #[test]
    fn every_port_gives_chain_names_nft_text_can_read_and_back() {
        for port in [
            "vnet0",
            "tap1a2b-3c.4",
            "vnet@0",
            "t{x};#",
            "_xab",
            "_x",
            "é",
        ] {
            let dev = IfName::new(port).unwrap();
            let own = own_chain(0, "0a0d84d2", &dev);
            let tag = tag_chain(port);
            assert!(is_nft_identifier(&own), "{own}");
            assert!(is_nft_identifier(&tag), "{tag}");
            assert_eq!(own_chain_port(&own).as_deref(), Some(port));
            assert_eq!(tag_chain_port(&tag).as_deref(), Some(port));
        }
        assert_eq!(tag_chain("vnet0"), "tag/vnet0");
        assert_eq!(tag_chain("vnet@0"), "tag/_x766e65744030");
        assert_eq!(port_of_part("_x7"), None);
        assert_eq!(port_of_part("_xzz"), None);
    }

    #[test]
    fn identifiers_follow_nft_syntax() {
        assert!(is_nft_identifier("I-arp/vnet0"));
        assert!(!is_nft_identifier("I/vnet@0"));
        assert!(!is_nft_identifier(""));
    }
}
