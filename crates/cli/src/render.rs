//! `nwfilter render`: the firewall program a filter or binding gives a port.
//!
//! Reads FILE, resolves its filter references (the `--filter-dir` folders
//! first, then the built-in set), binds the variables, lowers and renders.
//! Nothing is applied; every error is found before anything is printed.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use nwfilter_compile::{compile, Compiled, DirSource, FilterSource, LayeredSource, MemorySource};
use nwfilter_driver::backend::nftables;
use nwfilter_driver::backend::xtables::{command_lines, commands, restore_text, ruleset};
use nwfilter_model::{
    builtin_filters, parse_document, Document, Filter, FilterRef, IfName, MacAddr6, Params, Value,
};

/// Output forms of `render`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    /// One ebtables/iptables/ip6tables command per line, shell-quoted.
    Commands,
    /// Input for ebtables-restore / iptables-restore / ip6tables-restore.
    Restore,
    /// With `--backend nftables`: the same transaction as `nft -j -f` JSON.
    Json,
}

/// Print the firewall rules a filter or filterbinding gives one port.
#[derive(Debug, clap::Args)]
#[command(
    about = "Print the firewall rules a <filter> or <filterbinding> gives a VM's port",
    long_about = "Print the ebtables/iptables/ip6tables program that instantiates FILE (a \
        <filter> or a <filterbinding> document) on the port device DEV (for a <filterbinding>: its own <portdev> unless --portdev \
        is given), in libvirt 9.0's \
        chain layout and spelling: the port's chains (final names, e.g. libvirt-I-vnet0, \
        FI-vnet0), their rules, and the rules hooking them in. The shared chains libvirt-in, \
        libvirt-out, libvirt-in-post and libvirt-host-in are assumed to exist. Nothing is \
        applied and no privileges are needed.\n\n\
        Filters referenced by <filterref> are looked up by name among the filter documents \
        (*.xml) in each --filter-dir, in the order given, then among the built-in filters \
        (clean-traffic and its parts).\n\n\
        Variables: --param NAME=VALUE binds NAME; repeat it to make a list. For a \
        <filterbinding>, its own <parameter>s and MAC are used, and --param/--mac override \
        them. MAC defaults to the binding's MAC; for a <filter> without --mac, a filter that \
        uses $MAC is an error (there is no sensible made-up MAC for a real port).\n\n\
        Examples:\n  nwfilter render --portdev vnet0 --mac 52:54:00:56:44:32 \
        --param IP=10.0.0.5 clean-traffic.xml\n  nwfilter render --format restore binding.xml"
)]
pub struct Args {
    /// The VM's port device (tap), at most 15 bytes; a <filterbinding>
    /// names its own.
    #[arg(long, value_name = "DEV")]
    pub portdev: Option<String>,
    /// The VM's MAC address (the value of $MAC).
    #[arg(long, value_name = "MAC")]
    pub mac: Option<String>,
    /// Bind a variable; give a NAME several times to make a list.
    #[arg(long = "param", value_name = "NAME=VALUE")]
    pub params: Vec<String>,
    /// A folder holding referenced filters as NAME.xml (repeatable).
    #[arg(long = "filter-dir", value_name = "DIR")]
    pub filter_dirs: Vec<PathBuf>,
    /// Print commands, or restore-tool input.
    #[arg(long, value_enum, default_value = "commands")]
    pub format: OutputFormat,
    #[command(flatten)]
    pub backend: crate::backend_arg::BackendArg,
    /// The <filter> or <filterbinding> document.
    pub file: PathBuf,
}

/// Renders for the xtables backend, or with `nftables` prints the nftables
/// backend's transaction (`nft -f` text for `commands`, or `--format json`).
pub fn run_for(args: &Args, nftables: bool) -> Result<String> {
    let Top {
        top,
        mut source,
        binding,
    } = read_top(&args.file)?;
    let port = match (&args.portdev, &binding) {
        (Some(dev), _) => IfName::new(dev.clone()).context("--portdev")?,
        (None, Some((portdev, _))) => portdev.clone(),
        (None, None) => bail!("--portdev DEV is needed to render a <filter>"),
    };
    let binding_mac = binding.map(|(_, mac)| mac);
    let mut params = top.params.clone();
    override_params(&mut params, &args.params)?;
    let mac = match &args.mac {
        Some(text) => Some(parse_mac(text)?),
        None => binding_mac,
    };
    for dir in &args.filter_dirs {
        source.push(DirSource::open(dir)?);
    }
    source.push(MemorySource::from_iter(builtin_filters()));
    let top = FilterRef {
        filter: top.filter,
        params,
    };
    let mac = match mac {
        Some(mac) => mac,
        None => {
            refuse_if_mac_used(&source, &top)?;
            // Never reaches a rule: nothing in the tree refers to $MAC.
            MacAddr6::nil()
        }
    };
    let program = match compile(&source, &top, mac, &port)? {
        Compiled::Program(program) => program,
        Compiled::AwaitingIp { mode, .. } => bail!(
            "the filters need $IP, which libvirt would learn from the guest's traffic \
             (CTRL_IP_LEARNING={mode:?}); render cannot learn addresses: pass --param IP=ADDRESS"
        ),
    };
    if nftables {
        return nft_output(&program, args.format);
    }
    let rules = ruleset(&program)?;
    Ok(match args.format {
        OutputFormat::Commands => command_lines(&commands(&rules)?),
        OutputFormat::Restore => restore_text(&rules)?,
        OutputFormat::Json => {
            bail!("--format json is the nftables backend's: add --backend nftables")
        }
    })
}

/// The nftables transaction that instantiates `program` on a host with no
/// other port (port tag 1).
#[allow(clippy::print_stderr)] // the note JSON cannot carry
fn nft_output(program: &nwfilter_compile::ir::Program, format: OutputFormat) -> Result<String> {
    let rules = nftables::ruleset(program)?;
    let batch = nftables::instantiate(&rules);
    Ok(match format {
        OutputFormat::Commands => {
            nftables::text_checked(&rules)?;
            format!("{}{}", sharing_note(&rules), batch.text())
        }
        OutputFormat::Json => {
            // JSON has no comments: the note goes to stderr.
            eprint!("{}", sharing_note(&rules));
            format!("{}\n", batch.json())
        }
        OutputFormat::Restore => {
            bail!("--format restore is the xtables backend's; nftables prints commands or json")
        }
    })
}

/// Which of the port's rules are shared with other ports, as `#` lines.
fn sharing_note(rules: &nftables::PortRuleset) -> String {
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

/// What FILE contributes.
struct Top {
    top: FilterRef,
    /// Holds FILE's own filter, if it is one.
    source: LayeredSource,
    /// The binding's port device and MAC, if it is a binding.
    binding: Option<(IfName, MacAddr6)>,
}

fn read_top(path: &Path) -> Result<Top> {
    let doc = path.display().to_string();
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {doc}"))?;
    let mut source = LayeredSource::new();
    Ok(match parse_document(&text).map_err(|e| e.in_doc(&doc))? {
        Document::Filter(filter) => {
            let top = FilterRef {
                filter: filter.name.clone(),
                params: Params::default(),
            };
            source.push(MemorySource::from_iter([filter]));
            Top {
                top,
                source,
                binding: None,
            }
        }
        Document::Binding(binding) => Top {
            top: binding.filterref,
            source,
            binding: Some((binding.portdev, binding.mac)),
        },
    })
}

/// `--param NAME=VALUE`s replace the binding's values of those names;
/// repeated names make a list, in order.
fn override_params(params: &mut Params, given: &[String]) -> Result<()> {
    let mut replaced = Params::default();
    for item in given {
        let Some((name, value)) = item.split_once('=') else {
            bail!("--param {item:?}: expected NAME=VALUE");
        };
        if !nwfilter_model::valid_param_name(name) {
            bail!("--param {item:?}: {name:?} is not a valid variable name ([A-Za-z0-9_]+)");
        }
        replaced.push(name, value);
    }
    for (name, values) in replaced.iter() {
        params.0.insert(name.to_owned(), values.to_vec());
    }
    Ok(())
}

fn parse_mac(text: &str) -> Result<MacAddr6> {
    match nwfilter_model::parse_kind(nwfilter_model::ValueKind::Mac, text) {
        Ok(Value::Mac(mac)) => Ok(mac),
        _ => bail!(
            "--mac {text:?}: not a MAC address (expected six hex bytes like 52:54:00:12:34:56)"
        ),
    }
}

/// Without a MAC, only a tree that never uses `$MAC` can be rendered.
fn refuse_if_mac_used(source: &dyn FilterSource, top: &FilterRef) -> Result<()> {
    if top.params.get("MAC").is_some() {
        return Ok(());
    }
    let dag = nwfilter_compile::resolve(source, &top.filter)?;
    for filter in dag.filters() {
        if uses_var(filter, "MAC") {
            bail!(
                "filter '{}' uses $MAC: pass the VM's MAC address with --mac",
                filter.name
            );
        }
    }
    Ok(())
}

fn uses_var(filter: &Filter, name: &str) -> bool {
    filter.entries.iter().any(|entry| match entry {
        nwfilter_model::Entry::Rule(rule) => rule.protocol.iter().any(|pm| {
            pm.attrs
                .iter()
                .any(|a| matches!(&a.value, Value::Var(v) if v.name == name))
        }),
        nwfilter_model::Entry::Ref(_) => false,
    })
}
