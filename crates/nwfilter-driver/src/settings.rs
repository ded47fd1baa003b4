//! The settings file, `CONFIG_DIR/nwfilter.conf`: `key = value` lines,
//! `#` comments and blank lines. The daemon and the CLI's embedded mode
//! read it; a command-line option beats it.
//!
//! Keys today: `backend` (`xtables` or `nftables`). An unknown key or a
//! bad value is an error naming the file, the line and the value, rather
//! than a setting silently ignored (a typo in `backend` would otherwise
//! leave guests on the backend the admin meant to leave).

use std::path::{Path, PathBuf};

use crate::backend::Backend;

/// The settings file's name inside the config directory.
pub const SETTINGS_FILE: &str = "nwfilter.conf";

/// What the settings file says (absent keys: `None`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Settings {
    pub backend: Option<Backend>,
}

/// Why the settings file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}:{line}: {reason}", path.display())]
    Line {
        path: PathBuf,
        /// 1-based.
        line: usize,
        reason: String,
    },
}

impl Settings {
    /// Reads `config_dir/nwfilter.conf`; no file means no settings.
    pub fn load(config_dir: &Path) -> Result<Settings, SettingsError> {
        let path = config_dir.join(SETTINGS_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Settings::parse(&text, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Settings::default()),
            Err(source) => Err(SettingsError::Read { path, source }),
        }
    }

    /// Parses the text of the file at `path` (named in errors).
    pub fn parse(text: &str, path: &Path) -> Result<Settings, SettingsError> {
        let mut settings = Settings::default();
        for (i, raw) in text.lines().enumerate() {
            let bad = |reason: String| SettingsError::Line {
                path: path.to_owned(),
                line: i + 1,
                reason,
            };
            let line = raw.split_once('#').map_or(raw, |(before, _)| before).trim();
            if line.is_empty() {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(bad(format!("expected `key = value`, found '{line}'")));
            };
            let (key, value) = (key.trim(), value.trim());
            match key {
                "backend" => {
                    let backend = value.parse::<Backend>().map_err(|e| bad(e.to_string()))?;
                    settings.backend = Some(backend);
                }
                _ => return Err(bad(format!("unknown setting '{key}' (known: backend)"))),
            }
        }
        Ok(settings)
    }
}

/// The backend to use: the command line's, else the settings file's in
/// `config_dir`, else xtables (what every earlier version used).
pub fn choose_backend(
    command_line: Option<Backend>,
    config_dir: &Path,
) -> Result<Backend, SettingsError> {
    if let Some(backend) = command_line {
        return Ok(backend);
    }
    Ok(Settings::load(config_dir)?.backend.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Settings, String> {
        Settings::parse(text, Path::new("/etc/nwfilter/nwfilter.conf")).map_err(|e| e.to_string())
    }

    #[test]
    fn backend_line_with_comments_and_blanks() {
        let s = parse("# firewall\n\n  backend = nftables   # new\n").unwrap();
        assert_eq!(s.backend, Some(Backend::Nftables));
        assert_eq!(parse("").unwrap(), Settings::default());
    }

    #[test]
    fn errors_name_file_line_and_value() {
        let e = parse("\nbackend = iptables\n").unwrap_err();
        assert_eq!(
            e,
            "/etc/nwfilter/nwfilter.conf:2: unknown firewall backend 'iptables' \
             (known: xtables, nftables)"
        );
        let e = parse("backends = nftables").unwrap_err();
        assert!(e.contains(":1: unknown setting 'backends'"), "{e}");
        let e = parse("backend nftables").unwrap_err();
        assert!(e.contains(":1: expected `key = value`"), "{e}");
    }

    #[test]
    fn command_line_beats_file_which_beats_default() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(choose_backend(None, dir.path()).unwrap(), Backend::Xtables);
        std::fs::write(dir.path().join(SETTINGS_FILE), "backend = nftables\n").unwrap();
        assert_eq!(choose_backend(None, dir.path()).unwrap(), Backend::Nftables);
        assert_eq!(
            choose_backend(Some(Backend::Xtables), dir.path()).unwrap(),
            Backend::Xtables
        );
    }
}
