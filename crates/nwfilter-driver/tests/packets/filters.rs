//! The filters the scenarios apply, beside the built-in ones.

use nwfilter_compile::ir::Program;

use crate::support::{program, Guest};

/// clean-traffic, and no outgoing SMTP: bridge and IPv4 rules.
pub const NO_SPAMMING: &str = "<filter name='no-spamming' chain='root'>
  <filterref filter='clean-traffic'/>
  <rule action='drop' direction='out' priority='500'>
    <tcp dstportstart='25'/>
  </rule>
</filter>";

/// clean-traffic, and neither tcp/26 nor udp/27 out: an update of
/// `NO_SPAMMING` that changes the IPv4 rules.
pub const NO_26_27: &str = "<filter name='no-26-27' chain='root'>
  <filterref filter='clean-traffic'/>
  <rule action='drop' direction='out' priority='500'><tcp dstportstart='26'/></rule>
  <rule action='drop' direction='out' priority='500'><udp dstportstart='27'/></rule>
</filter>";

/// libvirt's example-1 shape: in, only ssh and ping; out, anything.
pub const STATEFUL: &str = "<filter name='stateful-example' chain='root'>
  <rule action='accept' direction='in' priority='100'><tcp dstportstart='22'/></rule>
  <rule action='accept' direction='in' priority='200'><icmp/></rule>
  <rule action='accept' direction='out' priority='300'><all/></rule>
  <rule action='drop' direction='inout' priority='1000'><all/></rule>
</filter>";

pub const REJECTING: &str = "<filter name='reject-25' chain='root'>
  <rule action='reject' direction='out' priority='500'><tcp dstportstart='25'/></rule>
  <rule action='drop' direction='out' priority='500'><tcp dstportstart='26'/></rule>
  <rule action='reject' direction='out' priority='500'><udp dstportstart='53'/></rule>
</filter>";

pub const NO_SPAMMING_V6: &str = "<filter name='no-spamming-v6' chain='root'>
  <rule action='drop' direction='out' priority='500'><tcp-ipv6 dstportstart='25'/></rule>
</filter>";

/// The built-in clean-traffic with the guest's own address.
pub fn clean_traffic(guest: &Guest) -> Program {
    program(&[], guest, "clean-traffic", &[("IP", &guest.ip)])
}

/// `NO_SPAMMING` with the guest's own address.
pub fn no_spamming(guest: &Guest) -> Program {
    program(&[NO_SPAMMING], guest, "no-spamming", &[("IP", &guest.ip)])
}

/// `NO_26_27` with `ip` as the guest's address.
pub fn no_26_27(guest: &Guest, ip: &str) -> Program {
    program(&[NO_26_27], guest, "no-26-27", &[("IP", ip)])
}
