//! The chain walk: which of a port's chains the kernel runs for a packet,
//! in which order, and what their verdicts mean under each backend.
//!
//! Bridge layer (ebtables `nat` PREROUTING / POSTROUTING, or our `bridge
//! nwfilter` prerouting/postrouting hooks): the root chain of the
//! direction, jumps into protocol sub-chains. The backends differ when a
//! sub-chain runs out of rules: an ebtables user chain has policy ACCEPT,
//! so the frame is accepted there and the rest of the root chain never
//! runs; an nft chain returns to the rule after the jump.
//!
//! IP layer (br_netfilter; iptables FORWARD/INPUT through libvirt's
//! chains, or our `inet nwfilter` forward/input hooks): the IPv4/IPv6
//! chain of the role, entered by goto (xtables) or jump from a dispatch
//! map (nftables): accept and drop are final, a return or the end of the
//! chain hands the packet on (xtables: `libvirt-in-post` accepts what the
//! VM sent; what goes to the VM or the host meets the host's own rules).
//! The IP layer sees untagged IPv4/IPv6 only. From the VM the bridge
//! layer (prerouting) runs first; towards the VM the IP layer (forward)
//! runs before the bridge layer (postrouting).

use nwfilter_compile::ir::{
    BridgeDir, Chain, ChainRole, Family, Program, RuleOrigin, TracedProgram, Verdict,
};
use serde::Serialize;

use crate::matches::{assumption, holds};
use crate::packet::{Direction, Packet};

/// The firewall backend whose kernel semantics to follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    Xtables,
    Nftables,
}

/// What happens to the packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PacketVerdict {
    /// Our rules let it through.
    Accept,
    Drop,
    /// Dropped with an error sent back (IPv4/IPv6 `reject`).
    Reject,
}

/// One rule that took effect (decided a chain or the packet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleRef {
    /// The chain, by the IR role (`bridge from-vm`, `ipv4 forward-to-vm`, …).
    pub chain: String,
    /// 1-based position in that chain (as `iptables -L --line-numbers`).
    pub position: usize,
    /// The IR rule's verdict.
    pub action: String,
    /// The filter rule it was lowered from (`None`: a jump lowering added).
    pub origin: Option<RuleOrigin>,
    /// Where that rule is written, once [`Explanation::locate`] found it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<SourcePos>,
}

/// A file (or built-in document) and 1-based line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SourcePos {
    pub file: String,
    pub line: u32,
}

impl Explanation {
    /// Fills in where each rule's origin is written, by `find`.
    pub fn locate(&mut self, find: impl Fn(&RuleOrigin) -> Option<SourcePos>) {
        let refs = self.decisive.iter_mut().chain(
            self.path
                .iter_mut()
                .flat_map(|s| s.rule.iter_mut().chain(s.continued.iter_mut())),
        );
        for r in refs {
            r.source = r.origin.as_ref().and_then(&find);
        }
    }
}

/// One step of the path: a chain entered and how it was left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    pub chain: String,
    /// How the packet left the chain: `accept`, `drop`, `reject`,
    /// `return`, `jump`, `end` (ran out of rules).
    pub left_by: String,
    /// The rule that sent it out of the chain (none: ran out of rules).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<RuleRef>,
    /// Rules with a `continue` verdict that matched on the way.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub continued: Vec<RuleRef>,
    /// The chain is a bridge protocol sub-chain.
    #[serde(skip)]
    pub sub: bool,
    /// What the end of the chain or the return means on this backend.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The answer for one packet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Explanation {
    pub port: String,
    pub backend: Backend,
    pub direction: Direction,
    pub verdict: PacketVerdict,
    /// The rule that decided the verdict: the dropping or rejecting rule,
    /// else the last accepting (or returning) rule met; none when no rule
    /// of the port took part (the packet met no chain, or ran off their
    /// ends).
    pub decisive: Option<RuleRef>,
    /// The chains in the order the kernel ran them.
    pub path: Vec<Step>,
    /// Assumptions the verdict rests on, and backend differences that
    /// changed it.
    pub notes: Vec<String>,
}

/// Walks `traced` (a port's program with its origins) for `packet`.
pub fn explain(
    traced: &TracedProgram,
    backend: Backend,
    direction: Direction,
    packet: &Packet,
) -> Explanation {
    let mut e = walk(traced, backend, direction, packet);
    if e.path.iter().any(|s| s.left_by == "end" && s.sub) {
        let other = match backend {
            Backend::Xtables => Backend::Nftables,
            Backend::Nftables => Backend::Xtables,
        };
        let there = walk(traced, other, direction, packet).verdict;
        if there != e.verdict {
            e.notes.push(format!(
                "backend difference: with {} this packet is {}: a bridge sub-chain ran out of \
                 rules, which ebtables treats as ACCEPT (the chain's policy) and nftables as \
                 a return to the root chain",
                backend_name(other),
                verdict_name(there)
            ));
        }
    }
    e
}

fn backend_name(b: Backend) -> &'static str {
    match b {
        Backend::Xtables => "xtables",
        Backend::Nftables => "nftables",
    }
}

fn walk(
    traced: &TracedProgram,
    backend: Backend,
    direction: Direction,
    packet: &Packet,
) -> Explanation {
    let mut w = Walker {
        traced,
        backend,
        packet,
        path: Vec::new(),
        notes: Vec::new(),
        decisive: None,
    };
    let layers: [Layer; 2] = match direction {
        Direction::Out => [Layer::Bridge, Layer::Ip],
        Direction::In => [Layer::Ip, Layer::Bridge],
    };
    let mut verdict = PacketVerdict::Accept;
    for layer in layers {
        let outcome = match layer {
            Layer::Bridge => w.bridge(direction),
            Layer::Ip => w.ip(direction),
        };
        if outcome != PacketVerdict::Accept {
            verdict = outcome;
            break;
        }
    }
    Explanation {
        port: traced.program.port.as_str().to_owned(),
        backend,
        direction,
        verdict,
        decisive: w.decisive,
        path: w.path,
        notes: w.notes,
    }
}

#[derive(Debug, Clone, Copy)]
enum Layer {
    Bridge,
    Ip,
}

/// How a chain was left.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Exit {
    Final(PacketVerdict),
    Return,
    /// Ran out of rules.
    End,
}

struct Walker<'a> {
    traced: &'a TracedProgram,
    backend: Backend,
    packet: &'a Packet,
    path: Vec<Step>,
    notes: Vec<String>,
    decisive: Option<RuleRef>,
}

impl Walker<'_> {
    fn program(&self) -> &Program {
        &self.traced.program
    }

    fn index(&self, family: Family, role: &ChainRole) -> Option<usize> {
        self.program()
            .chains
            .iter()
            .position(|c| c.family == family && &c.role == role)
    }

    fn bridge(&mut self, direction: Direction) -> PacketVerdict {
        let dir = bridge_dir(direction);
        let Some(root) = self.index(Family::Bridge, &ChainRole::BridgeRoot(dir)) else {
            return PacketVerdict::Accept;
        };
        match self.run_bridge(root, dir) {
            Exit::Final(v) => v,
            // Back in the base chain (PREROUTING/POSTROUTING), which
            // accepts: the rest of it is not ours.
            Exit::Return | Exit::End => PacketVerdict::Accept,
        }
    }

    /// Runs bridge chain `at`, following jumps into sub-chains.
    fn run_bridge(&mut self, at: usize, dir: BridgeDir) -> Exit {
        let chain = &self.traced.program.chains[at];
        let mut continued = Vec::new();
        for (i, rule) in chain.rules.iter().enumerate() {
            if !self.matches_all(&rule.matches) {
                continue;
            }
            let r = self.rule_ref(at, i);
            match &rule.verdict {
                Verdict::Continue => continued.push(r),
                Verdict::Jump(name) => {
                    self.push(at, "jump", Some(r), std::mem::take(&mut continued), None);
                    let role = self.program().chains.iter().position(|c| {
                        matches!(&c.role, ChainRole::BridgeSub { dir: d, name: n, .. }
                            if *d == dir && n == name)
                    });
                    let Some(sub) = role else { continue };
                    match self.run_bridge(sub, dir) {
                        Exit::Final(v) => return Exit::Final(v),
                        Exit::Return => {}
                        Exit::End => {
                            if self.backend == Backend::Xtables {
                                self.decisive = None;
                                return Exit::Final(PacketVerdict::Accept);
                            }
                        }
                    }
                }
                verdict => {
                    let exit = bridge_exit(verdict);
                    let word = exit_word(&exit, verdict);
                    self.decide(&exit, &r);
                    self.push(at, word, Some(r), continued, None);
                    return exit;
                }
            }
        }
        let sub = matches!(chain.role, ChainRole::BridgeSub { .. });
        let note = match (sub, self.backend) {
            (true, Backend::Xtables) => {
                "an ebtables user chain's policy is ACCEPT: the frame is accepted here and \
                 the rest of the root chain does not run"
            }
            (true, Backend::Nftables) => "an nft chain returns to the rule after the jump",
            (false, _) => "back in the base chain, which accepts",
        };
        self.push(at, "end", None, continued, Some(note.to_owned()));
        if let Some(step) = self.path.last_mut() {
            step.sub = sub;
        }
        Exit::End
    }

    fn ip(&mut self, direction: Direction) -> PacketVerdict {
        let Some(ip) = self.packet.ip() else {
            return PacketVerdict::Accept;
        };
        let family = if ip.is_v4() {
            Family::Ipv4
        } else {
            Family::Ipv6
        };
        let role = match direction {
            Direction::Out if self.packet.to_host => ChainRole::HostFromVm,
            Direction::Out => ChainRole::ForwardFromVm,
            Direction::In => ChainRole::ForwardToVm,
        };
        let Some(at) = self.index(family, &role) else {
            return PacketVerdict::Accept;
        };
        let chain = &self.traced.program.chains[at];
        let mut continued = Vec::new();
        for (i, rule) in chain.rules.iter().enumerate() {
            if !self.matches_all(&rule.matches) {
                continue;
            }
            let r = self.rule_ref(at, i);
            let exit = match &rule.verdict {
                Verdict::Continue => {
                    continued.push(r);
                    continue;
                }
                Verdict::Accept => Exit::Final(PacketVerdict::Accept),
                Verdict::Drop => Exit::Final(PacketVerdict::Drop),
                Verdict::Reject => Exit::Final(PacketVerdict::Reject),
                Verdict::Return | Verdict::AcceptByReturn | Verdict::Jump(_) => Exit::Return,
            };
            let word = exit_word(&exit, &rule.verdict);
            self.decide(&exit, &r);
            let note = (exit == Exit::Return).then(|| self.ip_return_note(&role));
            self.push(at, word, Some(r), continued, note);
            return match exit {
                Exit::Final(v) => v,
                _ => PacketVerdict::Accept,
            };
        }
        let note = self.ip_return_note(&role);
        self.push(at, "end", None, continued, Some(note));
        PacketVerdict::Accept
    }

    fn ip_return_note(&self, role: &ChainRole) -> String {
        match (self.backend, role) {
            (Backend::Xtables, ChainRole::ForwardFromVm) => {
                "back in FORWARD (entered by goto): libvirt-in-post accepts what the VM sent"
            }
            (Backend::Xtables, ChainRole::HostFromVm) => {
                "back in INPUT (entered by goto): the host's own rules decide"
            }
            (Backend::Xtables, _) => {
                "back in FORWARD (entered by goto): the host's own rules decide"
            }
            (Backend::Nftables, _) => {
                "back in our base chain, which accepts: other tables' rules still see the packet"
            }
        }
        .to_owned()
    }

    fn matches_all(&mut self, matches: &[nwfilter_compile::ir::Match]) -> bool {
        for m in matches {
            if let Some(note) = assumption(m) {
                if !self.notes.iter().any(|n| n == note) {
                    self.notes.push(note.to_owned());
                }
            }
            if !holds(m, self.packet) {
                return false;
            }
        }
        true
    }

    fn decide(&mut self, exit: &Exit, r: &RuleRef) {
        if matches!(exit, Exit::Final(_) | Exit::Return) {
            self.decisive = Some(r.clone());
        }
    }

    fn rule_ref(&self, chain: usize, rule: usize) -> RuleRef {
        let c = &self.program().chains[chain];
        RuleRef {
            chain: chain_label(c),
            position: rule + 1,
            action: verdict_word(&c.rules[rule].verdict),
            origin: self.traced.origin(chain, rule).cloned(),
            source: None,
        }
    }

    fn push(
        &mut self,
        at: usize,
        left_by: &str,
        rule: Option<RuleRef>,
        continued: Vec<RuleRef>,
        note: Option<String>,
    ) {
        self.path.push(Step {
            chain: chain_label(&self.program().chains[at]),
            left_by: left_by.to_owned(),
            rule,
            continued,
            sub: false,
            note,
        });
    }
}

fn bridge_dir(direction: Direction) -> BridgeDir {
    match direction {
        Direction::Out => BridgeDir::FromVm,
        Direction::In => BridgeDir::ToVm,
    }
}

fn bridge_exit(v: &Verdict) -> Exit {
    match v {
        Verdict::Accept => Exit::Final(PacketVerdict::Accept),
        // Bridge rules lower `reject` to drop already.
        Verdict::Drop | Verdict::Reject => Exit::Final(PacketVerdict::Drop),
        _ => Exit::Return,
    }
}

fn exit_word(exit: &Exit, v: &Verdict) -> &'static str {
    match (exit, v) {
        (Exit::Final(PacketVerdict::Accept), _) => "accept",
        (Exit::Final(PacketVerdict::Drop), _) => "drop",
        (Exit::Final(PacketVerdict::Reject), _) => "reject",
        _ => "return",
    }
}

pub fn verdict_name(v: PacketVerdict) -> &'static str {
    match v {
        PacketVerdict::Accept => "accepted",
        PacketVerdict::Drop => "dropped",
        PacketVerdict::Reject => "rejected",
    }
}

fn verdict_word(v: &Verdict) -> String {
    match v {
        Verdict::Accept => "accept".into(),
        Verdict::AcceptByReturn => "accept (return)".into(),
        Verdict::Drop => "drop".into(),
        Verdict::Reject => "reject".into(),
        Verdict::Return => "return".into(),
        Verdict::Continue => "continue".into(),
        Verdict::Jump(name) => format!("jump {}", name.as_str()),
    }
}

/// `bridge from-vm`, `bridge from-vm sub arp-ip`, `ipv4 forward-to-vm`.
pub fn chain_label(c: &Chain) -> String {
    let family = match c.family {
        Family::Bridge => "bridge",
        Family::Ipv4 => "ipv4",
        Family::Ipv6 => "ipv6",
    };
    let dir = |d: &BridgeDir| match d {
        BridgeDir::FromVm => "from-vm",
        BridgeDir::ToVm => "to-vm",
    };
    match &c.role {
        ChainRole::BridgeRoot(d) => format!("{family} {} root", dir(d)),
        ChainRole::BridgeSub { dir: d, name, .. } => {
            format!("{family} {} sub {}", dir(d), name.as_str())
        }
        ChainRole::ForwardFromVm => format!("{family} forward-from-vm"),
        ChainRole::ForwardToVm => format!("{family} forward-to-vm"),
        ChainRole::HostFromVm => format!("{family} host-from-vm"),
    }
}

#[cfg(test)]
#[path = "walk_tests.rs"]
mod tests;
