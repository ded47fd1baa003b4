//! virsh's filter and binding verbs: define, undefine, dumpxml, list, edit,
//! binding-create, binding-delete, binding-list, binding-dumpxml, reload.
//! Each turns its arguments into one protocol operation and its reply into
//! the text virsh would print.

use std::path::PathBuf;

use anyhow::{bail, Context};
use nwfilter_service::{BindingEntry, FilterEntry, Op, Reply};

use nwfilter_model::{parse_binding_with, parse_filter_with, ParseOptions};

use crate::backend_arg::BackendArg;
use crate::connection::{read_file, Connection};
use crate::format::print_warnings;

#[derive(Debug, clap::Args)]
pub struct DefineArgs {
    /// Refuse attributes an element does not have, instead of ignoring
    /// them with a warning as libvirt does.
    #[arg(long)]
    pub strict: bool,
    #[command(flatten)]
    pub backend: BackendArg,
    /// The <filter> document.
    pub file: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct BindingCreateArgs {
    #[command(flatten)]
    pub backend: BackendArg,
    /// The <filterbinding> document.
    pub file: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct FilterArg {
    /// A filter's name or UUID.
    pub filter: String,
}

#[derive(Debug, clap::Args)]
pub struct EditArgs {
    #[command(flatten)]
    pub backend: BackendArg,
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

pub fn define(conn: &mut Connection, args: &DefineArgs) -> anyhow::Result<String> {
    let xml = read_file(&args.file)?;
    let doc = args.file.display().to_string();
    let reply = define_checked(conn, &doc, xml, args.strict)?;
    Ok(format!("{reply} from {doc}\n"))
}

/// Reads the document here first, so that errors and warnings name the
/// file (the daemon only sees text) and `--strict` refuses before anything
/// is sent; then defines it. Returns the reply's first line.
pub fn define_checked(
    conn: &mut Connection,
    doc: &str,
    xml: String,
    strict: bool,
) -> anyhow::Result<String> {
    let parsed = parse_filter_with(&xml, ParseOptions { strict }).map_err(|e| e.in_doc(doc))?;
    print_warnings(doc, parsed.warnings);
    let reply = message(conn.call(Op::Define { xml })?)?;
    // Later lines are the service's own warnings, already printed above
    // with the file's name.
    Ok(reply.lines().next().unwrap_or_default().to_owned())
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
        return Ok(serde_json::to_string_pretty(&filter_json(&filters))? + "\n");
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

/// A stored filter with a built-in's name replaces that built-in.
fn overrides_builtin(filter: &FilterEntry) -> bool {
    !filter.builtin && nwfilter_model::builtin_filter_source(&filter.name).is_some()
}

/// The entries, each with `overrides_builtin` added.
fn filter_json(filters: &[FilterEntry]) -> Vec<serde_json::Value> {
    filters
        .iter()
        .map(|f| {
            let mut value = serde_json::json!(f);
            value["overrides_builtin"] = overrides_builtin(f).into();
            value
        })
        .collect()
}

/// `virsh nwfilter-list`'s layout; a stored filter that replaces a
/// built-in one is marked after its name.
fn filter_table(filters: &[FilterEntry]) -> String {
    let mut out = format!(" {:<38} {}\n", "UUID", "Name");
    out.push_str(&"-".repeat(64));
    out.push('\n');
    for f in filters {
        let mark = if overrides_builtin(f) {
            " (overrides the built-in)"
        } else {
            ""
        };
        out.push_str(&format!(" {:<38} {}{mark}\n", f.uuid, f.name));
    }
    out.push('\n');
    out
}

pub fn binding_create(conn: &mut Connection, args: &BindingCreateArgs) -> anyhow::Result<String> {
    let xml = read_file(&args.file)?;
    // Read here first so that errors and warnings name the file.
    let doc = args.file.display().to_string();
    let parsed = parse_binding_with(&xml, ParseOptions::default()).map_err(|e| e.in_doc(&doc))?;
    print_warnings(&doc, parsed.warnings);
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
/// binding is not simply active, an owner column when a network owns any
/// (the port has no binding of its own), and a column of learned
/// addresses when any port has some.
fn binding_table(bindings: &[BindingEntry]) -> String {
    let with_state = bindings.iter().any(|b| b.state.is_some());
    let with_owner = bindings
        .iter()
        .any(|b| b.owner.as_ref().is_some_and(|o| o.network));
    let with_learned = bindings.iter().any(|b| !b.learned.is_empty());
    let owner_of = |b: &BindingEntry| match &b.owner {
        Some(o) if o.network => format!("network {}", o.name),
        Some(o) => o.name.clone(),
        None => String::new(),
    };
    let row = |port: &str, filter: &str, owner: &str, state: &str, learned: &str| {
        let mut line = format!(" {port:<16} {filter:<24}");
        if with_owner {
            line.push_str(&format!(" {owner:<20}"));
        }
        if with_state {
            line.push_str(&format!(" {state:<24}"));
        }
        if with_learned {
            line.push_str(&format!(" {learned}"));
        }
        line.trim_end().to_owned() + "\n"
    };
    let mut out = row("Port Dev", "Filter", "Owner", "State", "Learned addresses");
    out.push_str(&"-".repeat(64));
    out.push('\n');
    for b in bindings {
        let state = b.state.as_deref().unwrap_or("active");
        let owner = owner_of(b);
        out.push_str(&row(
            &b.portdev,
            &b.filter,
            &owner,
            state,
            &b.learned.join(", "),
        ));
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

pub fn message(reply: Reply) -> anyhow::Result<String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(port: &str, state: Option<&str>, learned: &[&str]) -> BindingEntry {
        BindingEntry {
            portdev: port.into(),
            filter: "clean-traffic".into(),
            state: state.map(Into::into),
            learned: learned.iter().map(|a| a.to_string()).collect(),
            owner: None,
        }
    }

    #[test]
    fn binding_table_shows_learned_addresses() {
        let table = binding_table(&[
            entry("vnet0", None, &["10.0.0.5", "10.0.0.6"]),
            entry("vnet1", None, &[]),
        ]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(
            lines[0],
            " Port Dev         Filter                   Learned addresses"
        );
        assert_eq!(
            lines[2],
            " vnet0            clean-traffic            10.0.0.5, 10.0.0.6"
        );
        assert_eq!(lines[3], " vnet1            clean-traffic");
    }

    #[test]
    fn binding_table_names_the_network_owning_a_port() {
        let owner = |name: &str, network: bool| {
            Some(nwfilter_service::OwnerEntry {
                name: name.into(),
                uuid: "d54df46f-1ab5-4a22-8618-4560ef5fac2c".into(),
                network,
            })
        };
        let mut by_net = entry("vnet0", None, &[]);
        by_net.owner = owner("lab", true);
        let mut by_vm = entry("vnet1", None, &[]);
        by_vm.owner = owner("web1", false);
        let table = binding_table(&[by_net, by_vm]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines[0], " Port Dev         Filter                   Owner");
        assert_eq!(
            lines[2],
            " vnet0            clean-traffic            network lab"
        );
        assert_eq!(lines[3], " vnet1            clean-traffic            web1");
    }

    #[test]
    fn binding_table_without_learning_keeps_virshs_layout() {
        let table = binding_table(&[entry("vnet0", None, &[])]);
        assert_eq!(
            table,
            format!(
                " Port Dev         Filter\n{}\n vnet0            clean-traffic\n\n",
                "-".repeat(64)
            )
        );
        let table = binding_table(&[entry("vnet0", Some("learning IP"), &["10.0.0.5"])]);
        assert!(
            table.contains(
                " vnet0            clean-traffic            learning IP              10.0.0.5"
            ),
            "{table}"
        );
    }
}
