//! `nwfilter format FILE`: check a document and print it normalised.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use nwfilter_model::{
    format_binding, format_filter, parse_document_with, root_element, Document, ParseOptions,
    Warning,
};

/// Check a filter or filterbinding document and print it as libvirt would.
#[derive(Debug, clap::Args)]
#[command(
    about = "Check a <filter>, <filterbinding> or <network> document and print it normalised",
    long_about = "Check a <filter>, <filterbinding> or <network> XML document and print it in libvirt's \
        normalised form: attributes in canonical order, values in canonical spelling \
        (MACs lower case, netmasks as prefix lengths, ...), XML comments dropped, rule \
        priorities spelt out.\n\n\
        Attributes an element does not have are ignored, as libvirt ignores them: they \
        vanish from the output, and each is named on stderr (file, line, element, \
        attribute). --strict refuses them instead.\n\n\
        An invalid document prints nothing on stdout; the error on stderr names the file, \
        line:column, element, attribute and value, and the exit status is 1.\n\n\
        Example:\n  nwfilter format my-filter.xml > my-filter.normalised.xml"
)]
pub struct Args {
    /// Refuse attributes an element does not have, instead of ignoring
    /// them with a warning as libvirt does.
    #[arg(long)]
    pub strict: bool,
    /// The XML document to read.
    pub file: PathBuf,
}

pub fn run(args: &Args) -> Result<String> {
    let path = &args.file;
    let doc = path.display().to_string();
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {doc}"))?;
    let root = root_element(&text).map_err(|e| e.in_doc(&doc))?;
    match root.as_str() {
        "filter" | "filterbinding" => {
            let options = ParseOptions {
                strict: args.strict,
            };
            let parsed = parse_document_with(&text, options).map_err(|e| e.in_doc(&doc))?;
            print_warnings(&doc, parsed.warnings);
            Ok(match parsed.value {
                Document::Filter(filter) => format_filter(&filter),
                Document::Binding(binding) => format_binding(&binding),
            })
        }
        "network" => crate::net::format_text(path, &text),
        other => bail!(
            "{doc}: unsupported root element <{other}> (expected <filter>, <filterbinding> or <network>)"
        ),
    }
}

/// What was ignored in document `doc`, one line each on stderr (stdout
/// carries only the result).
#[allow(clippy::print_stderr)]
pub fn print_warnings(doc: &str, warnings: Vec<Warning>) {
    for warning in warnings {
        eprintln!("nwfilter: warning: {}", warning.in_doc(doc));
    }
}
