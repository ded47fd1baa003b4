//! libvirt's RPC protocol, the subset the network-filter API uses.
//!
//! Pure encoding and decoding: [`frame`] splits a byte stream into
//! messages and builds them, [`header`] is the 24-byte message header,
//! [`xdr`] the primitive encoding, [`call`] the typed procedure calls (what
//! a client sends), [`reply`] their typed results and [`error`] libvirt's
//! error structure and codes. Both directions are implemented, so the same
//! types serve the daemon and the tests that play the client.
//!
//! Sources: libvirt's `virnetprotocol.x`, `remote_protocol.x` and
//! `virkeepaliveprotocol.x`; the byte layouts are checked against frames
//! captured from virsh 9.0 (see `tests/`).

pub mod call;
pub mod error;
pub mod frame;
pub mod header;
pub mod reply;
pub mod xdr;

pub use call::{BindingRef, Call, CallError, NwfilterRef, TypedParam, TypedValue};
pub use error::RemoteError;
pub use frame::{read_frame, write_frame, Frame, FrameError, MAX_FRAME};
pub use header::{Header, MessageStatus, MessageType, KEEPALIVE_PROGRAM, REMOTE_PROGRAM};
pub use reply::Ret;
pub use xdr::{DecodeError, Decoder, Encoder};
