//! Golden files per stage: for each binding in fixtures/golden/cases, the
//! chain IR (JSON) and the rendered commands (one argument per line, as
//! libvirt's own `.args` goldens), each its own snapshot under
//! fixtures/golden/snapshots. Referenced filters come from
//! fixtures/golden/filters, then the built-in set.

use backend_xtables::render::{commands, ruleset};
use host_io::shell_quote;
use netns_lab::{golden_case, golden_dir};

/// Each command as `tool \` then one argument per line.
fn args_text(rs: &backend_xtables::PortRuleset) -> String {
    let mut text = String::new();
    for c in commands(rs).unwrap() {
        let words: Vec<String> = std::iter::once(c.tool.program().to_owned())
            .chain(c.args.iter().map(|a| shell_quote(a)))
            .collect();
        text.push_str(&words.join(" \\\n"));
        text.push('\n');
    }
    text
}

#[test]
fn golden_ir_and_commands() {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(golden_dir().join("snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings.set_omit_expression(true);
    settings.bind(|| {
        insta::glob!("../../../fixtures/golden/cases", "*.xml", |path| {
            let program = golden_case(path);
            insta::assert_json_snapshot!("ir", program);
            let rs = ruleset(&program).unwrap();
            insta::assert_snapshot!("commands", args_text(&rs));
        });
    });
}
