//! libvirt's own API on a Unix socket: the daemon as a drop-in for
//! libvirt's `virtnwfilterd`, so virsh, libvirt's language bindings and
//! libvirt's hypervisor drivers use it unchanged.
//!
//! This module only moves bytes: [`listener`] accepts connections (a
//! thread each, capped), [`connection`] reads frames and answers
//! keepalive, [`session`] holds a connection's state (open, read-only,
//! peer) and answers the connection-level calls. The network-filter calls
//! go to the service's libvirt front end (`nwfilter_service::libvirt`),
//! which carries them out with the same verbs the JSON socket serves. The
//! wire format is the `libvirt-rpc` crate.

pub mod connection;
pub mod listener;
pub mod peer;
pub mod session;

pub use listener::{Listener, ListenerError};

/// libvirt's read-write socket for the split network-filter daemon.
pub const DEFAULT_SOCKET: &str = "/run/libvirt/virtnwfilterd-sock";
/// Its read-only socket.
pub const DEFAULT_SOCKET_RO: &str = "/run/libvirt/virtnwfilterd-sock-ro";
/// The only URI this daemon serves.
pub const URI: &str = "nwfilter:///system";
