//! What `nwfilter render` prints: a port's compiled program in one
//! backend's own text, nothing applied. The program comes from the same
//! compiler call the engine makes (`nwfilter_compile::compile_dag`); only
//! the text form is a preview's own (xtables: the filter's chains as
//! libvirt's `nwfilterxml2firewall` test prints them; nftables: the
//! transaction on a host with no other port).

use std::fmt;

use nwfilter_compile::ir::Program;

use crate::backend::Backend;

/// The text forms a preview can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// One command per line (xtables: shell-quoted tool calls; nftables:
    /// `nft -f` text).
    Commands,
    /// xtables only: input for the restore tools.
    Restore,
    /// nftables only: the transaction as `nft -j -f` JSON.
    Json,
}

impl fmt::Display for Form {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Form::Commands => "commands",
            Form::Restore => "restore",
            Form::Json => "json",
        })
    }
}

/// A preview's text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    pub text: String,
    /// What the text's form cannot carry (JSON has no comments): lines
    /// the caller shows beside it.
    pub note: Option<String>,
}

/// Why a program has no preview in the asked form.
#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error(transparent)]
    Xtables(#[from] backend_xtables::RenderError),
    #[error(transparent)]
    Nftables(#[from] backend_nftables::RenderError),
    #[error(transparent)]
    NftablesText(#[from] backend_nftables::Unsupported),
    /// The backend has no such form (restore is xtables', JSON nftables').
    #[error("the {backend} backend has no {form} form")]
    NoSuchForm { backend: Backend, form: Form },
}

/// `program` as `backend` spells it, in `form`.
pub fn preview(program: &Program, backend: Backend, form: Form) -> Result<Preview, PreviewError> {
    match backend {
        Backend::Xtables => xtables(program, form),
        Backend::Nftables => nftables(program, form),
    }
}

fn xtables(program: &Program, form: Form) -> Result<Preview, PreviewError> {
    use backend_xtables::render::{command_lines, commands, restore_text, ruleset};
    let rules = ruleset(program)?;
    let text = match form {
        Form::Commands => command_lines(&commands(&rules)?),
        Form::Restore => restore_text(&rules)?,
        Form::Json => return Err(no_such_form(Backend::Xtables, form)),
    };
    Ok(Preview { text, note: None })
}

/// The transaction that instantiates `program` on a host with no other
/// port (port tag 1), with a note on which rules are shared.
fn nftables(program: &Program, form: Form) -> Result<Preview, PreviewError> {
    Ok(match form {
        Form::Commands => {
            let rules = backend_nftables::ruleset(program)?;
            let batch = backend_nftables::instantiate(&rules);
            Preview {
                text: format!("{}{}", sharing_note(&rules), batch.text()),
                note: None,
            }
        }
        Form::Json => {
            // nft's JSON cannot declare a set of raw header fields: this
            // form keeps those values in chains of the port's own.
            let rules = backend_nftables::ruleset_for_json(program)?;
            let batch = backend_nftables::instantiate(&rules);
            Preview {
                text: format!(
                    "{}\n",
                    batch.json().ok_or(backend_nftables::Unsupported::Feature(
                        "a set of raw header fields in nft's JSON form"
                    ))?
                ),
                note: Some(sharing_note(&rules)),
            }
        }
        Form::Restore => return Err(no_such_form(Backend::Nftables, form)),
    })
}

fn no_such_form(backend: Backend, form: Form) -> PreviewError {
    PreviewError::NoSuchForm { backend, form }
}

/// Which of the port's rules are shared with other ports, as `#` lines.
fn sharing_note(rules: &backend_nftables::PortRuleset) -> String {
    let mut note = format!(
        "# template {}: its chains are shared by every port whose rules differ only in \
         per-port addresses (in the sets, keyed by port)\n",
        rules.template
    );
    if rules.per_port.is_empty() {
        note.push_str("# every rule is shared\n");
    }
    for why in &rules.per_port {
        note.push_str(&format!("# in a chain of the port's own: {why}\n"));
    }
    note
}
