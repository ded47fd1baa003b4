//! The host's network stack, as far as starting a network needs it:
//! bridges, addresses, routes (over netlink) and forwarding sysctls.
//!
//! [`Host`] is the I/O boundary of the life cycle; [`NetlinkHost`] talks to
//! the kernel of the caller's network namespace through rtnetlink, driven
//! by a private current-thread runtime (the rest of the crate stays
//! synchronous).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use futures::TryStreamExt;
use ipnet::IpNet;
use macaddr::MacAddr6;
use nwfilter_model::IfName;
use rtnetlink::packet_route::link::{BridgeStpState, LinkAttribute, LinkMessage};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage};
use rtnetlink::{LinkBridge, LinkMessageBuilder, LinkUnspec, RouteMessageBuilder};

use crate::error::LifecycleError;

/// The bridge a network asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BridgeSpec {
    pub name: IfName,
    pub mac: Option<MacAddr6>,
    pub stp: bool,
    /// Forward delay, seconds.
    pub delay: u32,
    pub mtu: Option<u32>,
}

/// A route of the main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoute {
    pub destination: IpNet,
    /// The output device, when the route has one.
    pub device: Option<String>,
}

/// What the life cycle does to the host's network stack.
pub trait Host {
    fn link_exists(&self, name: &IfName) -> Result<bool, LifecycleError>;
    /// Creates the bridge, administratively down.
    fn create_bridge(&self, spec: &BridgeSpec) -> Result<(), LifecycleError>;
    fn add_address(&self, link: &IfName, address: IpAddr, prefix: u8)
        -> Result<(), LifecycleError>;
    fn set_up(&self, link: &IfName) -> Result<(), LifecycleError>;
    fn delete_link(&self, link: &IfName) -> Result<(), LifecycleError>;
    /// The main table's IPv4 and IPv6 routes.
    fn routes(&self) -> Result<Vec<HostRoute>, LifecycleError>;
    /// Writes `value` to `/proc/sys/KEY` (`net/ipv4/ip_forward`).
    fn set_sysctl(&self, key: &str, value: &str) -> Result<(), LifecycleError>;
}

/// The kernel, through rtnetlink, in the caller's network namespace.
#[derive(Debug)]
pub struct NetlinkHost {
    runtime: tokio::runtime::Runtime,
    handle: rtnetlink::Handle,
}

fn netlink_error(what: &str, e: impl std::fmt::Display) -> LifecycleError {
    LifecycleError::Netlink(format!("{what}: {e}"))
}

/// The kernel's main routing table id.
const MAIN_TABLE: u32 = 254;

impl NetlinkHost {
    pub fn new() -> Result<NetlinkHost, LifecycleError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
            .map_err(|e| netlink_error("cannot start the netlink runtime", e))?;
        let (connection, handle, _) = runtime
            .block_on(async { rtnetlink::new_connection() })
            .map_err(|e| netlink_error("cannot open a netlink socket", e))?;
        runtime.spawn(connection);
        Ok(NetlinkHost { runtime, handle })
    }

    /// Every link, name → index.
    fn links(&self) -> Result<HashMap<String, u32>, LifecycleError> {
        let links: Vec<LinkMessage> = self
            .runtime
            .block_on(self.handle.link().get().execute().try_collect())
            .map_err(|e| netlink_error("cannot list links", e))?;
        Ok(links
            .iter()
            .filter_map(|l| {
                l.attributes.iter().find_map(|a| match a {
                    LinkAttribute::IfName(name) => Some((name.clone(), l.header.index)),
                    _ => None,
                })
            })
            .collect())
    }

    fn index(&self, link: &IfName) -> Result<u32, LifecycleError> {
        self.links()?
            .get(link.as_str())
            .copied()
            .ok_or_else(|| netlink_error("no such interface", link))
    }

    fn route_dump(&self, message: RouteMessage) -> Result<Vec<RouteMessage>, LifecycleError> {
        self.runtime
            .block_on(self.handle.route().get(message).execute().try_collect())
            .map_err(|e| netlink_error("cannot list routes", e))
    }
}

impl Host for NetlinkHost {
    fn link_exists(&self, name: &IfName) -> Result<bool, LifecycleError> {
        Ok(self.links()?.contains_key(name.as_str()))
    }

    fn create_bridge(&self, spec: &BridgeSpec) -> Result<(), LifecycleError> {
        let stp = if spec.stp {
            BridgeStpState::KernelStp
        } else {
            BridgeStpState::Disabled
        };
        // The kernel counts the delay in hundredths of a second.
        let mut builder = LinkMessageBuilder::<LinkBridge>::new(spec.name.as_str())
            .stp_state(stp)
            .forward_delay(spec.delay.saturating_mul(100));
        if let Some(mac) = spec.mac {
            builder = builder.address(mac.as_bytes().to_vec());
        }
        if let Some(mtu) = spec.mtu {
            builder = builder.mtu(mtu);
        }
        self.runtime
            .block_on(self.handle.link().add(builder.build()).execute())
            .map_err(|e| netlink_error(&format!("cannot create bridge {}", spec.name), e))
    }

    fn add_address(
        &self,
        link: &IfName,
        address: IpAddr,
        prefix: u8,
    ) -> Result<(), LifecycleError> {
        let index = self.index(link)?;
        self.runtime
            .block_on(self.handle.address().add(index, address, prefix).execute())
            .map_err(|e| netlink_error(&format!("cannot add {address}/{prefix} to {link}"), e))
    }

    fn set_up(&self, link: &IfName) -> Result<(), LifecycleError> {
        let index = self.index(link)?;
        let message = LinkUnspec::new_with_index(index).up().build();
        self.runtime
            .block_on(self.handle.link().change(message).execute())
            .map_err(|e| netlink_error(&format!("cannot set {link} up"), e))
    }

    fn delete_link(&self, link: &IfName) -> Result<(), LifecycleError> {
        let index = self.index(link)?;
        self.runtime
            .block_on(self.handle.link().del(index).execute())
            .map_err(|e| netlink_error(&format!("cannot delete {link}"), e))
    }

    fn routes(&self) -> Result<Vec<HostRoute>, LifecycleError> {
        let names: HashMap<u32, String> = self.links()?.into_iter().map(|(n, i)| (i, n)).collect();
        let mut messages = self.route_dump(RouteMessageBuilder::<Ipv4Addr>::new().build())?;
        messages.extend(self.route_dump(RouteMessageBuilder::<Ipv6Addr>::new().build())?);
        Ok(messages
            .iter()
            .filter_map(|m| host_route(m, &names))
            .collect())
    }

    fn set_sysctl(&self, key: &str, value: &str) -> Result<(), LifecycleError> {
        let path = std::path::Path::new("/proc/sys").join(key);
        std::fs::write(&path, value).map_err(|e| LifecycleError::io(&path, e))
    }
}

/// A main-table route with its destination prefix and device.
fn host_route(m: &RouteMessage, names: &HashMap<u32, String>) -> Option<HostRoute> {
    let table = m
        .attributes
        .iter()
        .find_map(|a| match a {
            RouteAttribute::Table(t) => Some(*t),
            _ => None,
        })
        .unwrap_or(u32::from(m.header.table));
    if table != MAIN_TABLE {
        return None;
    }
    let prefix = m.header.destination_prefix_length;
    let destination = m.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(RouteAddress::Inet(a)) => Some(IpAddr::V4(*a)),
        RouteAttribute::Destination(RouteAddress::Inet6(a)) => Some(IpAddr::V6(*a)),
        _ => None,
    });
    let destination = match destination {
        Some(addr) => IpNet::new(addr, prefix).ok()?,
        // No destination attribute: the default route of its family.
        None => match m.header.address_family {
            rtnetlink::packet_route::AddressFamily::Inet6 => {
                IpNet::new(Ipv6Addr::UNSPECIFIED.into(), 0).ok()?
            }
            _ => IpNet::new(Ipv4Addr::UNSPECIFIED.into(), 0).ok()?,
        },
    };
    let device = m.attributes.iter().find_map(|a| match a {
        RouteAttribute::Oif(index) => names.get(index).cloned(),
        _ => None,
    });
    Some(HostRoute {
        destination: destination.trunc(),
        device,
    })
}
