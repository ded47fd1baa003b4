//! POSIX shell quoting for printing commands a user may paste.

/// `arg` as one POSIX shell word: unchanged when it has only characters
/// no shell treats specially, otherwise in single quotes (a `'` inside
/// becomes `'\''`).
pub fn shell_quote(arg: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c);
    if !arg.is_empty() && arg.chars().all(safe) {
        return arg.to_owned();
    }
    format!("'{}'", arg.replace('\'', r"'\''"))
}

/// `program arg...`, each argument POSIX-shell-quoted where needed.
pub fn shell_line(program: &str, args: &[String]) -> String {
    std::iter::once(program.to_string())
        .chain(args.iter().map(|a| shell_quote(a)))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::{shell_line, shell_quote};

    #[test]
    fn plain_words_stay_bare() {
        assert_eq!(shell_quote("--mac-source"), "--mac-source");
        assert_eq!(shell_quote("10.1.2.3/32"), "10.1.2.3/32");
        assert_eq!(shell_quote("01:02:03:04:05:06"), "01:02:03:04:05:06");
    }

    #[test]
    fn special_characters_are_single_quoted() {
        assert_eq!(shell_quote("!"), "'!'");
        assert_eq!(shell_quote(""), "''");
        assert_eq!(shell_quote("udp rule"), "'udp rule'");
        assert_eq!(shell_quote("$(ls);`x`"), "'$(ls);`x`'");
    }

    #[test]
    fn single_quotes_are_closed_escaped_and_reopened() {
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote("'"), r"''\'''");
    }

    #[test]
    fn a_line_quotes_only_the_arguments_that_need_it() {
        let args = vec!["-A".to_string(), "X".into(), "a b".into()];
        assert_eq!(shell_line("iptables", &args), "iptables -A X 'a b'");
    }
}
