//! `nwfilter format FILE`: check a document and print it normalised.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use nwfilter_model::{format_binding, format_filter, parse_document, root_element, Document};

/// Check a filter or filterbinding document and print it as libvirt would.
#[derive(Debug, clap::Args)]
#[command(
    about = "Check a <filter>, <filterbinding> or <network> document and print it normalised",
    long_about = "Check a <filter>, <filterbinding> or <network> XML document and print it in libvirt's \
        normalised form: attributes in canonical order, values in canonical spelling \
        (MACs lower case, netmasks as prefix lengths, ...), XML comments dropped, rule \
        priorities spelt out.\n\n\
        An invalid document prints nothing on stdout; the error on stderr names the file, \
        line:column, element, attribute and value, and the exit status is 1.\n\n\
        Example:\n  nwfilter format my-filter.xml > my-filter.normalised.xml"
)]
pub struct Args {
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
            Ok(match parse_document(&text).map_err(|e| e.in_doc(&doc))? {
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
