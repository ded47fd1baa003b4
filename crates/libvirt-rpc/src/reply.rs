//! The results of successful calls (`remote_*_ret`). A reply does not name
//! its shape: the procedure of the call it answers decides it.

use crate::call::{
    proc, BindingRef, NwfilterRef, AUTH_TYPE_LIST_MAX, BINDING_LIST_MAX, NWFILTER_LIST_MAX,
};
use crate::xdr::{DecodeError, Decoder, Encoder};

/// A successful call's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ret {
    /// Procedures that return nothing.
    Void,
    /// `AUTH_LIST`: the accepted `remote_auth_type`s (0: none).
    AuthTypes(Vec<i32>),
    /// Type, hostname, URI, XML.
    Text(String),
    /// Version numbers (`unsigned hyper`).
    Version(u64),
    /// Feature support, `is_secure`, counts.
    Int(i32),
    Nwfilter(NwfilterRef),
    Names(Vec<String>),
    Nwfilters {
        filters: Vec<NwfilterRef>,
        ret: u32,
    },
    Binding(BindingRef),
    Bindings {
        bindings: Vec<BindingRef>,
        ret: u32,
    },
}

/// The shape of `procedure`'s result; `None` for procedures not known.
fn shape(procedure: i32) -> Option<Shape> {
    use proc::*;
    Some(match procedure {
        CONNECT_OPEN
        | CONNECT_CLOSE
        | NWFILTER_UNDEFINE
        | NWFILTER_BINDING_DELETE
        | CONNECT_SET_IDENTITY => Shape::Void,
        AUTH_LIST => Shape::AuthTypes,
        CONNECT_GET_TYPE
        | CONNECT_GET_HOSTNAME
        | CONNECT_GET_URI
        | NWFILTER_GET_XML_DESC
        | NWFILTER_BINDING_GET_XML_DESC => Shape::Text,
        CONNECT_GET_VERSION | CONNECT_GET_LIB_VERSION => Shape::Version,
        CONNECT_SUPPORTS_FEATURE | CONNECT_IS_SECURE | CONNECT_NUM_OF_NWFILTERS => Shape::Int,
        NWFILTER_LOOKUP_BY_NAME
        | NWFILTER_LOOKUP_BY_UUID
        | NWFILTER_DEFINE_XML
        | NWFILTER_DEFINE_XML_FLAGS => Shape::Nwfilter,
        CONNECT_LIST_NWFILTERS => Shape::Names,
        CONNECT_LIST_ALL_NWFILTERS => Shape::Nwfilters,
        NWFILTER_BINDING_LOOKUP_BY_PORT_DEV | NWFILTER_BINDING_CREATE_XML => Shape::Binding,
        CONNECT_LIST_ALL_NWFILTER_BINDINGS => Shape::Bindings,
        _ => return None,
    })
}

#[derive(Debug, Clone, Copy)]
enum Shape {
    Void,
    AuthTypes,
    Text,
    Version,
    Int,
    Nwfilter,
    Names,
    Nwfilters,
    Binding,
    Bindings,
}

impl Ret {
    pub fn encode(&self, e: &mut Encoder) {
        match self {
            Ret::Void => {}
            Ret::AuthTypes(types) => {
                e.count(types.len());
                types.iter().for_each(|t| {
                    e.i32(*t);
                });
            }
            Ret::Text(s) => {
                e.string(s);
            }
            Ret::Version(v) => {
                e.u64(*v);
            }
            Ret::Int(v) => {
                e.i32(*v);
            }
            Ret::Nwfilter(f) => f.encode(e),
            Ret::Names(names) => {
                e.count(names.len());
                names.iter().for_each(|n| {
                    e.string(n);
                });
            }
            Ret::Nwfilters { filters, ret } => {
                e.count(filters.len());
                filters.iter().for_each(|f| f.encode(e));
                e.u32(*ret);
            }
            Ret::Binding(b) => b.encode(e),
            Ret::Bindings { bindings, ret } => {
                e.count(bindings.len());
                bindings.iter().for_each(|b| b.encode(e));
                e.u32(*ret);
            }
        }
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let mut e = Encoder::new();
        self.encode(&mut e);
        e.into_bytes()
    }

    /// Decodes the reply to `procedure`; `Ok(None)` for a procedure this
    /// module does not know.
    pub fn decode(procedure: i32, payload: &[u8]) -> Result<Option<Ret>, DecodeError> {
        let Some(shape) = shape(procedure) else {
            return Ok(None);
        };
        let mut d = Decoder::new(payload);
        let ret = decode_shape(shape, &mut d)?;
        d.finish()?;
        Ok(Some(ret))
    }
}

fn decode_shape(shape: Shape, d: &mut Decoder<'_>) -> Result<Ret, DecodeError> {
    Ok(match shape {
        Shape::Void => Ret::Void,
        Shape::AuthTypes => {
            let n = d.count("auth types", AUTH_TYPE_LIST_MAX, 4)?;
            Ret::AuthTypes(
                (0..n)
                    .map(|_| d.i32("auth type"))
                    .collect::<Result<_, _>>()?,
            )
        }
        Shape::Text => Ret::Text(d.string("text")?),
        Shape::Version => Ret::Version(d.u64("version")?),
        Shape::Int => Ret::Int(d.i32("int")?),
        Shape::Nwfilter => Ret::Nwfilter(NwfilterRef::decode(d)?),
        Shape::Names => {
            let n = d.count("names", NWFILTER_LIST_MAX, 4)?;
            Ret::Names((0..n).map(|_| d.string("name")).collect::<Result<_, _>>()?)
        }
        Shape::Nwfilters => {
            let n = d.count("nwfilters", NWFILTER_LIST_MAX, 20)?;
            let filters = (0..n)
                .map(|_| NwfilterRef::decode(d))
                .collect::<Result<_, _>>()?;
            Ret::Nwfilters {
                filters,
                ret: d.u32("ret")?,
            }
        }
        Shape::Binding => Ret::Binding(BindingRef::decode(d)?),
        Shape::Bindings => {
            let n = d.count("bindings", BINDING_LIST_MAX, 8)?;
            let bindings = (0..n)
                .map(|_| BindingRef::decode(d))
                .collect::<Result<_, _>>()?;
            Ret::Bindings {
                bindings,
                ret: d.u32("ret")?,
            }
        }
    })
}
