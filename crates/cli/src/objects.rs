//! virsh's filter and binding verbs: define, undefine, dumpxml, list, edit,
//! binding-create, binding-delete, binding-list, binding-dumpxml, reload.
//! Each turns its arguments into one protocol operation and its reply into
//! the text virsh would print.

use std::path::PathBuf;

use anyhow::{bail, Context};
use nwfilterd::{BindingEntry, FilterEntry, Op, Reply};

use crate::connection::{read_file, Connection};

#[derive(Debug, clap::Args)]
pub struct FileArg {
    /// The XML document.
    pub file: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct FilterArg {
    /// A filter's name or UUID.
    pub filter: String,
}

#[derive(Debug, clap::Args)]
pub struct PortArg {
    /// The port device of the binding (e.g. vnet0).
    pub portdev: String,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Print JSON (an array of objects) instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn define(conn: &mut Connection, args: &FileArg) -> anyhow::Result<String> {
    let xml = read_file(&args.file)?;
    let reply = conn.call(Op::Define { xml })?;
    Ok(format!(
        "{} from {}\n",
        message(reply)?,
        args.file.display()
    ))
}

pub fn undefine(conn: &mut Connection, args: &FilterArg) -> anyhow::Result<String> {
    let reply = conn.call(Op::Undefine {
        filter: args.filter.clone(),
    })?;
    Ok(format!("{}\n", message(reply)?))
}

pub fn dumpxml(conn: &mut Connection, args: &FilterArg) -> anyhow::Result<String> {
    xml(conn.call(Op::Dumpxml {
        filter: args.filter.clone(),
    })?)
}

pub fn list(conn: &mut Connection, args: &ListArgs) -> anyhow::Result<String> {
    let Reply::Filters { filters, skipped } = conn.call(Op::List)? else {
        bail!("unexpected reply to list");
    };
    warn_skipped(&skipped);
    if args.json {
        return Ok(serde_json::to_string_pretty(&filters)? + "\n");
    }
    Ok(filter_table(&filters))
}

/// Files the daemon could not use go to stderr, so that the listing on
/// stdout (table or JSON) stays what it was.
#[allow(clippy::print_stderr)]
fn warn_skipped(skipped: &[String]) {
    for why in skipped {
        eprintln!("nwfilter: warning: skipped {why}");
    }
}

/// `virsh nwfilter-list`'s layout.
fn filter_table(filters: &[FilterEntry]) -> String {
    let mut out = format!(" {:<38} {}\n", "UUID", "Name");
    out.push_str(&"-".repeat(64));
    out.push('\n');
    for f in filters {
        out.push_str(&format!(" {:<38} {}\n", f.uuid, f.name));
    }
    out.push('\n');
    out
}

pub fn binding_create(conn: &mut Connection, args: &FileArg) -> anyhow::Result<String> {
    let xml = read_file(&args.file)?;
    let reply = conn
        .call(Op::BindingCreate { xml })
        .with_context(|| format!("{}", args.file.display()))?;
    Ok(format!("{}\n", message(reply)?))
}

pub fn binding_delete(conn: &mut Connection, args: &PortArg) -> anyhow::Result<String> {
    let reply = conn.call(Op::BindingDelete {
        portdev: args.portdev.clone(),
    })?;
    Ok(format!("{}\n", message(reply)?))
}

pub fn binding_list(conn: &mut Connection, args: &ListArgs) -> anyhow::Result<String> {
    let Reply::Bindings { bindings } = conn.call(Op::BindingList)? else {
        bail!("unexpected reply to binding-list");
    };
    if args.json {
        return Ok(serde_json::to_string_pretty(&bindings)? + "\n");
    }
    Ok(binding_table(&bindings))
}

/// `virsh nwfilter-binding-list`'s layout, plus a state column when any
/// binding is not simply active.
fn binding_table(bindings: &[BindingEntry]) -> String {
    let with_state = bindings.iter().any(|b| b.state.is_some());
    let mut out = format!(" {:<16} {}", "Port Dev", "Filter");
    if with_state {
        out = format!(" {:<16} {:<24} {}", "Port Dev", "Filter", "State");
    }
    out.push('\n');
    out.push_str(&"-".repeat(64));
    out.push('\n');
    for b in bindings {
        if with_state {
            let state = b.state.as_deref().unwrap_or("active");
            out.push_str(&format!(" {:<16} {:<24} {}\n", b.portdev, b.filter, state));
        } else {
            out.push_str(&format!(" {:<16} {}\n", b.portdev, b.filter));
        }
    }
    out.push('\n');
    out
}

pub fn binding_dumpxml(conn: &mut Connection, args: &PortArg) -> anyhow::Result<String> {
    xml(conn.call(Op::BindingDumpxml {
        portdev: args.portdev.clone(),
    })?)
}

pub fn reload(conn: &mut Connection) -> anyhow::Result<String> {
    Ok(format!("{}\n", message(conn.call(Op::Reload)?)?))
}

/// Opens `$EDITOR` (else `$VISUAL`, else `vi`) on a copy of the filter's
/// XML; a changed copy is defined, which validates it first: an invalid
/// edit changes nothing and says why.
pub fn edit(conn: &mut Connection, args: &FilterArg) -> anyhow::Result<String> {
    let original = dumpxml(conn, args)?;
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let path = dir.path().join("filter.xml");
    std::fs::write(&path, &original).with_context(|| format!("writing {}", path.display()))?;
    run_editor(&path)?;
    let edited = read_file(&path)?;
    if edited == original {
        return Ok(format!(
            "Network filter {} XML configuration not changed.\n",
            args.filter
        ));
    }
    let reply = conn
        .call(Op::Define { xml: edited })
        .context("the edited filter was not defined; nothing changed")?;
    message(reply)?;
    Ok(format!(
        "Network filter {} XML configuration edited.\n",
        args.filter
    ))
}

/// Runs the editor as an argument vector: `$EDITOR` may carry options
/// (`code --wait`), split on whitespace; it never goes through a shell.
fn run_editor(path: &std::path::Path) -> anyhow::Result<()> {
    let editor = std::env::var("EDITOR")
        .or_else(|_| std::env::var("VISUAL"))
        .unwrap_or_else(|_| "vi".to_string());
    let mut words = editor.split_whitespace();
    let program = words.next().context("$EDITOR is empty")?;
    let status = std::process::Command::new(program)
        .args(words)
        .arg(path)
        .status()
        .with_context(|| format!("cannot start the editor {program:?}"))?;
    if !status.success() {
        bail!("the editor {program:?} failed ({status}); nothing changed");
    }
    Ok(())
}

fn message(reply: Reply) -> anyhow::Result<String> {
    match reply {
        Reply::Done { message } => Ok(message),
        other => bail!("unexpected reply {other:?}"),
    }
}

fn xml(reply: Reply) -> anyhow::Result<String> {
    match reply {
        Reply::Xml { xml } => Ok(xml),
        other => bail!("unexpected reply {other:?}"),
    }
}
