//! The rules the engine keeps per port between operations, in as little
//! memory as an operation needs: an xtables ruleset is kept as one string
//! for the whole port instead of a `String` per argument (a port of
//! `clean-traffic` has some 25 rules of about 8 arguments: a vector and
//! an allocation per argument made the copy several times the size of
//! its text; a string per chain still cost some 20 allocations a port,
//! each with the allocator's overhead, issue 22 item 5). It is unpacked
//! only by the operations that re-apply what was applied (the rule
//! check, a reload comparing against it).

use std::borrow::Cow;

use backend_xtables::{Family, Hook, PortRuleset, RenderedChain};
use nwfilter_model::IfName;

use crate::backend::Rendered;

/// Between two arguments of a rule.
const ARG: char = '\u{1f}';
/// Before each rule of a chain (after its name).
const RULE: char = '\u{1e}';
/// Between two chains.
const CHAIN: char = '\u{1d}';

/// One port's applied rules as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Kept {
    /// As rendered (nftables: its template chains and own-chain
    /// statements are shared, see `shared`, and its notes dropped, see
    /// [`Kept::keep`]; an xtables ruleset that cannot be packed).
    /// Boxed: the engine's map of kept rulesets holds a `Kept` in each of
    /// its slots, free ones too (a map of 1000 ports has 2048), and a
    /// `Rendered` is some 200 bytes where a packed ruleset is 40.
    Whole(Box<Rendered>),
    Xtables(Packed),
}

/// What keeping a ruleset packs ([`Kept::packing`]).
#[derive(Debug)]
pub(crate) struct Packing(Option<Packed>);

/// An xtables ruleset in one string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Packed {
    port: IfName,
    /// Each chain's family and role, in order.
    kinds: Box<[(Family, Hook)]>,
    /// The chains in order, separated by [`CHAIN`]: each its name, then
    /// each rule after a [`RULE`], its arguments separated by [`ARG`].
    text: Box<str>,
}

impl Kept {
    /// `rendered` as kept: packed when it is an xtables ruleset whose
    /// arguments hold neither separator and none is empty, nor any rule
    /// (restore input cannot carry control characters or empty words, so
    /// applied rules never do; anything else is kept whole, so packing is
    /// always exact).
    ///
    /// An nftables ruleset is kept without its `per_port` notes: they
    /// tell the reader of `render` why rules are in chains of the port's
    /// own, which no operation needs (the applier plans without them),
    /// and cost some hundred bytes per port.
    pub(crate) fn keep(rendered: Rendered) -> Kept {
        match rendered {
            Rendered::Xtables(rs) => match pack(&rs) {
                Some(packed) => Kept::Xtables(packed),
                None => Kept::Whole(Box::new(Rendered::Xtables(rs))),
            },
            Rendered::Nftables { port, mut rules } => {
                rules.per_port = Vec::new();
                // A copy holds each vector at its length; the rendered
                // one keeps the room it grew into (1.1 KiB more per kept
                // port at 1000 ports). Its chains are shared, not copied.
                let rules = rules.clone();
                Kept::Whole(Box::new(Rendered::Nftables { port, rules }))
            }
        }
    }

    /// What [`Kept::keep`] would pack of `rendered`, worked out ahead
    /// (beside the kernel applying a restart's rulesets, on another core).
    pub(crate) fn packing(rendered: &Rendered) -> Packing {
        match rendered {
            Rendered::Xtables(rs) => Packing(pack(rs)),
            Rendered::Nftables { .. } => Packing(None),
        }
    }

    /// [`Kept::keep`] of `rendered`, with its [`Kept::packing`].
    pub(crate) fn keep_packed(rendered: Rendered, packing: Packing) -> Kept {
        match (rendered, packing.0) {
            (Rendered::Xtables(_), Some(packed)) => Kept::Xtables(packed),
            (rendered, _) => Kept::keep(rendered),
        }
    }

    /// The ruleset as rendered.
    pub(crate) fn unpack(&self) -> Rendered {
        match self {
            Kept::Whole(rendered) => (**rendered).clone(),
            Kept::Xtables(packed) => Rendered::Xtables(unpack(packed)),
        }
    }

    /// The kept ruleset, borrowing `now` when it is the same (no unpack).
    pub(crate) fn as_rendered<'a>(&'a self, now: &'a Rendered) -> Cow<'a, Rendered> {
        match (self, now) {
            (Kept::Whole(rendered), _) => Cow::Borrowed(rendered),
            (Kept::Xtables(packed), Rendered::Xtables(rs)) if pack(rs).as_ref() == Some(packed) => {
                Cow::Borrowed(now)
            }
            (Kept::Xtables(_), _) => Cow::Owned(self.unpack()),
        }
    }
}

fn pack(rs: &PortRuleset) -> Option<Packed> {
    let plain = |word: &str| !word.is_empty() && !word.contains([ARG, RULE, CHAIN]);
    let mut text = String::new();
    for (i, chain) in rs.chains.iter().enumerate() {
        if !plain(&chain.name) {
            return None;
        }
        if i > 0 {
            text.push(CHAIN);
        }
        text.push_str(&chain.name);
        for rule in &chain.rules {
            if rule.is_empty() {
                return None;
            }
            text.push(RULE);
            for (j, arg) in rule.iter().enumerate() {
                if !plain(arg) {
                    return None;
                }
                if j > 0 {
                    text.push(ARG);
                }
                text.push_str(arg);
            }
        }
    }
    Some(Packed {
        port: rs.port.clone(),
        kinds: rs.chains.iter().map(|c| (c.family, c.role)).collect(),
        text: text.into_boxed_str(),
    })
}

fn unpack(packed: &Packed) -> PortRuleset {
    // Names and arguments hold no separator (see `pack`): the text splits
    // into exactly as many chains as there are kinds.
    let chains = packed
        .text
        .split(CHAIN)
        .zip(packed.kinds.iter())
        .map(|(text, &(family, role))| {
            let mut parts = text.split(RULE);
            let name = parts.next().unwrap_or_default().to_owned();
            RenderedChain {
                family,
                role,
                name,
                rules: parts
                    .map(|rule| rule.split(ARG).map(str::to_owned).collect())
                    .collect(),
            }
        })
        .collect();
    PortRuleset {
        port: packed.port.clone(),
        chains,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        text.split(' ').map(str::to_owned).collect()
    }

    fn ruleset() -> PortRuleset {
        let chain = |name: &str, role, rules: Vec<Vec<String>>| RenderedChain {
            family: Family::Bridge,
            role,
            name: name.to_owned(),
            rules,
        };
        PortRuleset {
            port: IfName::new("vnet0").unwrap(),
            chains: vec![
                chain(
                    "I-vnet0-mac",
                    Hook::BridgeSub,
                    vec![words("-s 52:54:00:00:00:01 -j RETURN"), words("-j DROP")],
                ),
                chain("libvirt-I-vnet0", Hook::BridgeRootOut, vec![]),
            ],
        }
    }

    #[test]
    fn kept_with_its_packing_worked_out_ahead_is_kept_as_at_once() {
        let mut unpackable = ruleset();
        unpackable.chains[0].rules[0][0] = format!("a{ARG}b");
        for rendered in [Rendered::Xtables(ruleset()), Rendered::Xtables(unpackable)] {
            let packing = Kept::packing(&rendered);
            let ahead = Kept::keep_packed(rendered.clone(), packing);
            assert_eq!(ahead, Kept::keep(rendered));
        }
    }

    #[test]
    fn an_xtables_ruleset_is_packed_and_unpacks_to_itself() {
        let rendered = Rendered::Xtables(ruleset());
        let kept = Kept::keep(rendered.clone());
        assert!(matches!(kept, Kept::Xtables(_)));
        assert_eq!(kept.unpack(), rendered);
        assert!(
            matches!(kept.as_rendered(&rendered), Cow::Borrowed(r) if std::ptr::eq(r, &rendered))
        );
        let mut other = ruleset();
        other.chains[0].rules.pop();
        let other = Rendered::Xtables(other);
        assert_eq!(kept.as_rendered(&other).into_owned(), rendered);
    }

    #[test]
    fn a_ruleset_without_chains_or_rules_packs_too() {
        let mut rs = ruleset();
        rs.chains[0].rules.clear();
        for rs in [
            rs,
            PortRuleset {
                chains: vec![],
                ..ruleset()
            },
        ] {
            let rendered = Rendered::Xtables(rs);
            let kept = Kept::keep(rendered.clone());
            assert!(matches!(kept, Kept::Xtables(_)));
            assert_eq!(kept.unpack(), rendered);
        }
    }

    #[test]
    fn a_kept_ruleset_is_small_in_the_map() {
        // The map of kept rulesets holds one per slot, used or free.
        assert!(
            std::mem::size_of::<Kept>() <= 64,
            "{}",
            std::mem::size_of::<Kept>()
        );
    }

    #[test]
    fn what_packing_could_not_tell_apart_is_kept_whole() {
        let odd: [fn(&mut PortRuleset); 6] = [
            |rs| rs.chains[0].rules[0].push(format!("a{ARG}b")),
            |rs| rs.chains[0].rules[0].push(format!("a{CHAIN}b")),
            |rs| rs.chains[0].rules[0].push(String::new()),
            |rs| rs.chains[0].rules.push(Vec::new()),
            |rs| rs.chains[1].name = format!("a{RULE}b"),
            |rs| rs.chains[1].name = String::new(),
        ];
        for change in odd {
            let mut rs = ruleset();
            change(&mut rs);
            let rendered = Rendered::Xtables(rs);
            let kept = Kept::keep(rendered.clone());
            assert_eq!(kept, Kept::Whole(Box::new(rendered.clone())));
            assert_eq!(kept.unpack(), rendered);
        }
    }
}
