//! The kernel telling that nf_tables changed: a netlink socket on the
//! `NFNLGRP_NFTABLES` multicast group of `NETLINK_NETFILTER`, which gets
//! what `nft monitor` prints. Every committed transaction (nft,
//! iptables-nft, ebtables-nft, a flush, a firewall service's reload) ends
//! with a `NFT_MSG_NEWGEN` message naming the process that committed it.
//!
//! Two readers: the daemon's rule check (was it someone else's commit?)
//! and the process runner (has the batch tool it started committed yet?,
//! see `commit_watch`). Only that a change happened and who committed it
//! is read, never what the change was.

use std::io;

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket};

use crate::nfnl;

/// The nf_tables multicast group (`NFNLGRP_NFTABLES`).
const NFNLGRP_NFTABLES: u32 = 7;
/// The message that ends every committed transaction.
const NFT_MSG_NEWGEN: u16 = 15;
/// `NFTA_GEN_ID`: the generation the transaction made (a big-endian u32).
const NFTA_GEN_ID: u16 = 1;
/// `NFTA_GEN_PROC_PID`: the committing process (a big-endian u32).
const NFTA_GEN_PROC_PID: u16 = 2;

/// A non-blocking socket that receives every nf_tables change of this
/// network namespace from now on (needs `CAP_NET_ADMIN`). A buffer too
/// small for a burst makes `recv` fail with `ENOBUFS`: notices were lost.
pub fn subscribe(receive_buffer: usize) -> io::Result<Socket> {
    let socket = unsubscribed(receive_buffer)?;
    join(&socket)?;
    Ok(socket)
}

/// As [`subscribe`], not receiving anything until [`join`]ed. While no
/// socket is subscribed the kernel builds no notices at all: one per
/// rule, chain and element of a transaction, which for a restore of
/// thousands of rules is work of its own.
pub fn unsubscribed(receive_buffer: usize) -> io::Result<Socket> {
    let mut socket = Socket::new(NETLINK_NETFILTER)?;
    socket.bind_auto()?;
    // Best effort: a smaller buffer only overflows sooner.
    let _ = socket.set_rx_buf_sz(receive_buffer);
    socket.set_non_blocking(true)?;
    Ok(socket)
}

/// Starts receiving the notices (joins `NFNLGRP_NFTABLES`).
pub fn join(socket: &Socket) -> io::Result<()> {
    socket.add_membership(NFNLGRP_NFTABLES)
}

/// Stops receiving them.
pub fn leave(socket: &Socket) -> io::Result<()> {
    socket.drop_membership(NFNLGRP_NFTABLES)
}

/// What one notification says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Notice {
    /// A table, chain, rule, set or element was added, changed or removed
    /// (by the transaction whose generation notice follows).
    Changed,
    /// A transaction committed, by this process (when the kernel named it).
    Committed { pid: Option<u32> },
}

/// The committers of the transactions announced on `socket` (from
/// [`subscribe`]) and not read yet, in order: what a test checks after
/// a change (was it ours?). Stops at the first read that would wait.
pub fn committers(socket: &Socket) -> Vec<Option<u32>> {
    let mut found = Vec::new();
    let mut buf = vec![0; 1 << 16];
    while let Ok(len) = socket.recv(&mut &mut buf[..], 0) {
        found.extend(notices(&buf[..len.min(buf.len())]).filter_map(|n| match n {
            Notice::Committed { pid } => Some(pid),
            Notice::Changed => None,
        }));
    }
    found
}

/// Reads `data`, a datagram of nf_tables notices, as this crate's readers
/// do: the commit notices, and the rule and chain changes the commit
/// watch keeps for the removals by handle (their jumps' targets, from
/// nested expressions). For the fuzz target
/// (`fuzz/fuzz_targets/nft_notices.rs`), not an API: whatever arrives, it
/// must not panic. Returns how many messages were understood.
#[doc(hidden)]
pub fn read_for_fuzzing(data: &[u8]) -> usize {
    let commits = notices(data).count();
    let changes = nfnl::messages(data)
        .filter_map(|message| crate::nft_removal::Change::of(&message))
        .count();
    commits + changes
}

/// The nf_tables notices in one datagram, in order; other subsystems'
/// messages and a truncated tail are skipped.
pub fn notices(data: &[u8]) -> impl Iterator<Item = Notice> + '_ {
    nfnl::messages(data).filter_map(|message| {
        Some(match message.nft_message()? {
            NFT_MSG_NEWGEN => Notice::Committed {
                pid: committer_of(&message),
            },
            _ => Notice::Changed,
        })
    })
}

/// The committing process (or thread) a `NEWGEN` message names.
pub(crate) fn committer_of(message: &nfnl::Received<'_>) -> Option<u32> {
    message
        .attributes()
        .find(NFTA_GEN_PROC_PID)
        .and_then(nfnl::be32)
}

/// The generation a `NEWGEN` message (a notice or the answer to
/// `NFT_MSG_GETGEN`) names.
pub(crate) fn generation_of(message: &nfnl::Received<'_>) -> Option<u32> {
    if message.nft_message()? != NFT_MSG_NEWGEN {
        return None;
    }
    message.attributes().find(NFTA_GEN_ID).and_then(nfnl::be32)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn message(kind: u16, attrs: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut out = nfnl::Outgoing::default();
        out.message(kind, 0, 0, 0, 0);
        for (t, value) in attrs {
            out.attribute(*t, value);
        }
        out.finish()
    }

    fn nft(msg: u16) -> u16 {
        (nfnl::SUBSYS_NFTABLES << 8) | msg
    }

    /// A rule removed (`NFT_MSG_DELRULE`).
    pub(crate) fn delrule() -> Vec<u8> {
        message(nft(8), &[])
    }

    /// The end of a transaction committed by `pid`, as the kernel sends it.
    pub(crate) fn newgen(pid: u32) -> Vec<u8> {
        message(
            nft(NFT_MSG_NEWGEN),
            &[
                (1, 7u32.to_be_bytes().to_vec()),
                (NFTA_GEN_PROC_PID, pid.to_be_bytes().to_vec()),
                (3, b"nft\0".to_vec()),
            ],
        )
    }

    #[test]
    fn changes_and_the_committing_process_are_read_in_order() {
        let data = [delrule(), delrule(), newgen(4242)].concat();
        let read: Vec<Notice> = notices(&data).collect();
        assert_eq!(
            read,
            [
                Notice::Changed,
                Notice::Changed,
                Notice::Committed { pid: Some(4242) }
            ]
        );
    }

    #[test]
    fn a_generation_without_a_process_names_none() {
        let data = message(nft(NFT_MSG_NEWGEN), &[(1, 7u32.to_be_bytes().to_vec())]);
        assert_eq!(
            notices(&data).collect::<Vec<_>>(),
            [Notice::Committed { pid: None }]
        );
    }

    #[test]
    fn other_subsystems_and_truncated_messages_are_skipped() {
        let conntrack = message(1 << 8, &[]);
        let data = [conntrack, newgen(7)].concat();
        assert_eq!(
            notices(&data).collect::<Vec<_>>(),
            [Notice::Committed { pid: Some(7) }]
        );
        let cut = newgen(7);
        assert_eq!(notices(&cut[..10]).count(), 0);
        assert_eq!(notices(&cut[..cut.len() - 1]).count(), 0);
    }
}
