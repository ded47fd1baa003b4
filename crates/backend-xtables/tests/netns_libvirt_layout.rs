//! libvirt's per-port iptables layout in a real kernel: a filter with
//! iptables rules for one direction only still gets the port's `FI-`,
//! `FO-` and `HI-` chains and their hooks (libvirt-tck's
//! `ipt-no-macspoof-test` lists `FI-vnet0` and `HI-vnet0`), and the empty
//! ones change no packet's fate.

use netns_lab as support;

use backend_xtables::{port_ruleset, Applier, Change};
use host_io::{ProcessRunner, Toolset};
use support::{program, Lab};

/// libvirt-tck's ipt-no-macspoof filter: iptables rules towards the VM only.
const NO_MACSPOOF: &str = "<filter name='tck-no-macspoof'>
  <rule action='drop' direction='inout'>
    <all match='no' srcmacaddr='12:34:56:78:9a:bc'/>
  </rule>
  <rule action='drop' direction='in'>
    <all match='no' srcmacaddr='aa:aa:aa:aa:aa:aa'/>
  </rule>
</filter>";

#[test]
fn one_direction_filter_gets_all_three_iptables_chains() {
    if !support::can_run("one_direction_filter_gets_all_three_iptables_chains") {
        return;
    }
    let lab = Lab::ready(2);
    let (a, b) = (&lab.guests[0], &lab.guests[1]);
    let rules = port_ruleset(&program(&[NO_MACSPOOF], a, "tck-no-macspoof", &[])).unwrap();
    let runner = ProcessRunner::new(Toolset::default()).in_netns(lab.host.name.clone());
    Applier::new(&runner)
        .apply(&[Change {
            ruleset: &rules,
            recorded: None,
        }])
        .unwrap();

    let listed = |chain: &str| lab.host.run(&["iptables", "-w", "-S", chain]);
    for chain in ["FI-vnet0", "FO-vnet0", "HI-vnet0"] {
        let out = listed(chain);
        assert!(
            out.status.success(),
            "iptables -S {chain}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        String::from_utf8_lossy(&listed("HI-vnet0").stdout).trim(),
        "-N HI-vnet0"
    );
    let saved = lab.host.ok(&["iptables-save", "-t", "filter"]);
    for hook in [
        "-A libvirt-in -m physdev --physdev-in vnet0 -g FI-vnet0",
        "-A libvirt-out -m physdev --physdev-out vnet0 --physdev-is-bridged -g FO-vnet0",
        "-A libvirt-host-in -m physdev --physdev-in vnet0 -g HI-vnet0",
    ] {
        assert!(saved.contains(hook), "missing {hook:?} in\n{saved}");
    }
    // No IPv6 rules: no ip6tables chains, as in libvirt.
    assert!(!lab
        .host
        .run(&["ip6tables", "-w", "-S", "FI-vnet0"])
        .status
        .success());

    // The empty HI chain decides nothing: a still reaches the host (whose
    // replies are not forwarded, so FO does not see them), while FO's drop
    // rules still stop what b sends to a.
    assert!(a.pings("10.77.0.1"), "the empty HI-vnet0 blocked a");
    assert!(!b.pings(&a.ip), "FO-vnet0's drop rules stopped applying");

    Applier::new(&runner)
        .remove(std::slice::from_ref(&rules.port))
        .unwrap();
    for chain in ["FI-vnet0", "FO-vnet0", "HI-vnet0"] {
        assert!(
            !listed(chain).status.success(),
            "{chain} left after removal"
        );
    }
}
