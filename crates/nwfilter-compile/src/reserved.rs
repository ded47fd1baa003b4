//! The binding parameters with a meaning of their own for IPv6 (issue 16):
//! `IPV6` (the port's IPv6 addresses) and `DHCPSERVERV6` (its trusted
//! DHCPv6 servers), checked before anything is bound, plus the derived
//! `TRUSTED_DHCPV6` / `TRUSTED_DHCPV6_PREFIX` the dual-stack filters
//! match servers with.

use std::net::Ipv6Addr;

use nwfilter_model::{FilterName, Params};

use crate::error::BindError;

/// The port's IPv6 addresses (one value or a list, like `IP`).
pub const IPV6: &str = "IPV6";
/// Trusted DHCPv6 servers (link-local or global addresses; a list).
pub const DHCPSERVERV6: &str = "DHCPSERVERV6";
/// Derived by the compiler, never given: the `DHCPSERVERV6` list, or
/// `::` when no server is listed; with [`TRUSTED_DHCPV6_PREFIX`] (128 per
/// listed server, else 0) one rule
/// `srcipaddr='$TRUSTED_DHCPV6' srcipmask='$TRUSTED_DHCPV6_PREFIX'`
/// means "a trusted server" both ways: only the listed servers, or every
/// server when none is listed. `DHCPSERVERV6` itself keeps libvirt's
/// meaning (unset is an unresolved variable).
pub const TRUSTED_DHCPV6: &str = "TRUSTED_DHCPV6";
/// See [`TRUSTED_DHCPV6`].
pub const TRUSTED_DHCPV6_PREFIX: &str = "TRUSTED_DHCPV6_PREFIX";

/// `TRUSTED_DHCPV6` and its prefix when no server is listed: any source.
pub(crate) const ANY_SERVER: [&str; 2] = ["::", "0"];
/// The prefix of one listed server.
pub(crate) const HOST_PREFIX: &str = "128";

/// Refuses a binding whose `IPV6` or `DHCPSERVERV6` values are not IPv6
/// addresses, or that sets a derived variable, naming the
/// parameter and the value. Checked whether or not a filter uses them:
/// a typo must show when the binding is made, not when a filter that
/// uses the value is added later.
pub(crate) fn check(params: &Params, top: &FilterName) -> Result<(), BindError> {
    for name in [IPV6, DHCPSERVERV6] {
        for value in params.get(name).unwrap_or(&[]) {
            ipv6(value).map_err(|expected| BindError::Reserved {
                top: top.clone(),
                name,
                value: value.clone(),
                expected,
            })?;
        }
    }
    for name in [TRUSTED_DHCPV6, TRUSTED_DHCPV6_PREFIX] {
        if let Some(value) = params.get(name).and_then(|v| v.first()) {
            return Err(BindError::Reserved {
                top: top.clone(),
                name,
                value: value.clone(),
                expected: "nothing: it is derived from DHCPSERVERV6",
            });
        }
    }
    Ok(())
}

/// One IPv6 address without prefix or zone.
fn ipv6(value: &str) -> Result<Ipv6Addr, &'static str> {
    value.parse().map_err(|_| {
        if value.parse::<std::net::Ipv4Addr>().is_ok() {
            "an IPv6 address, not IPv4 (IPv4 addresses go in IP / DHCPSERVER)"
        } else {
            "an IPv6 address (no prefix length, no zone)"
        }
    })
}
