//! The calls of the network-filter API (`remote_protocol.x`): each
//! procedure number with its decoded arguments.

use crate::xdr::{DecodeError, Decoder, Encoder};

/// Procedure numbers (`remote_procedure`).
pub mod proc {
    pub const CONNECT_OPEN: i32 = 1;
    pub const CONNECT_CLOSE: i32 = 2;
    pub const CONNECT_GET_TYPE: i32 = 3;
    pub const CONNECT_GET_VERSION: i32 = 4;
    pub const CONNECT_GET_HOSTNAME: i32 = 59;
    pub const CONNECT_SUPPORTS_FEATURE: i32 = 60;
    pub const AUTH_LIST: i32 = 66;
    pub const CONNECT_GET_URI: i32 = 110;
    pub const CONNECT_IS_SECURE: i32 = 149;
    pub const CONNECT_GET_LIB_VERSION: i32 = 157;
    pub const NWFILTER_LOOKUP_BY_NAME: i32 = 175;
    pub const NWFILTER_LOOKUP_BY_UUID: i32 = 176;
    pub const NWFILTER_GET_XML_DESC: i32 = 177;
    pub const CONNECT_NUM_OF_NWFILTERS: i32 = 178;
    pub const CONNECT_LIST_NWFILTERS: i32 = 179;
    pub const NWFILTER_DEFINE_XML: i32 = 180;
    pub const NWFILTER_UNDEFINE: i32 = 181;
    pub const CONNECT_LIST_ALL_NWFILTERS: i32 = 286;
    pub const NWFILTER_BINDING_LOOKUP_BY_PORT_DEV: i32 = 397;
    pub const NWFILTER_BINDING_GET_XML_DESC: i32 = 398;
    pub const NWFILTER_BINDING_CREATE_XML: i32 = 399;
    pub const NWFILTER_BINDING_DELETE: i32 = 400;
    pub const CONNECT_LIST_ALL_NWFILTER_BINDINGS: i32 = 401;
    pub const CONNECT_SET_IDENTITY: i32 = 419;
    pub const NWFILTER_DEFINE_XML_FLAGS: i32 = 431;
}

/// Most names in a list reply (`REMOTE_NWFILTER_LIST_MAX`).
pub const NWFILTER_LIST_MAX: usize = 16384;
/// Most bindings in a list reply (`REMOTE_NWFILTER_BINDING_LIST_MAX`).
pub const BINDING_LIST_MAX: usize = 16384;
/// Most identity parameters (`REMOTE_CONNECT_IDENTITY_PARAMS_MAX`).
pub const IDENTITY_PARAMS_MAX: usize = 20;
/// Most auth types in `AUTH_LIST` (`REMOTE_AUTH_TYPE_LIST_MAX`).
pub const AUTH_TYPE_LIST_MAX: usize = 20;

/// Features a client asks about (`virDrvFeature`).
pub mod feature {
    pub const PROGRAM_KEEPALIVE: i32 = 10;
    pub const REMOTE_EVENT_CALLBACK: i32 = 14;
    pub const REMOTE_CLOSE_CALLBACK: i32 = 15;
}

/// `VIR_CONNECT_RO` in `CONNECT_OPEN`'s flags.
pub const CONNECT_RO: u32 = 1;
/// `VIR_CONNECT_NO_ALIASES`.
pub const CONNECT_NO_ALIASES: u32 = 2;
/// `VIR_NWFILTER_DEFINE_VALIDATE` and `VIR_NWFILTER_BINDING_CREATE_VALIDATE`.
pub const VALIDATE: u32 = 1;

/// `remote_nonnull_nwfilter`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NwfilterRef {
    pub name: String,
    pub uuid: [u8; 16],
}

impl NwfilterRef {
    pub fn encode(&self, e: &mut Encoder) {
        e.string(&self.name).fixed(&self.uuid);
    }

    pub fn decode(d: &mut Decoder<'_>) -> Result<NwfilterRef, DecodeError> {
        Ok(NwfilterRef {
            name: d.string("nwfilter name")?,
            uuid: d.fixed::<16>("nwfilter uuid")?,
        })
    }
}

/// `remote_nonnull_nwfilter_binding`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindingRef {
    pub portdev: String,
    pub filtername: String,
}

impl BindingRef {
    pub fn encode(&self, e: &mut Encoder) {
        e.string(&self.portdev).string(&self.filtername);
    }

    pub fn decode(d: &mut Decoder<'_>) -> Result<BindingRef, DecodeError> {
        Ok(BindingRef {
            portdev: d.string("binding portdev")?,
            filtername: d.string("binding filtername")?,
        })
    }
}

/// The value of a `remote_typed_param`.
#[derive(Debug, Clone, PartialEq)]
pub enum TypedValue {
    Int(i32),
    UInt(u32),
    LLong(i64),
    ULLong(u64),
    Double(f64),
    Boolean(i32),
    String(String),
}

/// `remote_typed_param` (identity claims of `CONNECT_SET_IDENTITY`).
#[derive(Debug, Clone, PartialEq)]
pub struct TypedParam {
    pub field: String,
    pub value: TypedValue,
}

impl TypedParam {
    pub fn encode(&self, e: &mut Encoder) {
        e.string(&self.field);
        match &self.value {
            TypedValue::Int(v) => e.i32(1).i32(*v),
            TypedValue::UInt(v) => e.i32(2).u32(*v),
            TypedValue::LLong(v) => e.i32(3).i64(*v),
            TypedValue::ULLong(v) => e.i32(4).u64(*v),
            TypedValue::Double(v) => e.i32(5).f64(*v),
            TypedValue::Boolean(v) => e.i32(6).i32(*v),
            TypedValue::String(v) => e.i32(7).string(v),
        };
    }

    pub fn decode(d: &mut Decoder<'_>) -> Result<TypedParam, DecodeError> {
        let field = d.string("typed parameter field")?;
        let at = d.offset();
        let value = match d.i32("typed parameter type")? {
            1 => TypedValue::Int(d.i32("typed parameter value")?),
            2 => TypedValue::UInt(d.u32("typed parameter value")?),
            3 => TypedValue::LLong(d.i64("typed parameter value")?),
            4 => TypedValue::ULLong(d.u64("typed parameter value")?),
            5 => TypedValue::Double(d.f64("typed parameter value")?),
            6 => TypedValue::Boolean(d.i32("typed parameter value")?),
            7 => TypedValue::String(d.string("typed parameter value")?),
            other => {
                return Err(DecodeError::BadValue {
                    what: "typed parameter type",
                    offset: at,
                    value: other.into(),
                })
            }
        };
        Ok(TypedParam { field, value })
    }
}

/// A call with its arguments.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    AuthList,
    ConnectOpen { name: Option<String>, flags: u32 },
    ConnectClose,
    ConnectGetType,
    ConnectGetVersion,
    ConnectGetHostname,
    ConnectSupportsFeature { feature: i32 },
    ConnectGetUri,
    ConnectIsSecure,
    ConnectGetLibVersion,
    ConnectSetIdentity { params: Vec<TypedParam>, flags: u32 },
    NwfilterLookupByName { name: String },
    NwfilterLookupByUuid { uuid: [u8; 16] },
    NwfilterGetXmlDesc { nwfilter: NwfilterRef, flags: u32 },
    ConnectNumOfNwfilters,
    ConnectListNwfilters { maxnames: i32 },
    NwfilterDefineXml { xml: String },
    NwfilterDefineXmlFlags { xml: String, flags: u32 },
    NwfilterUndefine { nwfilter: NwfilterRef },
    ConnectListAllNwfilters { need_results: i32, flags: u32 },
    BindingLookupByPortDev { name: String },
    BindingGetXmlDesc { binding: BindingRef, flags: u32 },
    BindingCreateXml { xml: String, flags: u32 },
    BindingDelete { binding: BindingRef },
    ConnectListAllBindings { need_results: i32, flags: u32 },
}

/// Why a call's payload was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    #[error("unknown procedure: {0}")]
    UnknownProcedure(i32),
    #[error("cannot decode the arguments of procedure {procedure}: {source}")]
    Malformed {
        procedure: i32,
        #[source]
        source: DecodeError,
    },
}

impl Call {
    /// The procedure number.
    pub fn procedure(&self) -> i32 {
        use proc::*;
        match self {
            Call::AuthList => AUTH_LIST,
            Call::ConnectOpen { .. } => CONNECT_OPEN,
            Call::ConnectClose => CONNECT_CLOSE,
            Call::ConnectGetType => CONNECT_GET_TYPE,
            Call::ConnectGetVersion => CONNECT_GET_VERSION,
            Call::ConnectGetHostname => CONNECT_GET_HOSTNAME,
            Call::ConnectSupportsFeature { .. } => CONNECT_SUPPORTS_FEATURE,
            Call::ConnectGetUri => CONNECT_GET_URI,
            Call::ConnectIsSecure => CONNECT_IS_SECURE,
            Call::ConnectGetLibVersion => CONNECT_GET_LIB_VERSION,
            Call::ConnectSetIdentity { .. } => CONNECT_SET_IDENTITY,
            Call::NwfilterLookupByName { .. } => NWFILTER_LOOKUP_BY_NAME,
            Call::NwfilterLookupByUuid { .. } => NWFILTER_LOOKUP_BY_UUID,
            Call::NwfilterGetXmlDesc { .. } => NWFILTER_GET_XML_DESC,
            Call::ConnectNumOfNwfilters => CONNECT_NUM_OF_NWFILTERS,
            Call::ConnectListNwfilters { .. } => CONNECT_LIST_NWFILTERS,
            Call::NwfilterDefineXml { .. } => NWFILTER_DEFINE_XML,
            Call::NwfilterDefineXmlFlags { .. } => NWFILTER_DEFINE_XML_FLAGS,
            Call::NwfilterUndefine { .. } => NWFILTER_UNDEFINE,
            Call::ConnectListAllNwfilters { .. } => CONNECT_LIST_ALL_NWFILTERS,
            Call::BindingLookupByPortDev { .. } => NWFILTER_BINDING_LOOKUP_BY_PORT_DEV,
            Call::BindingGetXmlDesc { .. } => NWFILTER_BINDING_GET_XML_DESC,
            Call::BindingCreateXml { .. } => NWFILTER_BINDING_CREATE_XML,
            Call::BindingDelete { .. } => NWFILTER_BINDING_DELETE,
            Call::ConnectListAllBindings { .. } => CONNECT_LIST_ALL_NWFILTER_BINDINGS,
        }
    }

    /// Whether the call changes anything (refused on a read-only
    /// connection, as libvirt refuses it).
    pub fn changes_state(&self) -> bool {
        matches!(
            self,
            Call::ConnectSetIdentity { .. }
                | Call::NwfilterDefineXml { .. }
                | Call::NwfilterDefineXmlFlags { .. }
                | Call::NwfilterUndefine { .. }
                | Call::BindingCreateXml { .. }
                | Call::BindingDelete { .. }
        )
    }

    /// libvirt's public function behind the call (for error messages such
    /// as "read only access prevents virNWFilterDefineXML").
    pub fn api_name(&self) -> &'static str {
        match self {
            Call::ConnectSetIdentity { .. } => "virConnectSetIdentity",
            Call::NwfilterDefineXml { .. } => "virNWFilterDefineXML",
            Call::NwfilterDefineXmlFlags { .. } => "virNWFilterDefineXMLFlags",
            Call::NwfilterUndefine { .. } => "virNWFilterUndefine",
            Call::BindingCreateXml { .. } => "virNWFilterBindingCreateXML",
            Call::BindingDelete { .. } => "virNWFilterBindingDelete",
            _ => "this call",
        }
    }

    /// Decodes the arguments of `procedure`; the whole payload must be used.
    pub fn decode(procedure: i32, payload: &[u8]) -> Result<Call, CallError> {
        let malformed = |source| CallError::Malformed { procedure, source };
        let mut d = Decoder::new(payload);
        let call = decode_args(procedure, &mut d)
            .map_err(malformed)?
            .ok_or(CallError::UnknownProcedure(procedure))?;
        d.finish().map_err(malformed)?;
        Ok(call)
    }

    /// The arguments as sent.
    pub fn encode_args(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        match self {
            Call::AuthList
            | Call::ConnectClose
            | Call::ConnectGetType
            | Call::ConnectGetVersion
            | Call::ConnectGetHostname
            | Call::ConnectGetUri
            | Call::ConnectIsSecure
            | Call::ConnectGetLibVersion
            | Call::ConnectNumOfNwfilters => {}
            Call::ConnectOpen { name, flags } => {
                e.opt_string(name.as_deref()).u32(*flags);
            }
            Call::ConnectSupportsFeature { feature } => {
                e.i32(*feature);
            }
            Call::ConnectSetIdentity { params, flags } => {
                e.count(params.len());
                params.iter().for_each(|p| p.encode(&mut e));
                e.u32(*flags);
            }
            Call::NwfilterLookupByName { name } | Call::BindingLookupByPortDev { name } => {
                e.string(name);
            }
            Call::NwfilterLookupByUuid { uuid } => {
                e.fixed(uuid);
            }
            Call::NwfilterGetXmlDesc { nwfilter, flags } => {
                nwfilter.encode(&mut e);
                e.u32(*flags);
            }
            Call::ConnectListNwfilters { maxnames } => {
                e.i32(*maxnames);
            }
            Call::NwfilterDefineXml { xml } => {
                e.string(xml);
            }
            Call::NwfilterDefineXmlFlags { xml, flags } | Call::BindingCreateXml { xml, flags } => {
                e.string(xml).u32(*flags);
            }
            Call::NwfilterUndefine { nwfilter } => nwfilter.encode(&mut e),
            Call::ConnectListAllNwfilters {
                need_results,
                flags,
            }
            | Call::ConnectListAllBindings {
                need_results,
                flags,
            } => {
                e.i32(*need_results).u32(*flags);
            }
            Call::BindingGetXmlDesc { binding, flags } => {
                binding.encode(&mut e);
                e.u32(*flags);
            }
            Call::BindingDelete { binding } => binding.encode(&mut e),
        }
        e.into_bytes()
    }
}

/// `Ok(None)`: a procedure this module does not know.
fn decode_args(procedure: i32, d: &mut Decoder<'_>) -> Result<Option<Call>, DecodeError> {
    use proc::*;
    Ok(Some(match procedure {
        AUTH_LIST => Call::AuthList,
        CONNECT_OPEN => Call::ConnectOpen {
            name: d.opt_string("name")?,
            flags: d.u32("flags")?,
        },
        CONNECT_CLOSE => Call::ConnectClose,
        CONNECT_GET_TYPE => Call::ConnectGetType,
        CONNECT_GET_VERSION => Call::ConnectGetVersion,
        CONNECT_GET_HOSTNAME => Call::ConnectGetHostname,
        CONNECT_SUPPORTS_FEATURE => Call::ConnectSupportsFeature {
            feature: d.i32("feature")?,
        },
        CONNECT_GET_URI => Call::ConnectGetUri,
        CONNECT_IS_SECURE => Call::ConnectIsSecure,
        CONNECT_GET_LIB_VERSION => Call::ConnectGetLibVersion,
        CONNECT_SET_IDENTITY => {
            // field (>= 4 bytes) + type (4) + value (>= 4).
            let n = d.count("identity parameters", IDENTITY_PARAMS_MAX, 12)?;
            let params = (0..n)
                .map(|_| TypedParam::decode(d))
                .collect::<Result<_, _>>()?;
            Call::ConnectSetIdentity {
                params,
                flags: d.u32("flags")?,
            }
        }
        NWFILTER_LOOKUP_BY_NAME => Call::NwfilterLookupByName {
            name: d.string("name")?,
        },
        NWFILTER_LOOKUP_BY_UUID => Call::NwfilterLookupByUuid {
            uuid: d.fixed::<16>("uuid")?,
        },
        NWFILTER_GET_XML_DESC => Call::NwfilterGetXmlDesc {
            nwfilter: NwfilterRef::decode(d)?,
            flags: d.u32("flags")?,
        },
        CONNECT_NUM_OF_NWFILTERS => Call::ConnectNumOfNwfilters,
        CONNECT_LIST_NWFILTERS => Call::ConnectListNwfilters {
            maxnames: d.i32("maxnames")?,
        },
        NWFILTER_DEFINE_XML => Call::NwfilterDefineXml {
            xml: d.string("xml")?,
        },
        NWFILTER_DEFINE_XML_FLAGS => Call::NwfilterDefineXmlFlags {
            xml: d.string("xml")?,
            flags: d.u32("flags")?,
        },
        NWFILTER_UNDEFINE => Call::NwfilterUndefine {
            nwfilter: NwfilterRef::decode(d)?,
        },
        CONNECT_LIST_ALL_NWFILTERS => Call::ConnectListAllNwfilters {
            need_results: d.i32("need_results")?,
            flags: d.u32("flags")?,
        },
        NWFILTER_BINDING_LOOKUP_BY_PORT_DEV => Call::BindingLookupByPortDev {
            name: d.string("name")?,
        },
        NWFILTER_BINDING_GET_XML_DESC => Call::BindingGetXmlDesc {
            binding: BindingRef::decode(d)?,
            flags: d.u32("flags")?,
        },
        NWFILTER_BINDING_CREATE_XML => Call::BindingCreateXml {
            xml: d.string("xml")?,
            flags: d.u32("flags")?,
        },
        NWFILTER_BINDING_DELETE => Call::BindingDelete {
            binding: BindingRef::decode(d)?,
        },
        CONNECT_LIST_ALL_NWFILTER_BINDINGS => Call::ConnectListAllBindings {
            need_results: d.i32("need_results")?,
            flags: d.u32("flags")?,
        },
        _ => return Ok(None),
    }))
}
