//! The service's errors as libvirt reports them: the code and domain a
//! libvirt client expects (it reacts to them: "not found" is how a
//! hypervisor driver learns a port has no binding yet) and a message that
//! keeps our wording of what is wrong, behind libvirt's prefix.

use std::error::Error;

use libvirt_rpc::error::{code, domain};
use libvirt_rpc::RemoteError;
use nwfilter_driver::engine::error_chain;
use nwfilter_driver::EngineError;

/// The libvirt error for a failed service call.
pub fn from_service(e: &(dyn Error + 'static)) -> RemoteError {
    RemoteError::new(classify(e), domain::NWFILTER, &error_chain(e))
}

/// The libvirt error for a failed store lookup.
pub fn from_store(e: &nwfilter_driver::Error) -> RemoteError {
    RemoteError::new(store_code(e), domain::NWFILTER, &error_chain(e))
}

/// An error of the network-filter domain with `detail`.
pub fn nwfilter(code: i32, detail: &str) -> RemoteError {
    RemoteError::new(code, domain::NWFILTER, detail)
}

/// An RPC-level error (bad arguments on the wire, calls out of order).
pub fn rpc(code: i32, detail: &str) -> RemoteError {
    RemoteError::new(code, domain::RPC, detail)
}

/// Flags a call does not know: libvirt's `virCheckFlags` error.
pub fn unsupported_flags(flags: u32, api: &str) -> RemoteError {
    nwfilter(
        code::INVALID_ARG,
        &format!("unsupported flags (0x{flags:x}) in function {api}"),
    )
}

fn classify(e: &(dyn Error + 'static)) -> i32 {
    if let Some(engine) = e.downcast_ref::<EngineError>() {
        return engine_code(engine);
    }
    if let Some(store) = e.downcast_ref::<nwfilter_driver::Error>() {
        return store_code(store);
    }
    if e.downcast_ref::<nwfilter_model::ParseError>().is_some() {
        return code::XML_ERROR;
    }
    code::INTERNAL_ERROR
}

fn engine_code(e: &EngineError) -> i32 {
    match e {
        EngineError::Store(store) => store_code(store),
        EngineError::InvalidBinding(_) => code::XML_ERROR,
        EngineError::Compile { .. }
        | EngineError::NeedsIp { .. }
        | EngineError::Apply { .. }
        | EngineError::RemoveOld { .. } => code::BUILD_FIREWALL,
        _ => code::INTERNAL_ERROR,
    }
}

fn store_code(e: &nwfilter_driver::Error) -> i32 {
    use nwfilter_driver::Error as E;
    match e {
        E::Invalid { what, .. } if what.contains("binding") => code::XML_ERROR,
        E::Invalid { .. } => code::INVALID_NWFILTER,
        E::NoSuchFilter(_) => code::NO_NWFILTER,
        E::NoSuchBinding(_) => code::NO_NWFILTER_BINDING,
        E::InUse { .. } | E::Builtin(_) => code::OPERATION_INVALID,
        E::UuidTaken { .. } | E::NameTaken { .. } | E::Cycle { .. } | E::BindingExists(_) => {
            code::OPERATION_FAILED
        }
        _ => code::INTERNAL_ERROR,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookups_that_find_nothing_carry_libvirts_not_found_codes() {
        let e = from_store(&nwfilter_driver::Error::NoSuchBinding("vnet9".into()));
        assert_eq!((e.code, e.domain), (101, 33));
        assert_eq!(
            e.text(),
            "Network filter binding not found: no filter binding for port \"vnet9\""
        );
        let e: Box<dyn Error> = Box::new(EngineError::Store(nwfilter_driver::Error::NoSuchFilter(
            "x".into(),
        )));
        let e = from_service(e.as_ref());
        assert_eq!((e.code, e.domain), (62, 33));
        assert_eq!(
            e.text(),
            "Network filter not found: no filter with name or UUID 'x'"
        );
    }

    #[test]
    fn rules_that_cannot_be_built_are_build_firewall_and_bad_flags_invalid_arg() {
        let e: Box<dyn Error> = Box::new(EngineError::Compile {
            port: nwfilter_model::IfName::new("vnet0").unwrap(),
            reason: "variable MAC has no value".into(),
        });
        let e = from_service(e.as_ref());
        assert_eq!((e.code, e.domain), (63, 33));
        assert_eq!(
            e.text(),
            "Error while building firewall: port vnet0: variable MAC has no value"
        );
        let e = unsupported_flags(6, "virNWFilterBindingCreateXML");
        assert_eq!(
            (e.code, e.text()),
            (
                8,
                "invalid argument: unsupported flags (0x6) in function virNWFilterBindingCreateXML"
            )
        );
    }

    #[test]
    fn filter_in_use_is_operation_invalid_and_text_errors_are_internal() {
        let e = from_store(&nwfilter_driver::Error::InUse {
            name: "f".into(),
            users: vec!["vnet0".into()],
        });
        assert_eq!(e.code, 55);
        let e: Box<dyn Error> = "learning failed".into();
        let e = from_service(e.as_ref());
        assert_eq!((e.code, e.text()), (1, "internal error: learning failed"));
    }
}
