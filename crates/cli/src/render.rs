//! `nwfilter render`: the firewall program a filter or binding gives a port.
//!
//! Reads FILE, resolves its filter references (the `--filter-dir` folders
//! first, then the built-in set), binds the variables, lowers and renders.
//! Nothing is applied; every error is found before anything is printed.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use nwfilter_compile::{
    compile_dag, resolve, Compiled, DirSource, FilterDag, LayeredSource, MemorySource,
};
use nwfilter_driver::{preview, Backend, Form, PreviewError};
use nwfilter_model::{
    builtin_filters, parse_document, Document, FilterRef, IfName, MacAddr6, Params, Value,
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

/// The rules FILE gives the port, as `backend` spells them. What the
/// form cannot carry (JSON has no comments) goes to stderr.
#[allow(clippy::print_stderr)]
pub fn run_for(args: &Args, backend: Backend) -> Result<String> {
    let (text, note) = render(args, backend)?;
    if let Some(note) = note {
        eprint!("{note}");
    }
    Ok(text)
}

/// The same compiler call the engine makes ([`compile_dag`]), then the
/// driver's preview of its program. Returns (stdout, a note for stderr).
fn render(args: &Args, backend: Backend) -> Result<(String, Option<String>)> {
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
    let dag = resolve(&source, &top.filter)?;
    let mac = match mac {
        Some(mac) => mac,
        None => {
            refuse_if_mac_used(&dag, &params)?;
            // Never reaches a rule: nothing in the tree refers to $MAC.
            MacAddr6::nil()
        }
    };
    let program = match compile_dag(&dag, &params, mac, &port)? {
        Compiled::Program(program) => program,
        Compiled::AwaitingIp { mode, .. } => bail!(
            "the filters need $IP, which libvirt would learn from the guest's traffic \
             (CTRL_IP_LEARNING={mode:?}); render cannot learn addresses: pass --param IP=ADDRESS"
        ),
    };
    let preview = preview(&program, backend, form(args.format)).map_err(|e| match e {
        PreviewError::NoSuchForm { backend, .. } => wrong_form(args.format, backend),
        other => other.into(),
    })?;
    Ok((preview.text, preview.note))
}

fn form(format: OutputFormat) -> Form {
    match format {
        OutputFormat::Commands => Form::Commands,
        OutputFormat::Restore => Form::Restore,
        OutputFormat::Json => Form::Json,
    }
}

/// `--format` names a form `backend` does not print.
fn wrong_form(format: OutputFormat, backend: Backend) -> anyhow::Error {
    match format {
        OutputFormat::Json => {
            anyhow!("--format json is the nftables backend's: add --backend nftables")
        }
        OutputFormat::Restore => {
            anyhow!("--format restore is the xtables backend's; nftables prints commands or json")
        }
        OutputFormat::Commands => anyhow!("--format commands: not offered by {backend}"),
    }
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
fn refuse_if_mac_used(dag: &FilterDag, params: &Params) -> Result<()> {
    if params.get("MAC").is_some() {
        return Ok(());
    }
    if let Some(filter) = dag.first_user_of("MAC") {
        bail!(
            "filter '{}' uses $MAC: pass the VM's MAC address with --mac",
            filter.name
        );
    }
    Ok(())
}
