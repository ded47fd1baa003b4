//! One copy of each nftables template's chains among the rulesets the
//! engine keeps: every port bound to the same filter tree has the same
//! template chains (only its set elements differ), and keeping a copy per
//! port made the daemon's memory grow by the whole template for each
//! binding (issue 22).
//!
//! Likewise one copy of each statement of the ports' own chains: those
//! hold rules with the port's values written in (clean-traffic's RARP
//! rules), yet most of their statements are the same for every port
//! (`ether type 0x8035`, `@nh,48,16 0x0003`, `accept`); a copy per port
//! was most of the daemon's memory per binding (issue 22 item 5).
//!
//! And one copy of each name of a template's sets and verdict maps: every
//! port has the same names, which the applier's kernel state names again.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use backend_nftables::term::Term;
use backend_nftables::Chain;

use crate::backend::Rendered;

/// The template chains and own-chain statements of the kept rulesets.
#[derive(Debug, Default)]
pub(crate) struct Templates {
    by_id: HashMap<String, Arc<Vec<Chain>>>,
    terms: HashSet<SharedTerm>,
    names: HashSet<Arc<str>>,
}

/// A kept statement, found by its text (equal statements have equal
/// text; equality is the whole statement's).
#[derive(Debug, Clone)]
struct SharedTerm(Arc<Term>);

impl PartialEq for SharedTerm {
    fn eq(&self, other: &SharedTerm) -> bool {
        *self.0 == *other.0
    }
}

impl Eq for SharedTerm {}

impl Hash for SharedTerm {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.text.hash(state);
    }
}

impl Templates {
    /// `rendered`, holding the kept copy of its template chains (which it
    /// becomes, for the next ports of that template, when there is none)
    /// and of each statement of its own chains.
    pub(crate) fn share(&mut self, mut rendered: Rendered) -> Rendered {
        if let Rendered::Nftables { rules, .. } = &mut rendered {
            let kept = self.by_id.get(&rules.template);
            if !kept.is_some_and(|chains| rules.share_chains(chains)) {
                self.by_id
                    .insert(rules.template.clone(), Arc::clone(&rules.chains));
            }
            let own = rules.own.iter_mut().flat_map(|chain| &mut chain.rules);
            for term in own.flat_map(|rule| &mut rule.terms) {
                let this = SharedTerm(Arc::clone(term));
                match self.terms.get(&this) {
                    Some(kept) => *term = Arc::clone(&kept.0),
                    None => {
                        self.terms.insert(this);
                    }
                }
            }
            let names = rules.sets.iter_mut().map(|set| &mut set.name);
            for name in names.chain(rules.maps.iter_mut().map(|map| &mut map.name)) {
                match self.names.get(name) {
                    Some(kept) => *name = Arc::clone(kept),
                    None => {
                        self.names.insert(Arc::clone(name));
                    }
                }
            }
        }
        rendered
    }

    /// Forgets the templates and statements no kept ruleset holds any
    /// more.
    pub(crate) fn prune(&mut self) {
        self.by_id.retain(|_, chains| Arc::strong_count(chains) > 1);
        self.terms.retain(|term| Arc::strong_count(&term.0) > 1);
        self.names.retain(|name| Arc::strong_count(name) > 1);
    }

    pub(crate) fn clear(&mut self) {
        self.by_id.clear();
        self.terms.clear();
        self.names.clear();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use host_io::{RecordingRunner, Tool};

    use crate::backend::{Backend, Rendered};
    use crate::engine::Engine;
    use crate::{BindingStore, FilterStore};

    const NO_TABLES: &str = r#"{"nftables": [{"metainfo": {"json_schema_version": 1}}]}"#;

    fn binding(port: &str, last: u8) -> String {
        filter_binding(port, last, "clean-traffic")
    }

    /// Each port's MAC under a mask: no set holds a masked value, so each
    /// port gets a chain of its own with the value written in.
    const MASKED_MAC: &str = "<filter name='masked-mac' chain='root'>\
        <rule action='drop' direction='out' priority='100'>\
        <mac srcmacaddr='$MAC' srcmacmask='ff:ff:ff:ff:ff:fe'/></rule>\
        <rule action='drop' direction='out' priority='200'>\
        <mac protocolid='0x88b5' srcmacaddr='$MAC' srcmacmask='ff:ff:ff:00:00:00'/></rule>\
        </filter>";

    fn filter_binding(port: &str, last: u8, filter: &str) -> String {
        format!(
            "<filterbinding><owner><name>vm</name>\
             <uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner>\
             <portdev name='{port}'/><mac address='52:54:00:7b:35:{last:02x}'/>\
             <filterref filter='{filter}'>\
             <parameter name='IP' value='10.0.0.{last}'/></filterref></filterbinding>"
        )
    }

    /// An engine on the nftables backend over a recording runner.
    fn nftables_engine() -> (tempfile::TempDir, Engine<Arc<RecordingRunner>>) {
        let dir = tempfile::tempdir().unwrap();
        let runner = Arc::new(RecordingRunner::new());
        runner.answer(Tool::Nft, NO_TABLES);
        let engine = Engine::new(
            FilterStore::open(dir.path().join("etc")),
            BindingStore::open(dir.path().join("run")),
            runner,
        )
        .with_backend(Backend::Nftables);
        (dir, engine)
    }

    #[test]
    fn ports_of_one_template_keep_one_copy_of_its_chains_until_the_last_goes() {
        let (_dir, engine) = nftables_engine();
        for (i, port) in ["vnet0", "vnet1", "vnet2"].into_iter().enumerate() {
            engine.binding_create(&binding(port, i as u8 + 1)).unwrap();
        }
        let chains = |state: &super::super::State| -> Vec<_> {
            let mut kept: Vec<_> = state.applied.iter().collect();
            kept.sort_by_key(|(port, _)| port.as_str().to_owned());
            kept.into_iter()
                .map(|(_, kept)| match kept.unpack() {
                    Rendered::Nftables { rules, .. } => rules.chains,
                    Rendered::Xtables(_) => panic!("rendered for nftables"),
                })
                .collect()
        };
        {
            let state = engine.lock();
            let kept = chains(&state);
            assert_eq!(kept.len(), 3);
            assert!(!kept[0].is_empty());
            assert!(kept.iter().all(|c| Arc::ptr_eq(c, &kept[0])), "one copy");
            assert_eq!(state.templates.by_id.len(), 1);
        }
        for port in ["vnet0", "vnet1"] {
            engine.binding_delete(port).unwrap();
        }
        assert_eq!(
            engine.lock().templates.by_id.len(),
            1,
            "vnet2 still uses it"
        );
        engine.binding_delete("vnet2").unwrap();
        assert!(engine.lock().templates.by_id.is_empty());
    }

    #[test]
    fn names_of_sets_and_maps_are_kept_once_among_ports() {
        let (_dir, engine) = nftables_engine();
        for (i, port) in ["vnet0", "vnet1"].into_iter().enumerate() {
            engine.binding_create(&binding(port, i as u8 + 1)).unwrap();
        }
        let names = |port: &str| {
            let state = engine.lock();
            let kept = &state.applied[&nwfilter_model::IfName::new(port).unwrap()];
            match kept.unpack() {
                Rendered::Nftables { rules, .. } => {
                    let sets = rules.sets.iter().map(|s| Arc::clone(&s.name));
                    sets.chain(rules.maps.iter().map(|m| Arc::clone(&m.name)))
                        .collect::<Vec<_>>()
                }
                Rendered::Xtables(_) => panic!("rendered for nftables"),
            }
        };
        let (a, b) = (names("vnet0"), names("vnet1"));
        assert!(!a.is_empty() && a.len() == b.len());
        assert!(a.iter().zip(&b).all(|(x, y)| Arc::ptr_eq(x, y)), "one copy");
        drop((a, b));
        for port in ["vnet0", "vnet1"] {
            engine.binding_delete(port).unwrap();
        }
        // The last port gone, the kernel state no longer names them either.
        engine.lock().templates.prune();
        assert!(engine.lock().templates.names.is_empty());
    }

    #[test]
    fn statements_of_own_chains_are_kept_once_among_ports() {
        let (_dir, engine) = nftables_engine();
        engine.define(MASKED_MAC).unwrap();
        for (i, port) in ["vnet0", "vnet1"].into_iter().enumerate() {
            let xml = filter_binding(port, i as u8 + 1, "masked-mac");
            engine.binding_create(&xml).unwrap();
        }
        let own_terms = |port: &str| {
            let state = engine.lock();
            let kept = &state.applied[&nwfilter_model::IfName::new(port).unwrap()];
            match kept.unpack() {
                Rendered::Nftables { rules, .. } => {
                    assert!(rules.per_port.is_empty(), "notes for `render` are not kept");
                    rules
                        .own
                        .iter()
                        .flat_map(|c| c.rules.iter().flat_map(|r| r.terms.clone()))
                        .collect::<Vec<_>>()
                }
                Rendered::Xtables(_) => panic!("rendered for nftables"),
            }
        };
        let (a, b) = (own_terms("vnet0"), own_terms("vnet1"));
        // The masked MACs are written in; the rest of each rule is alike.
        assert!(!a.is_empty() && a.len() == b.len());
        let mut same = 0;
        for (x, y) in a.iter().zip(&b) {
            if x == y {
                assert!(Arc::ptr_eq(x, y), "{} kept twice", x.text);
                same += 1;
            }
        }
        assert!(same > 0 && same < a.len(), "{same} of {}", a.len());
        drop((a, b));
        for port in ["vnet0", "vnet1"] {
            engine.binding_delete(port).unwrap();
        }
        assert!(engine.lock().templates.terms.is_empty());
    }
}
