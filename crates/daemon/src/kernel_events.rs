//! The kernel telling us that nf_tables changed: a netlink socket on the
//! `NFNLGRP_NFTABLES` multicast group of `NETLINK_NETFILTER`, which gets
//! what `nft monitor` prints. Every transaction (nft, iptables-nft,
//! ebtables-nft, a flush, a firewall service's reload) ends with a
//! `NFT_MSG_NEWGEN` message naming the process that committed it; the
//! rule check runs when a process other than our own tools committed.
//!
//! Only that a change happened is read, never what it was: the check
//! compares the kernel with what we applied. Legacy xtables changes do not
//! show here; the check's slow timer covers them.

use std::io;
use std::os::fd::{AsFd, BorrowedFd};

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket};

/// The nf_tables multicast group (`NFNLGRP_NFTABLES`).
const NFNLGRP_NFTABLES: u32 = 7;
/// nfnetlink's nf_tables subsystem (`NFNL_SUBSYS_NFTABLES`), the high
/// byte of the message type.
const NFNL_SUBSYS_NFTABLES: u16 = 10;
/// The message that ends every committed transaction.
const NFT_MSG_NEWGEN: u16 = 15;
/// `NFTA_GEN_PROC_PID`: the committing process (a big-endian u32).
const NFTA_GEN_PROC_PID: u16 = 2;
/// `struct nlmsghdr` and `struct nfgenmsg`.
const NLMSG_HDR: usize = 16;
const NFGENMSG: usize = 4;
/// Room for many transactions' notifications while a check runs.
const RECEIVE_BUFFER: usize = 4 << 20;

/// A subscription to nf_tables changes.
#[derive(Debug)]
pub struct NftEvents {
    socket: Socket,
    buf: Vec<u8>,
    /// Objects changed since the last generation message.
    pending: bool,
}

impl NftEvents {
    /// Joins the nf_tables group (needs `CAP_NET_ADMIN`, as the daemon has).
    pub fn open() -> io::Result<NftEvents> {
        let mut socket = Socket::new(NETLINK_NETFILTER)?;
        socket.bind_auto()?;
        socket.add_membership(NFNLGRP_NFTABLES)?;
        // Best effort: a too-small buffer only means an overflow, which
        // `drain` reports as a change.
        let _ = socket.set_rx_buf_sz(RECEIVE_BUFFER);
        socket.set_non_blocking(true)?;
        Ok(NftEvents {
            socket,
            buf: vec![0; 64 * 1024],
            pending: false,
        })
    }

    /// Readable when notifications wait.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }

    /// Reads every waiting notification; true if a transaction committed
    /// by a process `ours` does not claim changed something (or if
    /// notifications were lost, so that nothing can be ruled out).
    pub fn drain(&mut self, ours: &dyn Fn(u32) -> bool) -> io::Result<bool> {
        let mut foreign = false;
        let mut buf = std::mem::take(&mut self.buf);
        let result = loop {
            match self.socket.recv(&mut &mut buf[..], 0) {
                Ok(n) => foreign |= self.read_messages(&buf[..n.min(buf.len())], ours),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Ok(foreign),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // ENOBUFS: the socket overflowed, notifications were lost.
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOBUFS) => foreign = true,
                Err(e) => break Err(e),
            }
        };
        self.buf = buf;
        result
    }

    fn read_messages(&mut self, mut data: &[u8], ours: &dyn Fn(u32) -> bool) -> bool {
        let mut foreign = false;
        while data.len() >= NLMSG_HDR {
            let len = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as usize;
            let kind = u16::from_ne_bytes([data[4], data[5]]);
            if len < NLMSG_HDR || len > data.len() {
                break;
            }
            let (message, rest) = data.split_at(len);
            data = rest.get(pad(len) - len..).unwrap_or_default();
            if kind >> 8 != NFNL_SUBSYS_NFTABLES {
                continue;
            }
            if kind & 0xff != NFT_MSG_NEWGEN {
                self.pending = true;
                continue;
            }
            let changed = std::mem::take(&mut self.pending);
            let by_us = generation_pid(message).is_some_and(ours);
            foreign |= changed && !by_us;
        }
        foreign
    }
}

/// Netlink's 4-byte alignment.
fn pad(len: usize) -> usize {
    (len + 3) & !3
}

/// The committing process of a `NEWGEN` message.
fn generation_pid(message: &[u8]) -> Option<u32> {
    let mut attrs = message.get(NLMSG_HDR + NFGENMSG..)?;
    while attrs.len() >= 4 {
        let len = u16::from_ne_bytes([attrs[0], attrs[1]]) as usize;
        let kind = u16::from_ne_bytes([attrs[2], attrs[3]]) & 0x3fff;
        if len < 4 || len > attrs.len() {
            return None;
        }
        if kind == NFTA_GEN_PROC_PID && len >= 8 {
            return Some(u32::from_be_bytes([attrs[4], attrs[5], attrs[6], attrs[7]]));
        }
        attrs = attrs.get(pad(len)..).unwrap_or_default();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(kind: u16, attrs: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut body = vec![0u8; NFGENMSG];
        for (t, value) in attrs {
            let len = 4 + value.len();
            body.extend_from_slice(&(len as u16).to_ne_bytes());
            body.extend_from_slice(&t.to_ne_bytes());
            body.extend_from_slice(value);
            body.resize(pad(body.len()), 0);
        }
        let mut m = Vec::new();
        m.extend_from_slice(&((NLMSG_HDR + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(&body);
        m
    }

    fn nft(msg: u16) -> u16 {
        (NFNL_SUBSYS_NFTABLES << 8) | msg
    }

    fn newgen(pid: u32) -> Vec<u8> {
        message(
            nft(NFT_MSG_NEWGEN),
            &[
                (1, 7u32.to_be_bytes().to_vec()),
                (NFTA_GEN_PROC_PID, pid.to_be_bytes().to_vec()),
                (3, b"nft\0".to_vec()),
            ],
        )
    }

    fn events() -> NftEvents {
        NftEvents {
            socket: Socket::new(NETLINK_NETFILTER).unwrap(),
            buf: Vec::new(),
            pending: false,
        }
    }

    #[test]
    fn a_foreign_transaction_counts_and_our_own_does_not() {
        let ours = |pid: u32| pid == 42;
        let delrule = message(nft(8), &[]);
        let mut ev = events();
        let ours_batch = [delrule.clone(), newgen(42)].concat();
        assert!(!ev.read_messages(&ours_batch, &ours));
        let theirs = [delrule.clone(), delrule, newgen(4242)].concat();
        assert!(ev.read_messages(&theirs, &ours));
        // A generation alone (nothing changed) is nothing.
        assert!(!ev.read_messages(&newgen(4242), &ours));
    }

    #[test]
    fn objects_and_their_generation_may_come_in_separate_datagrams() {
        let ours = |_: u32| false;
        let mut ev = events();
        assert!(!ev.read_messages(&message(nft(3), &[]), &ours));
        assert!(ev.read_messages(&newgen(7), &ours));
    }

    #[test]
    fn other_subsystems_and_truncated_messages_are_ignored() {
        let ours = |_: u32| false;
        let mut ev = events();
        let conntrack = message(1 << 8, &[]);
        assert!(!ev.read_messages(&[conntrack, newgen(7)].concat(), &ours));
        let cut = newgen(7);
        assert!(!ev.read_messages(&cut[..10], &ours));
    }
}
