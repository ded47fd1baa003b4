//! The explanation as text for people.

use std::fmt::Write;

use crate::walk::{verdict_name, Backend, Explanation, RuleRef};
use crate::Direction;

/// Several lines: verdict, decisive rule, path, notes.
pub fn text(e: &Explanation) -> String {
    let mut out = String::new();
    let dir = match e.direction {
        Direction::Out => "out (sent by the VM)",
        Direction::In => "in (delivered to the VM)",
    };
    let backend = match e.backend {
        Backend::Xtables => "xtables",
        Backend::Nftables => "nftables",
    };
    let _ = writeln!(out, "port {}, direction {dir}, backend {backend}", e.port);
    let _ = writeln!(out, "verdict: {}", verdict_name(e.verdict));
    match &e.decisive {
        Some(r) => {
            let _ = writeln!(out, "decisive rule: {}", rule_text(r));
        }
        None => {
            let _ = writeln!(
                out,
                "decisive rule: none (no rule of the port decided; see the path)"
            );
        }
    }
    let _ = writeln!(out, "path:");
    if e.path.is_empty() {
        let _ = writeln!(out, "  (no chain of the port sees this packet)");
    }
    for step in &e.path {
        for c in &step.continued {
            let _ = writeln!(out, "  {}: matched, continue: {}", step.chain, rule_text(c));
        }
        let how = match &step.rule {
            Some(r) => format!("{} by rule {}", step.left_by, r.position),
            None => "ran out of rules".to_owned(),
        };
        let _ = write!(out, "  {}: {how}", step.chain);
        if let Some(origin) = step.rule.as_ref().and_then(|r| r.origin.as_ref()) {
            let _ = write!(
                out,
                " ({} #{})",
                origin.filter.as_str(),
                origin.rule_index + 1
            );
        }
        if let Some(note) = &step.note {
            let _ = write!(out, "; {note}");
        }
        out.push('\n');
    }
    if !e.notes.is_empty() {
        let _ = writeln!(out, "notes:");
        for n in &e.notes {
            let _ = writeln!(out, "  - {n}");
        }
    }
    out
}

/// `filter no-mac-spoofing, rule 2 (priority 500, chain mac) at FILE:LINE;
/// bridge from-vm sub mac, position 2: drop`.
pub fn rule_text(r: &RuleRef) -> String {
    let place = format!("{}, position {}: {}", r.chain, r.position, r.action);
    let Some(o) = &r.origin else {
        return format!("{place} (a jump lowering added)");
    };
    let at = r
        .source
        .as_ref()
        .map(|s| format!(" at {}:{}", s.file, s.line))
        .unwrap_or_default();
    format!(
        "filter {}, rule {} (priority {}, chain {}){at}; {place}",
        o.filter.as_str(),
        o.rule_index + 1,
        o.priority,
        o.chain.as_str()
    )
}
