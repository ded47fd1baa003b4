//! A libvirt RPC client built on the `libvirt-rpc` codec, for the tests
//! that play a hypervisor driver or a hostile client.

#![allow(dead_code)]

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use libvirt_rpc::header::{KEEPALIVE_PING, KEEPALIVE_PONG};
use libvirt_rpc::{
    read_frame, Call, Frame, Header, MessageStatus, MessageType, RemoteError, Ret, MAX_FRAME,
};

pub struct RpcClient {
    pub stream: UnixStream,
    serial: u32,
}

impl RpcClient {
    pub fn connect(path: &Path) -> RpcClient {
        let stream = UnixStream::connect(path).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        RpcClient { stream, serial: 0 }
    }

    /// Sends `call` and waits for its reply.
    pub fn call(&mut self, call: &Call) -> Result<Ret, RemoteError> {
        self.serial += 1;
        let header = Header::call(call.procedure(), self.serial);
        self.send(&Frame::new(header, call.encode_args()));
        self.reply_to(header)
    }

    /// Reads the reply to `header` and decodes it.
    pub fn reply_to(&mut self, header: Header) -> Result<Ret, RemoteError> {
        let reply = self.read().expect("the server closed the connection");
        assert_eq!(reply.header.kind, MessageType::Reply);
        assert_eq!(
            (reply.header.serial, reply.header.procedure),
            (header.serial, header.procedure)
        );
        match reply.header.status {
            MessageStatus::Ok => Ok(Ret::decode(header.procedure, &reply.payload)
                .unwrap()
                .expect("a known procedure")),
            _ => Err(RemoteError::from_bytes(&reply.payload).unwrap()),
        }
    }

    pub fn send(&mut self, frame: &Frame) {
        self.send_bytes(&frame.to_bytes());
    }

    pub fn send_bytes(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    /// The next frame; `None` when the server closed the connection.
    pub fn read(&mut self) -> Option<Frame> {
        read_frame(&mut self.stream, MAX_FRAME).ok().flatten()
    }

    /// The opening virsh sends, read-only or not.
    pub fn open(&mut self, read_only: bool) {
        assert_eq!(self.call(&Call::AuthList), Ok(Ret::AuthTypes(vec![0])));
        assert_eq!(
            self.call(&Call::ConnectSupportsFeature { feature: 10 }),
            Ok(Ret::Int(1))
        );
        let open = Call::ConnectOpen {
            name: Some("nwfilter:///system".into()),
            flags: u32::from(read_only),
        };
        assert_eq!(self.call(&open), Ok(Ret::Void));
    }

    /// A keepalive PING; returns whether a PONG came back.
    pub fn ping(&mut self) -> bool {
        self.send(&Frame::new(Header::keepalive(KEEPALIVE_PING), vec![]));
        matches!(self.read(), Some(f) if f.header.is_keepalive() && f.header.procedure == KEEPALIVE_PONG)
    }

    pub fn close(mut self) {
        assert_eq!(self.call(&Call::ConnectClose), Ok(Ret::Void));
        assert!(self.read().is_none(), "closed after CONNECT_CLOSE");
    }
}
