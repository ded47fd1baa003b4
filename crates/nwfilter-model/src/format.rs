//! Writing libvirt's normalised XML (reference §8.1, §10): single quotes,
//! two-space indent, attributes in canonical order, protocol elements split
//! where negation changes. Every value goes through `escape`'s escaping.

use std::fmt::Write;

use crate::addr::format_mac;
use crate::binding::Binding;
use crate::escape::{escape_attr, escape_text};
use crate::filter::{Entry, Filter, FilterRef, ProtocolMatch, Rule};
use crate::values_parse::format_value;

/// ` name='value'` with the value escaped.
fn attr(out: &mut String, name: &str, value: &str) {
    let _ = write!(out, " {name}='{}'", escape_attr(value));
}

/// Prints a filter as libvirt 9.0 does, except that a non-root chain's
/// explicit `priority='0'` is printed (libvirt omits it, and re-reading
/// then yields the chain's default instead).
pub fn format_filter(filter: &Filter) -> String {
    let mut out = String::from("<filter");
    attr(&mut out, "name", filter.name.as_str());
    attr(&mut out, "chain", filter.chain.as_str());
    if filter.priority != 0 || filter.chain.kind().default_priority() != 0 {
        attr(&mut out, "priority", &filter.priority.to_string());
    }
    out.push_str(">\n");
    let _ = writeln!(out, "  <uuid>{}</uuid>", filter.uuid.hyphenated());
    for entry in &filter.entries {
        match entry {
            Entry::Rule(rule) => format_rule(&mut out, rule),
            Entry::Ref(r) => format_filterref(&mut out, r, "  "),
        }
    }
    out.push_str("</filter>\n");
    out
}

fn format_rule(out: &mut String, rule: &Rule) {
    out.push_str("  <rule");
    attr(out, "action", rule.action.name());
    attr(out, "direction", rule.direction.name());
    attr(out, "priority", &rule.priority.to_string());
    if !rule.statematch {
        attr(out, "statematch", "false");
    }
    match &rule.protocol {
        None => out.push_str("/>\n"),
        Some(pm) => {
            out.push_str(">\n");
            format_protocol(out, pm);
            out.push_str("  </rule>\n");
        }
    }
}

/// One element per run of attributes with the same negation (§10.2).
fn format_protocol(out: &mut String, pm: &ProtocolMatch) {
    let name = pm.protocol.name();
    if pm.attrs.is_empty() {
        let _ = writeln!(out, "    <{name}/>");
        return;
    }
    let mut open: Option<bool> = None;
    for av in &pm.attrs {
        if open != Some(av.negated) {
            if open.is_some() {
                out.push_str("/>\n");
            }
            let _ = write!(out, "    <{name}");
            if av.negated {
                attr(out, "match", "no");
            }
            open = Some(av.negated);
        }
        attr(
            out,
            av.attr.name(),
            &format_value(pm.protocol, av.attr, &av.value),
        );
    }
    out.push_str("/>\n");
}

fn format_filterref(out: &mut String, r: &FilterRef, indent: &str) {
    let _ = write!(out, "{indent}<filterref");
    attr(out, "filter", r.filter.as_str());
    if r.params.is_empty() {
        out.push_str("/>\n");
        return;
    }
    out.push_str(">\n");
    for (name, values) in r.params.iter() {
        for value in values {
            let _ = write!(out, "{indent}  <parameter");
            attr(out, "name", name);
            attr(out, "value", value);
            out.push_str("/>\n");
        }
    }
    let _ = writeln!(out, "{indent}</filterref>");
}

/// Prints a binding in libvirt's fixed element order.
pub fn format_binding(binding: &Binding) -> String {
    let mut out = String::from("<filterbinding>\n  <owner>\n");
    let _ = writeln!(
        out,
        "    <name>{}</name>",
        escape_text(binding.owner.name.as_str())
    );
    let _ = writeln!(out, "    <uuid>{}</uuid>", binding.owner.uuid.hyphenated());
    out.push_str("  </owner>\n  <portdev");
    attr(&mut out, "name", binding.portdev.as_str());
    out.push_str("/>\n");
    if let Some(linkdev) = &binding.linkdev {
        out.push_str("  <linkdev");
        attr(&mut out, "name", linkdev.as_str());
        out.push_str("/>\n");
    }
    out.push_str("  <mac");
    attr(&mut out, "address", &format_mac(&binding.mac));
    out.push_str("/>\n");
    format_filterref(&mut out, &binding.filterref, "  ");
    out.push_str("</filterbinding>\n");
    out
}
