//! Binding a resolved filter DAG to one port: flatten the tree with its
//! variable environments, check every reference can be satisfied (or that
//! only `$IP` awaits learning), then expand each rule over its values.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use nwfilter_model::{
    Action, Attr, Entry, Filter, FilterName, FilterRef, MacAddr6, Params, Rule, Value, VarRef,
};
use petgraph::graph::NodeIndex;
use serde::Serialize;

use crate::bound::{BoundRule, BoundRules};
use crate::dag::{resolve, FilterDag};
use crate::env::{EnvId, EnvView, Envs};
use crate::error::{BindError, Site, Unresolved};
use crate::iterate::{expand, unresolved, ParseCache};
use crate::source::FilterSource;

/// The most rules one binding may produce (and the most rules plus
/// `<filterref>` instances its tree may have). libvirt has no limit; but
/// references repeated at every level of a DAG, or several list variables
/// on different iterators, multiply, and a few lines of XML could
/// otherwise exhaust memory. Real bindings stay far below (clean-traffic
/// with one address: under 30).
pub const MAX_BOUND_RULES: usize = 100_000;

/// How a port without a known `IP` learns it (`CTRL_IP_LEARNING`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LearningMode {
    /// The first IPv4 address the guest uses (libvirt's default).
    #[default]
    Any,
    /// Addresses from DHCP leases (DHCP snooping).
    Dhcp,
    /// No learning: a missing `IP` is an error.
    None,
}

impl LearningMode {
    /// The binding's `CTRL_IP_LEARNING`: only its first value counts,
    /// compared without regard to case; absent means `any`.
    fn of(params: &Params) -> Result<LearningMode, String> {
        let Some(value) = params.get("CTRL_IP_LEARNING").and_then(|v| v.first()) else {
            return Ok(LearningMode::Any);
        };
        match value.to_ascii_lowercase().as_str() {
            "any" => Ok(LearningMode::Any),
            "dhcp" => Ok(LearningMode::Dhcp),
            "none" => Ok(LearningMode::None),
            _ => Err(value.clone()),
        }
    }
}

/// What binding a port's filters produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BindOutcome {
    /// Every variable is bound: the concrete rules, in flattening order.
    Bound(BoundRules),
    /// Only the plain `$IP` is unbound and learning is enabled: the port
    /// gets the learning rules until an address is known, then is bound
    /// again with `IP` set. Values are type-checked only then: nothing of
    /// this binding reaches a command before that second bind succeeds.
    AwaitingIp {
        mode: LearningMode,
        /// The binding's trusted DHCP servers (`DHCPSERVER`); empty means
        /// any server is trusted.
        dhcp_servers: Vec<Ipv4Addr>,
    },
}

/// Resolves `top` against `source` and binds it for a port with `mac`.
/// `top.params` are the binding's parameters (a name given several times
/// is a list).
pub fn bind(
    source: &dyn FilterSource,
    top: &FilterRef,
    mac: MacAddr6,
) -> Result<BindOutcome, BindError> {
    let dag = resolve(source, &top.filter)?;
    dag.bind(&top.params, mac)
}

impl FilterDag {
    /// Binds this DAG for a port with the binding parameters `params` and
    /// the port's `mac` (used as `MAC` unless `params` supplies one).
    /// Resolve once and call this per port when many ports share a filter.
    pub fn bind(&self, params: &Params, mac: MacAddr6) -> Result<BindOutcome, BindError> {
        let top = &self.top().name;
        // Validated up front, not only when learning starts: a typo here
        // would otherwise surface only once some port lacks an IP.
        let mode = LearningMode::of(params).map_err(|value| BindError::LearningMode {
            top: top.clone(),
            value,
        })?;
        let (envs, instances) = self.flattened(params, mac)?;

        let mut missing = missing(&instances, &envs);
        // `IPV6` awaiting learning: the rules that need it are left out
        // below (the port may send only what needs no address of its
        // own), and the learner rebinds the port with each change.
        let awaiting_v6 = mode != LearningMode::None && ipv6_awaits(&instances, &envs);
        if awaiting_v6 {
            missing.retain(|u| u.var.name != crate::reserved::IPV6);
        }
        if !missing.is_empty() {
            let only_ip = missing.len() == 1 && missing[0].var == VarRef::plain("IP");
            if only_ip && mode != LearningMode::None {
                return Ok(BindOutcome::AwaitingIp {
                    mode,
                    dhcp_servers: dhcp_servers(params, top)?,
                });
            }
            return Err(BindError::Unresolved {
                top: top.clone(),
                missing,
            });
        }

        let mut rules = Vec::with_capacity(instances.len());
        let mut expanded = Vec::new();
        let mut cache = ParseCache::default();
        for inst in &instances {
            let env = EnvView {
                envs: &envs,
                id: inst.env,
            };
            if awaiting_v6 && needs_missing_ipv6(inst.rule, &env) {
                continue;
            }
            let room = MAX_BOUND_RULES - rules.len();
            expand(
                inst.rule,
                inst.site(),
                &env,
                &mut cache,
                &mut expanded,
                room,
            )?;
            let vars = var_attrs(inst.rule, |name| envs.same_for_every_port(inst.env, name));
            rules.extend(expanded.drain(..).map(|rule| BoundRule {
                filter: inst.filter.name.clone(),
                rule_index: inst.rule_index,
                chain: inst.filter.chain.clone(),
                chain_priority: inst.filter.priority,
                rule,
                vars: vars.clone(),
            }));
        }
        Ok(BindOutcome::Bound(BoundRules { rules }))
    }
}

/// How a port whose filters use `$IPV6` without a value learns its IPv6
/// addresses ([`FilterDag::ipv6_learning`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ipv6Learning {
    /// The binding's `CTRL_IP_LEARNING` (never `none`).
    pub mode: LearningMode,
    /// The binding's `DHCPSERVERV6`: trusted DHCPv6 servers (empty: any).
    pub dhcp_servers: Vec<Ipv6Addr>,
}

impl FilterDag {
    /// Whether the port's IPv6 addresses are to be learned: its tree uses
    /// `$IPV6`, no environment gives it, `CTRL_IP_LEARNING` is not `none`,
    /// and every rule using it only accepts or returns (see
    /// [`ipv6_awaits`]). Such a port binds (with those rules left out)
    /// instead of failing on the missing `IPV6`.
    pub fn ipv6_learning(
        &self,
        params: &Params,
        mac: MacAddr6,
    ) -> Result<Option<Ipv6Learning>, BindError> {
        let top = &self.top().name;
        let mode = LearningMode::of(params).map_err(|value| BindError::LearningMode {
            top: top.clone(),
            value,
        })?;
        if mode == LearningMode::None {
            return Ok(None);
        }
        let (envs, instances) = self.flattened(params, mac)?;
        if !ipv6_awaits(&instances, &envs) {
            return Ok(None);
        }
        let dhcp_servers = params
            .get(crate::reserved::DHCPSERVERV6)
            .unwrap_or(&[])
            .iter()
            // Checked by `reserved::check` above.
            .filter_map(|v| v.parse().ok())
            .collect();
        Ok(Some(Ipv6Learning { mode, dhcp_servers }))
    }
}

/// Whether some rule needs `$IPV6` and no environment gives it, and every
/// such rule may be left out safely: it accepts or returns, on matches
/// that are not negated. Leaving out such a rule only takes a way through
/// away (the packets it let through meet the rules after it, in our
/// filters the chain's drop); leaving out a `drop`, `reject`, `continue`
/// or a negated match could let through what the filter meant to stop,
/// so those keep the missing `IPV6` an error.
fn ipv6_awaits(instances: &[Instance<'_>], envs: &Envs<'_>) -> bool {
    let mut any = false;
    for inst in instances {
        let env = EnvView { envs, id: inst.env };
        if !needs_missing_ipv6(inst.rule, &env) {
            continue;
        }
        let negated = inst
            .rule
            .protocol
            .iter()
            .flat_map(|p| p.attrs.iter())
            .any(|a| a.negated && is_ipv6_ref(&a.value));
        if negated || !matches!(inst.rule.action, Action::Accept | Action::Return) {
            return false;
        }
        any = true;
    }
    any
}

/// Whether `rule` uses `$IPV6` and `env` gives it no value.
fn needs_missing_ipv6(rule: &Rule, env: &EnvView<'_, '_>) -> bool {
    use crate::iterate::Lookup;
    let uses = rule
        .protocol
        .iter()
        .flat_map(|p| p.attrs.iter())
        .any(|a| is_ipv6_ref(&a.value));
    uses && env
        .values(crate::reserved::IPV6)
        .is_none_or(<[String]>::is_empty)
}

fn is_ipv6_ref(value: &Value) -> bool {
    matches!(value, Value::Var(v) if v.name == crate::reserved::IPV6)
}

/// The attributes of `rule` written as a variable reference, except those
/// whose variable has the same value for every port (`constant`).
fn var_attrs(rule: &Rule, constant: impl Fn(&str) -> bool) -> Vec<Attr> {
    rule.protocol
        .iter()
        .flat_map(|p| p.attrs.iter())
        .filter(|a| matches!(&a.value, Value::Var(v) if !constant(&v.name)))
        .map(|a| a.attr)
        .collect()
}

/// One rule of the flattened tree with the environment it is bound in.
struct Instance<'a> {
    filter: &'a Arc<Filter>,
    rule_index: usize,
    rule: &'a Rule,
    env: EnvId,
}

impl Instance<'_> {
    fn site(&self) -> Site<'_> {
        Site {
            filter: &self.filter.name,
            rule_index: self.rule_index,
        }
    }
}

/// Depth first, document order: each `<filterref>` is replaced in place by
/// the referenced filter's entries, bound in a child environment. A filter
/// referenced twice contributes its rules twice, as in libvirt. Recursion
/// depth is bounded by the number of filters (the DAG is acyclic).
impl FilterDag {
    /// The reserved variables checked, and the DAG's rules, one instance
    /// each place it is reached, with their environments.
    fn flattened<'a>(
        &'a self,
        params: &'a Params,
        mac: MacAddr6,
    ) -> Result<(Envs<'a>, Vec<Instance<'a>>), BindError> {
        let top = &self.top().name;
        crate::reserved::check(params, top)?;
        // Known from the DAG alone: refuse before allocating anything.
        let (n_rules, n_refs) = self.flat_size();
        if n_rules.saturating_add(n_refs) > MAX_BOUND_RULES {
            return Err(BindError::TreeTooLarge {
                top: top.clone(),
                limit: MAX_BOUND_RULES,
            });
        }
        let mut envs = Envs::new(params, mac, n_refs);
        let mut instances = Vec::with_capacity(n_rules);
        flatten(self, self.top_node(), Envs::TOP, &mut envs, &mut instances);
        Ok((envs, instances))
    }
}

fn flatten<'a>(
    dag: &'a FilterDag,
    node: NodeIndex,
    env: EnvId,
    envs: &mut Envs<'a>,
    out: &mut Vec<Instance<'a>>,
) {
    let filter = dag.filter_at(node);
    let mut rule_index = 0;
    let mut ref_index = 0;
    for entry in &filter.entries {
        match entry {
            Entry::Rule(rule) => {
                out.push(Instance {
                    filter,
                    rule_index,
                    rule,
                    env,
                });
                rule_index += 1;
            }
            Entry::Ref(r) => {
                let child = dag.child(node, ref_index);
                ref_index += 1;
                let child_env = envs.child(env, &r.params);
                flatten(dag, child, child_env, envs, out);
            }
        }
    }
}

/// Every unsatisfiable reference of the tree, each once (at its first use).
fn missing(instances: &[Instance<'_>], envs: &Envs<'_>) -> Vec<Unresolved> {
    let mut found: Vec<Unresolved> = Vec::new();
    for inst in instances {
        let env = EnvView { envs, id: inst.env };
        for var in unresolved(inst.rule, &env) {
            if !found.iter().any(|u| &u.var == var) {
                found.push(Unresolved {
                    var: var.clone(),
                    at: inst.site().owned(),
                });
            }
        }
    }
    found
}

/// The binding's `DHCPSERVER` list, each an IPv4 address.
fn dhcp_servers(params: &Params, top: &FilterName) -> Result<Vec<Ipv4Addr>, BindError> {
    params
        .get("DHCPSERVER")
        .unwrap_or(&[])
        .iter()
        .map(|v| {
            v.parse().map_err(|_| BindError::DhcpServer {
                top: top.clone(),
                value: v.clone(),
            })
        })
        .collect()
}
