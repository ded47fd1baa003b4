//! `nwfilter completions SHELL` and `nwfilter man`: shell completions and
//! man pages generated from the command-line definition itself, so they
//! never drift from the verbs and options.

use std::path::PathBuf;

use anyhow::Context;
use clap::CommandFactory;

use crate::Cli;

/// Print a completion script for SHELL.
#[derive(Debug, clap::Args)]
#[command(
    about = "Print a shell completion script",
    long_about = "Print a completion script for SHELL on stdout, generated from this \
        command's own definition.\n\n\
        Examples:\n  \
        nwfilter completions bash > /usr/share/bash-completion/completions/nwfilter\n  \
        nwfilter completions zsh > /usr/local/share/zsh/site-functions/_nwfilter\n  \
        nwfilter completions fish > ~/.config/fish/completions/nwfilter.fish"
)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Print or write the man pages.
#[derive(Debug, clap::Args)]
#[command(
    about = "Print the nwfilter(1) man page, or write one page per verb",
    long_about = "Print the nwfilter(1) man page (roff) on stdout, generated from this \
        command's own definition; with --dir, write nwfilter.1 and one \
        nwfilter-VERB.1 per verb into DIR instead.\n\n\
        Examples:\n  nwfilter man | man -l -\n  nwfilter man --dir /usr/local/share/man/man1"
)]
pub struct ManArgs {
    /// Write nwfilter.1 and nwfilter-VERB.1 into this directory.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub fn completions(args: &CompletionsArgs) -> anyhow::Result<String> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "nwfilter", &mut out);
    String::from_utf8(out).context("the completion script is not UTF-8")
}

pub fn man(args: &ManArgs) -> anyhow::Result<String> {
    let cmd = Cli::command();
    let Some(dir) = &args.dir else {
        return render_page("nwfilter", cmd);
    };
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut written = Vec::new();
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("nwfilter-{}", sub.get_name());
        written.push(write_page(dir, &name, sub.clone())?);
    }
    written.insert(0, write_page(dir, "nwfilter", cmd)?);
    Ok(written
        .iter()
        .map(|p| format!("{}\n", p.display()))
        .collect())
}

/// `title` is the page's name (`nwfilter-define`); clap knows a verb only
/// by its own name.
fn render_page(title: &str, cmd: clap::Command) -> anyhow::Result<String> {
    let mut out = Vec::new();
    clap_mangen::Man::new(cmd)
        .title(title.to_owned())
        .render(&mut out)
        .context("rendering the man page")?;
    String::from_utf8(out).context("the man page is not UTF-8")
}

fn write_page(dir: &std::path::Path, name: &str, cmd: clap::Command) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("{name}.1"));
    std::fs::write(&path, render_page(name, cmd)?)
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}
