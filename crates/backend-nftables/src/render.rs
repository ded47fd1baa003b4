//! Chain IR ([`Program`]) → one port's nft chains ([`PortRuleset`]).
//!
//! Bridge chains keep their IR shape (roots, sub-chains, jumps). The IPv4
//! and IPv6 chains of one role become ONE chain of the `inet` table, each
//! rule guarded by `meta nfproto` (or, when all are of one version, the
//! chain by one guard rule: `crate::nfproto`): a packet is one or the
//! other, so the merged chain decides exactly as the two separate ones did.
//!
//! What nft cannot express is refused for the whole port (never a rule
//! silently skipped): a half-applied filter would let through what the
//! author meant to stop.

use nftables::expr::MetaKey;
use nftables::stmt::{Accept, Continue, Drop, JumpTarget, Reject, RejectType, Return, Statement};
use nwfilter_compile::ir::{self, BridgeDir, ChainRole, Family, L4Proto, Program, Verdict};
use std::sync::{Arc, OnceLock};

use nwfilter_model::IfName;
use serde::Serialize;

pub use crate::error::{RenderError, Unsupported};
use crate::fast_path;
use crate::inline;
use crate::ip_in_bridge;
use crate::matches::{lookup, terms, Context, Lookup};
use crate::names::{self, Role, Table};
use crate::nfproto::{self, Guard};
use crate::share::{self, Group};
use crate::term::{compare, statement, Operand, Term};

/// One port's rules: its template's chains, and its values for the
/// template's sets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortRuleset {
    pub port: IfName,
    /// The template id (`t` and 16 hex digits); it names the chains and
    /// sets, which every port with the same template shares.
    pub template: String,
    /// The template's chains. Invariants: names unique; a chain a rule
    /// jumps to comes first; every chain has at least one rule. The same
    /// for every port of the template: behind an `Arc`, so that a caller
    /// keeping many ports' rulesets keeps the template once (see
    /// [`PortRuleset::share_template`]).
    #[serde(serialize_with = "serialize_shared")]
    pub chains: Arc<Vec<Chain>>,
    /// The template's sets, each with this port's elements.
    pub sets: Vec<PortSet>,
    /// The template's verdict maps, each leading this port into a chain
    /// of its own (`own`).
    pub maps: Vec<PortMap>,
    /// Chains of this port alone: rules whose values sets cannot hold,
    /// written in. Named by their content and port.
    pub own: Vec<Chain>,
    /// Which rules are in chains of the port's own, and why (empty: the
    /// port's rules are all shared).
    pub per_port: Vec<String>,
    /// The port's elements of `crate::layout::FAST_FROM` (source MAC,
    /// source IPv4, as nft spells them): the IPv4 frames its chains are
    /// proven to accept whatever else they hold (`crate::fast_path`),
    /// accepted at bridge prerouting's head.
    pub fast_from: Vec<Vec<String>>,
}

/// A template's verdict map and the port's own chain it leads to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortMap {
    pub table: Table,
    /// The same for every port of the template: an `Arc`, so that kept
    /// rulesets and kernel states can hold one copy (issue 22 item 5).
    #[serde(serialize_with = "names::serialize_arc")]
    pub name: Arc<str>,
    pub key: PortKey,
    pub chain: String,
}

/// Serializes shared chains as the list they are (serde's `rc` feature
/// is not enabled in the workspace).
fn serialize_shared<S: serde::Serializer>(
    chains: &Arc<Vec<Chain>>,
    s: S,
) -> Result<S::Ok, S::Error> {
    chains.as_slice().serialize(s)
}

impl PortRuleset {
    /// Whether the port has IPv4/IPv6 chains (and so needs a port tag).
    pub fn needs_tag(&self) -> bool {
        self.chains.iter().any(|c| c.table == Table::Inet)
    }

    /// Holds `shared` instead of its own template chains when they are
    /// equal (the same template): rulesets sharing them keep one copy.
    /// Returns whether they were shared.
    pub fn share_chains(&mut self, shared: &Arc<Vec<Chain>>) -> bool {
        let same = self.chains == *shared;
        if same {
            self.chains = Arc::clone(shared);
        }
        same
    }
}

/// A template's set, with one port's elements.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortSet {
    pub table: Table,
    /// Shared as [`PortMap::name`] is.
    #[serde(serialize_with = "names::serialize_arc")]
    pub name: Arc<str>,
    /// How a packet's port is told (the first part of each element).
    pub key: PortKey,
    /// The types of the values after the port key (`ether_addr`, ...).
    pub types: Vec<&'static str>,
    /// The key as `typeof` declares it (`iifname . @nh,64,48`), for a set
    /// that holds a raw header field, which no `type` names.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub typeof_key: Option<String>,
    /// This port's values, one tuple per element, as nft spells them.
    pub elements: Vec<Vec<String>>,
}

/// How a shared rule tells which port a packet belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PortKey {
    /// Bridge rules for frames from the VM: `iifname`.
    InPort,
    /// Bridge rules for frames to the VM: `oifname`.
    OutPort,
    /// IP rules for packets from the VM: the in-port tag in the mark.
    InTag,
    /// IP rules for packets to the VM: the out-port tag in the mark.
    OutTag,
}

impl PortKey {
    /// The set key type of this part.
    pub fn type_name(self) -> &'static str {
        match self {
            PortKey::InPort | PortKey::OutPort => "ifname",
            PortKey::InTag | PortKey::OutTag => "mark",
        }
    }

    /// The expression a rule looks up.
    pub fn operand(self) -> Operand {
        match self {
            PortKey::InPort => crate::layout::iface(MetaKey::Iifname, "iifname"),
            PortKey::OutPort => crate::layout::iface(MetaKey::Oifname, "oifname"),
            PortKey::InTag => Operand::meta(MetaKey::Mark, "mark")
                .and(Operand::hex(crate::layout::IN_TAG_MASK, 8)),
            PortKey::OutTag => Operand::meta(MetaKey::Mark, "mark")
                .and(Operand::hex(crate::layout::OUT_TAG_MASK, 8)),
        }
    }

    /// The key of a rule of `role` in `table` (an IP-layer rule moved into
    /// the bridge table tells the port by interface, as bridge rules do).
    fn of(role: &ChainRole, table: Table) -> PortKey {
        match role {
            ChainRole::ForwardFromVm | ChainRole::HostFromVm if table == Table::Bridge => {
                PortKey::InPort
            }
            ChainRole::BridgeRoot(BridgeDir::FromVm)
            | ChainRole::BridgeSub {
                dir: BridgeDir::FromVm,
                ..
            } => PortKey::InPort,
            ChainRole::BridgeRoot(BridgeDir::ToVm)
            | ChainRole::BridgeSub {
                dir: BridgeDir::ToVm,
                ..
            } => PortKey::OutPort,
            ChainRole::ForwardFromVm | ChainRole::HostFromVm => PortKey::InTag,
            ChainRole::ForwardToVm => PortKey::OutTag,
        }
    }
}

/// One chain of a port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Chain {
    pub table: Table,
    pub role: Role,
    pub name: String,
    pub rules: Vec<Rule>,
}

/// One rule: its statements in order, and its comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rule {
    /// Each behind an `Arc`: most statements of a port's own chains are
    /// the same for every port (`ether type 0x8035`, `accept`), so a
    /// caller keeping many ports' rules can keep one copy of each (see
    /// [`Rule::new`] and the engine's kept rulesets).
    #[serde(serialize_with = "serialize_terms")]
    pub terms: Vec<Arc<Term>>,
    /// At most 128 bytes, no `"` or control characters.
    pub comment: Option<String>,
}

impl Rule {
    pub fn new(terms: Vec<Term>, comment: Option<String>) -> Rule {
        Rule {
            terms: terms.into_iter().map(Arc::new).collect(),
            comment,
        }
    }
}

/// Serializes shared terms as the terms they are (serde's `rc` feature
/// is not enabled in the workspace).
fn serialize_terms<S: serde::Serializer>(terms: &[Arc<Term>], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(terms.iter().map(|t| &**t))
}

/// Renders one port's program into its template's chains and its own
/// values: sets where they can hold them, a chain of the port's own for
/// each rule whose values they cannot (see [`crate::share`]).
pub fn ruleset(program: &Program) -> Result<PortRuleset, RenderError> {
    Ok(with_fast_path(program, rendered(program, RawSets::Typeof)?))
}

/// [`ruleset`] as nft's JSON can say it (`nwfilter render --format
/// json`): nft 1.0.6's JSON cannot declare a set of raw header fields, so
/// those values stay in chains of the port's own, under another template.
pub fn ruleset_for_json(program: &Program) -> Result<PortRuleset, RenderError> {
    Ok(with_fast_path(program, rendered(program, RawSets::None)?))
}

/// `rules` with the port's fast-path elements: what `crate::fast_path`
/// proves of `program`, which the rendering decides the same as.
fn with_fast_path(program: &Program, mut rules: PortRuleset) -> PortRuleset {
    rules.fast_from = fast_path::fast_path(program)
        .from_vm
        .iter()
        .map(|(mac, ip)| vec![mac.to_string().to_ascii_lowercase(), ip.to_string()])
        .collect();
    rules
}

/// Whether a set may hold raw header fields (RARP addresses, ND values).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RawSets {
    /// In sets declared by `typeof` (what is applied).
    Typeof,
    /// In chains of the port's own.
    None,
}

fn rendered(program: &Program, raw_sets: RawSets) -> Result<PortRuleset, RenderError> {
    // Which groups need a chain of their own is part of the template (a
    // lookup or a jump), so it goes into the id everything is named by: a
    // first pass finds it, unless ports of the same shape already told
    // (checked: the render under that id must decide the same).
    // Where the IP-layer rules run is decided once, for every pass and
    // the id.
    static MEMO: OnceLock<share::OwnGroupsMemo> = OnceLock::new();
    let memo = MEMO.get_or_init(Default::default);
    let bridged = ip_in_bridge::applies(program);
    let shape = share::Shape::of(program, bridged);
    let key = (shape.key(), raw_sets == RawSets::Typeof);
    if let Some(guess) = memo.get(key) {
        let out = render(program, &shape.template_id(&guess), bridged, raw_sets)?;
        if out.own_groups[..] == guess[..] {
            return Ok(out.rules);
        }
    }
    let draft = render(program, "t0000000000000000", bridged, raw_sets)?;
    memo.put(key, &draft.own_groups);
    let template = shape.template_id(&draft.own_groups);
    Ok(render(program, &template, bridged, raw_sets)?.rules)
}

/// A render and the groups (in order) that got a chain of their own.
struct Rendered {
    rules: PortRuleset,
    own_groups: Vec<bool>,
}

/// The port's rules and where they go while a program is rendered.
struct Out<'a> {
    port: &'a IfName,
    template: &'a str,
    sets: Vec<PortSet>,
    maps: Vec<PortMap>,
    own: Vec<Chain>,
    per_port: Vec<String>,
    raw_sets: RawSets,
}

/// `bridged`: the port's IP-layer rules run in the bridge table
/// ([`ip_in_bridge::applies`]).
fn render(
    program: &Program,
    template: &str,
    bridged: bool,
    raw_sets: RawSets,
) -> Result<Rendered, RenderError> {
    let port = &program.port;
    let groups = share::groups(program, true);
    let mut out = Out {
        port,
        template,
        sets: Vec::new(),
        maps: Vec::new(),
        own: Vec::new(),
        per_port: Vec::new(),
        raw_sets,
    };
    let mut own_groups = Vec::new();
    let mut chains: Vec<Chain> = Vec::new();
    let names: Vec<String> = program
        .chains
        .iter()
        .map(|c| placement(&c.role, template, bridged).2)
        .collect();
    let once = nfproto::guarded_once(
        program
            .chains
            .iter()
            .zip(&names)
            .zip(&groups)
            .map(|((c, name), g)| (name.as_str(), c.family, g.len())),
    );
    // Moved into the bridge table, the IP-layer chain is entered by a jump
    // that tests the IP version when all its rules are of one, placed in
    // the root where `ip_in_bridge::entry_index` says (the index of the
    // rendered rule it goes before is found while the root is rendered).
    let bridged_version = bridged
        .then(|| ip_in_bridge::one_version(program))
        .flatten();
    let entry = bridged.then(|| ip_in_bridge::entry(program)).flatten();
    let mut entry_rendered = None;
    for (chain, groups) in program.chains.iter().zip(&groups) {
        if bridged && chain.role == ChainRole::HostFromVm {
            // The same rules as the forward chain, which bridge
            // prerouting runs for the host's frames too.
            continue;
        }
        let (table, role, name) = placement(&chain.role, template, bridged);
        let guard = match (table, once.get(&name)) {
            (Table::Bridge, _) if bridged_version.is_some() => Guard::OneRule,
            (Table::Bridge, _) => Guard::EachRule,
            (Table::Inet, Some(_)) => Guard::OneRule,
            (Table::Inet, None) => Guard::EachRule,
        };
        // The guard rule heads the chain (not a half appended to it).
        let fresh = !chains.iter().any(|c| c.name == name);
        let mut rendered: Vec<Rule> = match once.get(&name) {
            Some(family) if fresh && table == Table::Inet => vec![nfproto::chain_guard(*family)],
            _ => Vec::new(),
        };
        let mut position = 1;
        for (index, group) in groups.iter().enumerate() {
            if entry == Some(position - 1) && chain.role == ChainRole::BridgeRoot(BridgeDir::FromVm)
            {
                entry_rendered = Some(rendered.len());
            }
            let at = RuleAt {
                chain,
                table,
                name: &name,
                position,
                guard,
            };
            let placed = |source| RenderError::Rule {
                port: port.to_string(),
                chain: name.clone(),
                rule: position,
                source,
            };
            let (rule, own) =
                render_group(group, &groups[index..], at, &mut out).map_err(placed)?;
            own_groups.push(own != Own::No);
            rendered.push(rule);
            position += group.rules.len();
            if own == Own::Tail {
                break;
            }
        }
        match chains.iter_mut().find(|c| c.name == name) {
            // The IPv6 half of an inet chain follows its IPv4 half.
            Some(existing) => existing.rules.extend(rendered),
            None => chains.push(Chain {
                table,
                role,
                name,
                rules: rendered,
            }),
        }
    }
    if bridged {
        // Not found (the entry inside a group, which `share::groups`
        // does not make): the root's head, where the jump is always right.
        let at = entry_rendered.unwrap_or(0);
        ip_in_bridge::enter_from_root(&mut chains, template, bridged_version, at);
    }
    inline::inline_lookups(&mut chains, &out.own);
    inline::inline_verdicts(&mut chains, &out.own);
    Ok(Rendered {
        rules: PortRuleset {
            port: port.clone(),
            template: template.to_owned(),
            chains: Arc::new(chains),
            sets: out.sets,
            maps: out.maps,
            own: out.own,
            per_port: out.per_port,
            fast_from: Vec::new(),
        },
        own_groups,
    })
}

/// The table, role and name of an IR chain of `template`; `bridged`: the
/// port's IP-layer rules run in the bridge table (`crate::ip_in_bridge`).
fn placement(role: &ChainRole, template: &str, bridged: bool) -> (Table, Role, String) {
    let named = |table: Table, role: Role| {
        let name = names::chain(&role, template);
        (table, role, name)
    };
    match role {
        ChainRole::BridgeRoot(BridgeDir::FromVm) => named(Table::Bridge, Role::FromVmL2),
        ChainRole::BridgeRoot(BridgeDir::ToVm) => named(Table::Bridge, Role::ToVmL2),
        ChainRole::BridgeSub { dir, name, .. } => (
            Table::Bridge,
            Role::Sub,
            names::sub_chain(*dir, name, template),
        ),
        ChainRole::ForwardFromVm if bridged => (
            Table::Bridge,
            Role::Sub,
            names::chain(&Role::FromVm, template),
        ),
        ChainRole::ForwardFromVm => named(Table::Inet, Role::FromVm),
        ChainRole::ForwardToVm => named(Table::Inet, Role::ToVm),
        ChainRole::HostFromVm => named(Table::Inet, Role::HostFromVm),
    }
}

/// Where a group is rendered.
#[derive(Clone, Copy)]
struct RuleAt<'a> {
    chain: &'a ir::Chain,
    /// The table the template chain is in.
    table: Table,
    /// The template chain's name.
    name: &'a str,
    /// 1-based position of the group's first rule in the IR chain.
    position: usize,
    /// Whether the rule tests its IP version itself.
    guard: Guard,
}

/// Whether a group became a jump into a chain of the port's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Own {
    No,
    /// The group's rules alone.
    Group,
    /// The group and every rule after it in its chain (`rest`).
    Tail,
}

/// One group of rules as one template rule, and whether it became a jump
/// into a chain of the port's own. `rest` is the group and the groups
/// after it in its chain.
///
/// A rule that leaves its chain (`return`) cannot sit in a chain of the
/// port's own alone: there it would leave only that chain, and the
/// template's next rules would still run. Such a group takes the rest of
/// its chain along, so that leaving the port's chain, or running off its
/// end, is leaving the template's chain too (the jump is its last rule).
fn render_group(
    group: &Group<'_>,
    rest: &[Group<'_>],
    at: RuleAt<'_>,
    out: &mut Out<'_>,
) -> Result<(Rule, Own), Unsupported> {
    match shared_rule(group, at, out)? {
        Ok(rule) => Ok((rule, Own::No)),
        Err(why) => {
            out.per_port
                .push(format!("chain {}, rule {}: {why}", at.name, at.position));
            let leaves = (group.rules.iter())
                .any(|r| matches!(r.verdict, Verdict::Return | Verdict::AcceptByReturn));
            if leaves {
                let tail = Group {
                    rules: rest.iter().flat_map(|g| g.rules.iter().copied()).collect(),
                };
                return Ok((own_chain(&tail, at, out)?, Own::Tail));
            }
            Ok((own_chain(group, at, out)?, Own::Group))
        }
    }
}

/// The group as one rule with set lookups for its per-port values, or why
/// sets cannot hold them. Sets are added to `out` only on success.
fn shared_rule(
    group: &Group<'_>,
    at: RuleAt<'_>,
    out: &mut Out<'_>,
) -> Result<Result<Rule, String>, Unsupported> {
    let rule = group.first();
    let mut ctx = Context::default();
    let mut terms_out = nfproto::rule_guard(at.chain.family, at.table, at.guard, &mut ctx);
    let mut lookups: Vec<Lookup> = Vec::new();
    let mut lookup_at = None;
    for (i, m) in rule.matches.iter().enumerate() {
        if rule.per_port.contains(&i) {
            let Some(l) = lookup(m, &ctx) else {
                return Ok(Err(
                    "a per-port address with a mask or a prefix: no set holds it".into(),
                ));
            };
            if let ir::Match::Nd(nd) = m {
                terms_out.extend(crate::nd::guards(nd, &mut ctx)?);
            }
            lookup_at.get_or_insert(terms_out.len());
            lookups.push(l);
            continue;
        }
        terms_out.extend(terms(m, &mut ctx)?);
    }
    let negated = lookups.iter().any(|l| l.negated);
    if negated && group.rules.len() > 1 {
        return Ok(Err(
            "a negated match on several values of a list (not a AND not b is no set lookup)".into(),
        ));
    }
    if let Some(pos) = lookup_at {
        let key = PortKey::of(&at.chain.role, at.table);
        if lookups.iter().any(Lookup::raw) {
            if out.raw_sets == RawSets::None {
                return Ok(Err(
                    "a per-port raw header field (RARP, neighbour discovery): nft's JSON has no set for it".into(),
                ));
            }
            if matches!(key, PortKey::InTag | PortKey::OutTag) {
                // `typeof` cannot declare a key masked out of the mark.
                return Ok(Err(
                    "a per-port raw header field in a chain told by the port tag: no set holds it"
                        .into(),
                ));
            }
        }
        let table = at.table;
        let mut found = Vec::new();
        let add_set = |out: &mut Out<'_>, lookups: &[&Lookup], elements| {
            let name = names::set(out.sets.len(), out.template);
            let typeof_key = lookups.iter().any(|l| l.raw()).then(|| {
                let fields = lookups.iter().map(|l| l.field.text.as_str());
                std::iter::once(key.operand().text.as_str())
                    .chain(fields)
                    .collect::<Vec<_>>()
                    .join(" . ")
            });
            out.sets.push(PortSet {
                table,
                name: name.as_str().into(),
                key,
                types: lookups.iter().map(|l| l.key_type).collect(),
                typeof_key,
                elements,
            });
            name
        };
        if negated {
            // A single rule: one set per value, each tested alone.
            for l in lookups {
                let name = add_set(out, &[&l], vec![vec![l.value.clone()]]);
                found.push(set_lookup(key, vec![l.field], true, &name));
            }
        } else {
            let mut elements: Vec<Vec<String>> = Vec::new();
            for r in &group.rules {
                let values: Vec<String> = r
                    .per_port
                    .iter()
                    .filter_map(|&i| lookup(&r.matches[i], &ctx))
                    .map(|l| l.value)
                    .collect();
                if !elements.contains(&values) {
                    elements.push(values);
                }
            }
            let name = add_set(out, &lookups.iter().collect::<Vec<_>>(), elements);
            let fields = lookups.into_iter().map(|l| l.field).collect();
            found.push(set_lookup(key, fields, false, &name));
        }
        terms_out.splice(pos..pos, found);
    }
    terms_out.push(verdict(&rule.verdict, at, &ctx, out.template)?);
    let comment = rule.comment.as_deref().map(checked_comment).transpose()?;
    Ok(Ok(Rule::new(terms_out, comment)))
}

/// The group's rules with the port's values written in, in a chain of the
/// port's own; the template rule jumps there through a verdict map keyed
/// by port. A rule that does not match falls off the end of that chain
/// and evaluation goes on after the jump: as if the rules were inline.
fn own_chain(group: &Group<'_>, at: RuleAt<'_>, out: &mut Out<'_>) -> Result<Rule, Unsupported> {
    let rules = group
        .rules
        .iter()
        .map(|rule| written_out(rule, at, out.template))
        .collect::<Result<Vec<Rule>, Unsupported>>()?;
    let n = out.maps.len();
    let table = at.table;
    let chain = names::own_chain(n, &content_hash(&rules), out.port);
    let map = names::own_map(n, out.template);
    let key = PortKey::of(&at.chain.role, at.table);
    out.own.push(Chain {
        table,
        role: Role::Sub,
        name: chain.clone(),
        rules,
    });
    out.maps.push(PortMap {
        table,
        name: map.as_str().into(),
        key,
        chain,
    });
    Ok(Rule::new(
        vec![crate::layout::vmap(key.operand(), &map)],
        None,
    ))
}

/// `rule` with every value written in.
fn written_out(rule: &ir::Rule, at: RuleAt<'_>, template: &str) -> Result<Rule, Unsupported> {
    let mut ctx = Context::default();
    // Entered from the template's chain, after its guard if it has one;
    // the own chain tests the version itself all the same.
    let mut t = nfproto::rule_guard(at.chain.family, at.table, Guard::EachRule, &mut ctx);
    for m in &rule.matches {
        t.extend(terms(m, &mut ctx)?);
    }
    t.push(verdict(&rule.verdict, at, &ctx, template)?);
    let comment = rule.comment.as_deref().map(checked_comment).transpose()?;
    Ok(Rule::new(t, comment))
}

/// A short hash of rules' text: an own chain's name changes with its
/// content, so the kernel's chain names tell whether it is current.
fn content_hash(rules: &[Rule]) -> String {
    use std::hash::Hasher;
    let mut hasher = fnv::FnvHasher::default();
    for rule in rules {
        for t in &rule.terms {
            hasher.write(t.text.as_bytes());
            hasher.write(b" ");
        }
        hasher.write(rule.comment.as_deref().unwrap_or("").as_bytes());
        hasher.write(b"\n");
    }
    format!("{:08x}", hasher.finish() as u32)
}

/// `KEY . field… @set` (or `!=`).
pub(crate) fn set_lookup(key: PortKey, fields: Vec<Operand>, negated: bool, set: &str) -> Term {
    let mut parts = vec![key.operand()];
    parts.extend(fields);
    let reference = format!("@{set}");
    compare(
        Operand::concat(parts),
        negated,
        Operand::new(
            reference.clone(),
            nftables::expr::Expression::String(reference.into()),
        ),
    )
}

fn verdict(
    v: &Verdict,
    at: RuleAt<'_>,
    ctx: &Context,
    template: &str,
) -> Result<Term, Unsupported> {
    let chain = at.chain;
    // An IP-layer accept ends the IP layer's say only: moved into the
    // bridge table (before the port's Ethernet rules), it leaves the chain.
    let ip_in_bridge = chain.family != Family::Bridge && at.table == Table::Bridge;
    Ok(match v {
        Verdict::Accept if ip_in_bridge => statement("return", Statement::Return(Some(Return {}))),
        Verdict::Accept => statement("accept", Statement::Accept(Some(Accept {}))),
        // Our inet chains are entered by a jump from the dispatch rule: a
        // return goes on to the next dispatch (to-VM after from-VM), just
        // as libvirt's goto chains return to FORWARD.
        Verdict::AcceptByReturn | Verdict::Return => {
            statement("return", Statement::Return(Some(Return {})))
        }
        Verdict::Drop => statement("drop", Statement::Drop(Some(Drop {}))),
        Verdict::Continue => statement("continue", Statement::Continue(Some(Continue {}))),
        Verdict::Reject => {
            if at.table == Table::Bridge {
                return Err(Unsupported::BridgeReject);
            }
            // TCP gets a reset (what a closed port sends); everything else
            // the ICMP/ICMPv6 port-unreachable a closed UDP port sends.
            if ctx.l4 == Some(L4Proto::Tcp) {
                statement(
                    "reject with tcp reset",
                    Statement::Reject(Some(Reject::new(Some(RejectType::TCPReset), None))),
                )
            } else {
                statement("reject", Statement::Reject(Some(Reject::new(None, None))))
            }
        }
        Verdict::Jump(name) => {
            let dir = match &chain.role {
                ChainRole::BridgeRoot(dir) | ChainRole::BridgeSub { dir, .. } => *dir,
                _ => BridgeDir::FromVm,
            };
            let target = names::sub_chain(dir, name, template);
            statement(
                format!("jump {target}"),
                Statement::Jump(JumpTarget {
                    target: target.into(),
                }),
            )
        }
    })
}

/// nft stores at most 128 bytes of comment and its text form cannot
/// escape a `"`.
fn checked_comment(text: &str) -> Result<String, Unsupported> {
    if text.len() > 128 {
        return Err(Unsupported::Comment(
            text.to_owned(),
            "is longer than 128 bytes",
        ));
    }
    if text.chars().any(|c| c == '"' || c.is_control()) {
        return Err(Unsupported::Comment(
            text.to_owned(),
            "contains a double quote or a control character",
        ));
    }
    Ok(text.to_owned())
}
