//! The one unsafe operation of this crate: binding an AF_PACKET socket to
//! one interface.
//!
//! `bind(2)` on a packet socket takes a `struct sockaddr_ll` naming the
//! interface index and the EtherType to receive. socket2 can bind only
//! addresses it can build (IP, Unix), and nix's `LinkAddr` has no public
//! constructor, so the address is written into socket2's storage here.
//! Everything else (socket creation, BPF attach, receive) goes through
//! safe APIs.

#![allow(unsafe_code)]

use std::io;

use socket2::{SockAddr, SockAddrStorage, Socket};

/// Binds `socket` (AF_PACKET, SOCK_RAW) to the interface `ifindex`,
/// receiving every EtherType (`ETH_P_ALL`; the attached BPF filter does
/// the selecting).
pub(crate) fn bind_to_interface(socket: &Socket, ifindex: u32) -> io::Result<()> {
    let index = i32::try_from(ifindex)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface index out of range"))?;
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: `SockAddrStorage` is a `sockaddr_storage`, which is larger
    // than and at least as aligned as `sockaddr_ll` (the kernel ABI
    // guarantees any sockaddr fits in sockaddr_storage). The storage is
    // zero-initialised, a valid bit pattern for every field of
    // `sockaddr_ll`, and the reference does not outlive this block.
    unsafe {
        let ll = storage.view_as::<libc::sockaddr_ll>();
        ll.sll_family = libc::AF_PACKET as u16;
        ll.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        ll.sll_ifindex = index;
    }
    let len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
    // SAFETY: the first `len` bytes of `storage` hold the fully
    // initialised `sockaddr_ll` written above, and `len` is its size.
    let addr = unsafe { SockAddr::new(storage, len) };
    socket.bind(&addr)
}
