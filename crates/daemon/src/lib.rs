//! Library half of `nwfilterd`: the wire protocol, the socket server and
//! the client the CLI uses to reach a running daemon.
//!
//! Data flow: client `Request` line → [`server::Server`] → a [`Service`]
//! (the driver: store, compile, apply) → `Response` line.

pub mod client;
pub mod firewalld;
pub mod keeper;
pub mod kernel_events;
pub mod learning;
pub mod libvirt;
pub mod logged;
pub mod logging;
pub mod net_ops;
pub mod networks;
pub mod protocol;
pub mod server;
pub mod service;
pub mod shutdown;
pub mod socket_activation;
pub mod supervise;

pub use client::{Client, ClientError};
pub use protocol::{BindingEntry, FilterEntry, Op, Reply, Request, Response, PROTOCOL_VERSION};
pub use server::{Server, ServerError, Service};
pub use service::EngineService;
