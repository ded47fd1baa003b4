//! What a change does to our objects: a port's wanted objects
//! ([`desired`]) against what it has, as the commands between them; a
//! template's sets and chains added or deleted.

use crate::batch::{mark_key, Batch};
use crate::elements::SetLayouts;
use crate::kernel::{PortObjects, TemplateObjects};
use crate::layout::{in_tag, set_out_tag};
use crate::names::{self, Role, Table};
use crate::render::{Chain as PortChain, PortKey, PortRuleset};
use crate::small::VecSet;
use crate::term::Operand;

impl Batch {
    /// A template's sets and chains with their rules (exact even over
    /// leftovers: chains are flushed before their rules are added; sets
    /// keep their elements, which belong to the ports).
    pub fn add_template(&mut self, rules: &PortRuleset) {
        for set in &rules.sets {
            if let Some(key) = &set.typeof_key {
                self.set_typeof(set.table, &set.name, key);
                continue;
            }
            let mut types = vec![set.key.type_name()];
            types.extend(set.types.iter().copied());
            self.set(set.table, &set.name, &types);
        }
        for map in &rules.maps {
            self.map(map.table, &map.name, map.key.type_name(), "verdict");
        }
        for chain in rules.chains.iter() {
            self.write_chain(chain);
        }
    }

    /// A chain with exactly `chain`'s rules: created if missing, flushed
    /// (a leftover of that name loses its rules), then filled.
    fn write_chain(&mut self, chain: &PortChain) {
        self.chain(chain.table, &chain.name);
        self.flush_chain(chain.table, &chain.name);
        for rule in &chain.rules {
            self.rule(
                chain.table,
                &chain.name,
                &rule.terms,
                rule.comment.as_deref(),
            );
        }
    }

    /// Deletes a template no port uses any more: all chains flushed first
    /// (a chain cannot go while a rule jumps to it), then the chains, then
    /// the sets (rules referred to them).
    pub fn delete_template(&mut self, objects: &TemplateObjects) {
        for (table, name) in objects.chains.keys() {
            self.flush_chain(*table, name);
        }
        for (table, name) in objects.chains.keys() {
            self.delete_chain(*table, name);
        }
        for (table, name) in &objects.sets {
            self.delete_set(*table, name);
        }
        for (table, name) in &objects.maps {
            self.delete_map(*table, name);
        }
    }

    /// Brings a port from `old` to `want` (see [`desired`]): tag chain and
    /// tag elements, own chains (`own`: their content), dispatch and
    /// verdict-map elements, set elements.
    pub fn change_port(
        &mut self,
        port: &str,
        old: &PortObjects,
        want: &PortObjects,
        own: &[PortChain],
        layouts: &SetLayouts,
    ) {
        let quoted = || Operand::quoted(port);
        let retag = old.tag != want.tag;
        for (key, entry) in &old.dispatch {
            if want.dispatch.get(key) != Some(entry) {
                self.delete_keyed(key.0, &key.1, &entry.0);
            }
        }
        for ((table, set), tuples) in &old.elements {
            let gone = not_in(tuples, want.elements.get(&(*table, set.clone())));
            self.set_elements(false, *table, set, &gone, layouts);
        }
        if old.tag.is_some() && retag {
            self.delete_keyed(Table::Bridge, "in-tag", port);
        }
        if old.out_tag && (retag || !want.out_tag) {
            self.delete_keyed(Table::Bridge, "out-tag", port);
        }
        let name = names::tag_chain(port);
        if old.tag_chain && (retag || !want.tag_chain) {
            self.flush_chain(Table::Bridge, &name);
            self.delete_chain(Table::Bridge, &name);
        }
        let gone: Vec<&(Table, String)> = old.own_chains.difference(&want.own_chains).collect();
        for (table, chain) in &gone {
            self.flush_chain(*table, chain);
        }
        for (table, chain) in &gone {
            self.delete_chain(*table, chain);
        }
        for chain in own {
            if !old.own_chains.contains(&(chain.table, chain.name.clone())) {
                self.write_chain(chain);
            }
        }
        if let Some(tag) = want.tag {
            if !old.tag_chain || retag {
                self.chain(Table::Bridge, &name);
                self.flush_chain(Table::Bridge, &name);
                self.rule(Table::Bridge, &name, &[set_out_tag(tag)], None);
            }
            if retag {
                self.add_element(Table::Bridge, "in-tag", quoted(), in_tag(tag));
            }
            if !old.out_tag || retag {
                self.add_jump(Table::Bridge, "out-tag", port, &name);
            }
        }
        for ((table, set), tuples) in &want.elements {
            let new = not_in(tuples, old.elements.get(&(*table, set.clone())));
            self.set_elements(true, *table, set, &new, layouts);
        }
        // Dispatch last: a port is led into its template once its values
        // are there (in one transaction that order is for the reader).
        for (key, entry) in &want.dispatch {
            if old.dispatch.get(key) != Some(entry) {
                self.add_jump(key.0, &key.1, &entry.0, &entry.1);
            }
        }
    }
}

/// The tuples of `tuples` that `other` lacks.
fn not_in(tuples: &VecSet<Vec<String>>, other: Option<&VecSet<Vec<String>>>) -> Vec<Vec<String>> {
    tuples
        .iter()
        .filter(|t| !other.is_some_and(|o| o.contains(*t)))
        .cloned()
        .collect()
}

/// What a port with `rules` and `tag` has in the kernel once applied.
pub fn desired(rules: &PortRuleset, tag: Option<u16>) -> PortObjects {
    let tag = tag.filter(|_| rules.needs_tag());
    let mut want = PortObjects {
        tag,
        tag_chain: tag.is_some(),
        out_tag: tag.is_some(),
        own_chains: rules
            .own
            .iter()
            .map(|c| (c.table, c.name.clone()))
            .collect(),
        ..PortObjects::default()
    };
    let port = rules.port.as_str();
    for chain in rules.chains.iter() {
        if let Some((map, key)) = dispatch_map(&chain.role) {
            if let Some(key) = port_key(key, port, tag) {
                want.dispatch.insert(
                    (chain.table, names::dispatch_map(map)),
                    (key, chain.name.clone()),
                );
            }
        }
    }
    for map in &rules.maps {
        if let Some(key) = port_key(map.key, port, tag) {
            want.dispatch
                .insert((map.table, map.name.clone()), (key, map.chain.clone()));
        }
    }
    if !rules.fast_from.is_empty() {
        let tuples = want
            .elements
            .get_or_default((Table::Bridge, names::fast_from_set()));
        insert_tuples(tuples, port, &rules.fast_from);
    }
    for set in &rules.sets {
        // No tag: no inet chain either, so no inet set.
        let Some(key) = port_key(set.key, port, tag) else {
            continue;
        };
        let tuples = want.elements.get_or_default((set.table, set.name.clone()));
        insert_tuples(tuples, &key, &set.elements);
    }
    want.shrink_to_fit();
    want
}

/// Each of `values` as an element tuple: the port `key`, then the values.
fn insert_tuples(tuples: &mut VecSet<Vec<String>>, key: &str, values: &[Vec<String>]) {
    for values in values {
        let mut tuple = Vec::with_capacity(1 + values.len());
        tuple.push(key.to_owned());
        tuple.extend(values.iter().cloned());
        tuples.insert(tuple);
    }
}

/// The key text of `port` in a set or map keyed by `key`.
fn port_key(key: PortKey, port: &str, tag: Option<u16>) -> Option<String> {
    Some(match key {
        PortKey::InPort | PortKey::OutPort => port.to_owned(),
        PortKey::InTag => mark_key(u32::from(tag?)),
        PortKey::OutTag => mark_key(u32::from(tag?) << 16),
    })
}

/// The dispatch map that leads to a root chain of this role, and how it
/// is keyed.
fn dispatch_map(role: &Role) -> Option<(&'static str, PortKey)> {
    match role {
        Role::FromVmL2 => Some(("from-vm", PortKey::InPort)),
        Role::ToVmL2 => Some(("to-vm", PortKey::OutPort)),
        Role::FromVm => Some(("from-vm", PortKey::InTag)),
        Role::ToVm => Some(("to-vm", PortKey::OutTag)),
        Role::HostFromVm => Some(("host-from-vm", PortKey::InTag)),
        Role::Sub => None,
    }
}

/// The script `render` prints for one port: the skeleton and the port, as
/// if it were the only one (tag 1).
pub fn instantiate(rules: &PortRuleset) -> Batch {
    let mut batch = Batch::default();
    batch.skeleton(rules.needs_tag());
    batch.add_template(rules);
    let port = rules.port.as_str();
    batch.change_port(
        port,
        &PortObjects::default(),
        &desired(rules, Some(1)),
        &rules.own,
        &SetLayouts::default(),
    );
    batch
}
