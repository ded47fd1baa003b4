//! `nwfilter graph FILTER`: the `<filterref>` DAG below a filter as
//! Graphviz DOT (or SVG through graphviz's `dot`), each filter with its
//! chain, priority and rule counts.

use std::io::Write;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use nwfilter_compile::{resolve, FilterDag};
use nwfilter_driver::FilterStore;
use nwfilter_model::{Direction, Entry, Filter, FilterName};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    /// Graphviz DOT text.
    Dot,
    /// SVG drawn by graphviz's `dot` (must be installed).
    Svg,
}

/// Print a filter's reference graph.
#[derive(Debug, clap::Args)]
#[command(
    about = "Print the <filterref> graph below a filter as DOT (or SVG)",
    long_about = "Print the graph of <filterref>s reachable from FILTER (from --config-dir and \
        the built-in set) as Graphviz DOT: one node per filter with its chain, chain priority \
        and rule counts (by direction), one edge per reference, labelled with the parameters \
        it passes. --format svg draws it with graphviz's `dot` command.\n\n\
        Example:\n  nwfilter graph clean-traffic | dot -Tpng > clean-traffic.png"
)]
pub struct Args {
    /// The filter at the top of the graph.
    pub filter: String,
    #[arg(long, value_enum, default_value = "dot")]
    pub format: GraphFormat,
}

pub fn run(config_dir: &std::path::Path, args: &Args) -> Result<String> {
    let name = FilterName::new(args.filter.clone())
        .with_context(|| format!("{:?} is not a filter name", args.filter))?;
    let store = FilterStore::open(config_dir);
    let dag = resolve(&store, &name)?;
    let text = dot(&dag);
    match args.format {
        GraphFormat::Dot => Ok(text),
        GraphFormat::Svg => svg(&text),
    }
}

/// The DOT text of `dag`: nodes sorted by name, edges in document order.
pub fn dot(dag: &FilterDag) -> String {
    let mut filters: Vec<&Filter> = dag.filters().map(|f| f.as_ref()).collect();
    filters.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
    let mut out = String::from("digraph filters {\n  rankdir=LR;\n  node [shape=box];\n");
    for f in &filters {
        let top = if f.name == dag.top().name {
            ", style=bold"
        } else {
            ""
        };
        out.push_str(&format!(
            "  {} [label={}{top}];\n",
            quote(f.name.as_str()),
            quote(&label(f))
        ));
    }
    for f in &filters {
        for entry in &f.entries {
            let Entry::Ref(r) = entry else { continue };
            let params: Vec<String> = r
                .params
                .0
                .iter()
                .map(|(k, v)| format!("{k}={}", v.join(",")))
                .collect();
            let edge_label = if params.is_empty() {
                String::new()
            } else {
                format!(" [label={}]", quote(&params.join("\\n")))
            };
            out.push_str(&format!(
                "  {} -> {}{edge_label};\n",
                quote(f.name.as_str()),
                quote(r.filter.as_str())
            ));
        }
    }
    out.push_str("}\n");
    out
}

/// `name\nchain ipv4 (priority -700)\n3 rules: 2 out, 1 in, 0 inout`.
fn label(f: &Filter) -> String {
    let mut counts = [0usize; 3];
    for entry in &f.entries {
        if let Entry::Rule(r) = entry {
            counts[match r.direction {
                Direction::Out => 0,
                Direction::In => 1,
                Direction::InOut => 2,
            }] += 1;
        }
    }
    let total: usize = counts.iter().sum();
    let refs = f
        .entries
        .iter()
        .filter(|e| matches!(e, Entry::Ref(_)))
        .count();
    format!(
        "{}\\nchain {} (priority {})\\n{total} rules: {} out, {} in, {} inout\\n{refs} references",
        f.name.as_str(),
        f.chain.as_str(),
        f.priority,
        counts[0],
        counts[1],
        counts[2]
    )
}

/// A DOT string literal (`\n` escapes pass through as DOT line breaks).
fn quote(text: &str) -> String {
    let mut out = String::from("\"");
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' if chars.peek() == Some(&'n') => out.push('\\'),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The SVG graphviz's `dot` draws from `text` (no shell: an argument
/// vector, the graph on stdin).
fn svg(text: &str) -> Result<String> {
    let mut child = match Command::new("dot")
        .arg("-Tsvg")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "--format svg needs graphviz's `dot` command, which is not installed (on Debian: \
             apt-get install graphviz); --format dot prints the graph without it"
        ),
        Err(e) => return Err(e).context("cannot start graphviz's `dot`"),
    };
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(text.as_bytes())
            .context("writing the graph to `dot`")?;
    }
    let out = child.wait_with_output().context("waiting for `dot`")?;
    if !out.status.success() {
        bail!(
            "graphviz's `dot -Tsvg` failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    String::from_utf8(out.stdout).context("`dot` printed SVG that is not UTF-8")
}
