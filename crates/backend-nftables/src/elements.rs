//! A batch's set and map elements as typed netlink steps
//! ([`host_io::ElementChange`]): a batch made of nothing else is
//! committed by the daemon's own netlink socket instead of `nft` (see
//! `host-io/src/nft_elements.rs` for why and how it stays exact).
//!
//! The element values are kept as nft spells them (the plan compares
//! them with what the kernel lists); turning them into key bytes needs
//! each set's value types, and for a raw header field its width, which
//! nft's listing does not show. [`SetLayouts`] keeps them for every
//! template set a plan has seen; a set without one goes through `nft`.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

use host_io::{ElementStep, KeyPart, TableFamily};

use crate::batch::mark_of_key;
use crate::layout::Part;
use crate::matches::RAW_KEY;
use crate::names::{Table, TABLE};
use crate::render::PortSet;

/// How one value after a set element's port key is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    EtherAddr,
    Ipv4Addr,
    Ipv6Addr,
    /// A raw header field this many bytes wide, spelled in decimal.
    Raw(usize),
}

impl ValueKind {
    /// The kinds of `set`'s values, when every one is known.
    fn of(set: &PortSet) -> Option<Vec<ValueKind>> {
        let widths: Vec<Option<usize>> = match &set.typeof_key {
            // `iifname . ether saddr . @nh,64,48`: the port key first.
            Some(key) => key.split(" . ").skip(1).map(raw_width).collect(),
            None => vec![None; set.types.len()],
        };
        if widths.len() != set.types.len() {
            return None;
        }
        set.types
            .iter()
            .zip(widths)
            .map(|(kind, width)| match (*kind, width) {
                (RAW_KEY, Some(bytes)) => Some(ValueKind::Raw(bytes)),
                (kind, None) => ValueKind::named(kind),
                _ => None,
            })
            .collect()
    }

    /// The kind of a value of the named nft type.
    fn named(kind: &str) -> Option<ValueKind> {
        match kind {
            "ether_addr" => Some(ValueKind::EtherAddr),
            "ipv4_addr" => Some(ValueKind::Ipv4Addr),
            "ipv6_addr" => Some(ValueKind::Ipv6Addr),
            _ => None,
        }
    }

    fn part(self, text: &str) -> Option<KeyPart> {
        Some(match self {
            ValueKind::EtherAddr => {
                let mut mac = [0u8; 6];
                let mut octets = text.split(':');
                for byte in &mut mac {
                    let octet = octets.next()?;
                    if octet.len() != 2 {
                        return None;
                    }
                    *byte = u8::from_str_radix(octet, 16).ok()?;
                }
                if octets.next().is_some() {
                    return None;
                }
                KeyPart::EtherAddr(mac)
            }
            ValueKind::Ipv4Addr => KeyPart::Ipv4Addr(text.parse::<Ipv4Addr>().ok()?),
            ValueKind::Ipv6Addr => KeyPart::Ipv6Addr(text.parse::<Ipv6Addr>().ok()?),
            ValueKind::Raw(bytes) => {
                if !(1..=16).contains(&bytes) || !text.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                let value: u128 = text.parse().ok()?;
                let all = value.to_be_bytes();
                if all[..16 - bytes].iter().any(|b| *b != 0) {
                    return None;
                }
                KeyPart::Raw(all[16 - bytes..].to_vec())
            }
        })
    }
}

/// The width in bytes of a raw header field (`@nh,64,48`), `None` for a
/// named field (`ether saddr`).
fn raw_width(field: &str) -> Option<usize> {
    let bits: usize = field.strip_prefix('@')?.rsplit(',').next()?.parse().ok()?;
    bits.is_multiple_of(8).then_some(bits / 8)
}

/// The value kinds of the template sets the plans have seen, by (table,
/// set). What the kernel holds is [`crate::KernelState`]'s business; this
/// is what we know of how its sets were declared, so it is never compared
/// (a state read from the kernel learns it from the next plan).
#[derive(Debug, Clone, Default)]
pub struct SetLayouts(BTreeMap<(Table, String), Vec<ValueKind>>);

impl PartialEq for SetLayouts {
    fn eq(&self, _: &SetLayouts) -> bool {
        true
    }
}

impl Eq for SetLayouts {}

impl SetLayouts {
    /// Learns the layouts of `sets` (a template's: its name says its
    /// content, so a name keeps its layout).
    pub fn learn(&mut self, sets: &[PortSet]) {
        for set in sets {
            let key = (set.table, set.name.to_string());
            if self.0.contains_key(&key) {
                continue;
            }
            if let Some(kinds) = ValueKind::of(set) {
                self.0.insert(key, kinds);
            }
        }
    }

    /// Forgets the layouts of `sets` (a template's, deleted): a daemon
    /// that sees its filters redefined for months keeps no layout of
    /// every template it ever had.
    pub fn forget<'a>(&mut self, sets: impl IntoIterator<Item = &'a (Table, String)>) {
        for key in sets {
            self.0.remove(key);
        }
    }

    /// Whether the layout of `set` is known.
    pub fn knows(&self, table: Table, set: &str) -> bool {
        self.kinds(table, set).is_some()
    }

    /// The value kinds of `set`: a template set's as learned, the fixed
    /// layout's set's from the types `crate::layout` declares it with.
    fn kinds(&self, table: Table, set: &str) -> Option<Cow<'_, [ValueKind]>> {
        if let Some(kinds) = self.0.get(&(table, set.to_owned())) {
            return Some(Cow::Borrowed(kinds));
        }
        let (_port, values) = Part::set_types(table, set)?.split_first()?;
        values
            .iter()
            .map(|t| ValueKind::named(t))
            .collect::<Option<Vec<_>>>()
            .map(Cow::Owned)
    }

    /// The steps that add or delete `tuples` in `set` (each: the port key,
    /// then the values as nft spells them); `None` when a layout or a
    /// value is not known.
    pub fn steps(
        &self,
        add: bool,
        table: Table,
        set: &str,
        tuples: &[Vec<String>],
    ) -> Option<Vec<ElementStep>> {
        let kinds = self.kinds(table, set)?;
        tuples
            .iter()
            .map(|tuple| {
                let (port, values) = tuple.split_first()?;
                if values.len() != kinds.len() {
                    return None;
                }
                let mut key = vec![port_key(port)];
                for (kind, value) in kinds.iter().zip(values) {
                    key.push(kind.part(value)?);
                }
                Some(step(add, table, set, key, None))
            })
            .collect()
    }
}

/// A port key as the plan spells it: a port's name, or `:MARK`
/// ([`crate::batch::mark_key`]), read as [`crate::batch::key_operand`]
/// reads it for nft.
pub(crate) fn port_key(key: &str) -> KeyPart {
    match mark_of_key(key) {
        Some(mark) => KeyPart::Mark(mark),
        None => KeyPart::IfName(key.to_owned()),
    }
}

pub(crate) fn step(
    add: bool,
    table: Table,
    set: &str,
    key: Vec<KeyPart>,
    jump: Option<&str>,
) -> ElementStep {
    ElementStep {
        family: match table {
            Table::Bridge => TableFamily::Bridge,
            Table::Inet => TableFamily::Inet,
        },
        table: TABLE.to_owned(),
        set: set.to_owned(),
        add,
        key,
        jump: jump.map(str::to_owned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::PortKey;

    fn rarp_set() -> PortSet {
        PortSet {
            table: Table::Bridge,
            name: "s4/t0".into(),
            key: PortKey::InPort,
            types: vec!["ether_addr", RAW_KEY, RAW_KEY],
            typeof_key: Some("iifname . ether saddr . @nh,64,48 . @nh,144,48".into()),
            elements: vec![],
        }
    }

    #[test]
    fn a_typeof_set_gives_its_raw_fields_their_width() {
        let mut layouts = SetLayouts::default();
        layouts.learn(&[rarp_set()]);
        let mac = "52:54:00:00:00:02";
        let raw = "90520730730498"; // 0x525400000002
        let tuple = vec!["vnet2".to_owned(), mac.into(), raw.into(), raw.into()];
        let steps = layouts
            .steps(true, Table::Bridge, "s4/t0", &[tuple])
            .unwrap();
        let bytes = [0x52, 0x54, 0, 0, 0, 2];
        assert_eq!(
            steps[0].key,
            vec![
                KeyPart::IfName("vnet2".into()),
                KeyPart::EtherAddr(bytes),
                KeyPart::Raw(bytes.to_vec()),
                KeyPart::Raw(bytes.to_vec()),
            ]
        );
    }

    #[test]
    fn an_unknown_set_or_a_value_out_of_its_width_has_no_steps() {
        let mut layouts = SetLayouts::default();
        layouts.learn(&[rarp_set()]);
        let tuple = |raw: &str| {
            vec![
                "vnet2".to_owned(),
                "52:54:00:00:00:02".into(),
                raw.into(),
                "1".into(),
            ]
        };
        assert!(layouts
            .steps(true, Table::Bridge, "s9/t0", &[tuple("1")])
            .is_none());
        // 2^48 does not fit 48 bits.
        assert!(layouts
            .steps(true, Table::Bridge, "s4/t0", &[tuple("281474976710656")])
            .is_none());
        assert!(layouts
            .steps(true, Table::Bridge, "s4/t0", &[tuple("-1")])
            .is_none());
    }

    #[test]
    fn a_mark_key_and_typed_values_read_as_their_types() {
        let set = PortSet {
            table: Table::Inet,
            name: "s1/t0".into(),
            key: PortKey::InTag,
            types: vec!["ipv4_addr", "ipv6_addr"],
            typeof_key: None,
            elements: vec![],
        };
        let mut layouts = SetLayouts::default();
        layouts.learn(&[set]);
        let tuple = vec![":65536".to_owned(), "10.0.0.1".into(), "fd00::1".into()];
        let steps = layouts
            .steps(false, Table::Inet, "s1/t0", &[tuple])
            .unwrap();
        assert_eq!(steps[0].family, TableFamily::Inet);
        assert_eq!(
            steps[0].key,
            vec![
                KeyPart::Mark(65536),
                KeyPart::Ipv4Addr([10, 0, 0, 1].into()),
                KeyPart::Ipv6Addr("fd00::1".parse().unwrap()),
            ]
        );
        let bad = vec![
            ":65536".to_owned(),
            "52:54:00:00:00:02".into(),
            "::1".into(),
        ];
        assert!(layouts.steps(true, Table::Inet, "s1/t0", &[bad]).is_none());
    }
}
