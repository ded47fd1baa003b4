//! One client's connection state and the connection-level calls (auth,
//! open, close, features, identity, host information). Network-filter
//! calls go to the service's libvirt front end once the connection is open, and every
//! call that changes something is refused on a read-only connection.

use libvirt_rpc::call::{feature, CONNECT_NO_ALIASES, CONNECT_RO};
use libvirt_rpc::error::code;
use libvirt_rpc::{Call, RemoteError, Ret};
use tracing::{debug, info};

use super::peer::Peer;
use super::URI;
use nwfilter_service::libvirt::errors::{self, unsupported_flags};
use nwfilter_service::libvirt::{nwfilter_call, Api};

/// `remote_auth_type` NONE: the socket's permissions and the peer's
/// credentials decide, no SASL or polkit exchange.
const AUTH_NONE: i32 = 0;

/// What a connection may do and how far it got.
#[derive(Debug)]
pub struct Session {
    peer: Peer,
    /// Why changes are refused, if they are.
    read_only: Option<ReadOnly>,
    open: bool,
}

/// Why a connection may not change anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ReadOnly {
    /// The read-only socket, or an open with `VIR_CONNECT_RO`.
    Access,
    /// A peer (by its kernel credentials) that is neither root nor the
    /// daemon's own user.
    Peer { uid: u32 },
}

impl ReadOnly {
    /// libvirt's wording for the first, ours for the second.
    fn refusal(self, api: &str) -> String {
        match self {
            ReadOnly::Access => format!("read only access prevents {api}"),
            ReadOnly::Peer { uid } => {
                format!("uid {uid} may not call {api}: only root changes network filters")
            }
        }
    }
}

/// What to do after answering a call.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Continue,
    /// The client closed the connection (`CONNECT_CLOSE`).
    Close,
}

impl Session {
    /// A session for a client on a socket that is read-only or not.
    pub fn new(peer: Peer, read_only_socket: bool) -> Session {
        let read_only = if read_only_socket {
            Some(ReadOnly::Access)
        } else if peer.may_change() {
            None
        } else {
            Some(ReadOnly::Peer { uid: peer.uid })
        };
        Session {
            peer,
            read_only,
            open: false,
        }
    }

    pub fn is_read_only(&self) -> bool {
        self.read_only.is_some()
    }

    /// Answers `call`.
    pub fn handle(&mut self, api: &dyn Api, call: &Call) -> (Result<Ret, RemoteError>, Next) {
        if !self.open
            && !matches!(
                call,
                Call::AuthList | Call::ConnectSupportsFeature { .. } | Call::ConnectOpen { .. }
            )
        {
            return (
                Err(errors::rpc(code::INTERNAL_ERROR, "connection not open")),
                Next::Continue,
            );
        }
        if let (Some(why), true) = (self.read_only, call.changes_state()) {
            return (
                Err(errors::nwfilter(
                    code::OPERATION_DENIED,
                    &why.refusal(call.api_name()),
                )),
                Next::Continue,
            );
        }
        let next = if matches!(call, Call::ConnectClose) {
            Next::Close
        } else {
            Next::Continue
        };
        let result = match nwfilter_call(api, call) {
            Some(result) => result,
            None => self.connection_call(call),
        };
        (result, next)
    }

    fn connection_call(&mut self, call: &Call) -> Result<Ret, RemoteError> {
        Ok(match call {
            Call::AuthList => Ret::AuthTypes(vec![AUTH_NONE]),
            Call::ConnectSupportsFeature { feature } => Ret::Int(i32::from(supports(*feature))),
            Call::ConnectOpen { name, flags } => {
                self.open(name.as_deref(), *flags)?;
                Ret::Void
            }
            Call::ConnectClose => {
                self.open = false;
                Ret::Void
            }
            Call::ConnectGetType => Ret::Text("nwfilter".into()),
            Call::ConnectGetVersion => Ret::Version(own_version()),
            Call::ConnectGetLibVersion => Ret::Version(LIB_VERSION),
            Call::ConnectGetHostname => Ret::Text(hostname()?),
            Call::ConnectGetUri => Ret::Text(URI.into()),
            // A local Unix socket: nothing can be overheard.
            Call::ConnectIsSecure => Ret::Int(1),
            Call::ConnectSetIdentity { params, flags } => {
                if *flags != 0 {
                    return Err(unsupported_flags(*flags, "virConnectSetIdentity"));
                }
                // A claim about the process the caller acts for; what this
                // connection may do still follows its own credentials.
                info!(peer = %self.peer, ?params, "libvirt client states the identity it acts for");
                Ret::Void
            }
            other => return Err(RemoteError::unknown_procedure(other.procedure())),
        })
    }

    fn open(&mut self, name: Option<&str>, flags: u32) -> Result<(), RemoteError> {
        if self.open {
            return Err(errors::rpc(code::INTERNAL_ERROR, "connection already open"));
        }
        if flags & !(CONNECT_RO | CONNECT_NO_ALIASES) != 0 {
            return Err(unsupported_flags(flags, "virConnectOpen"));
        }
        match name {
            // No name: the daemon's one driver, as libvirt's split daemon
            // probes only its own.
            None | Some(URI) | Some("nwfilter:///system/") => {}
            Some(other) => {
                return Err(RemoteError::new(code::NO_CONNECT, 0, other));
            }
        }
        if flags & CONNECT_RO != 0 && self.read_only.is_none() {
            self.read_only = Some(ReadOnly::Access);
        }
        self.open = true;
        debug!(peer = %self.peer, read_only = ?self.read_only, "libvirt connection opened");
        Ok(())
    }
}

/// Keepalive is served; events and close callbacks are not (clients then
/// do without them, as the reference recorded for virsh 9.0).
fn supports(feature: i32) -> bool {
    feature == feature::PROGRAM_KEEPALIVE
}

/// The libvirt release whose API this front end implements (9.0.0),
/// in libvirt's `major * 1_000_000 + minor * 1000 + micro` form.
const LIB_VERSION: u64 = 9_000_000;

/// This program's version in libvirt's number form.
fn own_version() -> u64 {
    let mut parts = env!("CARGO_PKG_VERSION")
        .split('.')
        .map(|p| p.parse::<u64>().unwrap_or(0));
    let (major, minor, micro) = (
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
        parts.next().unwrap_or(0),
    );
    major * 1_000_000 + minor * 1000 + micro
}

fn hostname() -> Result<String, RemoteError> {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .map_err(|e| {
            errors::rpc(
                code::INTERNAL_ERROR,
                &format!("cannot read the host name: {e}"),
            )
        })
}
