//! `nwfilter edit`: virsh's edit loop. The filter's XML goes to `$EDITOR`;
//! a changed copy is defined, which checks it first. When that fails the
//! error is shown and, as virsh does, the user is asked whether to edit
//! again (`y`) or give up (`n`, also at end of input); nothing changes
//! until a definition succeeds.

use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::{bail, Context};
use nwfilter_driver::engine::error_chain;

use crate::connection::{read_file, Connection};
use crate::objects::{define_checked, dumpxml, EditArgs, FilterArg};

pub fn edit(conn: &mut Connection, args: &EditArgs) -> anyhow::Result<String> {
    let filter = FilterArg {
        filter: args.filter.clone(),
    };
    let original = dumpxml(conn, &filter)?;
    let dir = tempfile::tempdir().context("creating a temporary directory")?;
    let path = dir
        .path()
        .join(format!("{}.xml", safe_file_stem(&args.filter)));
    std::fs::write(&path, &original).with_context(|| format!("writing {}", path.display()))?;
    let doc = path.display().to_string();
    loop {
        run_editor(&path)?;
        let edited = read_file(&path)?;
        if edited == original {
            return Ok(format!(
                "Network filter {} XML configuration not changed.\n",
                args.filter
            ));
        }
        match define_checked(conn, &doc, edited, false) {
            Ok(_) => {
                return Ok(format!(
                    "Network filter {} XML configuration edited.\n",
                    args.filter
                ))
            }
            Err(e) => {
                report(&format!("nwfilter: error: {}\n", error_chain(e.as_ref())))?;
                if !ask_again(&mut std::io::stdin().lock())? {
                    bail!("the edited filter was not defined; nothing changed");
                }
            }
        }
    }
}

/// The filter's name as a file name in the temporary directory (a UUID
/// or any name without `/` is kept; the name also tells the editor's user
/// what they are editing).
fn safe_file_stem(filter: &str) -> String {
    filter.replace(['/', '\0'], "_")
}

/// virsh's question, on stderr; answers are read from standard input.
/// `y` edits again, `n` (or end of input) gives up, anything else prints
/// the help and asks again.
fn ask_again(input: &mut dyn BufRead) -> anyhow::Result<bool> {
    loop {
        report("Failed. Try again? [y,n,?]: ")?;
        let mut answer = String::new();
        if input.read_line(&mut answer).context("reading the answer")? == 0 {
            report("\n")?;
            return Ok(false);
        }
        match answer.trim() {
            "y" | "Y" => return Ok(true),
            "n" | "N" => return Ok(false),
            _ => report("y - make changes to the edited file\nn - give up, nothing changes\n? - print this help\n")?,
        }
    }
}

fn report(text: &str) -> anyhow::Result<()> {
    let mut err = std::io::stderr().lock();
    err.write_all(text.as_bytes())
        .and_then(|()| err.flush())
        .context("writing to stderr")
}

/// Runs the editor as an argument vector: `$EDITOR` may carry options
/// (`code --wait`), split on whitespace; it never goes through a shell.
fn run_editor(path: &Path) -> anyhow::Result<()> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_y_n_end_of_input_and_help() {
        assert!(ask_again(&mut "y\n".as_bytes()).unwrap());
        assert!(!ask_again(&mut "n\n".as_bytes()).unwrap());
        assert!(!ask_again(&mut "".as_bytes()).unwrap());
        assert!(ask_again(&mut "?\nmaybe\ny\n".as_bytes()).unwrap());
    }
}
