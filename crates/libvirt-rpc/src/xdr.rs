//! XDR (RFC 4506), the part libvirt's messages use: 32-bit integers,
//! 64-bit "hyper" integers, doubles, length-prefixed strings padded to 4
//! bytes, fixed opaque data, optional values and counted arrays.
//!
//! The decoder never trusts a length it reads: every count and string
//! length is checked against both the protocol's maximum and the bytes
//! actually left before anything is allocated.

/// Longest string libvirt sends (`REMOTE_STRING_MAX`, 4 MiB).
pub const STRING_MAX: usize = 4 * 1024 * 1024;

/// Why a payload could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{what} at byte {offset}: the payload ends after {left} more byte(s)")]
    Truncated {
        what: &'static str,
        offset: usize,
        left: usize,
    },
    #[error("{what} at byte {offset}: length {len} is over the limit of {max}")]
    TooLong {
        what: &'static str,
        offset: usize,
        len: usize,
        max: usize,
    },
    #[error("{what} at byte {offset}: not valid UTF-8")]
    NotUtf8 { what: &'static str, offset: usize },
    #[error("{what} at byte {offset}: {value} is not a valid value")]
    BadValue {
        what: &'static str,
        offset: usize,
        value: i64,
    },
    #[error("{left} unexpected byte(s) after the payload, at byte {offset}")]
    Trailing { offset: usize, left: usize },
}

/// Reads XDR values from a payload, front to back.
#[derive(Debug)]
pub struct Decoder<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> Decoder<'a> {
    pub fn new(bytes: &'a [u8]) -> Decoder<'a> {
        Decoder { bytes, offset: 0 }
    }

    /// Where the next value starts.
    pub fn offset(&self) -> usize {
        self.offset
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], DecodeError> {
        let left = self.bytes.len() - self.offset;
        if n > left {
            return Err(DecodeError::Truncated {
                what,
                offset: self.offset,
                left,
            });
        }
        let start = self.offset;
        self.offset += n;
        Ok(&self.bytes[start..start + n])
    }

    pub fn u32(&mut self, what: &'static str) -> Result<u32, DecodeError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub fn i32(&mut self, what: &'static str) -> Result<i32, DecodeError> {
        Ok(self.u32(what)? as i32)
    }

    pub fn u64(&mut self, what: &'static str) -> Result<u64, DecodeError> {
        let b = self.take(8, what)?;
        let mut word = [0u8; 8];
        word.copy_from_slice(b);
        Ok(u64::from_be_bytes(word))
    }

    pub fn i64(&mut self, what: &'static str) -> Result<i64, DecodeError> {
        Ok(self.u64(what)? as i64)
    }

    pub fn f64(&mut self, what: &'static str) -> Result<f64, DecodeError> {
        Ok(f64::from_bits(self.u64(what)?))
    }

    /// An XDR `bool`-like int that must be 0 or 1.
    pub fn flag(&mut self, what: &'static str) -> Result<bool, DecodeError> {
        let offset = self.offset;
        match self.u32(what)? {
            0 => Ok(false),
            1 => Ok(true),
            v => Err(DecodeError::BadValue {
                what,
                offset,
                value: v.into(),
            }),
        }
    }

    /// A count or length prefix, checked against `max` and the bytes left
    /// (each element takes at least `min_size` bytes).
    pub fn count(
        &mut self,
        what: &'static str,
        max: usize,
        min_size: usize,
    ) -> Result<usize, DecodeError> {
        let offset = self.offset;
        let len = self.u32(what)? as usize;
        if len > max {
            return Err(DecodeError::TooLong {
                what,
                offset,
                len,
                max,
            });
        }
        let left = self.bytes.len() - self.offset;
        if len.saturating_mul(min_size.max(1)) > left && min_size > 0 {
            return Err(DecodeError::Truncated {
                what,
                offset: self.offset,
                left,
            });
        }
        Ok(len)
    }

    /// Variable-length opaque data with its padding.
    pub fn opaque(&mut self, what: &'static str, max: usize) -> Result<&'a [u8], DecodeError> {
        let len = self.count(what, max, 1)?;
        let data = self.take(len, what)?;
        self.take(pad(len), what)?;
        Ok(data)
    }

    /// `remote_nonnull_string`.
    pub fn string(&mut self, what: &'static str) -> Result<String, DecodeError> {
        let offset = self.offset;
        let data = self.opaque(what, STRING_MAX)?;
        String::from_utf8(data.to_vec()).map_err(|_| DecodeError::NotUtf8 { what, offset })
    }

    /// `remote_string`: a string that may be absent.
    pub fn opt_string(&mut self, what: &'static str) -> Result<Option<String>, DecodeError> {
        if self.flag(what)? {
            self.string(what).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Fixed-length opaque data (a UUID).
    pub fn fixed<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], DecodeError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        self.take(pad(N), what)?;
        Ok(out)
    }

    /// Checks that the whole payload was used.
    pub fn finish(self) -> Result<(), DecodeError> {
        let left = self.bytes.len() - self.offset;
        if left == 0 {
            Ok(())
        } else {
            Err(DecodeError::Trailing {
                offset: self.offset,
                left,
            })
        }
    }
}

/// Builds an XDR payload.
#[derive(Debug, Default)]
pub struct Encoder {
    bytes: Vec<u8>,
}

impl Encoder {
    pub fn new() -> Encoder {
        Encoder::default()
    }

    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    pub fn u32(&mut self, v: u32) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn i32(&mut self, v: i32) -> &mut Self {
        self.u32(v as u32)
    }

    pub fn u64(&mut self, v: u64) -> &mut Self {
        self.bytes.extend_from_slice(&v.to_be_bytes());
        self
    }

    pub fn i64(&mut self, v: i64) -> &mut Self {
        self.u64(v as u64)
    }

    pub fn f64(&mut self, v: f64) -> &mut Self {
        self.u64(v.to_bits())
    }

    pub fn flag(&mut self, v: bool) -> &mut Self {
        self.u32(u32::from(v))
    }

    /// A count prefix. Callers keep their arrays within the protocol's
    /// limits (lengths past `u32` cannot be sent at all).
    pub fn count(&mut self, n: usize) -> &mut Self {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX))
    }

    pub fn opaque(&mut self, data: &[u8]) -> &mut Self {
        self.count(data.len());
        self.bytes.extend_from_slice(data);
        self.bytes.extend(std::iter::repeat_n(0, pad(data.len())));
        self
    }

    pub fn string(&mut self, s: &str) -> &mut Self {
        self.opaque(s.as_bytes())
    }

    pub fn opt_string(&mut self, s: Option<&str>) -> &mut Self {
        match s {
            Some(s) => self.flag(true).string(s),
            None => self.flag(false),
        }
    }

    pub fn fixed(&mut self, data: &[u8]) -> &mut Self {
        self.bytes.extend_from_slice(data);
        self.bytes.extend(std::iter::repeat_n(0, pad(data.len())));
        self
    }
}

/// Bytes of padding after `len` bytes of data.
fn pad(len: usize) -> usize {
    (4 - len % 4) % 4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_padded_to_four_bytes() {
        let mut e = Encoder::new();
        e.string("abcde").opt_string(None).opt_string(Some(""));
        let bytes = e.into_bytes();
        assert_eq!(
            bytes,
            [
                0, 0, 0, 5, b'a', b'b', b'c', b'd', b'e', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
                0
            ]
        );
        let mut d = Decoder::new(&bytes);
        assert_eq!(d.string("s").unwrap(), "abcde");
        assert_eq!(d.opt_string("a").unwrap(), None);
        assert_eq!(d.opt_string("b").unwrap(), Some(String::new()));
        d.finish().unwrap();
    }

    #[test]
    fn a_length_past_the_payload_is_refused_before_allocating() {
        let bytes = [0x00, 0x3f, 0xff, 0xff, b'x'];
        let err = Decoder::new(&bytes).string("xml").unwrap_err();
        assert!(
            matches!(err, DecodeError::Truncated { what: "xml", .. }),
            "{err}"
        );
        let bytes = [0xff, 0xff, 0xff, 0xff];
        let err = Decoder::new(&bytes).string("xml").unwrap_err();
        assert!(matches!(err, DecodeError::TooLong { .. }), "{err}");
    }

    #[test]
    fn optional_marker_must_be_zero_or_one() {
        let err = Decoder::new(&[0, 0, 0, 2]).opt_string("name").unwrap_err();
        assert_eq!(err.to_string(), "name at byte 0: 2 is not a valid value");
    }

    #[test]
    fn trailing_bytes_are_an_error() {
        let d = Decoder::new(&[0, 0, 0, 0]);
        assert!(matches!(
            d.finish(),
            Err(DecodeError::Trailing { left: 4, .. })
        ));
    }

    #[test]
    fn non_utf8_strings_are_refused() {
        let err = Decoder::new(&[0, 0, 0, 1, 0xff, 0, 0, 0])
            .string("name")
            .unwrap_err();
        assert!(matches!(err, DecodeError::NotUtf8 { .. }));
    }
}
