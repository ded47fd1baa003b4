//! libvirt's error structure (`remote_error`) and the codes and domains
//! the network-filter API uses, with libvirt's message prefixes: a client
//! prints `message` as it is, so the prefix ("Network filter not found:
//! …") is part of what the server sends.

use crate::xdr::{DecodeError, Decoder, Encoder};

/// `virErrorNumber` values used here.
pub mod code {
    pub const INTERNAL_ERROR: i32 = 1;
    pub const NO_SUPPORT: i32 = 3;
    pub const NO_CONNECT: i32 = 5;
    pub const INVALID_ARG: i32 = 8;
    pub const OPERATION_FAILED: i32 = 9;
    pub const XML_ERROR: i32 = 27;
    pub const OPERATION_DENIED: i32 = 29;
    pub const RPC: i32 = 39;
    pub const AUTH_FAILED: i32 = 45;
    pub const OPERATION_INVALID: i32 = 55;
    pub const INVALID_NWFILTER: i32 = 61;
    pub const NO_NWFILTER: i32 = 62;
    pub const BUILD_FIREWALL: i32 = 63;
    pub const NO_NWFILTER_BINDING: i32 = 101;
}

/// `virErrorDomain` values used here.
pub mod domain {
    pub const NONE: i32 = 0;
    pub const RPC: i32 = 7;
    pub const NWFILTER: i32 = 33;
}

/// `VIR_ERR_ERROR`.
pub const LEVEL_ERROR: i32 = 2;

/// libvirt's message for `code` with the detail `detail`
/// (`virErrorMsgStrings` in libvirt's `virerror.c`).
pub fn message_for(code: i32, detail: &str) -> String {
    let prefix = match code {
        code::INTERNAL_ERROR => "internal error: ",
        code::NO_SUPPORT => "this function is not supported by the connection driver: ",
        code::NO_CONNECT => "no connection driver available for ",
        code::INVALID_ARG => "invalid argument: ",
        code::OPERATION_FAILED => "operation failed: ",
        code::XML_ERROR => "XML error: ",
        code::OPERATION_DENIED => "operation forbidden: ",
        code::AUTH_FAILED => "authentication failed: ",
        code::OPERATION_INVALID => "Requested operation is not valid: ",
        code::INVALID_NWFILTER => "Invalid network filter: ",
        code::NO_NWFILTER => "Network filter not found: ",
        code::BUILD_FIREWALL => "Error while building firewall: ",
        code::NO_NWFILTER_BINDING => "Network filter binding not found: ",
        _ => "",
    };
    format!("{prefix}{detail}")
}

/// `remote_error`. The domain and network pointers libvirt's structure
/// carries are never sent by this server (always null) and are skipped
/// when decoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteError {
    pub code: i32,
    pub domain: i32,
    pub message: Option<String>,
    pub level: i32,
    pub str1: Option<String>,
    pub str2: Option<String>,
    pub str3: Option<String>,
    pub int1: i32,
    pub int2: i32,
}

impl RemoteError {
    /// An error of `code` in `domain` whose message is libvirt's prefix for
    /// the code followed by `detail`.
    pub fn new(code: i32, domain: i32, detail: &str) -> RemoteError {
        RemoteError {
            code,
            domain,
            message: Some(message_for(code, detail)),
            level: LEVEL_ERROR,
            str1: Some(detail.to_owned()),
            str2: None,
            str3: None,
            int1: -1,
            int2: -1,
        }
    }

    /// libvirt's answer to a procedure the server does not know; clients
    /// read it as "not supported" and fall back to older calls.
    pub fn unknown_procedure(procedure: i32) -> RemoteError {
        let mut e = RemoteError::new(code::RPC, domain::RPC, "");
        e.message = Some(format!("unknown procedure: {procedure}"));
        e.str1 = None;
        e
    }

    /// What a client prints.
    pub fn text(&self) -> &str {
        self.message.as_deref().unwrap_or("unknown error")
    }

    pub fn encode(&self, e: &mut Encoder) {
        e.i32(self.code)
            .i32(self.domain)
            .opt_string(self.message.as_deref())
            .i32(self.level)
            .flag(false) // dom
            .opt_string(self.str1.as_deref())
            .opt_string(self.str2.as_deref())
            .opt_string(self.str3.as_deref())
            .i32(self.int1)
            .i32(self.int2)
            .flag(false); // net
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        self.encode(&mut e);
        e.into_bytes()
    }

    pub fn decode(d: &mut Decoder<'_>) -> Result<RemoteError, DecodeError> {
        let code = d.i32("error code")?;
        let domain = d.i32("error domain")?;
        let message = d.opt_string("error message")?;
        let level = d.i32("error level")?;
        if d.flag("error dom")? {
            d.string("error dom name")?;
            d.fixed::<16>("error dom uuid")?;
            d.i32("error dom id")?;
        }
        let str1 = d.opt_string("error str1")?;
        let str2 = d.opt_string("error str2")?;
        let str3 = d.opt_string("error str3")?;
        let int1 = d.i32("error int1")?;
        let int2 = d.i32("error int2")?;
        if d.flag("error net")? {
            d.string("error net name")?;
            d.fixed::<16>("error net uuid")?;
        }
        Ok(RemoteError {
            code,
            domain,
            message,
            level,
            str1,
            str2,
            str3,
            int1,
            int2,
        })
    }

    /// Decodes a whole error payload.
    pub fn from_bytes(payload: &[u8]) -> Result<RemoteError, DecodeError> {
        let mut d = Decoder::new(payload);
        let e = RemoteError::decode(&mut d)?;
        d.finish()?;
        Ok(e)
    }
}

impl std::fmt::Display for RemoteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} (code {}, domain {})",
            self.text(),
            self.code,
            self.domain
        )
    }
}

impl std::error::Error for RemoteError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_round_trip_with_libvirts_prefix() {
        let e = RemoteError::new(code::NO_NWFILTER, domain::NWFILTER, "no filter 'x'");
        assert_eq!(e.text(), "Network filter not found: no filter 'x'");
        assert_eq!(RemoteError::from_bytes(&e.to_bytes()).unwrap(), e);
    }

    #[test]
    fn unknown_procedure_is_an_rpc_error() {
        let e = RemoteError::unknown_procedure(9999);
        assert_eq!((e.code, e.domain, e.level), (39, 7, 2));
        assert_eq!(e.text(), "unknown procedure: 9999");
    }
}
