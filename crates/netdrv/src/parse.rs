//! `<network>` XML → [`Network`], validated, with positions in errors.
//!
//! Elements and attributes nwfilter-rs does not model are refused rather
//! than dropped: a setting silently lost on `format` or `net-define` would
//! change what the network does.

use std::net::{IpAddr, Ipv4Addr};
use std::str::FromStr;

use macaddr::MacAddr6;
use nwfilter_model::{
    valid_param_name, valid_param_value, FilterName, FilterRef, IfName, NameError, Params,
};
use roxmltree::{Document, Node};
use uuid::Uuid;

use crate::error::{Invalid, Location, ParseError};
use crate::network::{
    Bridge, Dns, DnsForwarder, DnsHost, Domain, Forward, ForwardMode, Ipv4Range, Nat, Network,
    NetworkName, PortGroup, PortRange,
};
use crate::validate;

/// Documents larger than this are refused before parsing.
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024;

/// Parses and validates a `<network>` document.
pub fn parse_network(text: &str) -> Result<Network, ParseError> {
    if text.len() > MAX_DOCUMENT_BYTES {
        return Err(ParseError::TooLarge {
            size: text.len(),
            limit: MAX_DOCUMENT_BYTES,
        });
    }
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: 1_000_000,
    };
    let doc = Document::parse_with_options(text, options)?;
    let cx = Cx { doc: &doc };
    let root = doc.root_element();
    if root.tag_name().name() != "network" {
        return Err(ParseError::WrongRoot {
            found: root.tag_name().name().to_owned(),
            at: cx.at(root),
        });
    }
    cx.network(root)
}

/// Parsing context: the document, for turning nodes into positions.
pub(crate) struct Cx<'d, 'i> {
    pub(crate) doc: &'d Document<'i>,
}

/// What a child-element visitor gets: the element and its name.
pub(crate) type El<'a, 'i> = Node<'a, 'i>;

impl<'d, 'i> Cx<'d, 'i> {
    pub(crate) fn at(&self, node: Node) -> Location {
        let pos = self.doc.text_pos_at(node.range().start);
        Location {
            line: pos.row,
            column: pos.col,
        }
    }

    /// Attaches `node`'s position to a problem.
    pub(crate) fn fail(&self, node: Node, problem: Invalid) -> ParseError {
        ParseError::Invalid {
            at: self.at(node),
            problem,
        }
    }

    pub(crate) fn check<T>(&self, node: Node, r: Result<T, Invalid>) -> Result<T, ParseError> {
        r.map_err(|p| self.fail(node, p))
    }

    /// Refuses attributes outside `allowed`.
    pub(crate) fn only_attrs(&self, node: Node, allowed: &[&str]) -> Result<(), ParseError> {
        match node.attributes().find(|a| !allowed.contains(&a.name())) {
            Some(a) => Err(self.fail(
                node,
                Invalid::value(
                    node.tag_name().name(),
                    a.name(),
                    a.value(),
                    format!("unknown attribute (known here: {})", list_or_none(allowed)),
                ),
            )),
            None => Ok(()),
        }
    }

    /// The element children of `node`, refusing any not in `allowed` and
    /// any non-blank text.
    pub(crate) fn children<'a>(
        &self,
        node: Node<'a, 'i>,
        allowed: &[&str],
    ) -> Result<Vec<El<'a, 'i>>, ParseError> {
        let mut out = Vec::new();
        for child in node.children() {
            if child.is_text() && !child.text().unwrap_or_default().trim().is_empty() {
                return Err(self.fail(
                    child,
                    Invalid::element(node.tag_name().name(), "unexpected text content"),
                ));
            }
            if !child.is_element() {
                continue;
            }
            let name = child.tag_name().name();
            if !allowed.contains(&name) {
                return Err(self.fail(
                    child,
                    Invalid::element(
                        name,
                        format!(
                            "not supported inside <{}> (known here: {})",
                            node.tag_name().name(),
                            list_or_none(allowed)
                        ),
                    ),
                ));
            }
            out.push(child);
        }
        Ok(out)
    }

    pub(crate) fn required<'a>(
        &self,
        node: Node<'a, 'i>,
        attr: &str,
    ) -> Result<&'a str, ParseError> {
        node.attribute(attr)
            .ok_or_else(|| self.fail(node, Invalid::missing(node.tag_name().name(), attr)))
    }

    /// Parses attribute `attr` with `FromStr`, naming `what` it should be.
    pub(crate) fn parsed<T: FromStr>(
        &self,
        node: Node,
        attr: &str,
        what: &str,
    ) -> Result<Option<T>, ParseError> {
        match node.attribute(attr) {
            None => Ok(None),
            Some(v) => v.trim().parse::<T>().map(Some).map_err(|_| {
                self.fail(
                    node,
                    Invalid::value(node.tag_name().name(), attr, v, format!("not {what}")),
                )
            }),
        }
    }

    pub(crate) fn ip(&self, node: Node, attr: &str) -> Result<Option<IpAddr>, ParseError> {
        self.parsed(node, attr, "an IPv4 or IPv6 address")
    }

    pub(crate) fn mac(&self, node: Node, attr: &str) -> Result<Option<MacAddr6>, ParseError> {
        self.parsed(node, attr, "a MAC address (like 52:54:00:12:34:56)")
    }

    /// A `yes`/`no` attribute.
    pub(crate) fn yes_no(&self, node: Node, attr: &str) -> Result<Option<bool>, ParseError> {
        self.switch(node, attr, ("yes", "no"))
    }

    pub(crate) fn switch(
        &self,
        node: Node,
        attr: &str,
        (on, off): (&str, &str),
    ) -> Result<Option<bool>, ParseError> {
        match node.attribute(attr) {
            None => Ok(None),
            Some(v) if v == on => Ok(Some(true)),
            Some(v) if v == off => Ok(Some(false)),
            Some(v) => Err(self.fail(
                node,
                Invalid::value(
                    node.tag_name().name(),
                    attr,
                    v,
                    format!("must be '{on}' or '{off}'"),
                ),
            )),
        }
    }

    pub(crate) fn if_name(&self, node: Node, attr: &str) -> Result<Option<IfName>, ParseError> {
        match node.attribute(attr) {
            None => Ok(None),
            Some(v) => IfName::new(v).map(Some).map_err(|e| {
                self.fail(
                    node,
                    Invalid::value(
                        node.tag_name().name(),
                        attr,
                        v.escape_debug(),
                        match e {
                            // The value is printed already; keep the reason.
                            NameError::IfName(_, why) => format!("not an interface name: {why}"),
                            other => other.to_string(),
                        },
                    ),
                )
            }),
        }
    }

    /// Text of a leaf element like `<name>`, trimmed.
    pub(crate) fn text<'a>(&self, node: Node<'a, 'i>) -> Result<&'a str, ParseError> {
        self.only_attrs(node, &[])?;
        if let Some(child) = node.children().find(|c| c.is_element()) {
            return Err(self.fail(
                child,
                Invalid::element(node.tag_name().name(), "expected text, not elements"),
            ));
        }
        Ok(node.text().unwrap_or_default().trim())
    }

    /// `<filterref filter='NAME'>` with `<parameter name= value=>`s, as a
    /// `<filterbinding>` writes it (the same name and value rules).
    fn filterref(&self, node: Node) -> Result<FilterRef, ParseError> {
        self.only_attrs(node, &["filter"])?;
        let name = self.required(node, "filter")?;
        let filter = FilterName::new(name).map_err(|e| {
            self.fail(
                node,
                Invalid::value("filterref", "filter", name, e.to_string()),
            )
        })?;
        let mut params = Params::default();
        for child in self.children(node, &["parameter"])? {
            self.only_attrs(child, &["name", "value"])?;
            let name = self.required(child, "name")?;
            if !valid_param_name(name) {
                let why = "a parameter name is one or more of [A-Za-z0-9_]";
                return Err(self.fail(child, Invalid::value("parameter", "name", name, why)));
            }
            let value = self.required(child, "value")?;
            if !valid_param_value(value) {
                let why = "a parameter value is one or more of [A-Za-z0-9_.:]";
                return Err(self.fail(child, Invalid::value("parameter", "value", value, why)));
            }
            params.push(name, value);
        }
        Ok(FilterRef { filter, params })
    }

    /// `<portgroup name= default=>` with at most a `<filterref>`: the
    /// bandwidth, VLAN and virtualport settings libvirt's may hold are
    /// refused (out of scope).
    fn portgroup(&self, node: Node) -> Result<PortGroup, ParseError> {
        self.only_attrs(node, &["name", "default"])?;
        let name = self.required(node, "name")?;
        if name.is_empty()
            || name.contains(['=', '\'', '"', '<', '>', '&'])
            || name.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            let why = "a portgroup name is non-empty, without whitespace, quotes, '<>&' or '='";
            return Err(self.fail(node, Invalid::value("portgroup", "name", name, why)));
        }
        let default = self.yes_no(node, "default")?.unwrap_or(false);
        let children = self.children(node, &["filterref"])?;
        if let Some(second) = children.get(1) {
            return Err(self.fail(
                *second,
                Invalid::element("filterref", "may appear only once"),
            ));
        }
        let filterref = match children.first() {
            Some(node) => Some(self.filterref(*node)?),
            None => None,
        };
        Ok(PortGroup {
            name: name.to_owned(),
            default,
            filterref,
        })
    }

    fn network(&self, root: Node) -> Result<Network, ParseError> {
        self.only_attrs(root, &["ipv6"])?;
        let ipv6_without_gateway = self.yes_no(root, "ipv6")?.unwrap_or(false);
        let children = self.children(
            root,
            &[
                "name",
                "uuid",
                "forward",
                "bridge",
                "mtu",
                "mac",
                "domain",
                "dns",
                "ip",
                "portgroup",
                "filterref",
            ],
        )?;
        for (i, child) in children.iter().enumerate() {
            let tag = child.tag_name().name();
            if tag != "ip"
                && tag != "portgroup"
                && children[..i].iter().any(|c| c.tag_name().name() == tag)
            {
                return Err(self.fail(*child, Invalid::element(tag, "may appear only once")));
            }
        }
        let find = |tag: &str| {
            children
                .iter()
                .copied()
                .find(|c| c.tag_name().name() == tag)
        };

        let Some(name_node) = find("name") else {
            return Err(self.fail(
                root,
                Invalid::element("network", "missing required element <name>"),
            ));
        };
        let name_text = self.text(name_node)?;
        let name = NetworkName::new(name_text).map_err(|why| {
            self.fail(
                name_node,
                Invalid::value("name", "text", name_text.escape_debug(), why),
            )
        })?;
        let uuid = match find("uuid") {
            None => None,
            Some(node) => {
                let text = self.text(node)?;
                Some(Uuid::parse_str(text).map_err(|_| {
                    self.fail(node, Invalid::value("uuid", "text", text, "not a UUID"))
                })?)
            }
        };
        let forward = match find("forward") {
            None => Forward::default(),
            Some(node) => self.forward(node)?,
        };
        let bridge = match find("bridge") {
            None => Bridge::default(),
            Some(node) => self.bridge(node)?,
        };
        let mtu = match find("mtu") {
            None => None,
            Some(node) => {
                self.only_attrs(node, &["size"])?;
                self.required(node, "size")?;
                let size: Option<u32> = self.parsed(node, "size", "an MTU (68..=65535)")?;
                let size = size.filter(|s| (68..=65535).contains(s)).ok_or_else(|| {
                    let v = node.attribute("size").unwrap_or_default();
                    self.fail(
                        node,
                        Invalid::value("mtu", "size", v, "an MTU is 68..=65535"),
                    )
                })?;
                Some(size)
            }
        };
        let mac = match find("mac") {
            None => None,
            Some(node) => {
                self.only_attrs(node, &["address"])?;
                self.required(node, "address")?;
                self.mac(node, "address")?
            }
        };
        let domain = match find("domain") {
            None => None,
            Some(node) => Some(self.domain(node)?),
        };
        let dns = match find("dns") {
            None => Dns::default(),
            Some(node) => self.dns(node)?,
        };
        let mut ips = Vec::new();
        let mut ip_nodes = Vec::new();
        for node in children
            .iter()
            .copied()
            .filter(|c| c.tag_name().name() == "ip")
        {
            ips.push(self.ip_def(node)?);
            ip_nodes.push(node);
        }
        let filterref = match find("filterref") {
            None => None,
            Some(node) => Some(self.filterref(node)?),
        };
        let mut portgroups: Vec<PortGroup> = Vec::new();
        for node in children
            .iter()
            .copied()
            .filter(|c| c.tag_name().name() == "portgroup")
        {
            let group = self.portgroup(node)?;
            if portgroups.iter().any(|g| g.name == group.name) {
                return Err(self.fail(
                    node,
                    Invalid::value(
                        "portgroup",
                        "name",
                        &group.name,
                        "a second portgroup of that name",
                    ),
                ));
            }
            if group.default && portgroups.iter().any(|g| g.default) {
                return Err(self.fail(
                    node,
                    Invalid::value("portgroup", "default", "yes", "a second default portgroup"),
                ));
            }
            portgroups.push(group);
        }
        let net = Network {
            filterref,
            portgroups,
            name,
            uuid,
            ipv6_without_gateway,
            forward,
            bridge,
            mtu,
            mac,
            domain,
            dns,
            ips,
        };
        if let Err(problem) = validate::network_wide(&net) {
            // Point at the element concerned when there is one.
            let node = match problem.element.as_str() {
                "forward" | "mac" => find(problem.element.as_str()).unwrap_or(root),
                "dhcp" => ip_nodes.last().copied().unwrap_or(root),
                _ => root,
            };
            return Err(self.fail(node, problem));
        }
        Ok(net)
    }

    fn forward(&self, node: Node) -> Result<Forward, ParseError> {
        self.only_attrs(node, &["mode", "dev"])?;
        let mode = match node.attribute("mode") {
            None | Some("nat") => ForwardMode::Nat,
            Some("route") => ForwardMode::Route,
            Some("open") => ForwardMode::Open,
            Some(other) => {
                return Err(self.fail(
                    node,
                    Invalid::value(
                        "forward",
                        "mode",
                        other,
                        "supported modes are nat, route and open (omit <forward> for an isolated network)",
                    ),
                ))
            }
        };
        let mut dev = self.if_name(node, "dev")?;
        let mut nat = Nat::default();
        let mut seen_nat = false;
        for child in self.children(node, &["nat", "interface"])? {
            match child.tag_name().name() {
                "nat" => {
                    if seen_nat {
                        return Err(
                            self.fail(child, Invalid::element("nat", "may appear only once"))
                        );
                    }
                    seen_nat = true;
                    nat = self.nat(child)?;
                }
                _ => {
                    self.only_attrs(child, &["dev"])?;
                    self.required(child, "dev")?;
                    let iface = self.if_name(child, "dev")?;
                    match (&dev, iface) {
                        (Some(d), Some(i)) if *d != i => {
                            return Err(self.fail(
                                child,
                                Invalid::value(
                                    "interface",
                                    "dev",
                                    i,
                                    format!(
                                    "must match <forward dev='{d}'>; only one uplink is supported"
                                ),
                                ),
                            ))
                        }
                        (_, i) => dev = i,
                    }
                }
            }
        }
        self.check(node, validate::nat(mode, &nat))?;
        Ok(Forward { mode, dev, nat })
    }

    fn nat(&self, node: Node) -> Result<Nat, ParseError> {
        self.only_attrs(node, &["ipv6"])?;
        let ipv6 = self.yes_no(node, "ipv6")?;
        let mut address = None;
        let mut port = None;
        for child in self.children(node, &["address", "port"])? {
            let tag = child.tag_name().name();
            self.only_attrs(child, &["start", "end"])?;
            self.required(child, "start")?;
            self.required(child, "end")?;
            let twice = || {
                self.fail(
                    child,
                    Invalid::element(tag, "may appear only once in <nat>"),
                )
            };
            if tag == "address" {
                if address.is_some() {
                    return Err(twice());
                }
                let start: Option<Ipv4Addr> = self.parsed(child, "start", "an IPv4 address")?;
                let end: Option<Ipv4Addr> = self.parsed(child, "end", "an IPv4 address")?;
                address = start.zip(end).map(|(start, end)| Ipv4Range { start, end });
            } else {
                if port.is_some() {
                    return Err(twice());
                }
                let start: Option<u16> =
                    self.parsed(child, "start", "a port number (1..=65535)")?;
                let end: Option<u16> = self.parsed(child, "end", "a port number (1..=65535)")?;
                port = start.zip(end).map(|(start, end)| PortRange { start, end });
            }
            let partial = Nat {
                ipv6: None,
                address,
                port,
            };
            self.check(child, validate::nat(ForwardMode::Nat, &partial))?;
        }
        Ok(Nat {
            ipv6,
            address,
            port,
        })
    }

    fn bridge(&self, node: Node) -> Result<Bridge, ParseError> {
        self.only_attrs(node, &["name", "stp", "delay"])?;
        Ok(Bridge {
            name: self.if_name(node, "name")?,
            stp: self.switch(node, "stp", ("on", "off"))?.unwrap_or(true),
            delay: self
                .parsed(node, "delay", "a delay in seconds")?
                .unwrap_or(0),
        })
    }

    fn domain(&self, node: Node) -> Result<Domain, ParseError> {
        self.only_attrs(node, &["name", "localOnly"])?;
        let domain = Domain {
            name: self.required(node, "name")?.to_owned(),
            local_only: self.yes_no(node, "localOnly")?,
        };
        self.check(node, validate::domain(&domain))?;
        Ok(domain)
    }

    fn dns(&self, node: Node) -> Result<Dns, ParseError> {
        self.only_attrs(node, &["enable", "forwardPlainNames"])?;
        let mut dns = Dns {
            enable: self.yes_no(node, "enable")?,
            forward_plain_names: self.yes_no(node, "forwardPlainNames")?,
            ..Dns::default()
        };
        for child in self.children(node, &["forwarder", "host"])? {
            if child.tag_name().name() == "forwarder" {
                self.only_attrs(child, &["domain", "addr"])?;
                let fwd = DnsForwarder {
                    domain: child.attribute("domain").map(str::to_owned),
                    addr: self.ip(child, "addr")?,
                };
                dns.forwarders.push(fwd);
            } else {
                dns.hosts.push(self.dns_host(child)?);
            }
            let single = Dns {
                forwarders: dns.forwarders.last().cloned().into_iter().collect(),
                hosts: dns.hosts.last().cloned().into_iter().collect(),
                ..Dns::default()
            };
            self.check(child, validate::dns(&single))?;
        }
        self.check(node, validate::dns(&dns))?;
        Ok(dns)
    }

    fn dns_host(&self, node: Node) -> Result<DnsHost, ParseError> {
        self.only_attrs(node, &["ip"])?;
        self.required(node, "ip")?;
        let ip = self.ip(node, "ip")?.expect("required");
        let mut hostnames = Vec::new();
        for child in self.children(node, &["hostname"])? {
            let name = self.text(child)?;
            self.check(child, validate::dns_name("hostname", "text", name))?;
            hostnames.push(name.to_owned());
        }
        Ok(DnsHost { ip, hostnames })
    }
}

fn list_or_none(names: &[&str]) -> String {
    if names.is_empty() {
        "none".to_owned()
    } else {
        names.join(", ")
    }
}
