//! `nwfilter doctor`: which base chains of which nftables tables (the
//! iptables-nft ones included) would drop a guest's DHCP, DNS or
//! forwarded traffic, and what the daemon does about it. Thin: list the
//! ruleset, collect the networks, let `netdrv::doctor` judge.

use std::path::Path;

use anyhow::{Context, Result};
use host_io::{ProcessRunner, Runner, Toolset};
use netdrv::doctor::{examine, render_text, Subject};
use netdrv::nft::Ruleset;

#[derive(Debug, clap::Args)]
#[command(
    about = "Find the firewall chains that would drop the networks' DHCP, DNS or forwarding",
    long_about = "Lists every base chain of every nftables table (iptables-nft's included) on \
        the hooks virtual networks and filters use, follows a guest's DHCP request, DNS query \
        and forwarded connection of each defined network through it, and names the rule or \
        policy that would drop them, with what the daemon does about it. In nftables a packet \
        must be accepted by every base chain on its hook: a drop in another program's table \
        cannot be overruled from ours. Reads `nft -j list ruleset` (root); changes nothing.\n\n\
        Examples:\n  nwfilter doctor\n  nwfilter doctor --json"
)]
pub struct Args {
    /// Print the report as JSON (networks, chains with their findings,
    /// problems) for scripts.
    #[arg(long)]
    pub json: bool,
}

/// The report on this network namespace's ruleset, for the networks
/// defined under `config`/`state` (running ones as they were started).
pub fn run(args: &Args, config: &Path, state: &Path) -> Result<String> {
    let runner = ProcessRunner::new(Toolset::default());
    let listing = runner
        .run(&netdrv::nft::listing_command())
        .context("cannot list the nftables ruleset (doctor needs nft and root)")?;
    let ruleset = Ruleset::parse(&listing.stdout)?;
    let store = nwfilter_service::net_ops::store(config, state);
    let mut subjects = Vec::new();
    for net in store.definitions()? {
        let subject = match store.run_state(net.name.as_str())? {
            Some(running) => Subject::of(&running.network, Some(running.firewall)),
            None => Subject::of(&net, None),
        };
        subjects.extend(subject);
    }
    let report = examine(&ruleset, &subjects);
    if args.json {
        return Ok(format!("{}\n", serde_json::to_string_pretty(&report)?));
    }
    Ok(render_text(&report))
}
