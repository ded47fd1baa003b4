//! Hand-written partial nftables rulesets for the `pps` part: pieces of
//! the backend's layout, applied alone with `nft -f -` in a lab's host
//! namespace, so the per-packet cost can be taken apart step by step.
//!
//! They are copied from what `nwfilter render --backend nftables` and the
//! applier made for clean-traffic on 2026-12-06 (commit 1aefce5; see
//! crates/backend-nftables/src/layout.rs), written out here ON PURPOSE
//! instead of taken from the backend: the backend's layout is changing
//! (inet base chains only while a port needs them), and these variants must
//! keep meaning the same thing. The full filters are measured through the
//! real backend (workload.rs), whatever layout it has.
//!
//! None of them drops anything: the lab's unfiltered check applies.

use std::fmt::Write as _;

/// Which piece of the layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Partial {
    /// `bridge nwfilter` alone: its four maps (empty) and three base chains
    /// with their dispatch rules. Every frame does the in-tag map lookup
    /// (a miss), the `from-vm`, `out-tag` and `to-vm` lookups (misses).
    BridgeSkeleton,
    /// Both tables as the backend keeps them with no port of these guests:
    /// the bridge table above plus `inet nwfilter`'s forward and input
    /// base chains (reached by bridged IPv4 through br_netfilter), whose
    /// rules test `iifkind`/`oifkind` and look the (absent) mark up.
    Skeleton,
    /// The skeleton plus `from-vm`/`to-vm` elements for the two guests and
    /// the `others` other ports, each jumping to one empty chain: the
    /// bridge dispatch of a filtered port, without the filter.
    Dispatch,
    /// The bridge table as the backend now keeps it for clean-traffic
    /// ports (since the IP path went, issue 20): prerouting and
    /// postrouting with one dispatch rule each, maps empty.
    BridgeNow,
    /// No bridge table: a netdev table with an empty base chain on each
    /// guest port's own ingress and egress hooks, which only that port's
    /// frames pass (a candidate layout, issue 20: what the hooks cost).
    NetdevHooks,
}

impl Partial {
    /// The `nft -f` text; `ports` are the interface names given elements
    /// (only [`Partial::Dispatch`] uses them).
    pub fn text(self, ports: &[String], guest_ports: &[String]) -> String {
        match self {
            Partial::BridgeNow => return BRIDGE_NOW.to_owned(),
            Partial::NetdevHooks => return netdev_hooks(guest_ports, |_| String::new()),
            _ => {}
        }
        let mut t = String::from(BRIDGE_SKELETON);
        if self != Partial::BridgeSkeleton {
            t.push_str(INET_SKELETON);
        }
        if self == Partial::Dispatch && !ports.is_empty() {
            t.push_str("add chain bridge nwfilter empty\n");
            for map in ["from-vm", "to-vm"] {
                let elements: Vec<String> = ports
                    .iter()
                    .map(|p| format!("\"{p}\" : jump empty"))
                    .collect();
                // One `add element` per map: nft takes a long list in one
                // command (1000 elements is a few tens of KiB).
                let _ = writeln!(
                    t,
                    "add element bridge nwfilter {map} {{ {} }}",
                    elements.join(", ")
                );
            }
        }
        t
    }
}

/// The backend's bridge table: hooks before br_netfilter (-300 prerouting:
/// in-port tag and `from-vm`; -200 forward: out-port tag) and after it
/// (300 postrouting: `to-vm`).
const BRIDGE_SKELETON: &str = r#"table bridge nwfilter {
	map from-vm { type ifname : verdict; }
	map to-vm { type ifname : verdict; }
	map in-tag { type ifname : mark; }
	map out-tag { type ifname : verdict; }
	chain prerouting {
		type filter hook prerouting priority -300; policy accept;
		meta mark set iifname map @in-tag
		iifname vmap @from-vm
	}
	chain forward {
		type filter hook forward priority -200; policy accept;
		oifname vmap @out-tag
	}
	chain postrouting {
		type filter hook postrouting priority 300; policy accept;
		oifname vmap @to-vm
	}
}
"#;

/// [`Partial::BridgeNow`]'s table.
const BRIDGE_NOW: &str = r#"table bridge nwfilter {
	map from-vm { type ifname : verdict; }
	map to-vm { type ifname : verdict; }
	chain prerouting {
		type filter hook prerouting priority -300; policy accept;
		iifname vmap @from-vm
	}
	chain postrouting {
		type filter hook postrouting priority 300; policy accept;
		oifname vmap @to-vm
	}
}
"#;

/// A netdev table with ingress and egress base chains on each of
/// `ports`; `rules(hook)` is each chain's body (`"ingress"`/`"egress"`).
pub fn netdev_hooks(ports: &[String], rules: impl Fn(&str) -> String) -> String {
    let mut t = String::from("table netdev nwfilter {\n");
    for port in ports {
        for hook in ["ingress", "egress"] {
            let _ = writeln!(
                t,
                "\tchain {hook}-{port} {{\n\t\ttype filter hook {hook} device \"{port}\" priority -300; policy accept;\n{}\t}}",
                rules(hook)
            );
        }
    }
    t.push_str("}\n");
    t
}

/// The backend's inet table: dispatch on the mark tags written by the
/// bridge table, for packets that came through a bridge.
const INET_SKELETON: &str = r#"table inet nwfilter {
	map from-vm { type mark : verdict; }
	map to-vm { type mark : verdict; }
	map host-from-vm { type mark : verdict; }
	chain forward {
		type filter hook forward priority 0; policy accept;
		meta iifkind "bridge" meta mark & 0x0000ffff vmap @from-vm
		meta oifkind "bridge" meta mark & 0xffff0000 vmap @to-vm
	}
	chain input {
		type filter hook input priority 0; policy accept;
		meta iifkind "bridge" meta mark & 0x0000ffff vmap @host-from-vm
	}
}
"#;
