//! Short human-readable forms of listed rules, close to `nft list`
//! output, for naming the rule that decides (the JSON listing has no text).

use serde_json::Value;

/// One rule's statements, e.g. `iifname "virbr0" udp dport 67 accept`.
pub fn rule_text(expr: &[Value]) -> String {
    expr.iter()
        .map(statement)
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn statement(stmt: &Value) -> String {
    let Some((kind, body)) = stmt.as_object().and_then(|o| o.iter().next()) else {
        return String::new();
    };
    match kind.as_str() {
        "match" => {
            let op = body.get("op").and_then(Value::as_str).unwrap_or("==");
            let left = body.get("left").map(operand).unwrap_or_default();
            let names = left.ends_with("ifname");
            let right = body
                .get("right")
                .map(|r| if names { quoted(r) } else { operand(r) })
                .unwrap_or_default();
            match op {
                "==" | "in" => format!("{left} {right}"),
                other => format!("{left} {other} {right}"),
            }
        }
        "jump" | "goto" => format!(
            "{kind} {}",
            body.get("target").and_then(Value::as_str).unwrap_or("?")
        ),
        "counter" => String::new(),
        "reject" => match (
            body.get("type").and_then(Value::as_str),
            body.get("expr").and_then(Value::as_str),
        ) {
            (Some(t), Some(e)) => format!("reject with {t} {e}"),
            _ => "reject".to_owned(),
        },
        "xt" => format!(
            "xt {} \"{}\"",
            body.get("type").and_then(Value::as_str).unwrap_or("?"),
            body.get("name").and_then(Value::as_str).unwrap_or("?")
        ),
        _ if body.is_null() => kind.clone(),
        _ => format!("{kind} {}", operand(body)),
    }
}

/// Interface names, quoted as nft prints them.
fn quoted(v: &Value) -> String {
    match (v.as_str(), v.get("set").and_then(Value::as_array)) {
        (Some(s), _) => format!("\"{s}\""),
        (_, Some(items)) => {
            let parts: Vec<String> = items.iter().map(quoted).collect();
            format!("{{ {} }}", parts.join(", "))
        }
        _ => operand(v),
    }
}

fn operand(v: &Value) -> String {
    if let Some(s) = v.as_str() {
        return s.to_owned();
    }
    if let Some(key) = v.pointer("/meta/key").and_then(Value::as_str) {
        return match key {
            "iifname" | "oifname" | "iif" | "oif" => key.to_owned(),
            _ => format!("meta {key}"),
        };
    }
    if let Some(key) = v.pointer("/ct/key").and_then(Value::as_str) {
        return format!("ct {key}");
    }
    if let (Some(p), Some(f)) = (
        v.pointer("/payload/protocol").and_then(Value::as_str),
        v.pointer("/payload/field").and_then(Value::as_str),
    ) {
        return format!("{p} {f}");
    }
    if let Some(prefix) = v.get("prefix") {
        return format!(
            "{}/{}",
            prefix.get("addr").map(operand).unwrap_or_default(),
            prefix.get("len").map(operand).unwrap_or_default()
        );
    }
    if let Some(items) = v.get("set").and_then(Value::as_array).or(v.as_array()) {
        let parts: Vec<String> = items.iter().map(operand).collect();
        return format!("{{ {} }}", parts.join(", "));
    }
    if let Some([lo, hi]) = v.get("range").and_then(Value::as_array).map(Vec::as_slice) {
        return format!("{}-{}", operand(lo), operand(hi));
    }
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn listed_rules_read_like_nft() {
        let expr = json!([
            {"match": {"op": "==", "left": {"meta": {"key": "iifname"}}, "right": "virbr0"}},
            {"match": {"op": "==", "left": {"payload": {"protocol": "udp", "field": "dport"}},
                       "right": {"set": [67, 53]}}},
            {"match": {"op": "!=", "left": {"payload": {"protocol": "ip", "field": "saddr"}},
                       "right": {"prefix": {"addr": "10.0.0.0", "len": 8}}}},
            {"counter": {"packets": 0, "bytes": 0}},
            {"jump": {"target": "ufw-before-input"}},
            {"drop": null}
        ]);
        assert_eq!(
            rule_text(expr.as_array().unwrap()),
            "iifname \"virbr0\" udp dport { 67, 53 } ip saddr != 10.0.0.0/8 jump ufw-before-input drop"
        );
    }
}
