//! `binding-create FILE` and `binding-delete PORTDEV`, embedded mode: the
//! rules are applied in the current network namespace by this process, and
//! the binding is recorded in the state directory (so `binding-delete`
//! knows it) only after its rules are in place — no daemon involved.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use backend_xtables::{Applier, Change, PortRuleset, ProcessRunner, Toolset};
use nwfilter_compile::{bind, lower, BindOutcome, MemorySource};
use nwfilter_driver::{BindingStore, FilterStore};
use nwfilter_model::{Binding, IfName};

/// Where filters and bindings live (global options).
#[derive(Debug, Clone)]
pub struct Dirs {
    pub config: PathBuf,
    pub state: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// A <filterbinding> document (portdev, mac, filterref with parameters).
    pub file: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    /// The port device whose binding and rules are removed (e.g. vnet0).
    pub portdev: String,
}

/// Applies the binding's filter to its port, then records the binding.
pub fn create(dirs: &Dirs, args: &CreateArgs) -> anyhow::Result<String> {
    let xml = std::fs::read_to_string(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let binding =
        nwfilter_model::parse_binding(&xml).with_context(|| format!("{}", args.file.display()))?;
    let port = binding.portdev.clone();
    let bindings = BindingStore::open(&dirs.state);
    if bindings.get(port.as_str())?.is_some() {
        bail!("port {port} already has a filter binding (binding-delete {port} first)");
    }
    let ruleset = compile(&dirs.config, &binding)?;
    let runner = runner()?;
    let applier = Applier::new(&runner);
    let change = Change {
        ruleset: &ruleset,
        recorded: None,
    };
    applier
        .apply(&[change])
        .with_context(|| format!("applying the rules of port {port}"))?;
    if let Err(e) = bindings.create(&binding) {
        // Unrecorded rules could never be deleted by name: take them out.
        let undo = applier.remove(std::slice::from_ref(&port));
        let undo = undo
            .err()
            .map(|u| format!("; removing its rules also failed: {u}"));
        return Err(e).context(format!(
            "recording the binding of {port}{}",
            undo.unwrap_or_default()
        ));
    }
    Ok(format!("Network filter binding on {port} created\n"))
}

/// Removes the port's rules, then its recorded binding.
pub fn delete(dirs: &Dirs, args: &DeleteArgs) -> anyhow::Result<String> {
    let bindings = BindingStore::open(&dirs.state);
    if bindings.get(&args.portdev)?.is_none() {
        bail!("no filter binding for port {:?}", args.portdev);
    }
    let port = IfName::new(args.portdev.clone())?;
    let runner = runner()?;
    Applier::new(&runner)
        .remove(std::slice::from_ref(&port))
        .with_context(|| format!("removing the rules of port {port}"))?;
    bindings.delete(port.as_str())?;
    Ok(format!("Network filter binding on {port} deleted\n"))
}

/// The binding's filter tree, from the config directory and the built-in
/// set, bound, lowered and rendered for its port.
pub fn compile(config: &Path, binding: &Binding) -> anyhow::Result<PortRuleset> {
    let snapshot = FilterStore::open(config).snapshot()?;
    let mut source = MemorySource::new();
    for (filter, _) in snapshot.items {
        source.insert(filter);
    }
    let top = &binding.filterref;
    let rules = match bind(&source, top, binding.mac)? {
        BindOutcome::Bound(rules) => rules,
        BindOutcome::AwaitingIp { .. } => bail!(
            "filter {} needs the variable IP, which this binding does not set; \
             IP address learning is not available in embedded mode: add \
             <parameter name='IP' value='...'/> to the binding",
            top.filter
        ),
    };
    let program = lower(&rules, &binding.portdev)?;
    Ok(backend_xtables::ruleset(&program)?)
}

fn runner() -> anyhow::Result<ProcessRunner> {
    let toolset = Toolset::default();
    toolset.check_installed()?;
    Ok(ProcessRunner::new(toolset))
}
