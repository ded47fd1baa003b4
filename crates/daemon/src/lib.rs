//! Library half of `nwfilterd`: everything the daemon runs beside the
//! service (`nwfilter-service`): the sockets that serve it (JSON and
//! libvirt's RPC), the rule check that keeps the kernel in step, the
//! firewalld listener, logging and shutdown.
//!
//! Data flow: a client's request → [`server::Server`] or
//! [`libvirt::Listener`] → the service's front end (JSON or libvirt) →
//! `nwfilter_service::EngineService` (the driver: store, compile, apply)
//! → a response.

pub mod firewalld;
pub mod keeper;
pub mod kernel_events;
pub mod libvirt;
pub mod logged;
pub mod logging;
pub mod server;
pub mod shutdown;
pub mod socket_activation;
pub mod supervise;

pub use server::{Server, ServerError};
