//! A minimal VM manager on `nwfilter::Host`: it starts two "VMs" (each a
//! network namespace whose `eth0` is the other end of a `vnetN` veth port
//! on bridge `br0`), filters their ports with libvirt's `clean-traffic`,
//! learns the address of the one that has no fixed address from its
//! first packet, then stops them.
//!
//! It changes firewall rules, so it refuses to run in the machine's own
//! network namespace. As root:
//!
//! ```sh
//! cargo build -p nwfilter --example vm_manager
//! ip netns add nwf-demo
//! ip netns exec nwf-demo target/debug/examples/vm_manager
//! ip netns del nwf-demo
//! ```

// An example program: it reports on stdout.
#![allow(clippy::print_stdout)]

use std::error::Error;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use nwfilter::{BindingBuilder, Created, Event, HostConfig, Uuid};

const BRIDGE_IP: &str = "10.99.0.1";

/// One VM: a namespace standing for the guest, and its NIC.
struct Vm {
    name: &'static str,
    uuid: Uuid,
    port: &'static str,
    mac: &'static str,
    /// The guest's address; `fixed` says whether the manager tells the
    /// filter, or the filter learns it.
    ip: &'static str,
    fixed: bool,
}

impl Vm {
    fn netns(&self) -> String {
        format!("vm-{}-{}", self.name, std::process::id())
    }

    /// "Boots" the VM: its namespace, its NIC on the bridge.
    fn start(&self) -> Result<(), Box<dyn Error>> {
        let ns = self.netns();
        ip(&["netns", "add", &ns])?;
        ip(&[
            "link", "add", self.port, "type", "veth", "peer", "name", "eth0", "netns", &ns,
        ])?;
        ip(&["link", "set", self.port, "master", "br0", "up"])?;
        ip(&["-n", &ns, "link", "set", "eth0", "address", self.mac, "up"])?;
        ip(&[
            "-n",
            &ns,
            "addr",
            "add",
            &format!("{}/24", self.ip),
            "dev",
            "eth0",
        ])?;
        Ok(())
    }

    /// The filter for its NIC: `clean-traffic` (no spoofing of MAC, IP or
    /// ARP), with its address when the manager knows it.
    fn binding(&self) -> Result<nwfilter::Binding, Box<dyn Error>> {
        let mut builder =
            BindingBuilder::new(self.name, self.uuid, self.port, self.mac, "clean-traffic");
        if self.fixed {
            builder = builder.ip(self.ip.parse()?);
        }
        Ok(builder.build()?)
    }

    /// The guest says something: its first packet teaches its address.
    fn ping(&self, to: &str) -> bool {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.netns(),
                "ping",
                "-c",
                "2",
                "-W",
                "1",
                "-q",
                to,
            ])
            .output()
            .is_ok_and(|out| out.status.success())
    }

    /// "Shuts down" the VM: its NIC and namespace go.
    fn stop(&self) {
        let _ = ip(&["link", "del", self.port]);
        let _ = ip(&["netns", "del", &self.netns()]);
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    refuse_the_machines_own_namespace()?;
    let dir = std::env::temp_dir().join(format!("vm-manager-{}", std::process::id()));
    let (sender, events) = mpsc::channel();
    let host = HostConfig::new(dir.join("etc"), dir.join("run"))
        .tables_lock(Some(dir.join("tables.lock")))
        .on_event(move |event| {
            let _ = sender.send(event);
        })
        .open()?;
    // After a crash or a reboot: the stored bindings' rules back in place.
    let reloaded = host.reload()?;
    println!("reloaded: {} binding(s) applied", reloaded.applied.len());

    let vms = [
        Vm {
            name: "web",
            uuid: Uuid::from_u128(0x0a),
            port: "vnet0",
            mac: "52:54:00:00:99:10",
            ip: "10.99.0.10",
            fixed: false,
        },
        Vm {
            name: "db",
            uuid: Uuid::from_u128(0x0b),
            port: "vnet1",
            mac: "52:54:00:00:99:11",
            ip: "10.99.0.11",
            fixed: true,
        },
    ];
    let result = run(&host, &vms, &events);
    for vm in &vms {
        vm.stop();
    }
    let _ = ip(&["link", "del", "br0"]);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// Starts the VMs, waits until the first one's address is learned, then
/// stops them.
fn run(
    host: &nwfilter::Host,
    vms: &[Vm],
    events: &mpsc::Receiver<Event>,
) -> Result<(), Box<dyn Error>> {
    ip(&["link", "add", "br0", "type", "bridge"])?;
    ip(&["addr", "add", &format!("{BRIDGE_IP}/24"), "dev", "br0"])?;
    ip(&["link", "set", "br0", "up"])?;
    for vm in vms {
        vm.start()?;
        match host.create_binding(&vm.binding()?)? {
            Created::Filtering => println!("{}: started, {} filtered", vm.name, vm.port),
            Created::LearningAddress => {
                println!("{}: started, {} learning its address", vm.name, vm.port)
            }
            other => println!("{}: started ({other:?})", vm.name),
        }
    }

    // The guests talk; wait for what the host tells us.
    for vm in vms {
        println!("{} pings the host: {}", vm.name, vm.ping(BRIDGE_IP));
    }
    loop {
        match events.recv_timeout(Duration::from_secs(10))? {
            Event::AddressesLearned { port, addresses } => {
                println!("{port}: learned {addresses:?}");
                break;
            }
            other => println!("event: {other:?}"),
        }
    }
    for binding in host.bindings()? {
        println!(
            "{} -> {} {:?} learned {:?}",
            binding.port, binding.filter, binding.state, binding.learned
        );
    }

    for vm in vms {
        host.delete_binding(vm.port)?;
        println!("{}: stopped, {} unfiltered", vm.name, vm.port);
    }
    Ok(())
}

/// Firewall rules are changed here: only inside a named network
/// namespace (`ip netns identify` names it), never the machine's own.
fn refuse_the_machines_own_namespace() -> Result<(), Box<dyn Error>> {
    let out = Command::new("ip").args(["netns", "identify"]).output()?;
    if String::from_utf8_lossy(&out.stdout).trim().is_empty() {
        return Err("run me inside a network namespace: ip netns exec NAME ...".into());
    }
    Ok(())
}

/// Runs `ip ARGS` (an argument vector, no shell).
fn ip(args: &[&str]) -> Result<(), Box<dyn Error>> {
    let out = Command::new("ip").args(args).output()?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(format!("ip {}: {}", args.join(" "), stderr.trim()).into());
    }
    Ok(())
}
