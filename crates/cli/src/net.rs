//! Virtual-network verbs: `net-render`, the `net-*` life cycle (through
//! the daemon when one runs, else straight on the directories: the same
//! `NetOp` either way), and the `<network>` branch of `format`. Thin: read the file, call `netdrv`, return the text to print.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use host_io::Command;
use netdrv::firewall::{add_commands, setup_commands, ExistingChains};
use netdrv::Network;
use nwfilter_driver::engine::error_chain;
use nwfilter_service::net_ops::NetOp;
use nwfilter_service::{Op, Reply};

use crate::connection::Connection;

/// Print the firewall commands that start a virtual network.
#[derive(Debug, clap::Args)]
#[command(
    about = "Print the firewall commands that start a <network>'s firewall",
    long_about = "Print the iptables/ip6tables commands that start a virtual network's \
        firewall, exactly as libvirt 9.0 issues them: first the host-wide LIBVIRT_INP, \
        LIBVIRT_OUT, LIBVIRT_FWO, LIBVIRT_FWI, LIBVIRT_FWX and LIBVIRT_PRT chains and their \
        hooks (as on a host where they do not exist yet), then the network's rules: DHCP, DNS \
        and TFTP to the host, isolation, and the forwarding or masquerading of its mode. \
        One command per line, quoted for a POSIX shell. Nothing is applied; no root needed.\n\n\
        With --backend nftables: the `nft -f` script of the one transaction that starts the \
        network in our table `inet nwfilter-net` (net-start applies the same commands as \
        JSON).\n\n\
        An invalid document prints nothing on stdout; the error on stderr names the file, \
        line:column, element, attribute and value, and the exit status is 1.\n\n\
        Example:\n  nwfilter net-render /etc/libvirt/qemu/networks/default.xml"
)]
pub struct RenderArgs {
    /// `xtables` (default): iptables/ip6tables commands; `nftables`: the
    /// `nft -f` script of our table's transaction.
    #[arg(long, value_parser = crate::backend_arg::parser())]
    pub backend: Option<nwfilter_driver::Backend>,
    /// The <network> XML document to read.
    pub file: PathBuf,
}

/// Reads and validates a `<network>` file; errors start with the path.
pub fn read_network(path: &Path) -> Result<Network> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    parse_text(path, &text)
}

fn parse_text(path: &Path, text: &str) -> Result<Network> {
    netdrv::parse_network(text).map_err(|e| anyhow!("{}: {e}", path.display()))
}

/// `nwfilter format` for a `<network>` document already read from `path`.
pub fn format_text(path: &Path, text: &str) -> Result<String> {
    Ok(netdrv::format_network(&parse_text(path, text)?))
}

/// `nwfilter net-render FILE`: the commands that start the network's
/// firewall on a host where none of libvirt's private chains exist yet
/// (chain set-up, then the network's rules), one per line, shell-quoted.
pub fn render(args: &RenderArgs) -> Result<String> {
    if args.backend == Some(nwfilter_driver::Backend::Nftables) {
        return render_nft(&args.file);
    }
    render_file(&args.file)
}

fn render_nft(path: &Path) -> Result<String> {
    let net = read_network(path)?;
    if let Some(bridge) = &net.bridge.name {
        if !netdrv::nft::render::printable(bridge) {
            anyhow::bail!(
                "{}: bridge name '{bridge}' cannot be written as an nft chain name in \
                 `nft -f` text (only letters, digits, '_', '.' and '-'); net-start applies \
                 JSON, where it can",
                path.display()
            );
        }
    }
    let cmds = netdrv::nft::start_batch(&net).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    Ok(netdrv::nft::script(&cmds))
}

fn render_file(path: &Path) -> Result<String> {
    let net = read_network(path)?;
    let rules = add_commands(&net).map_err(|e| anyhow!("{}: {e}", path.display()))?;
    let mut out = String::new();
    for cmd in setup_commands(&ExistingChains::none()).iter().chain(&rules) {
        out.push_str(&shell_line(cmd)?);
        out.push('\n');
    }
    Ok(out)
}

/// One command as a POSIX shell line (for reading or pasting; nothing
/// here ever runs through a shell).
fn shell_line(cmd: &Command) -> Result<String> {
    let words = std::iter::once(cmd.tool.program()).chain(cmd.args.iter().map(String::as_str));
    shlex::try_join(words).map_err(|e| anyhow!("cannot quote {:?}: {e}", cmd.args))
}

/// The network life-cycle verbs (`virsh net-*`).
#[derive(Debug, clap::Subcommand)]
pub enum NetCommand {
    /// Define (or redefine) a virtual network from a <network> document.
    ///
    /// A new network gets a UUID and, without <bridge name>, a free virbrN.
    /// Stored as CONFIG-DIR/networks/NAME.xml; a running network keeps its
    /// old definition until restarted.
    #[command(name = "net-define")]
    Define(FileArgs),
    /// Remove a network's definition (it must not be running).
    #[command(name = "net-undefine")]
    Undefine(NameArgs),
    /// Start a defined network: bridge, addresses, firewall, dnsmasq.
    ///
    /// Needs root. Works in the current network namespace. Refused, with
    /// nothing changed, when the network runs already, its bridge name is
    /// taken or a subnet overlaps a route of this host.
    #[command(name = "net-start")]
    Start(StartArgs),
    /// Stop a running network: dnsmasq, firewall rules and bridge go.
    #[command(name = "net-destroy")]
    Destroy(NameArgs),
    /// List networks (running ones only, unless --all).
    #[command(name = "net-list")]
    List(ListArgs),
    /// Print a network's definition.
    #[command(name = "net-dumpxml")]
    Dumpxml(NameArgs),
    /// Mark a network to be started by `net-autostart --start-all` (or the
    /// daemon at boot); --disable unmarks it.
    #[command(name = "net-autostart")]
    Autostart(AutostartArgs),
}

#[derive(Debug, clap::Args)]
pub struct FileArgs {
    /// The <network> XML document to read.
    pub file: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct NameArgs {
    /// The network's name.
    pub name: String,
}

#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// The network's name.
    pub name: String,
    /// The firewall of the network: xtables (libvirt's iptables rules) or
    /// nftables (a table of ours); as for filters.
    #[command(flatten)]
    pub backend: crate::backend_arg::BackendArg,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Also list networks that are defined but not running.
    #[arg(long)]
    pub all: bool,
    /// Print JSON (name, uuid, bridge, active, autostart) for scripts.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").required(true).args(["name", "start_all"])))]
pub struct AutostartArgs {
    /// The network's name.
    pub name: Option<String>,
    /// Unmark instead of mark.
    #[arg(long, requires = "name")]
    pub disable: bool,
    /// Start every marked network that is not running (what the daemon
    /// does at boot).
    #[arg(long)]
    pub start_all: bool,
}

/// Runs one `net-*` verb on `CONFIG/networks` and `STATE/networks`.
/// Runs a network verb: through the daemon when the connection is one,
/// else on the directories; both execute the same `NetOp`.
pub fn run(conn: &mut Connection, cmd: &NetCommand) -> Result<String> {
    let op = match cmd {
        NetCommand::Define(args) => NetOp::Define {
            xml: std::fs::read_to_string(&args.file)
                .with_context(|| format!("cannot read {}", args.file.display()))?,
        },
        NetCommand::Undefine(args) => NetOp::Undefine {
            name: args.name.clone(),
        },
        NetCommand::Start(args) => NetOp::Start {
            name: args.name.clone(),
        },
        NetCommand::Destroy(args) => NetOp::Destroy {
            name: args.name.clone(),
        },
        NetCommand::List(args) => NetOp::List {
            all: args.all,
            json: args.json,
        },
        NetCommand::Dumpxml(args) => NetOp::Dumpxml {
            name: args.name.clone(),
        },
        NetCommand::Autostart(args) if args.start_all => NetOp::StartAll,
        NetCommand::Autostart(args) => NetOp::Autostart {
            name: args
                .name
                .clone()
                .expect("clap requires a name without --start-all"),
            disable: args.disable,
        },
    };
    let define_from = match cmd {
        NetCommand::Define(args) => Some(args.file.display().to_string()),
        _ => None,
    };
    let reply = conn.call(Op::Net { net: op });
    let reply = match (reply, &define_from) {
        (Err(e), Some(file)) => return Err(anyhow!("{file}: {}", error_chain(e.as_ref()))),
        (reply, _) => reply?,
    };
    let Reply::Text { text } = reply else {
        anyhow::bail!("unexpected reply to a network verb");
    };
    Ok(match define_from {
        Some(file) => format!("{text} from {file}\n"),
        None if text.ends_with('\n') => text,
        None => format!("{text}\n"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET: &str = "<network><name>t</name><bridge name='virbr7'/><forward/>
        <ip address='10.7.0.1' prefix='24'/></network>";

    #[test]
    fn render_starts_with_chain_setup_and_quotes_the_bang() {
        let dir = std::env::temp_dir().join(format!("netdrv-cli-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("t.xml");
        std::fs::write(&file, NET).unwrap();
        let out = render_file(&file).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[0],
            "iptables -w --table filter --new-chain LIBVIRT_INP"
        );
        let masq = lines
            .iter()
            .find(|l| l.contains("MASQUERADE") && !l.contains("-p "))
            .unwrap();
        assert_eq!(
            *masq,
            "iptables -w --table nat --insert LIBVIRT_PRT --source 10.7.0.0/24 '!' --destination 10.7.0.0/24 --jump MASQUERADE"
        );
    }

    #[test]
    fn errors_name_the_file_and_the_place() {
        let err = parse_text(
            Path::new("bad.xml"),
            "<network>\n<name>a/b</name></network>",
        )
        .unwrap_err()
        .to_string();
        assert!(err.starts_with("bad.xml: 2:1: <name>"), "{err}");
    }
}
