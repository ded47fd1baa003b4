//! Frames: a 4-byte big-endian length (counting itself), then the header
//! and the payload.

use std::io::{self, Read, Write};

use crate::header::{Header, HEADER_LEN};
use crate::xdr::{DecodeError, Decoder, Encoder};

/// Bytes of the length word.
pub const LEN_BYTES: usize = 4;

/// Largest header + payload accepted (`VIR_NET_MESSAGE_MAX` of libvirt
/// before 32 MiB frames: no network-filter call comes near it, since a
/// string is at most 4 MiB). Memory per connection is bounded by it.
pub const MAX_FRAME: usize = 16 * 1024 * 1024;

/// Why a frame could not be read.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame length {0} is shorter than a header")]
    TooShort(usize),
    #[error("frame length {len} is over the limit of {max} bytes")]
    TooLong { len: usize, max: usize },
    #[error("the connection closed in the middle of a frame")]
    Truncated,
    #[error("bad header: {0}")]
    Header(#[from] DecodeError),
    #[error(transparent)]
    Io(io::Error),
}

/// A message: its header and its undecoded payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub header: Header,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn new(header: Header, payload: Vec<u8>) -> Frame {
        Frame { header, payload }
    }

    /// Parses the bytes after the length word.
    pub fn parse(body: &[u8]) -> Result<Frame, FrameError> {
        if body.len() < HEADER_LEN {
            return Err(FrameError::TooShort(body.len() + LEN_BYTES));
        }
        let header = Header::decode(&mut Decoder::new(&body[..HEADER_LEN]))?;
        Ok(Frame {
            header,
            payload: body[HEADER_LEN..].to_vec(),
        })
    }

    /// The frame as sent: length word, header, payload.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        e.u32(0);
        self.header.encode(&mut e);
        let mut bytes = e.into_bytes();
        bytes.extend_from_slice(&self.payload);
        let len = u32::try_from(bytes.len()).unwrap_or(u32::MAX);
        bytes[..LEN_BYTES].copy_from_slice(&len.to_be_bytes());
        bytes
    }
}

/// Reads a frame's length word and checks it. `Ok(None)`: the peer
/// closed the connection between frames.
pub fn read_length(r: &mut impl Read, max: usize) -> Result<Option<usize>, FrameError> {
    let mut word = [0u8; LEN_BYTES];
    let mut got = 0;
    while got < LEN_BYTES {
        match r.read(&mut word[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(FrameError::Truncated),
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(FrameError::Io(e)),
        }
    }
    let len = u32::from_be_bytes(word) as usize;
    if len < LEN_BYTES + HEADER_LEN {
        return Err(FrameError::TooShort(len));
    }
    let body = len - LEN_BYTES;
    if body > max {
        return Err(FrameError::TooLong { len: body, max });
    }
    Ok(Some(body))
}

/// Reads the `body_len` bytes after a length word. Memory grows with
/// what arrives, not with what the length word claims.
pub fn read_body(r: &mut impl Read, body_len: usize) -> Result<Frame, FrameError> {
    let mut body = Vec::with_capacity(body_len.min(64 * 1024));
    let got = r
        .take(body_len as u64)
        .read_to_end(&mut body)
        .map_err(FrameError::Io)?;
    if got < body_len {
        return Err(FrameError::Truncated);
    }
    Frame::parse(&body)
}

/// Reads one frame; `Ok(None)` at a clean end of stream.
pub fn read_frame(r: &mut impl Read, max: usize) -> Result<Option<Frame>, FrameError> {
    match read_length(r, max)? {
        None => Ok(None),
        Some(len) => read_body(r, len).map(Some),
    }
}

/// Writes one frame.
pub fn write_frame(w: &mut impl Write, frame: &Frame) -> io::Result<()> {
    w.write_all(&frame.to_bytes())?;
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::{MessageStatus, MessageType};

    #[test]
    fn a_frame_round_trips_through_a_stream() {
        let frame = Frame::new(Header::call(66, 7), vec![1, 2, 3, 4]);
        let bytes = frame.to_bytes();
        assert_eq!(&bytes[..4], &[0, 0, 0, 32]);
        let back = read_frame(&mut &bytes[..], MAX_FRAME).unwrap().unwrap();
        assert_eq!(back, frame);
        assert_eq!(back.header.kind, MessageType::Call);
        assert_eq!(back.header.status, MessageStatus::Ok);
    }

    #[test]
    fn lengths_outside_the_limits_are_refused_without_reading_on() {
        let huge = ((MAX_FRAME + LEN_BYTES + 1) as u32).to_be_bytes();
        assert!(matches!(
            read_frame(&mut &huge[..], MAX_FRAME),
            Err(FrameError::TooLong { .. })
        ));
        let tiny = 8u32.to_be_bytes();
        assert!(matches!(
            read_frame(&mut &tiny[..], MAX_FRAME),
            Err(FrameError::TooShort(8))
        ));
    }

    #[test]
    fn a_stream_cut_inside_a_frame_is_truncated_and_a_clean_end_is_none() {
        let bytes = Frame::new(Header::call(1, 1), vec![0; 8]).to_bytes();
        for cut in 1..bytes.len() {
            assert!(
                matches!(
                    read_frame(&mut &bytes[..cut], MAX_FRAME),
                    Err(FrameError::Truncated)
                ),
                "cut at {cut}"
            );
        }
        assert!(read_frame(&mut &[][..], MAX_FRAME).unwrap().is_none());
    }

    #[test]
    fn an_unknown_message_type_is_a_header_error() {
        let mut bytes = Frame::new(Header::call(1, 1), vec![]).to_bytes();
        bytes[19] = 9;
        assert!(matches!(
            read_frame(&mut &bytes[..], MAX_FRAME),
            Err(FrameError::Header(_))
        ));
    }
}
