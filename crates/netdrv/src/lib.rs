//! Virtual networks: libvirt's `<network>` (isolated, NAT, routed, open
//! bridges) and what starting one puts into the host's firewall.
//!
//! Data flow: XML text → [`parse_network`] → validated [`Network`] →
//! [`format_network`] (libvirt's normalised XML) or
//! [`firewall::add_commands`] / [`firewall::remove_commands`] (libvirt
//! 9.0's iptables/ip6tables rules as [`host_io::Command`]s, after
//! [`firewall::setup_commands`] for the host-wide private chains).
//! On nftables, [`nft::start_batch`] / [`nft::stop_batch`] render the same
//! decisions as one table of ours, and [`coexist`] the accepts for an
//! iptables `filter` table that would drop the networks' traffic.
//! Everything here but the life cycle ([`Driver`]) is pure: nothing is
//! run, nothing read but the text handed in.

pub mod coexist;
pub mod daemons;
pub mod dnsmasq;
pub mod doctor;
mod error;
pub mod firewall;
mod format;
pub mod host;
mod lifecycle;
mod net_firewall;
mod network;
pub mod nft;
mod parse;
mod parse_ip;
mod store;
mod validate;

pub use error::{FirewallError, Invalid, LifecycleError, Location, ParseError};
pub use format::format_network;
pub use lifecycle::{AutostartResult, Driver};
pub use network::{
    mac_text, Bootp, Bridge, Dhcp, DhcpHost, DhcpRange, Dns, DnsForwarder, DnsHost, Domain,
    Forward, ForwardMode, IpDef, Ipv4Range, Lease, LeaseUnit, Nat, Network, NetworkName, PortGroup,
    PortRange,
};
pub use parse::{parse_network, MAX_DOCUMENT_BYTES};
pub use store::{NetworkInfo, RunState, Store};
