//! The filter verbs: define, undefine, dumpxml, list.

use std::sync::Arc;

use host_io::Runner;
use nwfilter_driver::engine::error_chain;
use nwfilter_driver::{Defined, EngineError, Origin};
use nwfilter_model::{format_filter, Filter};

use super::EngineService;
use crate::protocol::{FilterEntry, Reply};

impl<R: Runner + Send + Sync + 'static> EngineService<R> {
    /// Defines or redefines a filter (see `Engine::define`).
    pub fn define(&self, xml: &str) -> Result<Defined, EngineError> {
        self.engine.define(xml)
    }

    /// Removes a filter; returns the message for the client.
    pub fn undefine(&self, filter: &str) -> Result<String, EngineError> {
        let undefined = self.engine.undefine(filter)?;
        Ok(format!("Network filter {} undefined", undefined.name))
    }

    /// The filter `key` (name, else UUID).
    pub fn lookup_filter(&self, key: &str) -> Result<Arc<Filter>, nwfilter_driver::Error> {
        self.engine.filters().lookup(key)
    }

    /// A filter's normalised XML.
    pub fn dumpxml(&self, key: &str) -> Result<String, nwfilter_driver::Error> {
        Ok(format_filter(self.lookup_filter(key)?.as_ref()))
    }

    /// Every filter, and the files of the config directory that could not
    /// be used.
    pub fn list(&self) -> Result<Reply, nwfilter_driver::Error> {
        let listing = self.engine.filters().list()?;
        Ok(Reply::Filters {
            filters: listing
                .items
                .into_iter()
                .map(|f| FilterEntry {
                    uuid: f.uuid.to_string(),
                    name: f.name.to_string(),
                    builtin: matches!(f.origin, Origin::Builtin),
                })
                .collect(),
            skipped: listing.skipped.iter().map(|e| error_chain(e)).collect(),
        })
    }
}

/// What a define tells the client: the name, then what was ignored, one
/// `warning:` line each.
pub(super) fn defined_message(defined: &Defined) -> String {
    let mut message = format!("Network filter {} defined", defined.filter.name);
    for warning in &defined.warnings {
        message.push_str(&format!("\nwarning: {warning}"));
    }
    message
}
