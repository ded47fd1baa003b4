//! Adding and deleting nftables set and map elements in one nf_tables
//! transaction of our own, without starting `nft`.
//!
//! Why: on the nftables backend a binding-create or -delete beside
//! existing ports is nothing but elements (the port's values in the
//! templates' sets, its jumps in the dispatch maps). Through `nft` each
//! one paid for the tool reading its cache of the ruleset, and a delete
//! waited for the tool's socket to close, which the kernel holds until
//! an RCU grace period passed (10–15 ms back to back; docs/PERFORMANCE.md).
//! Here the daemon's own socket, never closed, sends the same elements.
//!
//! How it stays exact: every element is added with `NLM_F_EXCL` (nft's
//! `create element`: one already there refuses the transaction) or
//! deleted by its key (one missing refuses it); the kernel checks each
//! key's length against its set's; a refusal commits nothing, and the
//! caller then commits its `nft` text instead, which decides and reports
//! as before. The key's bytes are laid out as nft lays out a
//! concatenation: each part in 4-byte registers, zero-padded.

use std::net::{Ipv4Addr, Ipv6Addr};

use crate::nfnl::{self, Outgoing};
use crate::nft_socket::{not_committed, Commit, NftSocket, NotCommitted, TableFamily};

const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;
/// `NFTA_SET_ELEM_LIST_TABLE`, `_SET`, `_ELEMENTS`.
const LIST_TABLE: u16 = 1;
const LIST_SET: u16 = 2;
const LIST_ELEMENTS: u16 = 3;
/// `NFTA_LIST_ELEM`, `NFTA_SET_ELEM_KEY`, `NFTA_SET_ELEM_DATA`.
const LIST_ELEM: u16 = 1;
const ELEM_KEY: u16 = 1;
const ELEM_DATA: u16 = 2;
/// `NFTA_DATA_VALUE`, `NFTA_DATA_VERDICT`, `NFTA_VERDICT_CODE`,
/// `NFTA_VERDICT_CHAIN`.
const DATA_VALUE: u16 = 1;
const DATA_VERDICT: u16 = 2;
const VERDICT_CODE: u16 = 1;
const VERDICT_CHAIN: u16 = 2;
/// `NFT_JUMP`.
const NFT_JUMP: i32 = -3;
/// `NLM_F_EXCL`, `NLM_F_CREATE`.
const F_EXCL: u16 = 0x200;
const F_CREATE: u16 = 0x400;
/// An interface name's room in a key (`IFNAMSIZ`).
const IFNAMSIZ: usize = 16;

/// One part of an element's key, as its set's type declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPart {
    /// `ifname` (`iifname`, `oifname`): at most 15 bytes.
    IfName(String),
    /// `mark`: in the host's byte order, as the kernel keeps the mark.
    Mark(u32),
    EtherAddr([u8; 6]),
    Ipv4Addr(Ipv4Addr),
    Ipv6Addr(Ipv6Addr),
    /// A raw header field (`@nh,64,48`): its bytes, most significant
    /// first, as many as the field is wide.
    Raw(Vec<u8>),
}

impl KeyPart {
    fn bytes(&self) -> Option<Vec<u8>> {
        Some(match self {
            KeyPart::IfName(name) => {
                if name.len() >= IFNAMSIZ || name.as_bytes().contains(&0) {
                    return None;
                }
                let mut bytes = name.as_bytes().to_vec();
                bytes.resize(IFNAMSIZ, 0);
                bytes
            }
            KeyPart::Mark(mark) => mark.to_ne_bytes().to_vec(),
            KeyPart::EtherAddr(mac) => mac.to_vec(),
            KeyPart::Ipv4Addr(addr) => addr.octets().to_vec(),
            KeyPart::Ipv6Addr(addr) => addr.octets().to_vec(),
            KeyPart::Raw(bytes) if bytes.is_empty() => return None,
            KeyPart::Raw(bytes) => bytes.clone(),
        })
    }
}

/// A key as the kernel compares it: the parts one after the other, each
/// padded to a multiple of 4 bytes (nft's registers); `None` for a part
/// no key can hold (an interface name too long).
pub(crate) fn key_bytes(parts: &[KeyPart]) -> Option<Vec<u8>> {
    let mut key = Vec::new();
    for part in parts {
        key.extend(part.bytes()?);
        key.resize(nfnl::pad(key.len()), 0);
    }
    Some(key)
}

/// One element added or deleted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementStep {
    pub family: TableFamily,
    pub table: String,
    /// The set or map.
    pub set: String,
    /// Added (refused if there), or deleted (refused if missing).
    pub add: bool,
    pub key: Vec<KeyPart>,
    /// A map element's verdict: a jump to this chain.
    pub jump: Option<String>,
}

/// Element changes committed together or not at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementChange {
    steps: Vec<ElementStep>,
}

impl ElementChange {
    /// `None` when there is nothing to do.
    pub fn new(steps: Vec<ElementStep>) -> Option<ElementChange> {
        (!steps.is_empty()).then_some(ElementChange { steps })
    }

    pub fn steps(&self) -> &[ElementStep] {
        &self.steps
    }

    /// Commits the change on `socket` as one transaction; an error means
    /// nothing was changed, or for a lost answer that the caller's tool
    /// must decide.
    pub(crate) fn commit(&self, socket: &mut NftSocket) -> Result<(), NotCommitted> {
        let mut out = Outgoing::default();
        socket.begin_batch(&mut out, None);
        self.messages(&mut out, || socket.next_seq())
            .ok_or_else(|| not_committed("a key no set can hold"))?;
        socket.end_batch(&mut out);
        socket.commit(out, self.steps.len()).map_err(|e| match e {
            Commit::Failed(why) => why,
            Commit::Stale => not_committed("refused as stale"),
        })
    }

    /// Appends one message per step to `out`, each numbered by `seq` and
    /// asking for an acknowledgement; `None` for a key no set can hold.
    pub(crate) fn messages(&self, out: &mut Outgoing, mut seq: impl FnMut() -> u32) -> Option<()> {
        for step in &self.steps {
            let key = key_bytes(&step.key)?;
            let (kind, flags) = if step.add {
                (NFT_MSG_NEWSETELEM, F_CREATE | F_EXCL)
            } else {
                (NFT_MSG_DELSETELEM, 0)
            };
            out.message(
                (nfnl::SUBSYS_NFTABLES << 8) | kind,
                nfnl::F_REQUEST | nfnl::F_ACK | flags,
                seq(),
                step.family.nfproto(),
                0,
            );
            out.string(LIST_TABLE, &step.table);
            out.string(LIST_SET, &step.set);
            let list = out.begin_nest(LIST_ELEMENTS);
            let element = out.begin_nest(LIST_ELEM);
            let key_at = out.begin_nest(ELEM_KEY);
            out.attribute(DATA_VALUE, &key);
            out.end_nest(key_at);
            if let (true, Some(chain)) = (step.add, &step.jump) {
                let data = out.begin_nest(ELEM_DATA);
                let verdict = out.begin_nest(DATA_VERDICT);
                out.attribute(VERDICT_CODE, &NFT_JUMP.to_be_bytes());
                out.string(VERDICT_CHAIN, chain);
                out.end_nest(verdict);
                out.end_nest(data);
            }
            out.end_nest(element);
            out.end_nest(list);
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nfnl::{messages, Attributes};

    /// The layout `nft --debug=netlink` shows for `"vnet1" .
    /// 52:54:00:00:00:01 . 0x525400000001` in a `typeof iifname . ether
    /// saddr . @nh,64,48` set: 16 + 8 + 8 bytes.
    #[test]
    fn a_key_is_laid_out_in_registers_as_nft_lays_it_out() {
        let mac = [0x52, 0x54, 0, 0, 0, 1];
        let key = key_bytes(&[
            KeyPart::IfName("vnet1".into()),
            KeyPart::EtherAddr(mac),
            KeyPart::Raw(mac.to_vec()),
        ])
        .unwrap();
        let mut want = b"vnet1".to_vec();
        want.resize(16, 0);
        want.extend([0x52, 0x54, 0, 0, 0, 1, 0, 0]);
        want.extend([0x52, 0x54, 0, 0, 0, 1, 0, 0]);
        assert_eq!(key, want);
        let key = key_bytes(&[KeyPart::Mark(7), KeyPart::Ipv4Addr([10, 0, 0, 1].into())]);
        let mut want = 7u32.to_ne_bytes().to_vec();
        want.extend([10, 0, 0, 1]);
        assert_eq!(key, Some(want));
    }

    #[test]
    fn a_name_no_key_can_hold_makes_no_message() {
        let step = ElementStep {
            family: TableFamily::Bridge,
            table: "nwfilter".into(),
            set: "from-vm".into(),
            add: true,
            key: vec![KeyPart::IfName("a-name-of-16byte".into())],
            jump: Some("I/t0".into()),
        };
        let change = ElementChange::new(vec![step]).unwrap();
        assert_eq!(change.messages(&mut Outgoing::default(), || 1), None);
    }

    #[test]
    fn a_map_element_carries_its_jump_and_a_deletion_only_its_key() {
        let step = |add| ElementStep {
            family: TableFamily::Bridge,
            table: "nwfilter".into(),
            set: "from-vm".into(),
            add,
            key: vec![KeyPart::IfName("vnet3".into())],
            jump: Some("I/t0".into()),
        };
        let change = ElementChange::new(vec![step(true), step(false)]).unwrap();
        let mut out = Outgoing::default();
        let mut n = 0;
        change
            .messages(&mut out, || {
                n += 1;
                n
            })
            .unwrap();
        let data = out.finish();
        let read: Vec<_> = messages(&data).collect();
        assert_eq!(read.len(), 2);
        assert_eq!(read[0].nft_message(), Some(NFT_MSG_NEWSETELEM));
        assert_eq!(read[1].nft_message(), Some(NFT_MSG_DELSETELEM));
        let element = |i: usize| {
            let list = read[i].attributes().find(LIST_ELEMENTS).unwrap();
            Attributes(Attributes(list).find(LIST_ELEM).unwrap())
        };
        let verdict = element(0)
            .find(ELEM_DATA)
            .and_then(|d| Attributes(d).find(DATA_VERDICT))
            .unwrap();
        assert_eq!(
            Attributes(verdict)
                .find(VERDICT_CHAIN)
                .and_then(nfnl::string),
            Some("I/t0")
        );
        assert_eq!(element(1).find(ELEM_DATA), None);
        let key = element(1).find(ELEM_KEY).unwrap();
        assert_eq!(&Attributes(key).find(DATA_VALUE).unwrap()[..5], b"vnet3");
    }
}
