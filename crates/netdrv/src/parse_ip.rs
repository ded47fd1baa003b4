//! `<ip>` and its `<dhcp>`, `<tftp>` children.

use std::net::{IpAddr, Ipv4Addr};

use roxmltree::Node;

use crate::error::{Invalid, ParseError};
use crate::network::{Bootp, Dhcp, DhcpHost, DhcpRange, IpDef, Lease, LeaseUnit};
use crate::parse::Cx;
use crate::validate;

impl Cx<'_, '_> {
    pub(crate) fn ip_def(&self, node: Node) -> Result<IpDef, ParseError> {
        self.only_attrs(
            node,
            &["address", "netmask", "prefix", "family", "localPtr"],
        )?;
        let text = self.required(node, "address")?;
        let address = self.ip(node, "address")?.expect("required");
        match (node.attribute("family"), address) {
            (None | Some("ipv4"), IpAddr::V4(_)) | (Some("ipv6"), IpAddr::V6(_)) => {}
            (None, IpAddr::V6(_)) => {
                return Err(self.fail(
                    node,
                    Invalid::value("ip", "address", text, "an IPv6 address needs family='ipv6'"),
                ))
            }
            (Some(family @ ("ipv4" | "ipv6")), _) => {
                return Err(self.fail(
                    node,
                    Invalid::value(
                        "ip",
                        "address",
                        text,
                        format!("not an address of family '{family}'"),
                    ),
                ))
            }
            (Some(other), _) => {
                return Err(self.fail(
                    node,
                    Invalid::value("ip", "family", other, "must be 'ipv4' or 'ipv6'"),
                ))
            }
        }
        let mut ip = IpDef {
            address,
            netmask: self.parsed::<Ipv4Addr>(node, "netmask", "an IPv4 netmask")?,
            prefix: self.parsed(node, "prefix", "a prefix length")?,
            local_ptr: self.yes_no(node, "localPtr")?,
            tftp_root: None,
            dhcp: Dhcp::default(),
        };
        let children = self.children(node, &["tftp", "dhcp"])?;
        for (i, child) in children.iter().enumerate() {
            let tag = child.tag_name().name();
            if children[..i].iter().any(|c| c.tag_name().name() == tag) {
                return Err(self.fail(
                    *child,
                    Invalid::element(tag, "may appear only once in <ip>"),
                ));
            }
            if tag == "tftp" {
                self.only_attrs(*child, &["root"])?;
                ip.tftp_root = Some(self.required(*child, "root")?.to_owned());
                self.check(*child, validate::ip_addressing(&ip))?;
            }
        }
        self.check(node, validate::ip_addressing(&ip))?;
        if let Some(dhcp) = children.iter().find(|c| c.tag_name().name() == "dhcp") {
            self.dhcp(*dhcp, &mut ip)?;
        }
        Ok(ip)
    }

    fn dhcp(&self, node: Node, ip: &mut IpDef) -> Result<(), ParseError> {
        self.only_attrs(node, &[])?;
        for child in self.children(node, &["range", "host", "bootp"])? {
            match child.tag_name().name() {
                "range" => {
                    let range = self.dhcp_range(child)?;
                    self.check(child, validate::dhcp_range(ip, &ip.dhcp.ranges, &range))?;
                    ip.dhcp.ranges.push(range);
                }
                "host" => {
                    let host = self.dhcp_host(child)?;
                    self.check(child, validate::dhcp_host(ip, &ip.dhcp.hosts, &host))?;
                    ip.dhcp.hosts.push(host);
                }
                _ => {
                    if ip.dhcp.bootp.is_some() {
                        return Err(
                            self.fail(child, Invalid::element("bootp", "may appear only once"))
                        );
                    }
                    self.only_attrs(child, &["file", "server"])?;
                    ip.dhcp.bootp = Some(Bootp {
                        file: self.required(child, "file")?.to_owned(),
                        server: self.ip(child, "server")?,
                    });
                    self.check(child, validate::bootp(ip, &ip.dhcp))?;
                }
            }
        }
        Ok(())
    }

    fn dhcp_range(&self, node: Node) -> Result<DhcpRange, ParseError> {
        self.only_attrs(node, &["start", "end"])?;
        self.required(node, "start")?;
        self.required(node, "end")?;
        Ok(DhcpRange {
            start: self.ip(node, "start")?.expect("required"),
            end: self.ip(node, "end")?.expect("required"),
            lease: self.lease_child(node)?,
        })
    }

    fn dhcp_host(&self, node: Node) -> Result<DhcpHost, ParseError> {
        self.only_attrs(node, &["mac", "id", "name", "ip"])?;
        self.required(node, "ip")?;
        Ok(DhcpHost {
            mac: self.mac(node, "mac")?,
            id: node.attribute("id").map(str::to_owned),
            name: node.attribute("name").map(str::to_owned),
            ip: self.ip(node, "ip")?.expect("required"),
            lease: self.lease_child(node)?,
        })
    }

    /// The optional `<lease expiry unit/>` of a range or host.
    fn lease_child(&self, node: Node) -> Result<Option<Lease>, ParseError> {
        let children = self.children(node, &["lease"])?;
        if let Some(extra) = children.get(1) {
            return Err(self.fail(*extra, Invalid::element("lease", "may appear only once")));
        }
        let Some(lease) = children.first().copied() else {
            return Ok(None);
        };
        self.only_attrs(lease, &["expiry", "unit"])?;
        self.required(lease, "expiry")?;
        let expiry = self
            .parsed(lease, "expiry", "a whole number")?
            .expect("required");
        let unit = match lease.attribute("unit") {
            None | Some("minutes") => LeaseUnit::Minutes,
            Some("seconds") => LeaseUnit::Seconds,
            Some("hours") => LeaseUnit::Hours,
            Some(other) => {
                return Err(self.fail(
                    lease,
                    Invalid::value("lease", "unit", other, "must be seconds, minutes or hours"),
                ))
            }
        };
        let lease_def = Lease { expiry, unit };
        self.check(lease, validate::lease(&lease_def))?;
        Ok(Some(lease_def))
    }
}
