//! The message header that follows each frame's length word
//! (`virNetMessageHeader`): program, version, procedure, type, serial,
//! status, six XDR words.

use crate::xdr::{DecodeError, Decoder, Encoder};

/// libvirt's remote program (`REMOTE_PROGRAM`).
pub const REMOTE_PROGRAM: u32 = 0x2000_8086;
/// `REMOTE_PROTOCOL_VERSION`.
pub const REMOTE_VERSION: u32 = 1;
/// The keepalive program (`KEEPALIVE_PROGRAM`, "keep" in ASCII).
pub const KEEPALIVE_PROGRAM: u32 = 0x6b65_6570;
/// `KEEPALIVE_PROTOCOL_VERSION`.
pub const KEEPALIVE_VERSION: u32 = 1;
/// Keepalive procedures.
pub const KEEPALIVE_PING: i32 = 1;
pub const KEEPALIVE_PONG: i32 = 2;

/// Bytes of a header on the wire.
pub const HEADER_LEN: usize = 24;

/// `virNetMessageType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageType {
    Call,
    Reply,
    /// One-way (keepalive, events).
    Message,
    Stream,
    CallWithFds,
    ReplyWithFds,
    StreamHole,
}

impl MessageType {
    pub fn code(self) -> u32 {
        match self {
            MessageType::Call => 0,
            MessageType::Reply => 1,
            MessageType::Message => 2,
            MessageType::Stream => 3,
            MessageType::CallWithFds => 4,
            MessageType::ReplyWithFds => 5,
            MessageType::StreamHole => 6,
        }
    }

    pub fn from_code(code: u32) -> Option<MessageType> {
        Some(match code {
            0 => MessageType::Call,
            1 => MessageType::Reply,
            2 => MessageType::Message,
            3 => MessageType::Stream,
            4 => MessageType::CallWithFds,
            5 => MessageType::ReplyWithFds,
            6 => MessageType::StreamHole,
            _ => return None,
        })
    }
}

/// `virNetMessageStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageStatus {
    Ok,
    /// The payload is a `remote_error`.
    Error,
    /// A stream continues.
    Continue,
}

impl MessageStatus {
    pub fn code(self) -> u32 {
        match self {
            MessageStatus::Ok => 0,
            MessageStatus::Error => 1,
            MessageStatus::Continue => 2,
        }
    }

    pub fn from_code(code: u32) -> Option<MessageStatus> {
        Some(match code {
            0 => MessageStatus::Ok,
            1 => MessageStatus::Error,
            2 => MessageStatus::Continue,
            _ => return None,
        })
    }
}

/// A decoded header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub program: u32,
    pub version: u32,
    pub procedure: i32,
    pub kind: MessageType,
    pub serial: u32,
    pub status: MessageStatus,
}

impl Header {
    /// A call of the remote program.
    pub fn call(procedure: i32, serial: u32) -> Header {
        Header {
            program: REMOTE_PROGRAM,
            version: REMOTE_VERSION,
            procedure,
            kind: MessageType::Call,
            serial,
            status: MessageStatus::Ok,
        }
    }

    /// The reply to the call `self` heads: same program, version,
    /// procedure and serial.
    pub fn reply(&self, status: MessageStatus) -> Header {
        Header {
            kind: MessageType::Reply,
            status,
            ..*self
        }
    }

    /// A keepalive message (`PING` or `PONG`): serial 0, status OK.
    pub fn keepalive(procedure: i32) -> Header {
        Header {
            program: KEEPALIVE_PROGRAM,
            version: KEEPALIVE_VERSION,
            procedure,
            kind: MessageType::Message,
            serial: 0,
            status: MessageStatus::Ok,
        }
    }

    pub fn decode(d: &mut Decoder<'_>) -> Result<Header, DecodeError> {
        let program = d.u32("header program")?;
        let version = d.u32("header version")?;
        let procedure = d.i32("header procedure")?;
        let type_at = d.offset();
        let kind = d.u32("header type")?;
        let kind = MessageType::from_code(kind).ok_or(DecodeError::BadValue {
            what: "header type",
            offset: type_at,
            value: kind.into(),
        })?;
        let serial = d.u32("header serial")?;
        let status_at = d.offset();
        let status = d.u32("header status")?;
        let status = MessageStatus::from_code(status).ok_or(DecodeError::BadValue {
            what: "header status",
            offset: status_at,
            value: status.into(),
        })?;
        Ok(Header {
            program,
            version,
            procedure,
            kind,
            serial,
            status,
        })
    }

    pub fn encode(&self, e: &mut Encoder) {
        e.u32(self.program)
            .u32(self.version)
            .i32(self.procedure)
            .u32(self.kind.code())
            .u32(self.serial)
            .u32(self.status.code());
    }

    /// Whether this is the remote program at the version we speak.
    pub fn is_remote(&self) -> bool {
        self.program == REMOTE_PROGRAM && self.version == REMOTE_VERSION
    }

    /// Whether this is a keepalive message.
    pub fn is_keepalive(&self) -> bool {
        self.program == KEEPALIVE_PROGRAM && self.version == KEEPALIVE_VERSION
    }
}
