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

use host_io::nft_events::{self, Notice};
use netlink_sys::Socket;

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
        Ok(NftEvents {
            socket: nft_events::subscribe(RECEIVE_BUFFER)?,
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
                Ok(n) => {
                    let notices = nft_events::notices(&buf[..n.min(buf.len())]);
                    foreign |= self.read_notices(notices, ours);
                }
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

    fn read_notices(
        &mut self,
        notices: impl IntoIterator<Item = Notice>,
        ours: &dyn Fn(u32) -> bool,
    ) -> bool {
        let mut foreign = false;
        for notice in notices {
            match notice {
                Notice::Changed => self.pending = true,
                Notice::Committed { pid } => {
                    let changed = std::mem::take(&mut self.pending);
                    foreign |= changed && !pid.is_some_and(ours);
                }
            }
        }
        foreign
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_sys::protocols::NETLINK_NETFILTER;

    const CHANGED: Notice = Notice::Changed;

    fn newgen(pid: u32) -> Notice {
        Notice::Committed { pid: Some(pid) }
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
        let mut ev = events();
        assert!(!ev.read_notices([CHANGED, newgen(42)], &ours));
        assert!(ev.read_notices([CHANGED, CHANGED, newgen(4242)], &ours));
        // A generation alone (nothing changed) is nothing.
        assert!(!ev.read_notices([newgen(4242)], &ours));
        // A commit the kernel names no process for is not ours.
        assert!(ev.read_notices([CHANGED, Notice::Committed { pid: None }], &ours));
    }

    #[test]
    fn objects_and_their_generation_may_come_in_separate_datagrams() {
        let ours = |_: u32| false;
        let mut ev = events();
        assert!(!ev.read_notices([CHANGED], &ours));
        assert!(ev.read_notices([newgen(7)], &ours));
    }
}
