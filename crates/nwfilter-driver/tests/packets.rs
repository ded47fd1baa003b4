//! One suite of end-to-end packet scenarios, each run against both
//! backends (issue 8, item 5): the real filters, compiled, rendered,
//! applied in network namespaces and judged by real packets. A scenario is
//! a function generic over [`backend::Backend`]; `on_both_backends!` makes
//! a `xtables::NAME` and a `nftables::NAME` test of it. Tests skip (with
//! the reason printed) where they cannot run: see `support::can_run`.

use netns_lab as support;

#[path = "packets/backend.rs"]
mod backend;
#[path = "packets/filters.rs"]
mod filters;
#[path = "packets/ipv6.rs"]
mod ipv6;
#[path = "packets/spoofing.rs"]
mod spoofing;
#[path = "packets/updates.rs"]
mod updates;
#[path = "packets/verdicts.rs"]
mod verdicts;

/// Generates, for each `module::scenario`, one test per backend.
macro_rules! on_both_backends {
    ($($module:ident::$scenario:ident),* $(,)?) => {
        on_both_backends!(@in xtables, Xtables, $($module::$scenario),*);
        on_both_backends!(@in nftables, Nftables, $($module::$scenario),*);
    };
    (@in $name:ident, $backend:ident, $($module:ident::$scenario:ident),*) => {
        mod $name {
            $(
                #[test]
                fn $scenario() {
                    let test = concat!(stringify!($name), "::", stringify!($scenario));
                    if crate::support::can_run(test) {
                        crate::$module::$scenario::<crate::backend::$backend>();
                    }
                }
            )*
        }
    };
}

on_both_backends!(
    spoofing::clean_traffic_stops_spoofing_and_leaves_others_alone,
    spoofing::a_port_25_blocker_instantiated_reapplied_and_torn_down,
    spoofing::ipv6_rules_filter_ipv6_only,
    spoofing::host_bound_traffic_is_filtered,
    verdicts::stateful_rules_allow_replies_but_not_new_inbound_connections,
    verdicts::reject_sends_an_error_where_drop_times_out,
    updates::redefining_under_traffic_passes_nothing_both_definitions_forbid,
    updates::update_under_traffic_never_passes_what_both_rule_sets_forbid,
    updates::an_update_the_kernel_refuses_leaves_the_old_rules_filtering,
    updates::reapplying_without_a_record_asks_the_kernel_and_touches_nothing,
    updates::adding_and_removing_ports_never_interrupts_the_others,
    ipv6::dualstack_lets_a_normal_guest_work,
    ipv6::dualstack_stops_spoofed_ipv6_sources_and_macs,
    ipv6::dualstack_stops_rogue_router_advertisements,
    ipv6::dualstack_stops_rogue_dhcpv6_servers,
    ipv6::dualstack_stops_neighbour_cache_poisoning,
    ipv6::dualstack_stops_forged_advertisements_in_vlan_tagged_frames,
    ipv6::dualstack_reapplied_without_a_record_is_unchanged,
);
