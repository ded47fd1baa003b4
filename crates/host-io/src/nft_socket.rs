//! The netlink socket our own nf_tables transactions go through (the
//! removals by rule handle, `nft_removal`; set and map elements,
//! `nft_elements`): requests numbered in order, answers read back to the
//! request that asked, and a batch committed whole or not at all.
//!
//! It is opened once and never closed while the process runs: closing a
//! netfilter socket after a transaction that removed something waits
//! for the kernel's RCU grace period (docs/PERFORMANCE.md, stop 31).

use std::io;

use netlink_sys::{protocols::NETLINK_NETFILTER, Socket, SocketAddr};
use rustix::event::{poll, PollFd, PollFlags, Timespec};

use crate::nfnl::{self, Outgoing};
use crate::nft_events;

const NFT_MSG_GETGEN: u16 = 16;
/// `NFT_MSG_NEWTABLE` (the answer) and `NFT_MSG_GETTABLE`, with the
/// attributes we send and read (`NFTA_TABLE_*`).
const NFT_MSG_NEWTABLE: u16 = 0;
const NFT_MSG_GETTABLE: u16 = 1;
const NFTA_TABLE_NAME: u16 = 1;
const NFTA_TABLE_USE: u16 = 3;
const NFTA_TABLE_HANDLE: u16 = 4;
/// `ENOENT`: no such table.
const ENOENT: i32 = 2;
/// `NFNL_MSG_BATCH_BEGIN` / `_END` and the begin's `NFNL_BATCH_GENID`.
const BATCH_BEGIN: u16 = 16;
const BATCH_END: u16 = 17;
const BATCH_GENID: u16 = 1;
/// The generation named in the batch is not the kernel's.
const ERESTART: i32 = 85;
/// How long the kernel may take to answer (it answers as it handles the
/// request: this bounds a lost answer, not a normal one).
const ANSWER_WITHIN: Timespec = Timespec {
    tv_sec: 2,
    tv_nsec: 0,
};

/// The kernel family of an nf_tables table: an xtables-nft one, or one
/// of the nftables backend's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TableFamily {
    /// ebtables, and the nftables backend's bridge table (`NFPROTO_BRIDGE`).
    Bridge,
    /// iptables (`NFPROTO_IPV4`).
    Ipv4,
    /// ip6tables (`NFPROTO_IPV6`).
    Ipv6,
    /// The nftables backend's inet table (`NFPROTO_INET`).
    Inet,
}

impl TableFamily {
    pub(crate) fn of_nfproto(nfproto: u8) -> Option<TableFamily> {
        match nfproto {
            7 => Some(TableFamily::Bridge),
            2 => Some(TableFamily::Ipv4),
            10 => Some(TableFamily::Ipv6),
            1 => Some(TableFamily::Inet),
            _ => None,
        }
    }

    pub(crate) fn nfproto(self) -> u8 {
        match self {
            TableFamily::Bridge => 7,
            TableFamily::Ipv4 => 2,
            TableFamily::Ipv6 => 10,
            TableFamily::Inet => 1,
        }
    }
}

/// One nf_tables table as the kernel names it now: which incarnation it
/// is (its handle, never given twice to tables of one family in one
/// namespace) and how many objects (chains, sets) it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum TableSeen {
    Absent,
    Present { handle: u64, uses: u32 },
}

/// Why a transaction of ours was not committed (nothing changed; or, for
/// a lost answer, the caller's tool must decide).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct NotCommitted(String);

pub(crate) fn not_committed(why: impl std::fmt::Display) -> NotCommitted {
    NotCommitted(why.to_string())
}

/// How a batch was not committed.
pub(crate) enum Commit {
    /// The generation it named moved on: nothing was done.
    Stale,
    Failed(NotCommitted),
}

pub(crate) fn errno(code: i32) -> io::Error {
    io::Error::from_raw_os_error(code.saturating_neg())
}

#[derive(Debug)]
pub(crate) struct NftSocket {
    socket: Socket,
    seq: u32,
    buf: Vec<u8>,
    /// The longest datagram the send buffer is known to take.
    send_room: usize,
    /// How many answers the receive buffer is known to hold.
    answer_room: usize,
}

/// What the default send buffer (`net.core.wmem_default`, 208 KiB here)
/// surely takes.
const DEFAULT_SEND_ROOM: usize = 64 << 10;

/// Room one answer (an acknowledgement) takes in the receive buffer: the
/// kernel charges a whole socket buffer for each, about 1 KiB (`nft`
/// reckons the same).
const ANSWER_SIZE: usize = 1 << 10;

/// How many answers the default receive buffer surely holds.
const DEFAULT_ANSWER_ROOM: usize = 64;

impl NftSocket {
    /// Needs `CAP_NET_ADMIN` for anything but reading.
    pub fn open() -> io::Result<NftSocket> {
        let mut socket = Socket::new(NETLINK_NETFILTER)?;
        socket.bind_auto()?;
        socket.set_non_blocking(true)?;
        // Failures come back without the message they answer.
        let _ = socket.set_cap_ack(true);
        Ok(NftSocket {
            socket,
            seq: 0,
            buf: vec![0; 64 << 10],
            send_room: DEFAULT_SEND_ROOM,
            answer_room: DEFAULT_ANSWER_ROOM,
        })
    }

    pub fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    /// Starts a batch in `out`; with `generation`, the kernel refuses it
    /// whole (`Commit::Stale`) unless that is still the ruleset's.
    pub fn begin_batch(&mut self, out: &mut Outgoing, generation: Option<u32>) {
        let seq = self.next_seq();
        out.message(BATCH_BEGIN, nfnl::F_REQUEST, seq, 0, nfnl::SUBSYS_NFTABLES);
        if let Some(generation) = generation {
            out.attribute(BATCH_GENID, &generation.to_be_bytes());
        }
    }

    pub fn end_batch(&mut self, out: &mut Outgoing) {
        let seq = self.next_seq();
        out.message(BATCH_END, nfnl::F_REQUEST, seq, 0, nfnl::SUBSYS_NFTABLES);
    }

    /// The kernel's current ruleset generation.
    pub fn generation(&mut self) -> io::Result<u32> {
        self.ask(
            NFT_MSG_GETGEN,
            0,
            |_| {},
            |answer| match answer {
                Ok(message) => Ok(nft_events::generation_of(&message)),
                Err(code) => Err(errno(code)),
            },
        )
    }

    /// What the kernel says of table `name` of `family` now.
    pub fn table(&mut self, family: TableFamily, name: &str) -> io::Result<TableSeen> {
        let ask = |out: &mut Outgoing| out.string(NFTA_TABLE_NAME, name);
        self.ask(
            NFT_MSG_GETTABLE,
            family.nfproto(),
            ask,
            |answer| match answer {
                Ok(message) => Ok(table_seen(&message)),
                Err(code) if -code == ENOENT => Ok(Some(TableSeen::Absent)),
                Err(code) => Err(errno(code)),
            },
        )
    }

    /// Sends one nf_tables request `kind` for `family` (its attributes
    /// added by `attributes`) and reads its answers until `read` finds
    /// what it wants in one (a message, or an error's code).
    fn ask<T>(
        &mut self,
        kind: u16,
        family: u8,
        attributes: impl FnOnce(&mut Outgoing),
        mut read: impl FnMut(Result<nfnl::Received<'_>, i32>) -> io::Result<Option<T>>,
    ) -> io::Result<T> {
        let seq = self.next_seq();
        let mut out = Outgoing::default();
        out.message(
            (nfnl::SUBSYS_NFTABLES << 8) | kind,
            nfnl::F_REQUEST,
            seq,
            family,
            0,
        );
        attributes(&mut out);
        self.send(out)?;
        let mut found = None;
        self.answers(seq, seq, |message| {
            let answer = match message.error_code() {
                Some(code) => Err(code),
                None => Ok(message),
            };
            found = read(answer)?;
            Ok(found.is_some())
        })?;
        found.ok_or_else(|| io::Error::other("the kernel's answer said nothing"))
    }

    /// Sends a batch of `steps` messages, each asking for an answer,
    /// between [`NftSocket::begin_batch`] and [`NftSocket::end_batch`]
    /// (the last numbers taken), and reads one answer per step: committed
    /// when each was acknowledged.
    pub fn commit(&mut self, batch: Outgoing, steps: usize) -> Result<(), Commit> {
        let first = self.seq.wrapping_sub(steps as u32 + 1);
        let last = self.seq;
        self.send(batch)
            .map_err(|e| Commit::Failed(not_committed(e)))?;
        let mut acknowledged = 0;
        let mut refused = None;
        let read = self.answers(first, last, |message| {
            match message.error_code() {
                Some(0) => acknowledged += 1,
                Some(code) => refused = refused.or(Some(code)),
                None => {}
            }
            Ok(refused.is_some() || acknowledged == steps)
        });
        match (refused, read) {
            (Some(code), _) if -code == ERESTART => Err(Commit::Stale),
            (Some(code), _) => Err(Commit::Failed(not_committed(format!(
                "the kernel refused the transaction: {}",
                errno(code)
            )))),
            (None, Ok(())) => Ok(()),
            (None, Err(e)) => Err(Commit::Failed(not_committed(e))),
        }
    }

    pub fn send(&mut self, out: Outgoing) -> io::Result<()> {
        self.discard_stale();
        let datagram = out.finish();
        self.make_room(&datagram);
        let kernel = SocketAddr::new(0, 0);
        let sent = self.socket.send_to(&datagram, &kernel, 0)?;
        if sent != datagram.len() {
            return Err(io::Error::other("the request was cut short"));
        }
        Ok(())
    }

    /// Makes room for `datagram` and its answers. The kernel refuses a
    /// netlink datagram longer than the socket's send buffer
    /// (`EMSGSIZE`), and drops answers that overflow its receive buffer
    /// (`ENOBUFS`: the outcome is lost); it answers every message of a
    /// batch before the send returns. One transaction removing a thousand
    /// ports' chains is a megabyte and 18 000 answers. Both buffers grow
    /// as `nft` grows its own: past `net.core.{w,r}mem_max` where allowed
    /// (`SO_SNDBUFFORCE`, `SO_RCVBUFFORCE`, with the `CAP_NET_ADMIN` a
    /// commit needs anyway), else up to it. If that is not enough, the
    /// commit fails as before and the caller's tool commits instead.
    fn make_room(&mut self, datagram: &[u8]) {
        use rustix::net::sockopt as opt;
        let len = datagram.len();
        if len > self.send_room
            && grow(
                len,
                |size| opt::set_socket_send_buffer_size_force(&self.socket, size),
                |size| opt::set_socket_send_buffer_size(&self.socket, size),
            )
        {
            self.send_room = len;
        }
        let answers = nfnl::messages(datagram).count();
        if answers > self.answer_room
            && grow(
                answers * ANSWER_SIZE,
                |size| opt::set_socket_recv_buffer_size_force(&self.socket, size),
                |size| opt::set_socket_recv_buffer_size(&self.socket, size),
            )
        {
            self.answer_room = answers;
        }
    }

    /// Drops answers left from an earlier request (a failed batch may be
    /// answered more than once).
    fn discard_stale(&mut self) {
        while self.socket.recv(&mut &mut self.buf[..], 0).is_ok() {}
    }

    /// Reads answers to the requests numbered `first..=last`, giving each
    /// to `each` until it says it has all it needs.
    pub fn answers(
        &mut self,
        first: u32,
        last: u32,
        mut each: impl FnMut(nfnl::Received<'_>) -> io::Result<bool>,
    ) -> io::Result<()> {
        let ours = |seq: u32| seq.wrapping_sub(first) <= last.wrapping_sub(first);
        loop {
            let len = match self.socket.recv(&mut &mut self.buf[..], 0) {
                Ok(len) => len,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    let mut fds = [PollFd::new(&self.socket, PollFlags::IN)];
                    if poll(&mut fds, Some(&ANSWER_WITHIN))? == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            "the kernel did not answer",
                        ));
                    }
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            for message in nfnl::messages(&self.buf[..len]) {
                if ours(message.seq) && each(message)? {
                    return Ok(());
                }
            }
        }
    }
}

/// The table an `NFT_MSG_NEWTABLE` answer describes.
fn table_seen(message: &nfnl::Received<'_>) -> Option<TableSeen> {
    if message.nft_message()? != NFT_MSG_NEWTABLE {
        return None;
    }
    let attributes = message.attributes();
    Some(TableSeen::Present {
        handle: attributes.find(NFTA_TABLE_HANDLE).and_then(nfnl::be64)?,
        uses: attributes.find(NFTA_TABLE_USE).and_then(nfnl::be32)?,
    })
}

/// Sets a socket buffer to `size` bytes: past the system's maximum where
/// allowed (`force`), else up to it; false if neither took.
fn grow(
    size: usize,
    force: impl Fn(usize) -> rustix::io::Result<()>,
    plain: impl Fn(usize) -> rustix::io::Result<()>,
) -> bool {
    force(size)
        .or_else(|_| plain(size))
        .inspect_err(|e| tracing::debug!("netlink socket buffer not grown to {size} bytes: {e}"))
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(kind: u16, attrs: &[(u16, Vec<u8>)]) -> Vec<u8> {
        let mut out = Outgoing::default();
        out.message((nfnl::SUBSYS_NFTABLES << 8) | kind, 0, 0, 7, 0);
        for (t, value) in attrs {
            out.attribute(*t, value);
        }
        out.finish()
    }

    #[test]
    fn a_table_is_named_by_its_handle_and_use_count() {
        let data = answer(
            NFT_MSG_NEWTABLE,
            &[
                (NFTA_TABLE_NAME, b"nat\0".to_vec()),
                (2, 0u32.to_be_bytes().to_vec()),
                (NFTA_TABLE_USE, 9003u32.to_be_bytes().to_vec()),
                (NFTA_TABLE_HANDLE, 0x1_0000_0002u64.to_be_bytes().to_vec()),
            ],
        );
        let message = nfnl::messages(&data).next().unwrap();
        assert_eq!(
            table_seen(&message),
            Some(TableSeen::Present {
                handle: 0x1_0000_0002,
                uses: 9003
            })
        );
        // Another message, or one without a handle, names no table.
        let data = answer(NFT_MSG_GETTABLE, &[(NFTA_TABLE_USE, vec![0; 4])]);
        assert_eq!(table_seen(&nfnl::messages(&data).next().unwrap()), None);
        let data = answer(NFT_MSG_NEWTABLE, &[(NFTA_TABLE_USE, vec![0; 4])]);
        assert_eq!(table_seen(&nfnl::messages(&data).next().unwrap()), None);
    }
}
