//! Capturing a guest's frames on its port: an AF_PACKET socket bound to
//! the port's interface, with a kernel BPF filter and a small receive
//! buffer.
//!
//! Why AF_PACKET and not libpcap: it needs no C library at build or run
//! time, the socket is non-blocking and pollable next to hundreds of
//! others on a few shared threads, the kernel tells each frame's side of
//! the port (`PACKET_OUTGOING`: delivered to the guest), which the
//! learner's checks rely on, and the receive buffer bounds the kernel
//! queue per port. The price is writing the two small BPF programs by
//! hand ([`bpf`]) and one unsafe block to bind ([`sys`]).

mod bpf;
mod sys;

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::sched::{setns, CloneFlags};
use nix::sys::socket::{recvfrom, LinkAddr};
use nwfilter_model::IfName;
use socket2::{Domain, Protocol, Socket, Type};

use crate::classify::Direction;

/// Which frames the kernel passes up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// The guest's untagged IPv4/ARP frames, and IPv4 to it or broadcast (`any` mode).
    GuestFrames([u8; 6]),
    /// DHCP client and server datagrams (`dhcp` mode).
    Dhcp,
    /// The guest's untagged IPv6 frames (IPv6 `any` mode: its claims).
    Ipv6Claims([u8; 6]),
    /// DHCPv6 client and server datagrams (IPv6 `dhcp` mode).
    Dhcp6,
    /// Every untagged frame's Ethernet header (learning the guest's MAC
    /// from its first frame).
    AnyFrame,
}

/// Why a capture could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("cannot enter network namespace {path}: {source}")]
    Netns {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("port {port}: no such interface")]
    NoSuchPort { port: IfName },
    #[error("port {port}: cannot capture ({step}): {source}")]
    Socket {
        port: IfName,
        step: &'static str,
        #[source]
        source: io::Error,
    },
}

/// The kernel queue per port: a few dozen DHCP-sized frames. A flood
/// beyond it is dropped by the kernel, costing us nothing.
const RECEIVE_BUFFER: usize = 64 * 1024;

/// `sll_pkttype` of a frame the host transmitted on the port, i.e. one
/// delivered to the guest (linux/if_packet.h).
const PACKET_OUTGOING: u8 = 4;

/// An open capture on one port.
#[derive(Debug)]
pub struct Capture {
    port: IfName,
    socket: Socket,
}

impl Capture {
    /// Opens a capture on `port` with `filter`, inside the network
    /// namespace at `netns` (e.g. `/run/netns/NAME`) when given.
    pub fn open(
        port: &IfName,
        filter: Filter,
        netns: Option<&Path>,
    ) -> Result<Capture, CaptureError> {
        match netns {
            None => Capture::open_here(port, filter),
            // setns(2) changes the calling thread's namespace: do it on a
            // short-lived thread. The socket stays in that namespace.
            Some(path) => std::thread::scope(|s| {
                s.spawn(|| {
                    let ns = File::open(path).map_err(|source| CaptureError::Netns {
                        path: path.to_path_buf(),
                        source,
                    })?;
                    setns(ns.as_fd(), CloneFlags::CLONE_NEWNET).map_err(|e| {
                        CaptureError::Netns {
                            path: path.to_path_buf(),
                            source: e.into(),
                        }
                    })?;
                    Capture::open_here(port, filter)
                })
                .join()
                .expect("capture opener does not panic")
            }),
        }
    }

    fn open_here(port: &IfName, filter: Filter) -> Result<Capture, CaptureError> {
        let fail = |step| {
            let port = port.clone();
            move |source| CaptureError::Socket { port, step, source }
        };
        let ifindex = nix::net::if_::if_nametoindex(port.as_str())
            .map_err(|_| CaptureError::NoSuchPort { port: port.clone() })?;
        // Protocol 0: the socket receives nothing until bound, so no
        // unfiltered frame of another interface is ever queued.
        let socket = Socket::new(Domain::PACKET, Type::RAW, Some(Protocol::from(0)))
            .map_err(fail("socket"))?;
        socket.set_nonblocking(true).map_err(fail("non-blocking"))?;
        socket
            .set_recv_buffer_size(RECEIVE_BUFFER)
            .map_err(fail("receive buffer"))?;
        let program = match filter {
            Filter::GuestFrames(mac) => bpf::guest_frames(mac),
            Filter::Dhcp => bpf::dhcp_frames(),
            Filter::Ipv6Claims(mac) => bpf::ipv6_claims(mac),
            Filter::Dhcp6 => bpf::dhcp6_frames(),
            Filter::AnyFrame => bpf::any_frame_header(),
        };
        socket
            .attach_filter(&bpf::to_socket(&program))
            .map_err(fail("BPF filter"))?;
        sys::bind_to_interface(&socket, ifindex).map_err(fail("bind"))?;
        Ok(Capture {
            port: port.clone(),
            socket,
        })
    }

    /// Reads one frame into `buf`: its length and side of the port, or
    /// `None` when nothing is queued.
    pub fn recv(&self, buf: &mut [u8]) -> Result<Option<(usize, Direction)>, CaptureError> {
        match recvfrom::<LinkAddr>(self.socket.as_raw_fd(), buf) {
            Ok((len, from)) => {
                let outgoing = from.is_some_and(|a| a.pkttype() == PACKET_OUTGOING);
                let dir = if outgoing {
                    Direction::ToGuest
                } else {
                    Direction::FromGuest
                };
                Ok(Some((len.min(buf.len()), dir)))
            }
            Err(Errno::EAGAIN | Errno::EINTR) => Ok(None),
            Err(e) => Err(CaptureError::Socket {
                port: self.port.clone(),
                step: "receive",
                source: e.into(),
            }),
        }
    }

    pub fn port(&self) -> &IfName {
        &self.port
    }
}

impl AsFd for Capture {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}
