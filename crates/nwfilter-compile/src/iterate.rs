//! Expanding one rule over its variables' values (reference
//! `nwfilter-xml.md` §6.3, lowering §5.5; libvirt's `nwfilter_params.c`).
//!
//! * Every distinct reference of the rule belongs to an iterator: `$X` and
//!   `$X[@N]` to iterator N, shared with the other references on N; each
//!   `$X[k]` to a private single-step iterator.
//! * References on one iterator walk their lists in parallel (equal
//!   lengths required); a step repeating an earlier step's tuple of values
//!   is skipped.
//! * Iterators combine as a cartesian product: iterator 0 varies fastest,
//!   then the others in order of first appearance (canonical attribute
//!   order, which is the order `ProtocolMatch::attrs` keeps).
//!
//! Every value is parsed as the attribute it lands in, once per step, so a
//! wrongly typed value is an error here and never reaches a command.

use std::collections::HashSet;

use nwfilter_model::{
    parse_kind, AttrValue, Protocol, Rule, Value, ValueError, ValueKind, VarAccess, VarRef,
};

use crate::bind::MAX_BOUND_RULES;
use crate::error::{BadValue, BindError, Site};

/// Where to find a variable's values while expanding one rule.
pub(crate) trait Lookup<'e> {
    /// The values of `name`; `None` or an empty list when undefined.
    fn values(&self, name: &str) -> Option<&'e [String]>;
}

/// Values already parsed during one binding, by kind and text: `$MAC` and
/// `$IP` appear in many rules of a typical tree, and parsing dominated the
/// cost of binding. A short list beats hashing for the handful of distinct
/// values a binding has; past [`ParseCache::CAPACITY`] (long lists) new
/// values are parsed without being remembered.
#[derive(Debug, Default)]
pub(crate) struct ParseCache<'e> {
    parsed: Vec<(ValueKind, &'e str, Value)>,
}

impl<'e> ParseCache<'e> {
    const CAPACITY: usize = 32;

    fn parse(&mut self, kind: ValueKind, text: &'e str) -> Result<Value, ValueError> {
        if let Some((_, _, v)) = self
            .parsed
            .iter()
            .find(|(k, t, _)| *k == kind && *t == text)
        {
            return Ok(v.clone());
        }
        let v = parse_kind(kind, text)?;
        if self.parsed.len() < Self::CAPACITY {
            self.parsed.push((kind, text, v.clone()));
        }
        Ok(v)
    }
}

/// The references of a rule that its environment cannot satisfy: an
/// undefined variable, or `$X[k]` beyond the end of X's list.
pub(crate) fn unresolved<'r, 'e>(rule: &'r Rule, env: &impl Lookup<'e>) -> Vec<&'r VarRef> {
    let mut missing: Vec<&VarRef> = Vec::new();
    for var in var_refs(rule) {
        let found = env.values(&var.name).unwrap_or(&[]);
        let ok = match var.access {
            VarAccess::Iterator(_) => !found.is_empty(),
            VarAccess::Index(k) => (k as usize) < found.len(),
        };
        if !ok && !missing.contains(&var) {
            missing.push(var);
        }
    }
    missing
}

/// The variable references of a rule, in canonical attribute order.
fn var_refs(rule: &Rule) -> impl Iterator<Item = &VarRef> {
    rule.protocol
        .iter()
        .flat_map(|p| p.attrs.iter())
        .filter_map(|a| match &a.value {
            Value::Var(v) => Some(v),
            _ => None,
        })
}

/// One iterator of a rule: the references walked together and the steps
/// that survive de-duplication.
struct Iter<'r> {
    /// `Some(n)` for `@n`; `None` for a private `$X[k]` iterator.
    id: Option<u32>,
    refs: Vec<&'r VarRef>,
    /// Positions into the references' value lists, in walking order.
    steps: Vec<usize>,
}

/// Appends to `out` one copy of `rule` per combination of its variables'
/// values, each with every variable replaced by its parsed value, as long
/// as that adds at most `room` rules.
/// Unresolved references must have been ruled out by [`unresolved`].
pub(crate) fn expand<'e>(
    rule: &Rule,
    at: Site<'_>,
    env: &impl Lookup<'e>,
    cache: &mut ParseCache<'e>,
    out: &mut Vec<Rule>,
    room: usize,
) -> Result<(), BindError> {
    let too_many = || BindError::TooManyRules {
        at: at.owned(),
        limit: MAX_BOUND_RULES,
    };
    let Some(pm) = rule.protocol.as_ref().filter(|p| has_vars(&p.attrs)) else {
        if room == 0 {
            return Err(too_many());
        }
        out.push(rule.clone());
        return Ok(());
    };
    let iters = iterators(rule, at, env)?;
    // `bind` rules out unresolved references first, so no iterator is
    // empty; the odometer below relies on it.
    if iters.iter().any(|i| i.steps.is_empty()) {
        debug_assert!(false, "expand() called with an unresolved reference");
        return Ok(());
    }
    let combinations = iters
        .iter()
        .try_fold(1usize, |n, it| n.checked_mul(it.steps.len()));
    if combinations.is_none_or(|n| n > room) {
        return Err(too_many());
    }
    // For each attribute holding a variable: its iterator, and its parsed
    // value at each of that iterator's steps.
    let mut slots: Vec<(usize, usize, Vec<Value>)> = Vec::new();
    for (slot, av) in pm.attrs.iter().enumerate() {
        let Value::Var(var) = &av.value else { continue };
        let it = iters
            .iter()
            .position(|i| i.refs.contains(&var))
            .expect("every reference has an iterator");
        let parsed = parse_steps(pm.protocol, av, var, &iters[it], at, env, cache)?;
        slots.push((slot, it, parsed));
    }
    // An odometer over the iterators, iterator order = digit significance.
    let mut digits = vec![0usize; iters.len()];
    loop {
        let mut copy = rule.clone();
        let attrs = &mut copy.protocol.as_mut().expect("checked above").attrs;
        for (slot, it, parsed) in &slots {
            attrs[*slot].value = parsed[digits[*it]].clone();
        }
        out.push(copy);
        let mut d = 0;
        loop {
            if d == digits.len() {
                return Ok(());
            }
            digits[d] += 1;
            if digits[d] < iters[d].steps.len() {
                break;
            }
            digits[d] = 0;
            d += 1;
        }
    }
}

fn has_vars(attrs: &[AttrValue]) -> bool {
    attrs.iter().any(|a| matches!(a.value, Value::Var(_)))
}

/// The rule's iterators in combination order (iterator 0 first, then by
/// first appearance), with their de-duplicated steps.
fn iterators<'r, 'e>(
    rule: &'r Rule,
    at: Site<'_>,
    env: &impl Lookup<'e>,
) -> Result<Vec<Iter<'r>>, BindError> {
    let mut iters: Vec<Iter<'r>> = Vec::new();
    for var in var_refs(rule) {
        match var.access {
            VarAccess::Iterator(n) => match iters.iter_mut().find(|i| i.id == Some(n)) {
                Some(it) if !it.refs.contains(&var) => it.refs.push(var),
                Some(_) => {}
                None => iters.push(Iter {
                    id: Some(n),
                    refs: vec![var],
                    steps: Vec::new(),
                }),
            },
            VarAccess::Index(_) => {
                if !iters.iter().any(|i| i.id.is_none() && i.refs[0] == var) {
                    iters.push(Iter {
                        id: None,
                        refs: vec![var],
                        steps: Vec::new(),
                    });
                }
            }
        }
    }
    if let Some(zero) = iters.iter().position(|i| i.id == Some(0)) {
        let it = iters.remove(zero);
        iters.insert(0, it);
    }
    for it in &mut iters {
        it.steps = steps(it, at, env)?;
    }
    Ok(iters)
}

/// The positions an iterator visits: all of them, minus those whose tuple
/// of values repeats an earlier one.
fn steps<'e>(it: &Iter<'_>, at: Site<'_>, env: &impl Lookup<'e>) -> Result<Vec<usize>, BindError> {
    if it.id.is_none() {
        // `$X[k]`: one step, the fixed element.
        return Ok(vec![0]);
    }
    let lists: Vec<&[String]> = it.refs.iter().map(|v| values_of(env, v)).collect();
    let len = lists[0].len();
    if lists.iter().any(|l| l.len() != len) {
        return Err(BindError::Cardinality {
            at: at.owned(),
            iterator: it.id.unwrap_or(0),
            vars: it
                .refs
                .iter()
                .zip(&lists)
                .map(|(v, l)| (v.name.clone(), l.len()))
                .collect(),
        });
    }
    if len == 1 {
        return Ok(vec![0]);
    }
    let mut seen: HashSet<Vec<&str>> = HashSet::with_capacity(len);
    Ok((0..len)
        .filter(|&p| seen.insert(lists.iter().map(|l| l[p].as_str()).collect()))
        .collect())
}

fn values_of<'e>(env: &impl Lookup<'e>, var: &VarRef) -> &'e [String] {
    env.values(&var.name).unwrap_or(&[])
}

/// The value `var` gives attribute `av` at each step of its iterator.
fn parse_steps<'e>(
    protocol: Protocol,
    av: &AttrValue,
    var: &VarRef,
    it: &Iter<'_>,
    at: Site<'_>,
    env: &impl Lookup<'e>,
    cache: &mut ParseCache<'e>,
) -> Result<Vec<Value>, BindError> {
    let list = values_of(env, var);
    let texts: Vec<&'e String> = match var.access {
        VarAccess::Index(k) => list.get(k as usize).into_iter().collect(),
        VarAccess::Iterator(_) => it.steps.iter().filter_map(|&p| list.get(p)).collect(),
    };
    let bad = |text: &String, source| {
        BindError::BadValue(Box::new(BadValue {
            at: at.owned(),
            var: var.clone(),
            value: text.clone(),
            attr: av.attr,
            source,
        }))
    };
    // A model built by hand or deserialized from JSON may carry an
    // attribute its protocol lacks; refuse it rather than trust it.
    let Some(kind) = protocol.kind_of(av.attr) else {
        let source = ValueError::NoSuchAttr {
            protocol: protocol.name(),
            attr: av.attr.name(),
        };
        return Err(bad(
            texts.first().copied().unwrap_or(&String::new()),
            source,
        ));
    };
    texts
        .into_iter()
        .map(|text| cache.parse(kind, text).map_err(|source| bad(text, source)))
        .collect()
}
