//! The kernel telling us about network interfaces: a netlink socket on
//! rtnetlink's `RTNLGRP_LINK` multicast group, which gets an
//! `RTM_NEWLINK` whenever an interface appears or changes (joining or
//! leaving a bridge changes its `IFLA_MASTER`) and an `RTM_DELLINK` when
//! it goes. A dump of every interface (`RTM_GETLINK`) gives the state to
//! start from, on the same socket, so no change falls between the two.

use std::io;

use netlink_sys::{protocols::NETLINK_ROUTE, Socket, SocketAddr};

/// `RTNLGRP_LINK`.
const RTNLGRP_LINK: u32 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_OVERRUN: u16 = 4;
const RTM_NEWLINK: u16 = 16;
const RTM_DELLINK: u16 = 17;
const RTM_GETLINK: u16 = 18;
const NLM_F_REQUEST: u16 = 1;
/// `NLM_F_ROOT | NLM_F_MATCH`.
const NLM_F_DUMP: u16 = 0x300;
const IFLA_ADDRESS: u16 = 1;
const IFLA_IFNAME: u16 = 3;
const IFLA_MASTER: u16 = 10;
const IFLA_IFALIAS: u16 = 20;
/// `struct nlmsghdr` and `struct ifinfomsg`.
const NLMSG_HDR: usize = 16;
const IFINFOMSG: usize = 16;
/// Room for a dump of many interfaces and a burst of changes.
const RECEIVE_BUFFER: usize = 4 << 20;

/// One interface as the kernel described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    pub index: u32,
    pub name: String,
    /// Its hardware address, when it has an Ethernet one.
    pub mac: Option<[u8; 6]>,
    /// The interface index of the bridge it is a port of.
    pub master: Option<u32>,
    /// `ip link set dev X alias TEXT`.
    pub alias: Option<String>,
}

/// What one message said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkEvent {
    /// The interface exists, as described (new, changed, or in a dump).
    Present(Link),
    /// The interface is gone.
    Gone(Link),
    /// A dump is complete: every interface not reported since it was
    /// asked for is gone.
    DumpDone,
    /// Notifications were lost (the socket overflowed): ask for a dump.
    Lost,
}

/// A subscription to interface changes.
#[derive(Debug)]
pub struct LinkEvents {
    socket: Socket,
    buf: Vec<u8>,
    seq: u32,
}

impl LinkEvents {
    /// Joins the link group (no privilege needed).
    pub fn open() -> io::Result<LinkEvents> {
        let mut socket = Socket::new(NETLINK_ROUTE)?;
        socket.bind_auto()?;
        socket.add_membership(RTNLGRP_LINK)?;
        // Best effort: a too-small buffer only means an overflow, which
        // is reported as `Lost` and answered with a dump.
        let _ = socket.set_rx_buf_sz(RECEIVE_BUFFER);
        Ok(LinkEvents {
            socket,
            buf: vec![0; 64 * 1024],
            seq: 0,
        })
    }

    /// Asks the kernel for every interface; the answer comes as
    /// `Present` events ended by `DumpDone`.
    pub fn request_dump(&mut self) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let len = (NLMSG_HDR + IFINFOMSG) as u32;
        let mut msg = Vec::with_capacity(len as usize);
        msg.extend_from_slice(&len.to_ne_bytes());
        msg.extend_from_slice(&RTM_GETLINK.to_ne_bytes());
        msg.extend_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
        msg.extend_from_slice(&self.seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(&[0; IFINFOMSG]);
        self.socket.send_to(&msg, &SocketAddr::new(0, 0), 0)?;
        Ok(())
    }

    /// Waits for the next datagram and returns what it said.
    pub fn receive(&mut self) -> io::Result<Vec<LinkEvent>> {
        loop {
            let mut buf = std::mem::take(&mut self.buf);
            let received = self.socket.recv(&mut &mut buf[..], 0);
            let result = match received {
                Ok(n) => Ok(parse_messages(&buf[..n.min(buf.len())])),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {
                    self.buf = buf;
                    continue;
                }
                // ENOBUFS: the socket overflowed, notifications were lost.
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => Ok(vec![LinkEvent::Lost]),
                Err(e) => Err(e),
            };
            self.buf = buf;
            return result;
        }
    }
}

/// The events of one datagram (several messages, each 4-byte aligned).
pub fn parse_messages(mut data: &[u8]) -> Vec<LinkEvent> {
    let mut events = Vec::new();
    while data.len() >= NLMSG_HDR {
        let len = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as usize;
        let kind = u16::from_ne_bytes([data[4], data[5]]);
        if len < NLMSG_HDR || len > data.len() {
            break;
        }
        let (message, rest) = data.split_at(len);
        data = rest.get(pad(len) - len..).unwrap_or_default();
        match kind {
            NLMSG_DONE => events.push(LinkEvent::DumpDone),
            // An error answering our dump, or an overrun: start over.
            NLMSG_ERROR | NLMSG_OVERRUN => events.push(LinkEvent::Lost),
            RTM_NEWLINK | RTM_DELLINK => {
                if let Some(link) = parse_link(&message[NLMSG_HDR..]) {
                    events.push(if kind == RTM_NEWLINK {
                        LinkEvent::Present(link)
                    } else {
                        LinkEvent::Gone(link)
                    });
                }
            }
            _ => {}
        }
    }
    events
}

/// An `ifinfomsg` and its attributes; `None` if it is cut short or has
/// no name.
fn parse_link(body: &[u8]) -> Option<Link> {
    let header = body.get(..IFINFOMSG)?;
    let index = u32::from_ne_bytes([header[4], header[5], header[6], header[7]]);
    let (mut name, mut mac, mut master, mut alias) = (None, None, None, None);
    let mut attrs = &body[IFINFOMSG..];
    while attrs.len() >= 4 {
        let len = u16::from_ne_bytes([attrs[0], attrs[1]]) as usize;
        // NLA_F_NESTED and NLA_F_NET_BYTEORDER are flags, not the type.
        let kind = u16::from_ne_bytes([attrs[2], attrs[3]]) & 0x3fff;
        if len < 4 || len > attrs.len() {
            break;
        }
        let value = &attrs[4..len];
        match kind {
            IFLA_IFNAME => name = c_string(value),
            IFLA_IFALIAS => alias = c_string(value),
            IFLA_ADDRESS => mac = <[u8; 6]>::try_from(value).ok(),
            IFLA_MASTER if value.len() >= 4 => {
                let m = u32::from_ne_bytes([value[0], value[1], value[2], value[3]]);
                master = (m != 0).then_some(m);
            }
            _ => {}
        }
        attrs = attrs.get(pad(len)..).unwrap_or_default();
    }
    Some(Link {
        index,
        name: name?,
        mac,
        master,
        alias,
    })
}

/// A NUL-terminated string attribute.
fn c_string(value: &[u8]) -> Option<String> {
    let text = value.split(|b| *b == 0).next()?;
    String::from_utf8(text.to_vec()).ok()
}

/// Netlink's 4-byte alignment.
fn pad(len: usize) -> usize {
    (len + 3) & !3
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut a = Vec::new();
        a.extend_from_slice(&((4 + value.len()) as u16).to_ne_bytes());
        a.extend_from_slice(&kind.to_ne_bytes());
        a.extend_from_slice(value);
        a.resize(pad(a.len()), 0);
        a
    }

    fn message(kind: u16, index: u32, attrs: &[Vec<u8>]) -> Vec<u8> {
        let mut body = vec![0u8; IFINFOMSG];
        body[4..8].copy_from_slice(&index.to_ne_bytes());
        for a in attrs {
            body.extend_from_slice(a);
        }
        let mut m = Vec::new();
        m.extend_from_slice(&((NLMSG_HDR + body.len()) as u32).to_ne_bytes());
        m.extend_from_slice(&kind.to_ne_bytes());
        m.extend_from_slice(&[0; 10]);
        m.extend_from_slice(&body);
        m
    }

    #[test]
    fn a_port_joining_a_bridge_is_read_with_its_mac_master_and_alias() {
        let joined = message(
            RTM_NEWLINK,
            7,
            &[
                attr(IFLA_IFNAME, b"vnet0\0"),
                attr(IFLA_ADDRESS, &[0xfe, 0x54, 0, 0, 0, 0x0a]),
                attr(IFLA_MASTER, &3u32.to_ne_bytes()),
                attr(IFLA_IFALIAS, b"portgroup=web\0"),
            ],
        );
        let gone = message(RTM_DELLINK, 7, &[attr(IFLA_IFNAME, b"vnet0\0")]);
        let mut done = message(NLMSG_DONE, 0, &[]);
        done.truncate(NLMSG_HDR + 4);
        done[..4].copy_from_slice(&((NLMSG_HDR + 4) as u32).to_ne_bytes());
        let events = parse_messages(&[joined, gone, done].concat());
        let port = Link {
            index: 7,
            name: "vnet0".into(),
            mac: Some([0xfe, 0x54, 0, 0, 0, 0x0a]),
            master: Some(3),
            alias: Some("portgroup=web".into()),
        };
        let bare = Link {
            mac: None,
            master: None,
            alias: None,
            ..port.clone()
        };
        assert_eq!(
            events,
            [
                LinkEvent::Present(port),
                LinkEvent::Gone(bare),
                LinkEvent::DumpDone
            ]
        );
    }

    #[test]
    fn leaving_a_bridge_is_a_link_without_master_and_junk_is_skipped() {
        let left = message(
            RTM_NEWLINK,
            9,
            &[
                attr(IFLA_IFNAME, b"tap1\0"),
                attr(IFLA_MASTER, &0u32.to_ne_bytes()),
            ],
        );
        let events = parse_messages(&left);
        let LinkEvent::Present(link) = &events[0] else {
            panic!("{events:?}")
        };
        assert_eq!(link.master, None);
        // Cut short, and a message claiming more than there is.
        assert!(parse_messages(&left[..10]).is_empty());
        let mut liar = left.clone();
        liar[..4].copy_from_slice(&1000u32.to_ne_bytes());
        assert!(parse_messages(&liar).is_empty());
        // Without a name: nothing to act on.
        assert!(parse_messages(&message(RTM_NEWLINK, 4, &[])).is_empty());
    }
}
