//! A running network's firewall on either backend: put in, taken out,
//! re-added after a flush, and moved from one backend to the other
//! make-before-break (the new backend's rules go in before the old ones
//! come out, so the network is never without its rules).

use tracing::{info, warn};

use crate::coexist::{self, Target};
use crate::error::LifecycleError;
use crate::firewall::{self, Backend};
use crate::lifecycle::Driver;
use crate::network::Network;
use crate::nft::{self, Ruleset};
use crate::store::RunState;

impl Driver<'_> {
    fn ruleset(&self) -> Result<Ruleset, LifecycleError> {
        let out = self.runner.run(&nft::listing_command())?;
        Ruleset::parse(&out.stdout).map_err(|e| LifecycleError::Nft(e.to_string()))
    }

    /// Puts `net`'s rules into `backend`. On nftables: one transaction for
    /// our table, then the accepts for the iptables `filter` chains that
    /// exist. On error, what was done is for the caller to take back
    /// (with [`Driver::remove_firewall`] and the targets of `coexistence`
    /// it was given, which this fills as it goes).
    pub(crate) fn apply_firewall(
        &self,
        net: &Network,
        backend: Backend,
        coexistence: &mut Vec<Target>,
    ) -> Result<(), LifecycleError> {
        self.put_firewall(net, backend, coexistence, false)
    }

    /// [`Driver::apply_firewall`]; with `again`, the iptables accepts
    /// already there (`--check`) are not inserted a second time.
    fn put_firewall(
        &self,
        net: &Network,
        backend: Backend,
        coexistence: &mut Vec<Target>,
        again: bool,
    ) -> Result<(), LifecycleError> {
        match backend {
            Backend::Iptables => self.apply_rules(net),
            Backend::Nftables => {
                let started = std::time::Instant::now();
                self.runner
                    .run(&nft::transaction(&nft::start_batch(net)?))?;
                let listing = self.ruleset()?;
                let mut present = |accept: &firewall::BuiltinAccept| {
                    again
                        && self
                            .runner
                            .run(&accept.check)
                            .is_ok_and(|out| out.success())
                };
                let targets = coexist::targets(&listing);
                let (batches, used) = coexist::add_missing_commands(net, &targets, &mut present)?;
                // Recorded before running: a batch that fails half-way is
                // taken back by the error-tolerant removal.
                coexistence.extend(used);
                for batch in &batches {
                    self.runner.run(batch)?;
                }
                warn_about_other_drops(net, &listing);
                if net.ips_v4().any(crate::IpDef::has_dhcp) {
                    info!(network = %net.name, "{}", nft::CHECKSUM_NOTE);
                }
                info!(
                    network = %net.name,
                    iptables_chains = ?coexistence,
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "network firewall applied (nftables table {} {})",
                    nft::FAMILY,
                    nft::TABLE
                );
                Ok(())
            }
        }
    }

    /// Takes `net`'s rules out of `backend` (and, on nftables, its accepts
    /// out of the `coexistence` chains); returns what failed.
    pub(crate) fn remove_firewall(
        &self,
        net: &Network,
        backend: Backend,
        coexistence: &[Target],
    ) -> Vec<String> {
        match backend {
            Backend::Iptables => {
                let mut failures = self.remove_rules(net);
                failures.extend(self.release_private_chains(net));
                failures
            }
            Backend::Nftables => {
                let mut failures = Vec::new();
                match coexist::remove_commands(net, coexistence) {
                    Ok(cmds) => failures.extend(
                        cmds.iter()
                            .filter_map(|c| self.runner.run(c).err().map(|e| e.to_string())),
                    ),
                    Err(e) => failures.push(e.to_string()),
                }
                if let Err(e) = self.remove_nft_table_part(net) {
                    failures.push(e.to_string());
                }
                failures
            }
        }
    }

    fn remove_nft_table_part(&self, net: &Network) -> Result<(), LifecycleError> {
        let Some(bridge) = &net.bridge.name else {
            return Ok(());
        };
        let listing = self.ruleset()?;
        let ours: Vec<String> = listing
            .chains_of(nft::FAMILY, nft::TABLE)
            .map(|c| c.name.clone())
            .collect();
        let batch = nft::stop_batch(bridge, &ours);
        if !batch.is_empty() {
            self.runner.run(&nft::transaction(&batch))?;
        }
        Ok(())
    }

    /// Re-adds `state`'s rules on `self.backend`: in place when that is
    /// the backend that holds them (after a flush), else moved
    /// make-before-break. Returns the run state to save.
    pub(crate) fn refresh_firewall(&self, state: &RunState) -> Result<RunState, LifecycleError> {
        let net = &state.network;
        let (from, to) = (state.firewall, self.backend);
        let mut next = state.clone();
        if from == to && to == Backend::Iptables {
            self.remove_rules(net);
            self.apply_rules(net)?;
            return Ok(next);
        }
        let mut coexistence = Vec::new();
        if let Err(e) = self.put_firewall(net, to, &mut coexistence, from == to) {
            if from != to {
                // The old backend's rules are still in place.
                let undo = self.remove_firewall(net, to, &coexistence);
                if !undo.is_empty() {
                    return Err(LifecycleError::Rollback {
                        error: Box::new(e),
                        undo,
                    });
                }
            }
            return Err(e);
        }
        // In place (`from == to`), our table's chains were flushed and
        // refilled in one transaction and only missing accepts inserted.
        if from != to {
            let failures = self.remove_firewall(net, from, &state.coexistence);
            for failure in &failures {
                warn!(network = %net.name, from = from.as_str(), "{failure}");
            }
            info!(network = %net.name, from = from.as_str(), to = to.as_str(), "network firewall moved");
        }
        next.firewall = to;
        next.coexistence = coexistence;
        Ok(next)
    }
}

/// Whether `backend` holds rules of `state`'s network (for the iptables
/// private chains, which only iptables networks keep in use).
pub(crate) fn uses_iptables(state: &RunState) -> bool {
    state.firewall == Backend::Iptables && firewall::has_rules(&state.network)
}

/// Logs each base chain of another table that would drop `net`'s DHCP,
/// DNS or forwarded traffic and that nothing of ours overrules (a drop in
/// an iptables-nft `filter` chain is handled by our accepts).
fn warn_about_other_drops(net: &Network, listing: &Ruleset) {
    let Some(subject) = crate::doctor::Subject::of(net, None) else {
        return;
    };
    for problem in crate::doctor::examine(listing, &[subject]).problems {
        warn!(network = %net.name, "{problem} (see `nwfilter doctor`)");
    }
}
