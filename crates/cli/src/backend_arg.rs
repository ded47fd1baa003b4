//! `--backend`, offered only on the verbs it affects: those that apply
//! rules (define, edit, binding-create, reload) or print them (render).
//! The values are the driver's backends, by their names.

use clap::builder::{PossibleValue, PossibleValuesParser, TypedValueParser};
use nwfilter_driver::Backend;

/// Parses `--backend NAME` into one of [`Backend::ALL`], listing them
/// (with their summaries) in the help and the completions.
pub fn parser() -> impl TypedValueParser<Value = Backend> {
    let names = Backend::ALL.map(|b| PossibleValue::new(b.as_str()).help(b.summary()));
    PossibleValuesParser::new(names).try_map(|name| name.parse::<Backend>())
}

#[derive(Debug, Clone, clap::Args)]
pub struct BackendArg {
    /// Firewall backend that applies (or `render` prints) the rules
    /// [default: `backend` in CONFIG_DIR/nwfilter.conf, else xtables].
    /// Through a daemon, the daemon's setting decides: a different
    /// --backend is refused.
    #[arg(long, value_parser = parser())]
    pub backend: Option<Backend>,
}
