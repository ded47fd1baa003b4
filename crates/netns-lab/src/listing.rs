//! Ruleset listings as tests compare them, and the admin rules a real
//! host might have.

use crate::netns::Netns;

/// The lines of `listing` that name `port` as a whole word (`vnet1` but
/// not `vnet10`): after a port is removed, none may be left.
pub fn lines_naming(listing: &str, port: &str) -> Vec<String> {
    let boundary = |c: Option<char>| !c.is_some_and(|c| c.is_ascii_alphanumeric());
    listing
        .lines()
        .filter(|line| {
            line.match_indices(port).any(|(at, _)| {
                boundary(line[..at].chars().next_back())
                    && boundary(line[at + port.len()..].chars().next())
            })
        })
        .map(String::from)
        .collect()
}

/// Removes what changes without anyone changing rules: counters.
pub fn without_counters(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let mut words: Vec<&str> = line.split(' ').collect();
        // iptables-save: ":CHAIN POLICY [p:b]"; nft: "counter packets P bytes B".
        if words
            .last()
            .is_some_and(|w| w.starts_with('[') && w.ends_with(']'))
        {
            words.pop();
        }
        let mut kept = Vec::new();
        let mut i = 0;
        while i < words.len() {
            if words[i] == "packets" || words[i] == "bytes" {
                i += 2;
                continue;
            }
            kept.push(words[i]);
            i += 1;
        }
        out.push_str(&kept.join(" "));
        out.push('\n');
    }
    out
}

/// `nft list ruleset` with each table's chains sorted by name: nft lists
/// chains in creation order, which carries no meaning for filtering.
pub fn chains_sorted(listing: &str) -> String {
    let mut out = String::new();
    let mut chains: Vec<String> = Vec::new();
    let mut current: Option<String> = None;
    for line in listing.lines() {
        if let Some(chain) = current.as_mut() {
            chain.push_str(line);
            chain.push('\n');
            if line == "\t}" {
                chains.push(current.take().unwrap());
            }
        } else if line.starts_with("\tchain ") {
            current = Some(format!("{line}\n"));
        } else if line.is_empty() {
            continue;
        } else {
            if line == "}" {
                chains.sort();
                out.extend(chains.drain(..));
            }
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// Admin rules a real host might have in every table we touch; they must
/// survive everything we do.
pub fn add_admin_rules(host: &Netns) {
    host.ok_stdin(
        &["ebtables-restore", "--noflush"],
        "*nat\n-A PREROUTING -p 0x88b5 -j DROP\n-A POSTROUTING -p 0x88b6 -j DROP\nCOMMIT\n",
    );
    for tool in ["iptables-restore", "ip6tables-restore"] {
        host.ok_stdin(
            &[tool, "--noflush"],
            "*filter\n:ADMIN - [0:0]\n-A ADMIN -p tcp --dport 9 -j DROP\n-A FORWARD -j ADMIN\n-A INPUT -p tcp --dport 7 -j DROP\nCOMMIT\n",
        );
    }
}
