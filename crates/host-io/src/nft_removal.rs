//! Removing a port's chains from an xtables-nft table by the kernel's
//! rule handles, in one nf_tables transaction of our own, without a tool.
//!
//! Why: `ebtables-restore` deletes a hook rule (`-D PREROUTING -i vnet7 -j
//! libvirt-I-vnet7`) by its specification: it fetches and decodes every
//! rule of the hook chain to find it, so a binding-delete beside 1000
//! ports cost 3.7× one beside a single port (issue 22). The kernel names
//! each rule by a handle; knowing the handles of the hook chains' jumps,
//! a removal is a few netlink messages whatever the number of ports.
//!
//! How it stays exact:
//! - The handles are read by a dump of the hook chain, at a generation
//!   (the kernel's ruleset version, which every commit raises) read
//!   before and after it, and the batch names that generation
//!   (`NFNL_BATCH_GENID`): if anything committed since, the kernel refuses
//!   the whole batch (`ERESTART`) and the handles are read again.
//! - A removal deletes every chain its hook rules jump to ([`Removal::new`]
//!   accepts nothing else): a handle that named any other rule would leave
//!   the real jump in place, and the kernel refuses to delete a chain
//!   something still jumps to. Either way the transaction does nothing.
//! - Anything this cannot do (no such table: legacy tools; two rules
//!   jumping to one chain; no answer) is reported as not done: the caller
//!   commits its restore text instead, which then decides as before.

use std::collections::HashMap;
use std::io;

use crate::nfnl::{self, Attributes, Outgoing};
use crate::nft_socket::{errno, not_committed, Commit, NftSocket, NotCommitted, TableFamily};

const NFT_MSG_DELCHAIN: u16 = 5;
const NFT_MSG_NEWCHAIN: u16 = 3;
const NFT_MSG_NEWRULE: u16 = 6;
const NFT_MSG_GETRULE: u16 = 7;
const NFT_MSG_DELRULE: u16 = 8;
/// `NFTA_RULE_*`, `NFTA_CHAIN_*`.
const RULE_TABLE: u16 = 1;
const RULE_CHAIN: u16 = 2;
const RULE_HANDLE: u16 = 3;
const RULE_EXPRESSIONS: u16 = 4;
const CHAIN_TABLE: u16 = 1;
const CHAIN_NAME: u16 = 3;
/// `NFTA_LIST_ELEM`, `NFTA_EXPR_NAME`/`_DATA`, `NFTA_IMMEDIATE_DATA`,
/// `NFTA_DATA_VERDICT`, `NFTA_VERDICT_CHAIN`.
const LIST_ELEM: u16 = 1;
const EXPR_NAME: u16 = 1;
const EXPR_DATA: u16 = 2;
const IMMEDIATE_DATA: u16 = 2;
const DATA_VERDICT: u16 = 2;
const VERDICT_CHAIN: u16 = 2;

/// One step of a [`Removal`], as the restore tool's `-D`, `-F` and `-X`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemovalStep {
    /// Deletes the rule of `chain` that jumps or goes to `target`.
    Unhook { chain: String, target: String },
    /// Deletes every rule of the chain.
    Flush(String),
    /// Deletes the chain (empty and unreferenced by then).
    DeleteChain(String),
}

/// Deletions in one table, committed together or not at all.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removal {
    family: TableFamily,
    table: String,
    steps: Vec<RemovalStep>,
}

impl Removal {
    /// The removal of `steps`, in order; `None` unless every unhooked
    /// target is deleted by a later step (the kernel's check that a handle
    /// named the right rule, see the module's comment) and there is
    /// something to do.
    pub fn new(family: TableFamily, table: &str, steps: Vec<RemovalStep>) -> Option<Removal> {
        let checked = steps.iter().enumerate().all(|(i, step)| match step {
            RemovalStep::Unhook { target, .. } => steps[i..]
                .iter()
                .any(|later| matches!(later, RemovalStep::DeleteChain(c) if c == target)),
            _ => true,
        });
        (checked && !steps.is_empty()).then(|| Removal {
            family,
            table: table.to_owned(),
            steps,
        })
    }

    /// The key of one of its table's chains.
    fn key(&self, chain: &str) -> ChainKey {
        (self.family, self.table.clone(), chain.to_owned())
    }

    /// The chains holding rules to unhook, each once.
    fn hook_chains(&self) -> Vec<&str> {
        let mut chains: Vec<&str> = Vec::new();
        for step in &self.steps {
            if let RemovalStep::Unhook { chain, .. } = step {
                if !chains.contains(&chain.as_str()) {
                    chains.push(chain);
                }
            }
        }
        chains
    }
}

/// A chain of a table: (family, table, chain).
type ChainKey = (TableFamily, String, String);

/// One change the kernel announced, as far as the known handles care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Change {
    /// A rule was added; `target` is the chain it jumps or goes to.
    RuleAdded {
        chain: ChainKey,
        handle: u64,
        target: Option<String>,
    },
    RuleRemoved {
        chain: ChainKey,
        handle: u64,
    },
    /// A chain was added, removed or renamed: its known handles (if any)
    /// are dropped.
    ChainChanged(ChainKey),
}

impl Change {
    /// The change an nf_tables notice announces (a chain of any table:
    /// only the known hook chains' keys are ever looked up).
    pub(crate) fn of(message: &nfnl::Received<'_>) -> Option<Change> {
        let kind = message.nft_message()?;
        let family = TableFamily::of_nfproto(message.family()?)?;
        let attrs = message.attributes();
        let table = attrs.find(RULE_TABLE).and_then(nfnl::string)?.to_owned();
        match kind {
            NFT_MSG_NEWRULE | NFT_MSG_DELRULE => {
                let chain = attrs.find(RULE_CHAIN).and_then(nfnl::string)?.to_owned();
                let handle = attrs.find(RULE_HANDLE).and_then(nfnl::be64)?;
                let chain = (family, table, chain);
                Some(if kind == NFT_MSG_NEWRULE {
                    let target = jump_of(attrs).map(|(target, _)| target.to_owned());
                    Change::RuleAdded {
                        chain,
                        handle,
                        target,
                    }
                } else {
                    Change::RuleRemoved { chain, handle }
                })
            }
            NFT_MSG_NEWCHAIN | NFT_MSG_DELCHAIN => {
                let name = attrs.find(CHAIN_NAME).and_then(nfnl::string)?.to_owned();
                Some(Change::ChainChanged((family, table, name)))
            }
            _ => None,
        }
    }
}

/// One of our tools' transactions as the kernel announced it.
#[derive(Debug)]
pub(crate) struct Transaction {
    /// The generation it made.
    pub generation: u32,
    pub changes: Vec<Change>,
}

/// A hook chain's jumps: target chain → the rule's handle.
type Jumps = HashMap<String, Handle>;

/// Notes that the rule `handle` jumps to `target`.
fn add_jump(jumps: &mut Jumps, target: String, handle: u64) {
    jumps
        .entry(target)
        .and_modify(|h| *h = Handle::Several)
        .or_insert(Handle::One(handle));
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Handle {
    One(u64),
    /// More than one rule jumps there: which to delete is not ours to
    /// guess (the tool deletes the first that matches its words).
    Several,
}

/// The hook chains' handles as of one generation.
#[derive(Debug)]
struct Known {
    generation: u32,
    chains: HashMap<ChainKey, Jumps>,
}

/// Removals by rule handle: the socket our own transactions go through
/// (lent to the element changes, [`Remover::socket`]) and the hook
/// chains' handles it read.
#[derive(Debug)]
pub(crate) struct Remover {
    socket: NftSocket,
    known: Option<Known>,
    /// How many hook chains were read (dumped) so far.
    reads: usize,
}

impl Remover {
    /// Needs `CAP_NET_ADMIN` for anything but reading.
    pub fn open() -> io::Result<Remover> {
        Ok(Remover {
            socket: NftSocket::open()?,
            known: None,
            reads: 0,
        })
    }

    /// Its socket, for our other transactions (`nft_elements`).
    pub fn socket(&mut self) -> &mut NftSocket {
        &mut self.socket
    }

    /// Commits `removal` as one transaction; an error means nothing was
    /// changed (or, for a lost answer, that the restore text must decide).
    pub fn remove(&mut self, removal: &Removal) -> Result<(), NotCommitted> {
        // A generation moved on between reading and committing: once more.
        for _ in 0..3 {
            let generation = self.socket.generation().map_err(not_committed)?;
            if self.known.as_ref().map(|k| k.generation) != Some(generation) {
                self.known = Some(Known {
                    generation,
                    chains: HashMap::new(),
                });
            }
            let read = self.read_hooks(removal, generation)?;
            if read == Read::Moved {
                continue;
            }
            let batch = match self.batch(removal, generation) {
                Ok(batch) => batch,
                // Known from earlier, not read now: a jump the handles
                // did not follow (a renamed target); read them now.
                Err(_) if read == Read::Kept => {
                    self.forget_hooks(removal);
                    continue;
                }
                Err(why) => return Err(why),
            };
            match self.socket.commit(batch, removal.steps.len()) {
                Ok(()) => {
                    self.committed(removal, generation);
                    return Ok(());
                }
                Err(Commit::Stale) => self.known = None,
                Err(Commit::Failed(why)) => {
                    self.known = None;
                    return Err(why);
                }
            }
        }
        Err(not_committed("the tables kept changing while read"))
    }

    /// Reads the hook chains the known handles lack.
    fn read_hooks(&mut self, removal: &Removal, generation: u32) -> Result<Read, NotCommitted> {
        let mut read = false;
        for chain in removal.hook_chains() {
            let key = removal.key(chain);
            if self
                .known
                .as_ref()
                .is_some_and(|k| k.chains.contains_key(&key))
            {
                continue;
            }
            let jumps = self
                .jumps(removal.family, &removal.table, chain)
                .map_err(|e| not_committed(format!("reading {chain}: {e}")))?;
            if let Some(known) = &mut self.known {
                known.chains.insert(key, jumps);
            }
            self.reads += 1;
            read = true;
        }
        Ok(if !read {
            Read::Kept
        } else if self.socket.generation().map_err(not_committed)? == generation {
            Read::Now
        } else {
            Read::Moved
        })
    }

    /// Drops the known handles of the removal's hook chains.
    fn forget_hooks(&mut self, removal: &Removal) {
        if let Some(known) = &mut self.known {
            for chain in removal.hook_chains() {
                known.chains.remove(&removal.key(chain));
            }
        }
    }

    /// The batch: begin (naming the generation), the steps, end.
    fn batch(&mut self, removal: &Removal, generation: u32) -> Result<Outgoing, NotCommitted> {
        let nft = |msg: u16| (nfnl::SUBSYS_NFTABLES << 8) | msg;
        let family = removal.family.nfproto();
        let table = removal.table.as_str();
        let mut out = Outgoing::default();
        self.socket.begin_batch(&mut out, Some(generation));
        let ask = nfnl::F_REQUEST | nfnl::F_ACK;
        for step in &removal.steps {
            let seq = self.socket.next_seq();
            match step {
                RemovalStep::Unhook { chain, target } => {
                    let handle = self.handle(removal, chain, target)?;
                    out.message(nft(NFT_MSG_DELRULE), ask, seq, family, 0);
                    out.string(RULE_TABLE, table);
                    out.string(RULE_CHAIN, chain);
                    out.attribute(RULE_HANDLE, &handle.to_be_bytes());
                }
                // A rule deletion naming no rule deletes the chain's rules.
                RemovalStep::Flush(chain) => {
                    out.message(nft(NFT_MSG_DELRULE), ask, seq, family, 0);
                    out.string(RULE_TABLE, table);
                    out.string(RULE_CHAIN, chain);
                }
                RemovalStep::DeleteChain(chain) => {
                    out.message(nft(NFT_MSG_DELCHAIN), ask, seq, family, 0);
                    out.string(CHAIN_TABLE, table);
                    out.string(CHAIN_NAME, chain);
                }
            }
        }
        self.socket.end_batch(&mut out);
        Ok(out)
    }

    fn handle(&self, removal: &Removal, chain: &str, target: &str) -> Result<u64, NotCommitted> {
        let key = removal.key(chain);
        let jumps = self.known.as_ref().and_then(|k| k.chains.get(&key));
        match jumps.and_then(|j| j.get(target)) {
            Some(Handle::One(handle)) => Ok(*handle),
            Some(Handle::Several) => Err(not_committed(format!(
                "more than one rule of {chain} jumps to {target}"
            ))),
            None => Err(not_committed(format!(
                "no rule of {chain} jumps to {target}"
            ))),
        }
    }

    /// Keeps the handles true after our commit: ours was the one commit
    /// since `generation`.
    fn committed(&mut self, removal: &Removal, generation: u32) {
        let Some(known) = &mut self.known else { return };
        known.generation = generation.wrapping_add(1);
        for step in &removal.steps {
            match step {
                RemovalStep::Unhook { chain, target } => {
                    let key = removal.key(chain);
                    if let Some(jumps) = known.chains.get_mut(&key) {
                        jumps.remove(target);
                    }
                }
                RemovalStep::DeleteChain(chain) => {
                    let key = removal.key(chain);
                    known.chains.remove(&key);
                }
                RemovalStep::Flush(_) => {}
            }
        }
    }

    /// How many hook chains were read so far.
    pub fn reads(&self) -> usize {
        self.reads
    }

    /// Follows one of our tools' transactions (a create's) in the known
    /// handles, when it is the one commit since they were known: the new
    /// hook rules' handles are then known without reading the chains.
    /// Anything else between (or a change it cannot follow) makes the
    /// next removal read them again.
    pub fn learn(&mut self, transaction: Transaction) {
        let Some(known) = &mut self.known else { return };
        if known.generation.wrapping_add(1) != transaction.generation {
            self.known = None;
            return;
        }
        known.generation = transaction.generation;
        for change in transaction.changes {
            match change {
                Change::RuleAdded {
                    chain,
                    handle,
                    target,
                } => {
                    if let (Some(jumps), Some(target)) = (known.chains.get_mut(&chain), target) {
                        add_jump(jumps, target, handle);
                    }
                }
                Change::RuleRemoved { chain, handle } => {
                    let Some(jumps) = known.chains.get_mut(&chain) else {
                        continue;
                    };
                    let before = jumps.len();
                    jumps.retain(|_, h| *h != Handle::One(handle));
                    // Not one of the jumps known by a single handle: one
                    // of several, or not known at all; read again.
                    if jumps.len() == before && jumps.values().any(|h| *h == Handle::Several) {
                        known.chains.remove(&chain);
                    }
                }
                Change::ChainChanged(chain) => {
                    known.chains.remove(&chain);
                }
            }
        }
    }

    /// Every rule of `chain` that jumps or goes to a chain, by target.
    fn jumps(&mut self, family: TableFamily, table: &str, chain: &str) -> io::Result<Jumps> {
        let seq = self.socket.next_seq();
        let mut out = Outgoing::default();
        let kind = (nfnl::SUBSYS_NFTABLES << 8) | NFT_MSG_GETRULE;
        out.message(
            kind,
            nfnl::F_REQUEST | nfnl::F_DUMP,
            seq,
            family.nfproto(),
            0,
        );
        out.string(RULE_TABLE, table);
        out.string(RULE_CHAIN, chain);
        self.socket.send(out)?;
        let mut jumps = Jumps::new();
        self.socket.answers(seq, seq, |message| {
            if message.kind == nfnl::NLMSG_DONE {
                return Ok(true);
            }
            if let Some(code) = message.error_code() {
                return Err(errno(code));
            }
            if message.nft_message() == Some(NFT_MSG_NEWRULE) {
                if let Some((target, handle)) = jump_of(message.attributes()) {
                    add_jump(&mut jumps, target.to_owned(), handle);
                }
            }
            Ok(false)
        })?;
        Ok(jumps)
    }
}

/// How the hook chains' handles came to be known for a removal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Read {
    /// All known from earlier operations.
    Kept,
    /// Some read just now, at the generation the removal names.
    Now,
    /// Read, but the generation moved on meanwhile.
    Moved,
}

/// The chain a rule's verdict jumps or goes to, and the rule's handle.
fn jump_of(rule: Attributes<'_>) -> Option<(&str, u64)> {
    let handle = rule.find(RULE_HANDLE).and_then(nfnl::be64)?;
    let expressions = Attributes(rule.find(RULE_EXPRESSIONS)?);
    let target = expressions
        .filter(|(kind, _)| *kind == LIST_ELEM)
        .find_map(|(_, expr)| {
            let expr = Attributes(expr);
            if expr.find(EXPR_NAME).and_then(nfnl::string) != Some("immediate") {
                return None;
            }
            let data = Attributes(expr.find(EXPR_DATA)?).find(IMMEDIATE_DATA)?;
            let verdict = Attributes(data).find(DATA_VERDICT)?;
            Attributes(verdict)
                .find(VERDICT_CHAIN)
                .and_then(nfnl::string)
        })?;
    Some((target, handle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unhook(chain: &str, target: &str) -> RemovalStep {
        RemovalStep::Unhook {
            chain: chain.into(),
            target: target.into(),
        }
    }

    #[test]
    fn a_removal_must_delete_every_chain_it_unhooks() {
        let port = || {
            vec![
                unhook("PREROUTING", "libvirt-I-vnet0"),
                RemovalStep::Flush("libvirt-I-vnet0".into()),
                RemovalStep::DeleteChain("libvirt-I-vnet0".into()),
            ]
        };
        assert!(Removal::new(TableFamily::Bridge, "nat", port()).is_some());
        let mut kept_chain = port();
        kept_chain.pop();
        assert_eq!(Removal::new(TableFamily::Bridge, "nat", kept_chain), None);
        let deleted_first = [port()[2].clone(), port()[0].clone()].to_vec();
        assert_eq!(
            Removal::new(TableFamily::Bridge, "nat", deleted_first),
            None
        );
        assert_eq!(Removal::new(TableFamily::Bridge, "nat", Vec::new()), None);
    }

    /// A rule as the kernel dumps it: `iifname "vnet0" counter jump X`.
    fn dumped_rule(handle: u64, target: &str) -> Vec<u8> {
        let nested = |parts: &[(u16, Vec<u8>)]| {
            let mut out = Outgoing::default();
            out.message(0, 0, 0, 0, 0);
            for (kind, value) in parts {
                out.attribute(*kind, value);
            }
            // Only the attributes: past the two headers.
            out.finish()[20..].to_vec()
        };
        let text = |s: &str| [s.as_bytes(), b"\0"].concat();
        let verdict = nested(&[
            (1, (-3i32).to_be_bytes().to_vec()),
            (VERDICT_CHAIN, text(target)),
        ]);
        let data = nested(&[(DATA_VERDICT, verdict)]);
        let immediate = nested(&[(1, 0u32.to_be_bytes().to_vec()), (IMMEDIATE_DATA, data)]);
        let counter = nested(&[(EXPR_NAME, text("counter"))]);
        let jump = nested(&[(EXPR_NAME, text("immediate")), (EXPR_DATA, immediate)]);
        let expressions = nested(&[(LIST_ELEM, counter), (LIST_ELEM, jump)]);
        let mut out = Outgoing::default();
        out.message((nfnl::SUBSYS_NFTABLES << 8) | NFT_MSG_NEWRULE, 0, 1, 7, 0);
        out.string(RULE_TABLE, "nat");
        out.string(RULE_CHAIN, "PREROUTING");
        out.attribute(RULE_HANDLE, &handle.to_be_bytes());
        out.attribute(RULE_EXPRESSIONS, &expressions);
        out.finish()
    }

    #[test]
    fn a_dumped_rule_gives_its_jump_target_and_handle() {
        let data = dumped_rule(9088, "libvirt-I-vnet4");
        let message = nfnl::messages(&data).next().unwrap();
        assert_eq!(
            jump_of(message.attributes()),
            Some(("libvirt-I-vnet4", 9088))
        );
    }

    fn prerouting() -> ChainKey {
        (TableFamily::Bridge, "nat".into(), "PREROUTING".into())
    }

    fn remover_knowing(generation: u32, jumps: &[(&str, Handle)]) -> Remover {
        let mut remover = Remover::open().unwrap();
        let jumps = jumps.iter().map(|(t, h)| (t.to_string(), *h)).collect();
        remover.known = Some(Known {
            generation,
            chains: HashMap::from([(prerouting(), jumps)]),
        });
        remover
    }

    fn jumps_of(remover: &Remover) -> Option<(u32, Jumps)> {
        let known = remover.known.as_ref()?;
        Some((known.generation, known.chains.get(&prerouting())?.clone()))
    }

    #[test]
    fn our_next_commit_is_followed_in_the_known_handles() {
        let mut remover = remover_knowing(5, &[("libvirt-I-vnet0", Handle::One(10))]);
        remover.learn(Transaction {
            generation: 6,
            changes: vec![
                Change::RuleAdded {
                    chain: prerouting(),
                    handle: 11,
                    target: Some("libvirt-I-vnet1".into()),
                },
                Change::RuleRemoved {
                    chain: prerouting(),
                    handle: 10,
                },
                // Another chain's rule: not a hook chain known here.
                Change::RuleAdded {
                    chain: (TableFamily::Bridge, "nat".into(), "libvirt-I-vnet1".into()),
                    handle: 12,
                    target: Some("I-vnet1-mac".into()),
                },
            ],
        });
        let (generation, jumps) = jumps_of(&remover).unwrap();
        assert_eq!(generation, 6);
        assert_eq!(
            jumps,
            Jumps::from([("libvirt-I-vnet1".into(), Handle::One(11))])
        );
    }

    #[test]
    fn a_commit_in_between_or_a_changed_hook_chain_forgets_the_handles() {
        let mut remover = remover_knowing(5, &[("libvirt-I-vnet0", Handle::One(10))]);
        // Generation 6 was someone else's.
        remover.learn(Transaction {
            generation: 7,
            changes: Vec::new(),
        });
        assert!(remover.known.is_none());

        let mut remover = remover_knowing(5, &[("libvirt-I-vnet0", Handle::One(10))]);
        remover.learn(Transaction {
            generation: 6,
            changes: vec![Change::ChainChanged(prerouting())],
        });
        assert_eq!(jumps_of(&remover), None);

        // One of two rules jumping to the same chain went: which one is
        // not known, so the chain is read again.
        let mut remover = remover_knowing(5, &[("libvirt-I-vnet0", Handle::Several)]);
        remover.learn(Transaction {
            generation: 6,
            changes: vec![Change::RuleRemoved {
                chain: prerouting(),
                handle: 10,
            }],
        });
        assert_eq!(jumps_of(&remover), None);
    }

    #[test]
    fn rule_and_chain_notices_read_as_changes() {
        let data = dumped_rule(9088, "libvirt-I-vnet4");
        let message = nfnl::messages(&data).next().unwrap();
        assert_eq!(
            Change::of(&message),
            Some(Change::RuleAdded {
                chain: prerouting(),
                handle: 9088,
                target: Some("libvirt-I-vnet4".into()),
            })
        );
        let mut out = Outgoing::default();
        out.message((nfnl::SUBSYS_NFTABLES << 8) | NFT_MSG_DELCHAIN, 0, 1, 2, 0);
        out.string(CHAIN_TABLE, "filter");
        out.string(CHAIN_NAME, "libvirt-in");
        let data = out.finish();
        let message = nfnl::messages(&data).next().unwrap();
        assert_eq!(
            Change::of(&message),
            Some(Change::ChainChanged((
                TableFamily::Ipv4,
                "filter".into(),
                "libvirt-in".into()
            )))
        );
    }
}
