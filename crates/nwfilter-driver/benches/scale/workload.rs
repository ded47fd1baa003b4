//! The workload: clean-traffic (with `IP` bound) on ports `vnet0..`, and
//! the two backends behind one interface, each applying through its own
//! `Applier` inside a namespace.

use host_io::{ProcessRunner, Toolset};
use nwfilter_compile::ir::Program;
use nwfilter_compile::{compile_dag, resolve, Compiled, FilterDag, MemorySource};
use nwfilter_model::{builtin_filters, parse_filter, FilterName, IfName, MacAddr6, Params};

use crate::lab::Error;

/// Port `i`'s name, MAC and IP; `generation` changes the IP (a rebuild).
#[derive(Debug, Clone)]
pub struct Port {
    pub name: IfName,
    pub mac: MacAddr6,
    pub ip: String,
}

impl Port {
    pub fn new(i: usize, generation: usize) -> Port {
        let [_, _, hi, lo] = (i as u32).to_be_bytes();
        Port {
            name: IfName::new(format!("vnet{i}")).expect("valid port name"),
            mac: MacAddr6::new(0x52, 0x54, 0x00, 0x00, hi, lo),
            ip: format!("10.{}.{}.{}", 100 + generation, i / 250, i % 250 + 2),
        }
    }

    /// The MAC as `ip link` takes it.
    pub fn mac_text(&self) -> String {
        let b = self.mac.as_bytes();
        format!(
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// The built-in filters, one of them (clean-traffic by default) resolved
/// once (as the daemon does).
pub struct Compiler {
    dag: FilterDag,
    /// The filter needs `IPV6` (clean-traffic-dualstack).
    ipv6: bool,
}

impl Compiler {
    pub fn new(filter: &str) -> Result<Compiler, Error> {
        Compiler::with_extra(filter, &[])
    }

    /// Like [`Compiler::new`], with filters of our own (XML documents)
    /// beside the built-in ones.
    pub fn with_extra(filter: &str, extra: &[&str]) -> Result<Compiler, Error> {
        let mut filters = builtin_filters();
        for doc in extra {
            filters.push(parse_filter(doc)?);
        }
        let source = MemorySource::from_iter(filters);
        let dag = resolve(&source, &FilterName::new(filter)?)?;
        Ok(Compiler {
            dag,
            ipv6: filter.ends_with("-dualstack"),
        })
    }

    pub fn program(&self, port: &Port) -> Result<Program, Error> {
        let mut params = Params::default();
        params.push("IP", port.ip.clone());
        if self.ipv6 {
            // A global and a link-local address per port, as a dual-stack
            // guest has (the values only have to differ between ports).
            let [_, _, _, _, hi, lo] = port.mac.into_array();
            params.push("IPV6", format!("fd10::{hi:x}:{lo:x}"));
            params.push("IPV6", format!("fe80::5054:ff:fe00:{hi:x}{lo:02x}"));
        }
        match compile_dag(&self.dag, &params, port.mac, &port.name)? {
            Compiled::Program(p) => Ok(p),
            Compiled::AwaitingIp { .. } => Err("IP is bound, learning cannot start".into()),
        }
    }
}

/// A firewall backend as the benchmark drives it.
pub trait Backend {
    type Rules: PartialEq;
    const NAME: &'static str;
    /// The program that must be installed for this backend (probed first).
    const PROGRAM: &'static str;
    /// Whether `*-save` shows its rules (counted beside nf_tables' view).
    const SAVE_VIEW: bool;

    fn render(program: &Program) -> Result<Self::Rules, Error>;

    /// One operation bringing every port to `new`; `old[i]` is what was
    /// recorded for `new[i]`'s port, if anything.
    fn apply(
        runner: &ProcessRunner,
        new: &[&Self::Rules],
        old: Option<&[&Self::Rules]>,
    ) -> Result<(), Error>;

    /// One operation removing every port of `ports`.
    fn remove(runner: &ProcessRunner, ports: &[IfName]) -> Result<(), Error>;
}

pub struct Nftables;
pub struct Xtables;

impl Backend for Nftables {
    type Rules = backend_nftables::PortRuleset;
    const NAME: &'static str = "nftables";
    const PROGRAM: &'static str = "nft";
    const SAVE_VIEW: bool = false;

    fn render(program: &Program) -> Result<Self::Rules, Error> {
        Ok(backend_nftables::ruleset(program)?)
    }

    fn apply(
        runner: &ProcessRunner,
        new: &[&Self::Rules],
        old: Option<&[&Self::Rules]>,
    ) -> Result<(), Error> {
        let changes: Vec<backend_nftables::Change> = new
            .iter()
            .enumerate()
            .map(|(i, r)| backend_nftables::Change {
                ruleset: r,
                recorded: old.map(|o| o[i]),
            })
            .collect();
        backend_nftables::Applier::new(runner).apply(&changes)?;
        Ok(())
    }

    fn remove(runner: &ProcessRunner, ports: &[IfName]) -> Result<(), Error> {
        backend_nftables::Applier::new(runner).remove(ports)?;
        Ok(())
    }
}

impl Backend for Xtables {
    type Rules = backend_xtables::PortRuleset;
    const NAME: &'static str = "xtables";
    const PROGRAM: &'static str = "ebtables";
    const SAVE_VIEW: bool = true;

    fn render(program: &Program) -> Result<Self::Rules, Error> {
        Ok(backend_xtables::ruleset(program)?)
    }

    fn apply(
        runner: &ProcessRunner,
        new: &[&Self::Rules],
        old: Option<&[&Self::Rules]>,
    ) -> Result<(), Error> {
        let changes: Vec<backend_xtables::Change> = new
            .iter()
            .enumerate()
            .map(|(i, r)| backend_xtables::Change {
                ruleset: r,
                recorded: old.map(|o| o[i]),
            })
            .collect();
        backend_xtables::Applier::new(runner).apply(&changes)?;
        Ok(())
    }

    fn remove(runner: &ProcessRunner, ports: &[IfName]) -> Result<(), Error> {
        backend_xtables::Applier::new(runner).remove(ports)?;
        Ok(())
    }
}

/// A runner whose every command runs inside `netns`.
pub fn runner_in(netns: &str) -> ProcessRunner {
    ProcessRunner::new(Toolset::default()).in_netns(netns)
}

/// Ports `range` of one generation with their rules for backend `B`.
pub fn rules_for<B: Backend>(
    compiler: &Compiler,
    range: std::ops::Range<usize>,
    generation: usize,
) -> Result<(Vec<Port>, Vec<B::Rules>), Error> {
    let ports: Vec<Port> = range.map(|i| Port::new(i, generation)).collect();
    let rules = ports
        .iter()
        .map(|p| B::render(&compiler.program(p)?))
        .collect::<Result<_, _>>()?;
    Ok((ports, rules))
}

pub fn names(ports: &[Port]) -> Vec<IfName> {
    ports.iter().map(|p| p.name.clone()).collect()
}
