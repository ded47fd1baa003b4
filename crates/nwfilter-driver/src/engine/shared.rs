//! One copy of each nftables template's chains among the rulesets the
//! engine keeps: every port bound to the same filter tree has the same
//! template chains (only its set elements differ), and keeping a copy per
//! port made the daemon's memory grow by the whole template for each
//! binding (issue 22).

use std::collections::HashMap;
use std::sync::Arc;

use backend_nftables::Chain;

use crate::backend::Rendered;

/// The template chains of the kept rulesets, by template id.
#[derive(Debug, Default)]
pub(crate) struct Templates {
    by_id: HashMap<String, Arc<Vec<Chain>>>,
}

impl Templates {
    /// `rendered`, holding the kept copy of its template chains (which it
    /// becomes, for the next ports of that template, when there is none).
    pub(crate) fn share(&mut self, mut rendered: Rendered) -> Rendered {
        if let Rendered::Nftables { rules, .. } = &mut rendered {
            let kept = self.by_id.get(&rules.template);
            if !kept.is_some_and(|chains| rules.share_chains(chains)) {
                self.by_id
                    .insert(rules.template.clone(), Arc::clone(&rules.chains));
            }
        }
        rendered
    }

    /// Forgets the templates no kept ruleset holds any more.
    pub(crate) fn prune(&mut self) {
        self.by_id.retain(|_, chains| Arc::strong_count(chains) > 1);
    }

    pub(crate) fn clear(&mut self) {
        self.by_id.clear();
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
        format!(
            "<filterbinding><owner><name>vm</name>\
             <uuid>d54df46f-1ab5-4a22-8618-4560ef5fac2c</uuid></owner>\
             <portdev name='{port}'/><mac address='52:54:00:7b:35:{last:02x}'/>\
             <filterref filter='clean-traffic'>\
             <parameter name='IP' value='10.0.0.{last}'/></filterref></filterbinding>"
        )
    }

    #[test]
    fn ports_of_one_template_keep_one_copy_of_its_chains_until_the_last_goes() {
        let dir = tempfile::tempdir().unwrap();
        let runner = Arc::new(RecordingRunner::new());
        runner.answer(Tool::Nft, NO_TABLES);
        let engine = Engine::new(
            FilterStore::open(dir.path().join("etc")),
            BindingStore::open(dir.path().join("run")),
            runner,
        )
        .with_backend(Backend::Nftables);
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
}
