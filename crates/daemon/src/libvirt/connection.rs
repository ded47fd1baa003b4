//! One client connection: read a frame, answer it, repeat.
//!
//! Frames are read whole (bounded by [`MAX_FRAME`]) before anything is
//! decoded. Once a frame has started, the rest must arrive within
//! [`FRAME_TIMEOUT`]; between frames a client may stay idle as long as it
//! likes (hypervisor drivers keep their connection open without
//! keepalive). A client that stops reading our replies is dropped after
//! [`FRAME_TIMEOUT`] of blocked writing.

use std::io;
use std::os::unix::net::UnixStream;
use std::time::Duration;

use libvirt_rpc::frame::{read_body, read_length, FrameError, MAX_FRAME};
use libvirt_rpc::header::{KEEPALIVE_PING, KEEPALIVE_PONG};
use libvirt_rpc::{Call, CallError, Frame, Header, MessageStatus, MessageType, RemoteError};
use tracing::{debug, warn};

use super::peer::Peer;
use super::session::{Next, Session};
use nwfilter_service::libvirt::errors;
use nwfilter_service::libvirt::Api;

/// How long the rest of a started frame, or a blocked reply, may take.
pub const FRAME_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `stream` until the client closes it or breaks the protocol.
pub fn serve(stream: UnixStream, peer: Peer, read_only_socket: bool, api: &dyn Api) {
    let mut session = Session::new(peer, read_only_socket);
    match serve_frames(&stream, &mut session, api) {
        Ok(()) => debug!(%peer, "libvirt client disconnected"),
        Err(e) => warn!(%peer, "libvirt client dropped: {e}"),
    }
}

fn serve_frames(
    stream: &UnixStream,
    session: &mut Session,
    api: &dyn Api,
) -> Result<(), FrameError> {
    stream
        .set_write_timeout(Some(FRAME_TIMEOUT))
        .map_err(FrameError::Io)?;
    let mut reader = stream;
    loop {
        stream.set_read_timeout(None).map_err(FrameError::Io)?;
        let Some(len) = read_length(&mut reader, MAX_FRAME)? else {
            return Ok(());
        };
        stream
            .set_read_timeout(Some(FRAME_TIMEOUT))
            .map_err(FrameError::Io)?;
        let frame = read_body(&mut reader, len)?;
        match answer(&frame, session, api) {
            Answer::Reply(reply) => write(stream, &reply)?,
            Answer::Nothing => {}
            Answer::ReplyAndClose(reply) => {
                write(stream, &reply)?;
                return Ok(());
            }
            Answer::Drop(why) => return Err(FrameError::Io(io::Error::other(why))),
        }
    }
}

fn write(mut stream: &UnixStream, frame: &Frame) -> Result<(), FrameError> {
    libvirt_rpc::write_frame(&mut stream, frame).map_err(FrameError::Io)
}

/// What a frame calls for.
#[derive(Debug)]
pub enum Answer {
    Reply(Frame),
    ReplyAndClose(Frame),
    /// Nothing to send (a keepalive PONG from the client).
    Nothing,
    /// The client broke the protocol: close without answering.
    Drop(String),
}

/// The answer to one frame (no I/O: tested directly).
pub fn answer(frame: &Frame, session: &mut Session, api: &dyn Api) -> Answer {
    let header = &frame.header;
    if header.is_keepalive() && header.kind == MessageType::Message {
        return match header.procedure {
            KEEPALIVE_PING => Answer::Reply(Frame::new(Header::keepalive(KEEPALIVE_PONG), vec![])),
            KEEPALIVE_PONG => Answer::Nothing,
            other => Answer::Drop(format!("unknown keepalive procedure {other}")),
        };
    }
    if header.kind != MessageType::Call || header.status != MessageStatus::Ok {
        return Answer::Drop(format!(
            "unexpected {:?} message (status {:?}) from a client",
            header.kind, header.status
        ));
    }
    if !header.is_remote() {
        let e = errors::rpc(
            libvirt_rpc::error::code::RPC,
            &format!(
                "Cannot find program {:#x} version {}",
                header.program, header.version
            ),
        );
        return Answer::Reply(error_reply(header, &e));
    }
    let call = match Call::decode(header.procedure, &frame.payload) {
        Ok(call) => call,
        Err(CallError::UnknownProcedure(p)) => {
            return Answer::Reply(error_reply(header, &RemoteError::unknown_procedure(p)))
        }
        Err(e @ CallError::Malformed { .. }) => {
            let e = errors::rpc(libvirt_rpc::error::code::RPC, &e.to_string());
            return Answer::Reply(error_reply(header, &e));
        }
    };
    match session.handle(api, &call) {
        (Ok(ret), Next::Continue) => {
            Answer::Reply(Frame::new(header.reply(MessageStatus::Ok), ret.to_bytes()))
        }
        (Ok(ret), Next::Close) => {
            Answer::ReplyAndClose(Frame::new(header.reply(MessageStatus::Ok), ret.to_bytes()))
        }
        (Err(e), _) => Answer::Reply(error_reply(header, &e)),
    }
}

fn error_reply(call: &Header, e: &RemoteError) -> Frame {
    Frame::new(call.reply(MessageStatus::Error), e.to_bytes())
}
