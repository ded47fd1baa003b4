//! nfnetlink framing for nf_tables: the messages the kernel sends (split
//! into their type, sequence number and attributes) and the ones we send
//! it (built attribute by attribute). Shared by the commit notices
//! (`nft_events`) and our own transactions (`nft_socket`: the removals by
//! rule handle, `nft_removal`, and set elements, `nft_elements`); it
//! knows the wire format only, not what any message means.

/// nfnetlink's nf_tables subsystem (`NFNL_SUBSYS_NFTABLES`), the high
/// byte of an nf_tables message type.
pub(crate) const SUBSYS_NFTABLES: u16 = 10;
/// `NLMSG_ERROR`: an acknowledgement (error 0) or a failure.
pub(crate) const NLMSG_ERROR: u16 = 2;
/// `NLMSG_DONE`: the end of a dump.
pub(crate) const NLMSG_DONE: u16 = 3;
/// `NLM_F_REQUEST`, `NLM_F_ACK`, `NLM_F_DUMP`.
pub(crate) const F_REQUEST: u16 = 1;
pub(crate) const F_ACK: u16 = 4;
pub(crate) const F_DUMP: u16 = 0x300;
/// `struct nlmsghdr` and `struct nfgenmsg`.
const NLMSG_HDR: usize = 16;
const NFGENMSG: usize = 4;
/// The type bits of an attribute (without `NLA_F_NESTED` and
/// `NLA_F_NET_BYTEORDER`).
const NLA_TYPE_MASK: u16 = 0x3fff;
/// The flag of an attribute holding attributes.
const NLA_F_NESTED: u16 = 0x8000;

/// Netlink's 4-byte alignment.
pub(crate) fn pad(len: usize) -> usize {
    (len + 3) & !3
}

/// One message the kernel sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Received<'a> {
    /// `nlmsg_type`.
    pub kind: u16,
    pub seq: u32,
    /// What follows the netlink header (the `nfgenmsg` and attributes,
    /// or an error's code and the header it answers).
    pub body: &'a [u8],
}

impl<'a> Received<'a> {
    /// The nf_tables message number (`NFT_MSG_*`), if it is one.
    pub fn nft_message(&self) -> Option<u16> {
        (self.kind >> 8 == SUBSYS_NFTABLES).then_some(self.kind & 0xff)
    }

    /// An `NLMSG_ERROR`'s code: 0 acknowledges, otherwise a negative errno.
    pub fn error_code(&self) -> Option<i32> {
        if self.kind != NLMSG_ERROR {
            return None;
        }
        let code = self.body.get(..4)?;
        Some(i32::from_ne_bytes([code[0], code[1], code[2], code[3]]))
    }

    /// The `nfgenmsg`'s family (`NFPROTO_*`) of an nf_tables message.
    pub fn family(&self) -> Option<u8> {
        self.body.first().copied()
    }

    /// The attributes after the `nfgenmsg` of an nf_tables message.
    pub fn attributes(&self) -> Attributes<'a> {
        Attributes(self.body.get(NFGENMSG..).unwrap_or_default())
    }
}

/// The messages in one datagram, in order; a truncated tail is skipped.
pub(crate) fn messages(mut data: &[u8]) -> impl Iterator<Item = Received<'_>> + '_ {
    std::iter::from_fn(move || {
        if data.len() < NLMSG_HDR {
            return None;
        }
        let len = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as usize;
        if len < NLMSG_HDR || len > data.len() {
            return None;
        }
        let kind = u16::from_ne_bytes([data[4], data[5]]);
        let seq = u32::from_ne_bytes([data[8], data[9], data[10], data[11]]);
        let (message, rest) = data.split_at(len);
        data = rest.get(pad(len) - len..).unwrap_or_default();
        Some(Received {
            kind,
            seq,
            body: &message[NLMSG_HDR..],
        })
    })
}

/// A list of netlink attributes: `(type, value)` in order; a malformed
/// tail ends it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attributes<'a>(pub &'a [u8]);

impl<'a> Iterator for Attributes<'a> {
    type Item = (u16, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let data = self.0;
        if data.len() < 4 {
            return None;
        }
        let len = u16::from_ne_bytes([data[0], data[1]]) as usize;
        let kind = u16::from_ne_bytes([data[2], data[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > data.len() {
            self.0 = &[];
            return None;
        }
        self.0 = data.get(pad(len)..).unwrap_or_default();
        Some((kind, &data[4..len]))
    }
}

impl<'a> Attributes<'a> {
    /// The value of the first attribute of this type.
    pub fn find(mut self, kind: u16) -> Option<&'a [u8]> {
        self.find_map(|(k, value)| (k == kind).then_some(value))
    }
}

/// A big-endian u32 attribute's value.
pub(crate) fn be32(value: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(value.get(..4)?.try_into().ok()?))
}

/// A big-endian u64 attribute's value.
pub(crate) fn be64(value: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(value.get(..8)?.try_into().ok()?))
}

/// A NUL-terminated string attribute's value.
pub(crate) fn string(value: &[u8]) -> Option<&str> {
    let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
    std::str::from_utf8(&value[..end]).ok()
}

/// Messages to send in one datagram.
#[derive(Debug, Default)]
pub(crate) struct Outgoing {
    data: Vec<u8>,
    /// Where the message being built starts.
    start: usize,
}

impl Outgoing {
    /// Starts a message: its header and `nfgenmsg` (version 0).
    pub fn message(&mut self, kind: u16, flags: u16, seq: u32, family: u8, res_id: u16) {
        self.end_message();
        self.start = self.data.len();
        self.data.extend_from_slice(&0u32.to_ne_bytes());
        self.data.extend_from_slice(&kind.to_ne_bytes());
        self.data.extend_from_slice(&flags.to_ne_bytes());
        self.data.extend_from_slice(&seq.to_ne_bytes());
        self.data.extend_from_slice(&0u32.to_ne_bytes());
        self.data.extend_from_slice(&[family, 0]);
        self.data.extend_from_slice(&res_id.to_be_bytes());
    }

    /// Adds an attribute to the message being built.
    pub fn attribute(&mut self, kind: u16, value: &[u8]) {
        let len = 4 + value.len();
        self.data.extend_from_slice(&(len as u16).to_ne_bytes());
        self.data.extend_from_slice(&kind.to_ne_bytes());
        self.data.extend_from_slice(value);
        self.data.resize(pad(self.data.len()), 0);
    }

    /// Starts a nested attribute (`NLA_F_NESTED`): the attributes added
    /// until [`Outgoing::end_nest`] of the returned mark are inside it.
    pub fn begin_nest(&mut self, kind: u16) -> usize {
        let at = self.data.len();
        self.data.extend_from_slice(&0u16.to_ne_bytes());
        self.data
            .extend_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        at
    }

    /// Ends the nested attribute started at `at`: writes its length.
    pub fn end_nest(&mut self, at: usize) {
        let len = (self.data.len() - at) as u16;
        self.data[at..at + 2].copy_from_slice(&len.to_ne_bytes());
    }

    /// A NUL-terminated string attribute.
    pub fn string(&mut self, kind: u16, value: &str) {
        let mut bytes = Vec::with_capacity(value.len() + 1);
        bytes.extend_from_slice(value.as_bytes());
        bytes.push(0);
        self.attribute(kind, &bytes);
    }

    /// The datagram.
    pub fn finish(mut self) -> Vec<u8> {
        self.end_message();
        self.data
    }

    /// Writes the length of the message being built into its header.
    fn end_message(&mut self) {
        if self.data.len() > self.start {
            let len = (self.data.len() - self.start) as u32;
            self.data[self.start..self.start + 4].copy_from_slice(&len.to_ne_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_messages_read_back_with_their_attributes() {
        let mut out = Outgoing::default();
        out.message((SUBSYS_NFTABLES << 8) | 8, F_REQUEST | F_ACK, 7, 7, 0);
        out.string(1, "nat");
        out.attribute(3, &42u64.to_be_bytes());
        out.message((SUBSYS_NFTABLES << 8) | 5, F_REQUEST, 8, 2, 0);
        out.string(3, "libvirt-I-vnet0");
        let data = out.finish();
        let read: Vec<Received> = messages(&data).collect();
        assert_eq!(read.len(), 2);
        assert_eq!((read[0].nft_message(), read[0].seq), (Some(8), 7));
        let attrs = read[0].attributes();
        assert_eq!(attrs.find(1).and_then(string), Some("nat"));
        assert_eq!(attrs.find(3).and_then(be64), Some(42));
        assert_eq!(
            read[1].attributes().find(3).and_then(string),
            Some("libvirt-I-vnet0")
        );
        assert_eq!(read[1].error_code(), None);
    }

    #[test]
    fn nested_attributes_hold_what_was_added_inside_them() {
        let mut out = Outgoing::default();
        out.message((SUBSYS_NFTABLES << 8) | 12, F_REQUEST, 1, 7, 0);
        out.string(1, "nwfilter");
        let list = out.begin_nest(3);
        let element = out.begin_nest(1);
        out.attribute(1, &[1, 2, 3]);
        out.end_nest(element);
        out.end_nest(list);
        out.string(2, "after");
        let data = out.finish();
        let read: Vec<Received> = messages(&data).collect();
        let attrs = read[0].attributes();
        let list = attrs.find(3).expect("the nest");
        let element = Attributes(list).find(1).expect("inside the nest");
        assert_eq!(Attributes(element).find(1), Some(&[1u8, 2, 3][..]));
        assert_eq!(attrs.find(2).and_then(string), Some("after"));
    }

    #[test]
    fn truncated_messages_and_attributes_end_the_reading() {
        let mut out = Outgoing::default();
        out.message(NLMSG_DONE, 0, 1, 0, 0);
        let data = out.finish();
        assert_eq!(messages(&data[..data.len() - 1]).count(), 0);
        assert_eq!(Attributes(&[8, 0, 1, 0, 0]).count(), 0);
    }
}
