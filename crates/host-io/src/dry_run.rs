//! A runner that prints what would run instead of running it.

use std::cell::RefCell;
use std::io::Write;

use crate::command::{Command, Tool};
use crate::quote::shell_line;
use crate::run::{Output, RunError, Runner};

/// Writes each command as a shell-readable line (restore input as a
/// here-document) instead of running it. Reads (`*-save`) see empty tables,
/// or the real ones with [`DryRun::reading_through`]: reading changes
/// nothing, and the plan printed is then the one that would run.
pub struct DryRun<W: Write> {
    out: RefCell<W>,
    reads: Option<Box<dyn Runner>>,
}

impl<W: Write> std::fmt::Debug for DryRun<W> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DryRun")
            .field("reading_through", &self.reads.is_some())
            .finish()
    }
}

impl<W: Write> DryRun<W> {
    pub fn new(out: W) -> DryRun<W> {
        DryRun {
            out: RefCell::new(out),
            reads: None,
        }
    }

    /// Runs the table readers through `reads`; prints everything else.
    pub fn reading_through(mut self, reads: impl Runner + 'static) -> DryRun<W> {
        self.reads = Some(Box::new(reads));
        self
    }

    pub fn into_inner(self) -> W {
        self.out.into_inner()
    }
}

fn is_read(tool: Tool) -> bool {
    matches!(
        tool,
        Tool::EbtablesSave | Tool::IptablesSave | Tool::Ip6tablesSave
    )
}

impl<W: Write> Runner for DryRun<W> {
    fn run(&self, cmd: &Command) -> Result<Output, RunError> {
        if let (Some(reads), true) = (&self.reads, is_read(cmd.tool)) {
            return reads.run(cmd);
        }
        let program = cmd.tool.program();
        let spawn_error = |source| RunError::Spawn {
            program: program.to_string(),
            source,
        };
        let mut out = self.out.borrow_mut();
        let line = shell_line(program, &cmd.args);
        match &cmd.stdin {
            Some(input) => write!(out, "{line} <<'EOF'\n{input}EOF\n"),
            None => writeln!(out, "{line}"),
        }
        .map_err(spawn_error)?;
        Ok(Output {
            status: Some(0),
            ..Output::default()
        })
    }
}
