//! The network-filter service: every verb implemented once, on the
//! driver's engine (filters, bindings, rules) and the network store, with
//! IP learning for the daemon. The CLI embeds it or reaches the daemon
//! that serves it; the daemon serves it on its sockets.
//!
//! Data flow: a front end decodes a request → [`EngineService`] carries
//! out the verb (driver: store, compile, apply; [`learning`] for ports
//! that await their address; [`net_ops`] for networks) → the front end
//! encodes the reply. Front ends: [`json`] (the [`protocol`] lines, with
//! [`client`] on the other side) and [`libvirt`] (libvirt's RPC calls).
//! Nothing here opens a socket or prints.

pub mod client;
pub mod explain;
pub mod json;
pub mod learning;
pub mod libvirt;
pub mod net_ops;
pub mod netports;
pub mod networks;
pub mod protocol;
pub mod service;

pub use client::{Client, ClientError};
pub use json::Service;
pub use protocol::{
    BindingEntry, FilterEntry, Op, OwnerEntry, Reply, Request, Response, PROTOCOL_VERSION,
};
pub use service::EngineService;
