//! Filters on virtual networks: every port of a running network's bridge
//! that has no binding of its own gets one owned by the network (owner:
//! the network's name and UUID), made from the network's `<filterref>`,
//! created when the port joins the bridge and removed when it leaves, the
//! network stops or loses its filter. An explicit binding always wins:
//! creating one replaces the network's, deleting it gives the port back.
//!
//! The network's bindings are ordinary stored bindings, so they are
//! listed, re-applied at start and repaired like any other; what marks
//! one as the network's is its owner UUID, that of a defined network.
//!
//! The link table comes from [`links`] (netlink events, no polling);
//! [`watch`] feeds it in. Everything here runs under one lock, taken
//! before the engine's, so a port's join, leave and explicit bindings are
//! decided one at a time.

pub mod links;
pub mod mac_learn;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use host_io::Runner;
use netdrv::Network;
use nwfilter_driver::engine::error_chain;
use nwfilter_model::{Binding, IfName, MacAddr6, Owner};

use crate::service::EngineService;
use links::{Link, LinkEvent, LinkEvents};

/// The interfaces the kernel reported, by index.
#[derive(Debug, Default)]
pub struct NetPorts {
    links: Mutex<Links>,
    /// Guest MACs learned from first frames, by port.
    macs: Mutex<HashMap<String, MacAddr6>>,
    /// Ports whose first frame is awaited.
    learning: Mutex<HashSet<String>>,
    /// Starts a MAC learner on a port; set by [`watch`], which holds the
    /// service the learner reports to.
    spawner: OnceLock<Spawner>,
}

/// The networks one decision looks at (see `net_view`).
struct NetView {
    /// Running networks by bridge name, as currently defined.
    by_bridge: HashMap<String, Network>,
    /// The UUIDs of the defined networks: a binding owned by one is that
    /// network's.
    owners: Vec<uuid::Uuid>,
}

/// Starts learning a port's guest MAC in the background.
struct Spawner(Box<dyn Fn(String) + Send + Sync>);

impl std::fmt::Debug for Spawner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Spawner")
    }
}

#[derive(Debug, Default)]
pub(crate) struct Links {
    by_index: HashMap<u32, Link>,
    /// Set while a dump runs: the indexes it reported so far.
    dumped: Option<Vec<u32>>,
}

/// The first byte libvirt gives a tap's MAC (the guest's MAC with its
/// first byte replaced), so that the bridge never takes the tap's MAC as
/// its own (a bridge uses its ports' lowest MAC).
const TAP_MAC_PREFIX: u8 = 0xfe;
/// What the guest's first byte is taken to be: libvirt's generated MACs
/// are QEMU/KVM's `52:54:00:…`.
const GUEST_MAC_PREFIX: u8 = 0x52;

/// The guest MAC of a port whose own MAC is a libvirt tap's (first byte
/// 0xFE): the same address with the first byte set back to 0x52. `None`
/// for any other port.
pub fn guest_mac(port_mac: [u8; 6]) -> Option<MacAddr6> {
    if port_mac[0] != TAP_MAC_PREFIX {
        return None;
    }
    let mut mac = port_mac;
    mac[0] = GUEST_MAC_PREFIX;
    Some(MacAddr6::from(mac))
}

/// What a port's interface alias says of its portgroup: an alias
/// `portgroup=NAME` names group NAME; any other alias, or none, names none
/// (the port is in the default group).
pub const PORTGROUP_ALIAS_PREFIX: &str = "portgroup=";

/// The portgroup a port names in its alias.
pub fn portgroup_of(link: &Link) -> Option<&str> {
    link.alias.as_deref()?.strip_prefix(PORTGROUP_ALIAS_PREFIX)
}

/// The binding `net` owns for `link`, if the port's portgroup or the
/// network has a filter and the port's guest MAC is known. Errors say why
/// a port of a filtered network is left without one.
pub fn network_binding(
    net: &Network,
    link: &Link,
    learned_mac: Option<MacAddr6>,
) -> Result<Option<Binding>, Unbound> {
    let Some(filterref) = net.port_filter(portgroup_of(link)) else {
        return Ok(None);
    };
    let uuid = net.uuid.ok_or_else(|| {
        Unbound::Other(format!(
            "network {} has no UUID (define it again)",
            net.name
        ))
    })?;
    let portdev = IfName::new(link.name.clone()).map_err(|e| Unbound::Other(e.to_string()))?;
    let mac = link
        .mac
        .and_then(guest_mac)
        .or(learned_mac)
        .ok_or(Unbound::MacUnknown)?;
    Ok(Some(Binding {
        owner: Owner {
            name: net.name.to_string(),
            uuid,
        },
        portdev,
        linkdev: None,
        mac,
        filterref: filterref.clone(),
    }))
}

/// Why a port of a filtered network has no binding yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unbound {
    /// Its MAC is not a libvirt tap's: the guest's is learned from its
    /// first frame.
    MacUnknown,
    Other(String),
}

impl NetPorts {
    pub fn new() -> NetPorts {
        NetPorts::default()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Follows the kernel's interfaces for `service` until the socket fails:
/// a dump to start from, then every change. Blocks; run it on a thread
/// of its own. A lost notification is answered with a fresh dump.
pub fn watch<R: Runner + Send + Sync + 'static>(
    service: &Arc<EngineService<R>>,
) -> std::io::Result<()> {
    if let Some(ports) = &service.netports {
        let weak = Arc::downgrade(service);
        let spawn = move |port: String| {
            let weak = weak.clone();
            let started = std::thread::Builder::new()
                .name(format!("mac-{port}"))
                .spawn(move || {
                    let learned = IfName::new(port.clone())
                        .map_err(|e| e.to_string())
                        .and_then(|name| {
                            mac_learn::first_guest_mac(&name, mac_learn::GIVE_UP_AFTER)
                                .map_err(|e| e.to_string())
                        });
                    let mac = learned.unwrap_or_else(|why| {
                        tracing::warn!("port {port}: learning the guest's MAC: {why}");
                        None
                    });
                    if let Some(service) = weak.upgrade() {
                        service.mac_learned(&port, mac);
                    }
                });
            if let Err(e) = started {
                tracing::warn!("MAC learner thread not started: {e}");
            }
        };
        let _ = ports.spawner.set(Spawner(Box::new(spawn)));
    }
    let mut events = LinkEvents::open()?;
    events.request_dump()?;
    service.link_dump_started();
    loop {
        for event in events.receive()? {
            if event == LinkEvent::Lost {
                events.request_dump()?;
                service.link_dump_started();
                continue;
            }
            service.link_event(event);
        }
    }
}

impl<R: Runner + Send + Sync + 'static> EngineService<R> {
    fn link_dump_started(&self) {
        let Some(ports) = &self.netports else { return };
        let mut links = ports.links.lock().unwrap_or_else(|e| e.into_inner());
        links.dumped = Some(Vec::new());
    }

    /// A port's first frame came (`Some`), or its learner gave up.
    fn mac_learned(&self, port: &str, mac: Option<MacAddr6>) {
        let Some(ports) = &self.netports else { return };
        let links = ports.links.lock().unwrap_or_else(|e| e.into_inner());
        lock(&ports.learning).remove(port);
        let Some(mac) = mac else { return };
        tracing::info!("port {port}: guest MAC {mac} learned from its first frame");
        lock(&ports.macs).insert(port.to_owned(), mac);
        let link = links.by_index.values().find(|l| l.name == port).cloned();
        if let Some(link) = link {
            self.sync_port(&links, &link, &self.net_view());
        }
    }

    /// The guest MAC learned for `link`'s port: from its first frame, or
    /// (after a restart) the one its network's binding holds.
    fn learned_mac(&self, view: &NetView, link: &Link) -> Option<MacAddr6> {
        let ports = self.netports.as_ref()?;
        if let Some(mac) = lock(&ports.macs).get(&link.name) {
            return Some(*mac);
        }
        let current = self.engine().bindings().get(&link.name).ok()??;
        view.owners
            .contains(&current.owner.uuid)
            .then_some(current.mac)
    }

    /// Starts learning `link`'s guest MAC, unless that runs already.
    fn learn_mac(&self, link: &Link) {
        let Some(ports) = &self.netports else { return };
        let Some(spawner) = ports.spawner.get() else {
            tracing::warn!(
                "port {}: its MAC is not a libvirt tap's and nothing learns the guest's; \
                 not filtered by its network",
                link.name
            );
            return;
        };
        if lock(&ports.learning).insert(link.name.clone()) {
            tracing::info!(
                "port {}: learning the guest's MAC from its first frame",
                link.name
            );
            (spawner.0)(link.name.clone());
        }
    }

    /// One change from the kernel: the table is updated and the port's
    /// binding follows it (after a dump, every port's).
    pub fn link_event(&self, event: LinkEvent) {
        let Some(ports) = &self.netports else { return };
        let mut links = ports.links.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            LinkEvent::Present(link) => {
                if link.master.is_none() {
                    // Off the bridge: the next guest here is another one.
                    lock(&ports.macs).remove(&link.name);
                }
                if let Some(dumped) = &mut links.dumped {
                    dumped.push(link.index);
                }
                links.by_index.insert(link.index, link.clone());
                if links.dumped.is_none() {
                    self.sync_port(&links, &link, &self.net_view());
                }
            }
            LinkEvent::Gone(link) => {
                links.by_index.remove(&link.index);
                lock(&ports.macs).remove(&link.name);
                self.release_port(&link.name, &self.network_uuids());
            }
            LinkEvent::DumpDone => {
                if let Some(seen) = links.dumped.take() {
                    links.by_index.retain(|index, _| seen.contains(index));
                }
                self.sync_all_locked(&links);
            }
            LinkEvent::Lost => {}
        }
    }

    /// Brings every port's network binding in line with the running
    /// networks (after a network verb: one started, stopped, or defined
    /// with another filter).
    pub fn sync_network_ports(&self) {
        let Some(ports) = &self.netports else { return };
        let links = ports.links.lock().unwrap_or_else(|e| e.into_inner());
        // Before the first dump completes there is nothing to go by; the
        // dump's end syncs everything.
        if links.dumped.is_none() {
            self.sync_all_locked(&links);
        }
    }

    fn sync_all_locked(&self, links: &Links) {
        let view = self.net_view();
        // Ports whose network's filter changed get the new one together,
        // all or nothing (as a filter's redefinition rebuilds its users);
        // every other port is decided on its own.
        let mut rebinds = Vec::new();
        for link in links.by_index.values() {
            match self.refilter(links, link, &view) {
                Some(binding) => rebinds.push(binding),
                None => self.sync_port(links, link, &view),
            }
        }
        if !rebinds.is_empty() {
            let ports: Vec<String> = rebinds.iter().map(|b| b.portdev.to_string()).collect();
            match self.engine().rebind(&rebinds) {
                Ok(()) => tracing::info!(
                    "ports {}: their network's new filter applied",
                    ports.join(", ")
                ),
                Err(e) => tracing::warn!(
                    "ports {}: their network's new filter not applied (they keep the old one): {}",
                    ports.join(", "),
                    error_chain(&e)
                ),
            }
        }
        // Network bindings of ports the kernel no longer has.
        let stored = match self.engine().bindings().list() {
            Ok(listing) => listing.items,
            Err(e) => {
                tracing::warn!("network ports: listing the bindings: {}", error_chain(&e));
                return;
            }
        };
        for binding in stored {
            let present = links
                .by_index
                .values()
                .any(|l| l.name == binding.portdev.as_str());
            if !present && view.owners.contains(&binding.owner.uuid) {
                self.release_port(binding.portdev.as_str(), &view.owners);
            }
        }
    }

    /// The new binding of a port that keeps its network and guest MAC but
    /// whose network's filter (or its parameters) changed.
    fn refilter(&self, links: &Links, link: &Link, view: &NetView) -> Option<Binding> {
        let current = self.engine().bindings().get(&link.name).ok()??;
        let wanted = self.wanted(links, link, view)?;
        let same_port = current.owner == wanted.owner && current.mac == wanted.mac;
        (same_port && current.filterref != wanted.filterref).then_some(wanted)
    }

    /// The binding `link` should have from a network, if any: the running
    /// network whose bridge it is a port of, with that network's current
    /// definition (a redefinition's filter applies at once).
    fn wanted(&self, links: &Links, link: &Link, view: &NetView) -> Option<Binding> {
        let master = links.by_index.get(&link.master?)?;
        let net = view.by_bridge.get(&master.name)?;
        match network_binding(net, link, self.learned_mac(view, link)) {
            Ok(binding) => binding,
            Err(Unbound::MacUnknown) => {
                self.learn_mac(link);
                None
            }
            Err(Unbound::Other(why)) => {
                tracing::warn!(
                    "port {}: not filtered by network {}: {why}",
                    link.name,
                    net.name
                );
                None
            }
        }
    }

    /// The networks as one decision needs them, read once for an event or
    /// a sync of every port rather than once for each port.
    fn net_view(&self) -> NetView {
        let mut view = NetView {
            by_bridge: HashMap::new(),
            owners: self.network_uuids(),
        };
        let Some(store) = &self.networks else {
            return view;
        };
        let running = match store.list() {
            Ok(list) => list,
            Err(e) => {
                tracing::warn!("network ports: listing networks: {}", error_chain(&e));
                return view;
            }
        };
        for info in running.into_iter().filter(|n| n.active) {
            let Ok(Some(state)) = store.run_state(&info.name) else {
                continue;
            };
            let Some(bridge) = state.network.bridge.name.as_ref().map(|b| b.to_string()) else {
                continue;
            };
            // The current definition: a redefinition's filter applies at once.
            let net = store.get(&info.name).unwrap_or(state.network);
            view.by_bridge.entry(bridge).or_insert(net);
        }
        view
    }

    /// Gives `link` the binding its network wants, unless it has one of
    /// its own; takes a network's binding away when no network wants it.
    fn sync_port(&self, links: &Links, link: &Link, view: &NetView) {
        let wanted = self.wanted(links, link, view);
        let current = match self.engine().bindings().get(&link.name) {
            Ok(current) => current,
            // Unreadable: the port is closed; its owner decides.
            Err(_) => return,
        };
        match (current, wanted) {
            (None, None) => {}
            (None, Some(wanted)) => self.create_network_binding(wanted),
            (Some(current), wanted) if view.owners.contains(&current.owner.uuid) => {
                if wanted.as_ref() == Some(&current) {
                    return;
                }
                // Another filter for the same port (its portgroup changed):
                // replaced in one step, never unfiltered in between.
                if let Some(new) = wanted
                    .as_ref()
                    .filter(|w| w.owner == current.owner && w.mac == current.mac)
                {
                    match self.engine().rebind(std::slice::from_ref(new)) {
                        Ok(()) => tracing::info!(
                            "port {}: now filtered by {}",
                            link.name,
                            new.filterref.filter
                        ),
                        Err(e) => tracing::warn!(
                            "port {}: keeps its filter, {} not applied: {}",
                            link.name,
                            new.filterref.filter,
                            error_chain(&e)
                        ),
                    }
                    return;
                }
                self.release_port(&link.name, &view.owners);
                if let Some(wanted) = wanted {
                    self.create_network_binding(wanted);
                }
            }
            // An explicit binding wins.
            (Some(_), _) => {}
        }
    }

    fn create_network_binding(&self, binding: Binding) {
        let port = binding.portdev.clone();
        let network = binding.owner.name.clone();
        match self.binding_create_parsed(binding) {
            Ok(_) => tracing::info!("port {port}: filtered by network {network}"),
            Err(e) => tracing::warn!(
                "port {port}: network {network}'s binding not created: {}",
                error_chain(e.as_ref())
            ),
        }
    }

    /// Removes the network's binding of `port`, if it has one (an explicit
    /// binding stays).
    fn release_port(&self, port: &str, owners: &[uuid::Uuid]) {
        let Ok(Some(current)) = self.engine().bindings().get(port) else {
            return;
        };
        if !owners.contains(&current.owner.uuid) {
            return;
        }
        match self.binding_delete_unsynced(port) {
            Ok(_) => tracing::info!(
                "port {port}: network {}'s binding removed",
                current.owner.name
            ),
            Err(e) => tracing::warn!(
                "port {port}: removing network {}'s binding: {}",
                current.owner.name,
                error_chain(&e)
            ),
        }
    }

    /// The UUIDs of the defined networks: a binding owned by one is that
    /// network's.
    pub(crate) fn network_uuids(&self) -> Vec<uuid::Uuid> {
        let Some(store) = &self.networks else {
            return Vec::new();
        };
        match store.list() {
            Ok(list) => list.into_iter().filter_map(|n| n.uuid).collect(),
            Err(e) => {
                tracing::warn!("network ports: listing networks: {}", error_chain(&e));
                Vec::new()
            }
        }
    }

    /// The link table, locked: explicit binding verbs hold it so that no
    /// link event decides the same port in between. `None` when this
    /// service does not follow networks' ports.
    pub(crate) fn netports_guard(&self) -> Option<MutexGuard<'_, Links>> {
        let ports = self.netports.as_ref()?;
        Some(ports.links.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whether `port`'s stored binding is a network's.
    pub(crate) fn owned_by_network(&self, port: &str) -> bool {
        matches!(self.engine().bindings().get(port),
            Ok(Some(b)) if self.network_uuids().contains(&b.owner.uuid))
    }

    /// Makes way for an explicit binding on `port`: the network's binding
    /// there goes.
    pub(crate) fn yield_to_explicit(&self, _links: &Links, port: &str) {
        self.release_port(port, &self.network_uuids());
    }

    /// After an explicit binding of `port` was deleted (or could not be
    /// created): the port goes back to its network, if it is on one.
    pub(crate) fn return_to_network(&self, links: &Links, port: &str) {
        let link = links.by_index.values().find(|l| l.name == port).cloned();
        if let Some(link) = link {
            self.sync_port(links, &link, &self.net_view());
        }
    }
}

#[cfg(test)]
mod unit_tests {
    use super::*;

    #[test]
    fn a_port_names_its_portgroup_in_its_alias() {
        let link = |alias: Option<&str>| Link {
            index: 1,
            name: "vnet0".into(),
            mac: None,
            master: None,
            alias: alias.map(Into::into),
        };
        assert_eq!(portgroup_of(&link(Some("portgroup=web"))), Some("web"));
        assert_eq!(portgroup_of(&link(Some("guest web"))), None);
        assert_eq!(portgroup_of(&link(None)), None);
    }

    #[test]
    fn a_libvirt_tap_mac_gives_the_guest_mac_and_others_none() {
        let guest = guest_mac([0xfe, 0x54, 0x00, 0x12, 0x34, 0x56]).unwrap();
        assert_eq!(guest, "52:54:00:12:34:56".parse::<MacAddr6>().unwrap());
        assert_eq!(guest_mac([0x52, 0x54, 0x00, 0x12, 0x34, 0x56]), None);
        assert_eq!(guest_mac([0x02, 0, 0, 0, 0, 1]), None);
    }
}
