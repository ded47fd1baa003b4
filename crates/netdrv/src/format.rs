//! [`Network`] → XML in libvirt 9.0's layout (`virNetworkDefFormatBuf`):
//! element order, single-quoted attributes, two-space indentation.
//!
//! Differences, deliberate: a network without a UUID is printed without
//! one (libvirt would invent a random one on every parse, which makes
//! `format` unstable; define assigns it), and `family='ipv4'` is not
//! printed (IPv4 is the default; `family='ipv6'` always is).

use quick_xml::escape::escape;

use crate::network::{mac_text, Dhcp, Dns, Forward, ForwardMode, IpDef, Lease, Nat, Network};

/// The normalised XML of a network, ending with a newline.
pub fn format_network(net: &Network) -> String {
    let mut w = Writer::default();
    let root_attrs: Vec<(&str, String)> = if net.ipv6_without_gateway {
        vec![("ipv6", "yes".to_owned())]
    } else {
        Vec::new()
    };
    w.open("network", &root_attrs);
    w.text_element("name", net.name.as_str());
    if let Some(uuid) = net.uuid {
        w.text_element("uuid", &uuid.hyphenated().to_string());
    }
    forward(&mut w, &net.forward);
    let mut bridge = Vec::new();
    if let Some(name) = &net.bridge.name {
        bridge.push(("name", name.to_string()));
    }
    bridge.push(("stp", if net.bridge.stp { "on" } else { "off" }.to_owned()));
    bridge.push(("delay", net.bridge.delay.to_string()));
    w.empty("bridge", &bridge);
    if let Some(mtu) = net.mtu {
        w.empty("mtu", &[("size", mtu.to_string())]);
    }
    if let Some(mac) = &net.mac {
        w.empty("mac", &[("address", mac_text(mac))]);
    }
    if let Some(domain) = &net.domain {
        let mut attrs = vec![("name", domain.name.clone())];
        if let Some(local) = domain.local_only {
            attrs.push(("localOnly", yes_no(local)));
        }
        w.empty("domain", &attrs);
    }
    dns(&mut w, &net.dns);
    for ip in &net.ips {
        ip_def(&mut w, ip);
    }
    // After the addresses, as libvirt prints portgroups; their filters
    // and the network's are our extension, printed only when present, so
    // libvirt's own documents print as libvirt prints them.
    for group in &net.portgroups {
        let mut attrs = vec![("name", group.name.clone())];
        if group.default {
            attrs.push(("default", "yes".to_owned()));
        }
        match &group.filterref {
            None => w.empty("portgroup", &attrs),
            Some(filterref) => {
                w.open("portgroup", &attrs);
                filter_ref(&mut w, filterref);
                w.close("portgroup");
            }
        }
    }
    if let Some(filterref) = &net.filterref {
        filter_ref(&mut w, filterref);
    }
    w.close("network");
    w.out
}

fn filter_ref(w: &mut Writer, r: &nwfilter_model::FilterRef) {
    let attrs = [("filter", r.filter.to_string())];
    if r.params.is_empty() {
        w.empty("filterref", &attrs);
        return;
    }
    w.open("filterref", &attrs);
    for (name, values) in r.params.iter() {
        for value in values {
            w.empty(
                "parameter",
                &[("name", name.to_owned()), ("value", value.clone())],
            );
        }
    }
    w.close("filterref");
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.to_owned()
}

fn forward(w: &mut Writer, fwd: &Forward) {
    let Some(mode) = fwd.mode.as_attr() else {
        return;
    };
    let mut attrs = Vec::new();
    if let Some(dev) = &fwd.dev {
        attrs.push(("dev", dev.to_string()));
    }
    attrs.push(("mode", mode.to_owned()));
    let has_nat = fwd.mode == ForwardMode::Nat && fwd.nat != Nat::default();
    if fwd.dev.is_none() && !has_nat {
        w.empty("forward", &attrs);
        return;
    }
    w.open("forward", &attrs);
    if has_nat {
        nat(w, &fwd.nat);
    }
    if let Some(dev) = &fwd.dev {
        w.empty("interface", &[("dev", dev.to_string())]);
    }
    w.close("forward");
}

fn nat(w: &mut Writer, nat: &Nat) {
    let attrs: Vec<(&str, String)> = nat.ipv6.map(|v| ("ipv6", yes_no(v))).into_iter().collect();
    if nat.address.is_none() && nat.port.is_none() {
        w.empty("nat", &attrs);
        return;
    }
    w.open("nat", &attrs);
    if let Some(a) = nat.address {
        w.empty(
            "address",
            &[("start", a.start.to_string()), ("end", a.end.to_string())],
        );
    }
    if let Some(p) = nat.port {
        w.empty(
            "port",
            &[("start", p.start.to_string()), ("end", p.end.to_string())],
        );
    }
    w.close("nat");
}

fn dns(w: &mut Writer, dns: &Dns) {
    if dns.is_empty() {
        return;
    }
    let mut attrs = Vec::new();
    if let Some(enable) = dns.enable {
        attrs.push(("enable", yes_no(enable)));
    }
    if let Some(fpn) = dns.forward_plain_names {
        attrs.push(("forwardPlainNames", yes_no(fpn)));
    }
    if dns.forwarders.is_empty() && dns.hosts.is_empty() {
        w.empty("dns", &attrs);
        return;
    }
    w.open("dns", &attrs);
    for fwd in &dns.forwarders {
        let mut attrs = Vec::new();
        if let Some(domain) = &fwd.domain {
            attrs.push(("domain", domain.clone()));
        }
        if let Some(addr) = fwd.addr {
            attrs.push(("addr", addr.to_string()));
        }
        w.empty("forwarder", &attrs);
    }
    for host in &dns.hosts {
        w.open("host", &[("ip", host.ip.to_string())]);
        for name in &host.hostnames {
            w.text_element("hostname", name);
        }
        w.close("host");
    }
    w.close("dns");
}

fn ip_def(w: &mut Writer, ip: &IpDef) {
    let mut attrs = Vec::new();
    if !ip.is_ipv4() {
        attrs.push(("family", "ipv6".to_owned()));
    }
    attrs.push(("address", ip.address.to_string()));
    if let Some(mask) = ip.netmask {
        attrs.push(("netmask", mask.to_string()));
    }
    if let Some(prefix) = ip.prefix.filter(|p| *p > 0) {
        attrs.push(("prefix", prefix.to_string()));
    }
    if let Some(local) = ip.local_ptr {
        attrs.push(("localPtr", yes_no(local)));
    }
    // libvirt always writes <ip …> and </ip> on separate lines, even empty.
    w.open("ip", &attrs);
    if let Some(root) = &ip.tftp_root {
        w.empty("tftp", &[("root", root.clone())]);
    }
    dhcp(w, &ip.dhcp);
    w.close("ip");
}

fn dhcp(w: &mut Writer, dhcp: &Dhcp) {
    // libvirt drops a <dhcp> holding only <bootp>; we keep it, so that
    // format never loses a setting.
    if dhcp.is_empty() {
        return;
    }
    w.open("dhcp", &[]);
    for range in &dhcp.ranges {
        let attrs = [
            ("start", range.start.to_string()),
            ("end", range.end.to_string()),
        ];
        with_lease(w, "range", &attrs, range.lease.as_ref());
    }
    for host in &dhcp.hosts {
        let mut attrs = Vec::new();
        if let Some(mac) = &host.mac {
            attrs.push(("mac", mac_text(mac)));
        }
        if let Some(id) = &host.id {
            attrs.push(("id", id.clone()));
        }
        if let Some(name) = &host.name {
            attrs.push(("name", name.clone()));
        }
        attrs.push(("ip", host.ip.to_string()));
        with_lease(w, "host", &attrs, host.lease.as_ref());
    }
    if let Some(bootp) = &dhcp.bootp {
        let mut attrs = vec![("file", bootp.file.clone())];
        if let Some(server) = bootp.server {
            attrs.push(("server", server.to_string()));
        }
        w.empty("bootp", &attrs);
    }
    w.close("dhcp");
}

fn with_lease(w: &mut Writer, tag: &str, attrs: &[(&str, String)], lease: Option<&Lease>) {
    let Some(lease) = lease else {
        w.empty(tag, attrs);
        return;
    };
    w.open(tag, attrs);
    if lease.expiry == 0 {
        w.empty("lease", &[("expiry", "0".to_owned())]);
    } else {
        w.empty(
            "lease",
            &[
                ("expiry", lease.expiry.to_string()),
                ("unit", lease.unit.as_str().to_owned()),
            ],
        );
    }
    w.close(tag);
}

/// Indented element output with quick-xml's escaping.
#[derive(Default)]
struct Writer {
    out: String,
    depth: usize,
}

impl Writer {
    fn start_tag(&mut self, tag: &str, attrs: &[(&str, String)]) {
        self.out.push_str(&"  ".repeat(self.depth));
        self.out.push('<');
        self.out.push_str(tag);
        for (name, value) in attrs {
            self.out.push(' ');
            self.out.push_str(name);
            self.out.push_str("='");
            self.out.push_str(&escape(value.as_str()));
            self.out.push('\'');
        }
    }

    fn open(&mut self, tag: &str, attrs: &[(&str, String)]) {
        self.start_tag(tag, attrs);
        self.out.push_str(">\n");
        self.depth += 1;
    }

    fn empty(&mut self, tag: &str, attrs: &[(&str, String)]) {
        self.start_tag(tag, attrs);
        self.out.push_str("/>\n");
    }

    fn close(&mut self, tag: &str) {
        self.depth -= 1;
        self.out.push_str(&"  ".repeat(self.depth));
        self.out.push_str("</");
        self.out.push_str(tag);
        self.out.push_str(">\n");
    }

    fn text_element(&mut self, tag: &str, text: &str) {
        self.start_tag(tag, &[]);
        self.out.push('>');
        self.out.push_str(&escape(text));
        self.out.push_str("</");
        self.out.push_str(tag);
        self.out.push_str(">\n");
    }
}
