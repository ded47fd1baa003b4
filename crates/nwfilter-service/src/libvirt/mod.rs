//! The libvirt RPC front end: libvirt's network-filter calls, carried
//! out by the verbs the JSON protocol uses. Each call is decoded into a
//! verb (an [`Op`], a lookup, or a typed define or create), and the result
//! is put in libvirt's shape; [`errors`] maps the service's errors to
//! libvirt's codes. Connections, frames and sessions are the daemon's.

pub mod errors;

use std::error::Error;
use std::sync::Arc;

use host_io::Runner;
use libvirt_rpc::call::{BINDING_LIST_MAX, NWFILTER_LIST_MAX, VALIDATE};
use libvirt_rpc::error::code;
use libvirt_rpc::{BindingRef, Call, NwfilterRef, RemoteError, Ret};
use nwfilter_model::{Binding, Filter};

use crate::protocol::{Op, Reply};
use crate::service::EngineService;
use errors::unsupported_flags;

/// What the libvirt front end needs from the service.
pub trait Api: Send + Sync {
    /// One operation, through the same code path as the JSON socket.
    fn call(&self, op: Op) -> Result<Reply, Box<dyn Error>>;
    /// Defines a filter (the JSON socket's `define`); returns it as
    /// stored, with its final UUID.
    fn define(&self, xml: &str) -> Result<Arc<Filter>, Box<dyn Error>>;
    /// Creates a binding (the JSON socket's `binding-create`, learning
    /// included); returns it.
    fn binding_create(&self, xml: &str) -> Result<Binding, Box<dyn Error>>;
    /// A filter by name, else UUID.
    fn lookup_filter(&self, key: &str) -> Result<Arc<Filter>, nwfilter_driver::Error>;
    /// The binding of a port.
    fn lookup_binding(
        &self,
        portdev: &str,
    ) -> Result<nwfilter_model::Binding, nwfilter_driver::Error>;
}

impl<R: Runner + Send + Sync + 'static> Api for EngineService<R> {
    fn call(&self, op: Op) -> Result<Reply, Box<dyn Error>> {
        self.call_typed(op)
    }

    fn define(&self, xml: &str) -> Result<Arc<Filter>, Box<dyn Error>> {
        Ok(EngineService::define(self, xml)?.filter)
    }

    fn binding_create(&self, xml: &str) -> Result<Binding, Box<dyn Error>> {
        Ok(EngineService::binding_create(self, xml)?.binding().clone())
    }

    fn lookup_filter(
        &self,
        key: &str,
    ) -> Result<Arc<nwfilter_model::Filter>, nwfilter_driver::Error> {
        EngineService::lookup_filter(self, key)
    }

    fn lookup_binding(
        &self,
        portdev: &str,
    ) -> Result<nwfilter_model::Binding, nwfilter_driver::Error> {
        EngineService::lookup_binding(self, portdev)
    }
}

/// Carries out a network-filter call. `None`: `call` is not one (the
/// session answers it).
pub fn nwfilter_call(api: &dyn Api, call: &Call) -> Option<Result<Ret, RemoteError>> {
    filter_call(api, call).or_else(|| binding_call(api, call))
}

/// The calls on filters.
fn filter_call(api: &dyn Api, call: &Call) -> Option<Result<Ret, RemoteError>> {
    Some(match call {
        Call::NwfilterLookupByName { name } => lookup(api, name),
        Call::NwfilterLookupByUuid { uuid } => lookup(api, &uuid_text(uuid)),
        Call::NwfilterGetXmlDesc { nwfilter, flags } => no_flags(*flags, "virNWFilterGetXMLDesc")
            .and_then(|()| {
                xml_of(
                    api,
                    Op::Dumpxml {
                        filter: key_of(nwfilter),
                    },
                )
            }),
        Call::ConnectNumOfNwfilters => filters(api).map(|f| Ret::Int(count(f.len()))),
        Call::ConnectListNwfilters { maxnames } => list_names(api, *maxnames),
        Call::NwfilterDefineXml { xml } => define(api, xml),
        Call::NwfilterDefineXmlFlags { xml, flags } => {
            only_validate(*flags, "virNWFilterDefineXMLFlags").and_then(|()| define(api, xml))
        }
        Call::NwfilterUndefine { nwfilter } => run(
            api,
            Op::Undefine {
                filter: key_of(nwfilter),
            },
        ),
        Call::ConnectListAllNwfilters {
            need_results,
            flags,
        } => no_flags(*flags, "virConnectListAllNWFilters")
            .and_then(|()| filters(api))
            .and_then(|f| listed(f, NWFILTER_LIST_MAX, *need_results, "nwfilters"))
            .map(|(filters, ret)| Ret::Nwfilters { filters, ret }),
        _ => return None,
    })
}

/// The calls on bindings.
fn binding_call(api: &dyn Api, call: &Call) -> Option<Result<Ret, RemoteError>> {
    Some(match call {
        Call::BindingLookupByPortDev { name } => api
            .lookup_binding(name)
            .map(|b| Ret::Binding(binding_ref(&b)))
            .map_err(|e| errors::from_store(&e)),
        Call::BindingGetXmlDesc { binding, flags } => {
            no_flags(*flags, "virNWFilterBindingGetXMLDesc").and_then(|()| {
                xml_of(
                    api,
                    Op::BindingDumpxml {
                        portdev: binding.portdev.clone(),
                    },
                )
            })
        }
        Call::BindingCreateXml { xml, flags } => {
            only_validate(*flags, "virNWFilterBindingCreateXML").and_then(|()| create(api, xml))
        }
        Call::BindingDelete { binding } => run(
            api,
            Op::BindingDelete {
                portdev: binding.portdev.clone(),
            },
        ),
        Call::ConnectListAllBindings {
            need_results,
            flags,
        } => no_flags(*flags, "virConnectListAllNWFilterBindings")
            .and_then(|()| bindings(api))
            .and_then(|b| listed(b, BINDING_LIST_MAX, *need_results, "bindings"))
            .map(|(bindings, ret)| Ret::Bindings { bindings, ret }),
        _ => return None,
    })
}

fn no_flags(flags: u32, api: &str) -> Result<(), RemoteError> {
    if flags == 0 {
        Ok(())
    } else {
        Err(unsupported_flags(flags, api))
    }
}

/// Our parsing always validates the document, so VALIDATE changes
/// nothing; every other bit is refused.
fn only_validate(flags: u32, api: &str) -> Result<(), RemoteError> {
    no_flags(flags & !VALIDATE, api)
}

fn run(api: &dyn Api, op: Op) -> Result<Ret, RemoteError> {
    api.call(op)
        .map(|_| Ret::Void)
        .map_err(|e| errors::from_service(e.as_ref()))
}

fn xml_of(api: &dyn Api, op: Op) -> Result<Ret, RemoteError> {
    match api.call(op).map_err(|e| errors::from_service(e.as_ref()))? {
        Reply::Xml { xml } => Ok(Ret::Text(xml)),
        other => Err(unexpected(&other)),
    }
}

fn lookup(api: &dyn Api, key: &str) -> Result<Ret, RemoteError> {
    api.lookup_filter(key)
        .map(|f| Ret::Nwfilter(filter_ref(&f)))
        .map_err(|e| errors::from_store(&e))
}

/// Defines through the service; answers with the stored filter's name
/// and (possibly generated) UUID.
fn define(api: &dyn Api, xml: &str) -> Result<Ret, RemoteError> {
    api.define(xml)
        .map(|filter| Ret::Nwfilter(filter_ref(&filter)))
        .map_err(|e| errors::from_service(e.as_ref()))
}

/// Creates through the service (which also starts IP learning when the
/// binding needs it); the reply names the port and its filter.
fn create(api: &dyn Api, xml: &str) -> Result<Ret, RemoteError> {
    api.binding_create(xml)
        .map(|binding| Ret::Binding(binding_ref(&binding)))
        .map_err(|e| errors::from_service(e.as_ref()))
}

fn filters(api: &dyn Api) -> Result<Vec<NwfilterRef>, RemoteError> {
    match api
        .call(Op::List)
        .map_err(|e| errors::from_service(e.as_ref()))?
    {
        Reply::Filters { filters, .. } => Ok(filters
            .into_iter()
            .map(|f| NwfilterRef {
                uuid: uuid::Uuid::parse_str(&f.uuid)
                    .map(|u| u.into_bytes())
                    .unwrap_or_default(),
                name: f.name,
            })
            .collect()),
        other => Err(unexpected(&other)),
    }
}

fn bindings(api: &dyn Api) -> Result<Vec<BindingRef>, RemoteError> {
    match api
        .call(Op::BindingList)
        .map_err(|e| errors::from_service(e.as_ref()))?
    {
        Reply::Bindings { bindings } => Ok(bindings
            .into_iter()
            .map(|b| BindingRef {
                portdev: b.portdev,
                filtername: b.filter,
            })
            .collect()),
        other => Err(unexpected(&other)),
    }
}

fn list_names(api: &dyn Api, maxnames: i32) -> Result<Ret, RemoteError> {
    let max = usize::try_from(maxnames).unwrap_or(0);
    if max > NWFILTER_LIST_MAX {
        return Err(errors::rpc(
            code::RPC,
            &format!("maxnames {maxnames} > REMOTE_NWFILTER_LIST_MAX ({NWFILTER_LIST_MAX})"),
        ));
    }
    let names = filters(api)?.into_iter().take(max).map(|f| f.name);
    Ok(Ret::Names(names.collect()))
}

/// A list-all reply: the items (none when the client asked only for the
/// count) and the count. More than libvirt's limit cannot be sent.
fn listed<T>(
    items: Vec<T>,
    limit: usize,
    need_results: i32,
    what: &str,
) -> Result<(Vec<T>, u32), RemoteError> {
    if items.len() > limit {
        return Err(errors::rpc(
            code::RPC,
            &format!("Too many {what} '{}' for limit '{limit}'", items.len()),
        ));
    }
    let n = count(items.len()) as u32;
    Ok((if need_results != 0 { items } else { Vec::new() }, n))
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

/// The filter a reference names. libvirt goes by the UUID; our store's
/// key is the name, and a filter file without `<uuid>` is given a new UUID
/// each time it is read, so the UUID of an earlier lookup may no longer
/// find it while the name still does.
fn key_of(f: &NwfilterRef) -> String {
    f.name.clone()
}

fn uuid_text(uuid: &[u8; 16]) -> String {
    uuid::Uuid::from_bytes(*uuid).to_string()
}

fn filter_ref(f: &nwfilter_model::Filter) -> NwfilterRef {
    NwfilterRef {
        name: f.name.to_string(),
        uuid: f.uuid.into_bytes(),
    }
}

fn binding_ref(b: &nwfilter_model::Binding) -> BindingRef {
    BindingRef {
        portdev: b.portdev.to_string(),
        filtername: b.filterref.filter.to_string(),
    }
}

fn unexpected(reply: &Reply) -> RemoteError {
    errors::nwfilter(
        code::INTERNAL_ERROR,
        &format!("the service answered with an unexpected reply: {reply:?}"),
    )
}
