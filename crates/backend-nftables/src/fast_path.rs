//! Which frames a port's bridge chains are proven to accept whatever
//! their other fields hold: those the lead rule at the head of bridge
//! prerouting may accept at once, before the per-port dispatch (`ether
//! type ip iifname . ether saddr . ip saddr @fast-from accept`,
//! `crate::layout`). A wrong proof lets through a frame the filter
//! drops, so every doubt answers "not proven".
//!
//! The proof walks the port's IR bridge chains (what `crate::render`
//! turns into nft rules of the same order and verdicts) for the frames the
//! lead rule can match: untagged, EtherType 0x0800 (nft's implied `ether
//! type ip` for `ip saddr`), from the VM with one source MAC and IPv4
//! address. Why each step is sound:
//! - A match is True or False only when its rendering tests a field the
//!   lead rule has pinned, exactly as that field is rendered
//!   (`crate::matches`: `ether saddr [& mask]`, `ether type`, `ip saddr`
//!   with prefix or range); every other match is Unknown: it may go
//!   either way for some frame.
//! - A rule whose matches are all True applies to every such frame; one
//!   with a False match to none. An Unknown rule may apply to some:
//!   harmless only when its verdict is `continue`; anything else leaves
//!   the proof.
//! - `jump` enters the sub-chain and its end or `return` resumes after
//!   the jump (nft's jump; the IR chains are rendered as chains of their
//!   own, or inlined where that decides the same: `crate::inline`).
//! - Leaving the root (its end or `return`) goes back to the base chain
//!   that jumped to it through its verdict map, where no rule follows the
//!   dispatch and the policy is accept (`crate::layout`): the frame is
//!   accepted, as by `accept`.
//! - IP-layer rules moved into the bridge table (`crate::ip_in_bridge`)
//!   are jumped to from the from-VM root: they are skipped only when all
//!   are IPv6 and the jump tests `ether type ip6` (an IPv4 frame never
//!   takes it); otherwise nothing is proven from the VM. Rules left in
//!   the inet table still run after the bridge table's accept (a bridge
//!   `accept` ends only its base chain), so they need no proof.
//!
//! The walk is bounded (jump depth, rules evaluated, candidate pairs), and
//! running out of any bound is "not proven".

use std::net::{IpAddr, Ipv4Addr};

use nwfilter_compile::ir::{
    AddrMatch, AddrRange, BridgeDir, Chain, ChainRole, Family, IpVersion, MacMatch, Match,
    Negatable, Program, Rule, Verdict,
};
use nwfilter_model::MacAddr6;

use crate::ip_in_bridge;

/// What a port's bridge chains are proven to accept at once (module doc:
/// why each step is sound).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct FastPath {
    /// Each (source MAC, source IPv4): every untagged IPv4 frame from the
    /// VM with exactly these is accepted by the port's from-VM bridge
    /// chains. Sorted, without duplicates.
    pub from_vm: Vec<(MacAddr6, Ipv4Addr)>,
}

/// The EtherType of IPv4, the only one the lead rule's frames carry.
const ETHERTYPE_IPV4: u16 = 0x0800;

/// Deeper jumps than this are not followed (nft's own jump stack is 16
/// deep; a cycle ends here too).
const MAX_DEPTH: usize = 16;

/// At most this many rule evaluations per walk: jumps repeated in a chain
/// could otherwise multiply the work at each level.
const MAX_STEPS: usize = 10_000;

/// At most this many candidate MACs and, separately, IPv4 addresses: a
/// port with more gets no from-VM fast path rather than 64 × 64 walks or
/// more.
const MAX_CANDIDATES: usize = 64;

/// What the port's bridge chains are proven to accept (see the module
/// comment).
pub(crate) fn fast_path(program: &Program) -> FastPath {
    FastPath {
        from_vm: proven_from_vm(program),
    }
}

/// The candidate (MAC, IPv4) pairs whose every frame the from-VM chains
/// accept.
fn proven_from_vm(program: &Program) -> Vec<(MacAddr6, Ipv4Addr)> {
    if !moved_ip_rules_skip_ipv4(program) {
        return Vec::new();
    }
    let (macs, ips) = candidates(program);
    if macs.len() > MAX_CANDIDATES || ips.len() > MAX_CANDIDATES {
        return Vec::new();
    }
    let mut proven: Vec<(MacAddr6, Ipv4Addr)> = macs
        .iter()
        .flat_map(|mac| ips.iter().map(move |ip| (*mac, *ip)))
        .filter(|&(mac, ip)| accepts_all(program, &Source { mac, ip }))
        .collect();
    proven.sort_by_key(|(mac, ip)| (mac.into_array(), *ip));
    proven.dedup();
    proven
}

/// Whether an IPv4 frame from the VM never meets IP-layer rules moved into
/// the bridge table: there are none, or they are all IPv6 and the jump
/// into them tests `ether type ip6` (`ip_in_bridge::enter_from_root` with
/// `one_version`). Mixed or IPv4 rules would need a proof of their own.
fn moved_ip_rules_skip_ipv4(program: &Program) -> bool {
    !ip_in_bridge::applies(program) || ip_in_bridge::one_version(program) == Some(Family::Ipv6)
}

/// The port's own exact addresses (its binding's `$MAC` and `$IP`
/// values) named in the from-VM chains: the pairs worth a walk. Taking
/// them from anywhere costs no soundness: only the walk proves.
fn candidates(program: &Program) -> (Vec<MacAddr6>, Vec<Ipv4Addr>) {
    let mut macs = Vec::new();
    let mut ips = Vec::new();
    let from_vm_chains = program.chains.iter().filter(|c| {
        c.family == Family::Bridge
            && matches!(
                &c.role,
                ChainRole::BridgeRoot(BridgeDir::FromVm)
                    | ChainRole::BridgeSub {
                        dir: BridgeDir::FromVm,
                        ..
                    }
            )
    });
    for rule in from_vm_chains.flat_map(|c| &c.rules) {
        for m in rule.per_port.iter().filter_map(|&i| rule.matches.get(i)) {
            match m {
                Match::MacSrc(mac) | Match::ArpMacSrc(mac) if mac.mask.is_none() => {
                    macs.push(mac.addr)
                }
                Match::IpSrc(a) | Match::ArpIpSrc(a) => ips.extend(exact_ipv4(a)),
                _ => {}
            }
        }
    }
    macs.sort_by_key(|m| m.into_array());
    macs.dedup();
    ips.sort();
    ips.dedup();
    (macs, ips)
}

/// The address of `a` when it names one IPv4 address (negation aside:
/// a candidate is only a guess).
fn exact_ipv4(a: &AddrMatch) -> Option<Ipv4Addr> {
    match a.addr {
        IpAddr::V4(ip) if a.prefix.is_none_or(|p| p >= 32) => Some(ip),
        _ => None,
    }
}

/// What is known of every frame the lead rule lets into the walk: an
/// untagged IPv4 frame from the VM with this source MAC and IPv4.
#[derive(Debug, Clone, Copy)]
struct Source {
    mac: MacAddr6,
    ip: Ipv4Addr,
}

/// Three-valued result of a test on every frame from one [`Source`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tri {
    /// Holds for every such frame.
    True,
    /// Holds for none.
    False,
    /// May hold for some.
    Unknown,
}

impl Tri {
    fn of(holds: bool) -> Tri {
        if holds {
            Tri::True
        } else {
            Tri::False
        }
    }

    /// `self` with the test inverted (a negated match).
    fn negated_if(self, negated: bool) -> Tri {
        match (self, negated) {
            (Tri::True, true) => Tri::False,
            (Tri::False, true) => Tri::True,
            (tri, _) => tri,
        }
    }
}

/// Whether every frame from `source` that enters the from-VM root leaves
/// the port's chains accepted. Iterative: a stack of (chain, next rule).
fn accepts_all(program: &Program, source: &Source) -> bool {
    let dir = BridgeDir::FromVm;
    let Some(root) = program.chain(Family::Bridge, &ChainRole::BridgeRoot(dir)) else {
        return false;
    };
    let mut stack: Vec<(&Chain, usize)> = vec![(root, 0)];
    let mut steps = 0;
    while let Some((chain, index)) = stack.pop() {
        // Past a chain's end: the caller resumes (the stack's next entry
        // already points after the jump); past the root's: accepted.
        let Some(rule) = chain.rules.get(index) else {
            continue;
        };
        steps += 1;
        if steps > MAX_STEPS {
            return false;
        }
        let applies = rule_applies(rule, source);
        match (&rule.verdict, applies) {
            // A rule that applies to no such frame, or changes nothing.
            (_, Tri::False) | (Verdict::Continue, _) => stack.push((chain, index + 1)),
            // It applies to some such frames and may decide their fate.
            (_, Tri::Unknown) => return false,
            (Verdict::Accept, Tri::True) => return true,
            // `return` in the root goes back to the base chain, which
            // accepts (the module comment): the loop ends with `true`.
            (Verdict::Return, Tri::True) => {}
            (Verdict::Jump(name), Tri::True) => {
                let Some(sub) = sub_chain(program, dir, name) else {
                    return false;
                };
                if stack.len() + 1 >= MAX_DEPTH {
                    return false;
                }
                stack.push((chain, index + 1));
                stack.push((sub, 0));
            }
            // `AcceptByReturn` is an IP-layer verdict: not expected here,
            // so not reasoned about.
            (Verdict::Drop | Verdict::Reject | Verdict::AcceptByReturn, Tri::True) => return false,
        }
    }
    true
}

/// The bridge sub-chain `name` of direction `dir`, which a jump enters.
fn sub_chain<'a>(
    program: &'a Program,
    dir: BridgeDir,
    name: &nwfilter_model::ChainName,
) -> Option<&'a Chain> {
    program.chains.iter().find(|c| {
        c.family == Family::Bridge
            && matches!(&c.role, ChainRole::BridgeSub { dir: d, name: n, .. } if *d == dir && n == name)
    })
}

/// A rule's matches ANDed: False if any is False, True if all are True.
fn rule_applies(rule: &Rule, source: &Source) -> Tri {
    let mut all = Tri::True;
    for m in &rule.matches {
        match match_holds(m, source) {
            Tri::False => return Tri::False,
            Tri::Unknown => all = Tri::Unknown,
            Tri::True => {}
        }
    }
    all
}

/// One match on every frame from `source`, as its nft rendering
/// (`crate::matches::terms`) decides it.
fn match_holds(m: &Match, source: &Source) -> Tri {
    match m {
        // `ether saddr [& mask] [!=] addr`.
        Match::MacSrc(mac) => mac_holds(mac, &source.mac),
        // `ether type [!=] 0x....`: the field the lead rule's implied
        // `ether type ip` pinned.
        Match::EtherType(Negatable { value, negated }) => {
            Tri::of(*value == ETHERTYPE_IPV4).negated_if(*negated)
        }
        // `ether type ip` / `ether type ip6` (never negated).
        Match::EtherIp(IpVersion::V4) => Tri::True,
        Match::EtherIp(IpVersion::V6) => Tri::False,
        // `ip saddr [!=] addr[/prefix]`; an IPv6 address renders `ip6
        // saddr`, whose implied `ether type ip6` does not flip with the
        // negation: not reasoned about.
        Match::IpSrc(a) => match a.addr {
            IpAddr::V4(addr) => Tri::of(in_prefix(source.ip, addr, a.prefix)).negated_if(a.negated),
            IpAddr::V6(_) => Tri::Unknown,
        },
        // `ip saddr [!=] from-to` (or the single address).
        Match::IpSrcRange(r) => range_holds(r, source.ip),
        // Every other test (and any variant added later) is of a field
        // the lead rule leaves open, or renders with dependencies of its
        // own: it may go either way.
        Match::MacDst(_)
        | Match::StpBpdu
        | Match::VlanId(_)
        | Match::VlanEncap(_)
        | Match::StpType(_)
        | Match::StpFlags(_)
        | Match::StpRange(..)
        | Match::StpRootAddr(_)
        | Match::StpSenderAddr(_)
        | Match::ArpHwType(_)
        | Match::ArpOpcode(_)
        | Match::ArpProtoType(_)
        | Match::ArpIpSrc(_)
        | Match::ArpIpDst(_)
        | Match::ArpMacSrc(_)
        | Match::ArpMacDst(_)
        | Match::ArpGratuitous { .. }
        | Match::IpDst(_)
        | Match::IpDstRange(_)
        | Match::IpProtocol(_)
        | Match::IpTos(_)
        | Match::Dscp(_)
        | Match::L4(_)
        | Match::SrcPort(_)
        | Match::DstPort(_)
        | Match::TcpFlags { .. }
        | Match::TcpOption(_)
        | Match::IcmpType { .. }
        | Match::Icmpv6Ranges { .. }
        | Match::ConnState(_)
        | Match::ConnDir(_)
        | Match::IpSet { .. }
        | Match::ConnlimitAbove(_)
        | Match::Nd(_) => Tri::Unknown,
    }
}

/// `(source & mask) == (addr & mask)`, inverted when negated (no mask:
/// all bits).
fn mac_holds(m: &MacMatch, source: &MacAddr6) -> Tri {
    let mask = m.mask.map_or([0xff; 6], |k| k.into_array());
    let (a, s) = (m.addr.into_array(), source.into_array());
    let equal = (0..6).all(|i| a[i] & mask[i] == s[i] & mask[i]);
    Tri::of(equal).negated_if(m.negated)
}

/// Whether `ip` is in `addr/prefix` (no prefix, or one of 32 or more: the
/// address alone, as `crate::matches` renders it).
fn in_prefix(ip: Ipv4Addr, addr: Ipv4Addr, prefix: Option<u8>) -> bool {
    let len = u32::from(prefix.unwrap_or(32).min(32));
    let mask = u32::MAX.checked_shl(32 - len).unwrap_or(0);
    u32::from(ip) & mask == u32::from(addr) & mask
}

/// `from ≤ ip ≤ to` (to absent: `from` alone), inverted when negated. A
/// range of mixed versions or running backwards is not reasoned about.
fn range_holds(r: &AddrRange, ip: Ipv4Addr) -> Tri {
    let to = r.to.unwrap_or(r.from);
    match (r.from, to) {
        (IpAddr::V4(from), IpAddr::V4(to)) if from <= to => {
            Tri::of(from <= ip && ip <= to).negated_if(r.negated)
        }
        _ => Tri::Unknown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_ir::{ether_type, jump, program, root, rule, sub};
    use nwfilter_compile::ir::{L4Proto, PortRange};

    const MAC: [u8; 6] = [0x52, 0x54, 0x00, 0x56, 0x44, 0x32];

    fn mac() -> MacAddr6 {
        MacAddr6::from(MAC)
    }

    fn golden(case: &str) -> Program {
        netns_lab::golden_case(&netns_lab::golden_dir().join("cases").join(case))
    }

    fn ip(text: &str) -> Ipv4Addr {
        text.parse().unwrap()
    }

    #[test]
    fn clean_traffic_proves_its_own_mac_and_ip() {
        let fast = fast_path(&golden("clean-traffic-ip-mac.xml"));
        assert_eq!(fast.from_vm, vec![(mac(), ip("10.33.8.131"))]);
    }

    #[test]
    fn clean_traffic_with_an_ip_list_proves_one_pair_per_ip() {
        let fast = fast_path(&golden("clean-traffic-ip-list.xml"));
        assert_eq!(
            fast.from_vm,
            vec![(mac(), ip("10.33.8.131")), (mac(), ip("10.33.8.132"))]
        );
    }

    #[test]
    fn ipv6_nd_checks_alone_have_no_bridge_chains_to_skip() {
        // no-ipv6-nd-spoofing has IPv6 rules only: no bridge root in
        // either direction, so the lead rules have nothing to skip.
        let program = golden("no-ipv6-nd-spoofing.xml");
        assert!(program.chains.iter().all(|c| c.family != Family::Bridge));
        assert_eq!(fast_path(&program), FastPath::default());
    }

    /// The built-in clean-traffic-dualstack for the golden guest.
    fn dualstack() -> Program {
        use nwfilter_compile::{compile, Compiled, MemorySource};
        use nwfilter_model::{builtin_filters, FilterName, FilterRef, IfName, Params};
        let mut params = Params::default();
        params.push("IP", "10.33.8.131");
        params.push("IPV6", "fd77::10");
        let top = FilterRef {
            filter: FilterName::new("clean-traffic-dualstack").unwrap(),
            params,
        };
        let source = MemorySource::from_iter(builtin_filters());
        let port = IfName::new("vnet0").unwrap();
        let Compiled::Program(program) = compile(&source, &top, mac(), &port).unwrap() else {
            panic!("every variable is bound");
        };
        program
    }

    #[test]
    fn dual_stack_clean_traffic_keeps_its_ipv4_fast_path() {
        // Its IPv6 neighbour-discovery checks run in the bridge table
        // (ip_in_bridge), all IPv6, entered by a jump that tests `ether
        // type ip6`: an IPv4 frame never meets them.
        let program = dualstack();
        assert!(ip_in_bridge::applies(&program));
        assert_eq!(ip_in_bridge::one_version(&program), Some(Family::Ipv6));
        let fast = fast_path(&program);
        assert_eq!(fast.from_vm, vec![(mac(), ip("10.33.8.131"))]);
    }

    #[test]
    fn the_rendered_jump_into_moved_ipv6_rules_tests_the_ipv6_ethertype() {
        // What `moved_ip_rules_skip_ipv4` relies on, as rendered.
        let rules = crate::render::ruleset(&dualstack()).unwrap();
        let jumps: Vec<String> = (rules.chains.iter())
            .filter(|c| c.role == crate::names::Role::FromVmL2)
            .flat_map(|c| &c.rules)
            .map(|r| {
                r.terms
                    .iter()
                    .map(|t| t.text.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .filter(|text| text.contains("jump FI/"))
            .collect();
        assert_eq!(jumps.len(), 1, "{jumps:?}");
        assert!(jumps[0].starts_with("ether type ip6 jump FI/"), "{jumps:?}");
    }

    #[test]
    fn moved_ipv4_rules_leave_nothing_proven_from_the_vm() {
        let mut program = dualstack();
        for chain in &mut program.chains {
            if chain.family == Family::Ipv6 {
                chain.family = Family::Ipv4;
            }
        }
        assert!(ip_in_bridge::applies(&program));
        assert_eq!(fast_path(&program).from_vm, vec![]);
    }

    #[test]
    fn dhcp_server_rules_prove_nothing() {
        // Each direction's IPv4 sub-chain accepts on addresses and ports
        // the lead rule leaves open: the prover does not merge the paths
        // (that falling through accepts too), so it proves nothing; and
        // the filter names no address of the port's own from the VM.
        assert_eq!(
            fast_path(&golden("allow-dhcp-server.xml")),
            FastPath::default()
        );
    }

    #[test]
    fn clean_traffic_with_a_port_25_blocker_keeps_its_fast_path() {
        // The TCP rules are IP-layer rules of both directions: they stay
        // in the inet table (the IP path), which still sees the frame
        // after the bridge table's accept.
        let program = golden("no-spamming.xml");
        assert!(!ip_in_bridge::applies(&program));
        let fast = fast_path(&program);
        assert_eq!(fast.from_vm, vec![(mac(), ip("10.33.8.131"))]);
    }

    // Hand-built programs.

    /// A rule whose matches at `per_port` are the binding's values.
    fn port_rule(matches: Vec<Match>, per_port: Vec<usize>, verdict: Verdict) -> Rule {
        Rule {
            per_port,
            ..rule(matches, verdict)
        }
    }

    fn mac_src(addr: MacAddr6, mask: Option<MacAddr6>, negated: bool) -> Match {
        Match::MacSrc(MacMatch {
            addr,
            mask,
            negated,
        })
    }

    fn ip_src(addr: &str, negated: bool) -> Match {
        Match::IpSrc(AddrMatch {
            addr: addr.parse().unwrap(),
            prefix: None,
            negated,
        })
    }

    /// The rules naming the port's MAC and 10.0.0.1 (so that both are
    /// candidates) without deciding anything for them.
    fn naming_own() -> Rule {
        port_rule(
            vec![mac_src(mac(), None, true), ip_src("10.0.0.1", true)],
            vec![0, 1],
            Verdict::Drop,
        )
    }

    /// A from-VM root: the rule naming the port's values, `rules`, then
    /// the IPv4 accept and a final drop.
    fn from_vm(rules: Vec<Rule>) -> Program {
        let mut all = vec![naming_own()];
        all.extend(rules);
        all.push(rule(vec![ether_type(0x0800, false)], Verdict::Accept));
        all.push(rule(Vec::new(), Verdict::Drop));
        program(vec![root(BridgeDir::FromVm, all)])
    }

    fn proven(p: &Program) -> bool {
        fast_path(p).from_vm == vec![(mac(), ip("10.0.0.1"))]
    }

    #[test]
    fn the_plain_ipv4_accept_is_proven() {
        assert!(proven(&from_vm(Vec::new())));
    }

    #[test]
    fn a_drop_that_may_apply_leaves_nothing_proven() {
        let dns = rule(
            vec![
                Match::L4(L4Proto::Udp),
                Match::DstPort(PortRange {
                    start: 53,
                    end: None,
                    negated: false,
                }),
            ],
            Verdict::Drop,
        );
        assert_eq!(fast_path(&from_vm(vec![dns])).from_vm, vec![]);
    }

    #[test]
    fn a_continue_rule_changes_nothing() {
        let counted = rule(vec![Match::L4(L4Proto::Udp)], Verdict::Continue);
        assert!(proven(&from_vm(vec![counted])));
    }

    #[test]
    fn a_drop_that_always_applies_leaves_nothing_proven() {
        let drop_ipv4 = rule(vec![Match::EtherIp(IpVersion::V4)], Verdict::Drop);
        assert!(!proven(&from_vm(vec![drop_ipv4])));
        // And one for IPv6 frames does not apply.
        let drop_ipv6 = rule(vec![Match::EtherIp(IpVersion::V6)], Verdict::Drop);
        assert!(proven(&from_vm(vec![drop_ipv6])));
    }

    #[test]
    fn a_sub_chain_return_resumes_its_caller() {
        // The sub-chain returns for the port's own IP; the root then
        // drops everything: the return must not count as accepted.
        let checks = sub(
            BridgeDir::FromVm,
            "ipv4-ip",
            vec![
                rule(vec![ip_src("10.0.0.1", false)], Verdict::Return),
                rule(Vec::new(), Verdict::Drop),
            ],
        );
        let rootchain = |after: Verdict| {
            root(
                BridgeDir::FromVm,
                vec![
                    naming_own(),
                    rule(vec![ether_type(0x0800, false)], jump("ipv4-ip")),
                    rule(vec![ether_type(0x0800, false)], after),
                ],
            )
        };
        let accepting = program(vec![checks.clone(), rootchain(Verdict::Accept)]);
        assert!(proven(&accepting));
        let dropping = program(vec![checks, rootchain(Verdict::Drop)]);
        assert!(!proven(&dropping));
    }

    #[test]
    fn falling_off_the_root_or_returning_from_it_is_accepted() {
        let off_the_end = program(vec![root(BridgeDir::FromVm, vec![naming_own()])]);
        assert!(proven(&off_the_end));
        let returning = program(vec![root(
            BridgeDir::FromVm,
            vec![
                naming_own(),
                rule(Vec::new(), Verdict::Return),
                rule(Vec::new(), Verdict::Drop),
            ],
        )]);
        assert!(proven(&returning));
    }

    #[test]
    fn a_masked_mac_is_decided_on_the_masked_bits() {
        let oui = MacAddr6::from([0xff, 0xff, 0xff, 0, 0, 0]);
        let same_oui = MacAddr6::from([0x52, 0x54, 0x00, 0, 0, 0]);
        let other_oui = MacAddr6::from([0x02, 0x00, 0x00, 0x56, 0x44, 0x32]);
        // Frames outside the vendor's prefix are dropped: ours is inside.
        let drop_others = |addr| rule(vec![mac_src(addr, Some(oui), true)], Verdict::Drop);
        assert!(proven(&from_vm(vec![drop_others(same_oui)])));
        assert!(!proven(&from_vm(vec![drop_others(other_oui)])));
    }

    #[test]
    fn negated_ethertype_and_mac_tests_are_inverted() {
        let not_ipv4 = rule(vec![ether_type(0x0800, true)], Verdict::Drop);
        assert!(proven(&from_vm(vec![not_ipv4])));
        let not_arp = rule(vec![ether_type(0x0806, true)], Verdict::Drop);
        assert!(!proven(&from_vm(vec![not_arp])));

        let not_ours = rule(vec![mac_src(mac(), None, true)], Verdict::Drop);
        assert!(proven(&from_vm(vec![not_ours])));
        let other = MacAddr6::from([0x52, 0x54, 0x00, 0, 0, 1]);
        let not_other = rule(vec![mac_src(other, None, true)], Verdict::Drop);
        assert!(!proven(&from_vm(vec![not_other])));
    }

    #[test]
    fn an_ipv6_source_test_is_not_reasoned_about() {
        // `ip6 saddr != ::1` implies `ether type ip6`: it never applies to
        // an IPv4 frame, though "not ::1" holds for every IPv4 source.
        let p = program(vec![root(
            BridgeDir::FromVm,
            vec![
                naming_own(),
                rule(vec![ip_src("::1", true)], Verdict::Accept),
                rule(Vec::new(), Verdict::Drop),
            ],
        )]);
        assert!(!proven(&p));
    }

    #[test]
    fn an_ip_layer_accept_by_return_is_not_proven() {
        let by_return = rule(vec![ether_type(0x0800, false)], Verdict::AcceptByReturn);
        assert!(!proven(&from_vm(vec![by_return])));
    }

    #[test]
    fn a_jump_to_a_missing_sub_chain_is_not_proven() {
        let missing = rule(vec![ether_type(0x0800, false)], jump("mac-nowhere"));
        assert!(!proven(&from_vm(vec![missing])));
        // Nor one into the other direction's chain of that name.
        let mut p = from_vm(vec![rule(Vec::new(), jump("ipv4"))]);
        p.chains.insert(
            0,
            sub(
                BridgeDir::ToVm,
                "ipv4",
                vec![rule(Vec::new(), Verdict::Return)],
            ),
        );
        assert!(!proven(&p));
    }

    #[test]
    fn a_jump_cycle_is_not_proven() {
        let p = program(vec![
            sub(
                BridgeDir::FromVm,
                "mac-loop",
                vec![rule(Vec::new(), jump("mac-loop"))],
            ),
            root(
                BridgeDir::FromVm,
                vec![naming_own(), rule(Vec::new(), jump("mac-loop"))],
            ),
        ]);
        assert!(!proven(&p));
    }

    #[test]
    fn a_spoofed_address_named_by_another_rule_is_never_proven() {
        // The binding's second address appears (as a per-port value) only
        // in a rule that decides nothing for it; the filter accepts
        // 10.0.0.1 alone.
        let p = program(vec![root(
            BridgeDir::FromVm,
            vec![
                naming_own(),
                port_rule(vec![ip_src("10.0.0.2", false)], vec![0], Verdict::Continue),
                rule(vec![ip_src("10.0.0.1", false)], Verdict::Accept),
                rule(Vec::new(), Verdict::Drop),
            ],
        )]);
        assert_eq!(fast_path(&p).from_vm, vec![(mac(), ip("10.0.0.1"))]);
    }

    #[test]
    fn a_source_range_is_inclusive() {
        let range = |from: &str, to: &str| {
            rule(
                vec![Match::IpSrcRange(AddrRange {
                    from: from.parse().unwrap(),
                    to: Some(to.parse().unwrap()),
                    negated: true,
                })],
                Verdict::Drop,
            )
        };
        assert!(proven(&from_vm(vec![range("10.0.0.1", "10.0.0.9")])));
        assert!(!proven(&from_vm(vec![range("10.0.0.2", "10.0.0.9")])));
        assert!(proven(&from_vm(vec![range("10.0.0.0", "10.0.0.1")])));
    }
}
