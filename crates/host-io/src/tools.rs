//! Which programs implement each [`Tool`], and whether they are installed.
//!
//! Debian installs the nft-based `iptables-nft`/`ebtables-nft` behind the
//! plain names (`update-alternatives`); `iptables-legacy` is still shipped
//! and works where the kernel has the legacy xtables modules. Kernels may
//! have legacy `iptables` but no legacy `ebtables` `nat` table (6.x builds
//! often do), so the flavour is chosen per tool family.

use std::path::{Path, PathBuf};

use crate::command::Tool;

/// How a tool family is spelled on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Flavour {
    /// The plain name (`iptables-restore`): whatever the system's
    /// alternatives point to.
    #[default]
    System,
    /// The nf_tables based variant (`iptables-nft-restore`).
    Nft,
    /// The legacy xtables variant (`iptables-legacy-restore`).
    Legacy,
}

impl Flavour {
    /// Parses `system`, `nft` or `legacy` (command-line and config spelling).
    pub fn parse(text: &str) -> Option<Flavour> {
        match text {
            "system" => Some(Flavour::System),
            "nft" => Some(Flavour::Nft),
            "legacy" => Some(Flavour::Legacy),
            _ => None,
        }
    }

    fn infix(self) -> &'static str {
        match self {
            Flavour::System => "",
            Flavour::Nft => "-nft",
            Flavour::Legacy => "-legacy",
        }
    }
}

/// The flavour of each tool family; maps a [`Tool`] to a program name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Toolset {
    /// For `iptables*` and `ip6tables*`.
    pub ip: Flavour,
    /// For `ebtables*`.
    pub bridge: Flavour,
}

/// A program that is not installed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{program} not found: install the {package} package")]
pub struct MissingTool {
    pub program: String,
    pub package: &'static str,
}

impl Toolset {
    /// The program to start for `tool`, e.g. `ip6tables-legacy-restore`.
    pub fn program(&self, tool: Tool) -> String {
        let base = tool.program();
        // nft has no legacy/nft variants.
        if tool == Tool::Nft {
            return base.to_string();
        }
        let flavour = if is_bridge(tool) {
            self.bridge
        } else {
            self.ip
        };
        // "iptables-restore" -> "iptables" + infix + "-restore"
        match base.split_once('-') {
            Some((family, verb)) => format!("{family}{}-{verb}", flavour.infix()),
            None => format!("{base}{}", flavour.infix()),
        }
    }

    /// Checks that every program the applier starts is on `PATH`, so a
    /// missing package is reported before anything is changed.
    pub fn check_installed(&self) -> Result<(), MissingTool> {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
        for tool in APPLY_TOOLS {
            let program = self.program(tool);
            if !dirs.iter().any(|dir| is_executable(&dir.join(&program))) {
                return Err(missing(tool, program));
            }
        }
        Ok(())
    }
}

/// The tools the applier needs.
const APPLY_TOOLS: [Tool; 6] = [
    Tool::EbtablesRestore,
    Tool::EbtablesSave,
    Tool::IptablesRestore,
    Tool::IptablesSave,
    Tool::Ip6tablesRestore,
    Tool::Ip6tablesSave,
];

fn is_bridge(tool: Tool) -> bool {
    matches!(
        tool,
        Tool::Ebtables | Tool::EbtablesRestore | Tool::EbtablesSave
    )
}

/// The Debian package that ships `tool`.
pub fn package_of(tool: Tool) -> &'static str {
    if tool == Tool::Nft {
        "nftables"
    } else if is_bridge(tool) {
        "ebtables"
    } else {
        "iptables"
    }
}

/// The error for a program that could not be started because it does not exist.
pub fn missing(tool: Tool, program: String) -> MissingTool {
    MissingTool {
        program,
        package: package_of(tool),
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_names_follow_debian_spelling() {
        let system = Toolset::default();
        assert_eq!(system.program(Tool::EbtablesRestore), "ebtables-restore");
        assert_eq!(system.program(Tool::Iptables), "iptables");
        let legacy = Toolset {
            ip: Flavour::Legacy,
            bridge: Flavour::Nft,
        };
        assert_eq!(
            legacy.program(Tool::Ip6tablesRestore),
            "ip6tables-legacy-restore"
        );
        assert_eq!(legacy.program(Tool::IptablesSave), "iptables-legacy-save");
        assert_eq!(legacy.program(Tool::EbtablesSave), "ebtables-nft-save");
        assert_eq!(legacy.program(Tool::Ebtables), "ebtables-nft");
    }

    #[test]
    fn missing_tool_names_program_and_package() {
        let err = missing(Tool::EbtablesRestore, "ebtables-restore".into());
        assert_eq!(
            err.to_string(),
            "ebtables-restore not found: install the ebtables package"
        );
        assert_eq!(package_of(Tool::Ip6tablesSave), "iptables");
    }

    #[test]
    fn flavour_parses_its_names() {
        assert_eq!(Flavour::parse("legacy"), Some(Flavour::Legacy));
        assert_eq!(Flavour::parse("nft"), Some(Flavour::Nft));
        assert_eq!(Flavour::parse("system"), Some(Flavour::System));
        assert_eq!(Flavour::parse("iptables"), None);
    }
}
