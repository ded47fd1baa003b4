//! Bindings without XML: a builder that checks each value with the same
//! rules as the `<filterbinding>` parser (the model's constructors and
//! validators), so a value the XML path refuses is refused here too, and
//! the other way round (`tests` compares both paths).

use std::net::{IpAddr, Ipv4Addr};

use nwfilter_model::{FilterName, FilterRef, IfName, Owner, Params, Uuid};

/// How a port whose filters use `IP`, and whose binding does not set it,
/// learns its address (libvirt's `CTRL_IP_LEARNING` parameter).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LearningMode {
    /// The first IPv4 address the guest uses (libvirt's default).
    Any,
    /// Addresses from DHCP leases (DHCP snooping), following renewals and
    /// expiry.
    Dhcp,
    /// No learning: a missing `IP` is an error.
    None,
}

impl LearningMode {
    fn as_param(self) -> &'static str {
        match self {
            LearningMode::Any => "any",
            LearningMode::Dhcp => "dhcp",
            LearningMode::None => "none",
        }
    }
}

/// A value the [`BindingBuilder`] refused: which field, the value, and
/// the rule it breaks (the same rule the XML parser applies).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("binding: {field} {value:?} is not valid: {reason}")]
pub struct BindingError {
    /// The builder's field: `port`, `link device`, `mac`, `filter`,
    /// `owner name`, `parameter name`, `parameter value`.
    pub field: &'static str,
    /// The value as given.
    pub value: String,
    /// Why it is refused.
    pub reason: String,
}

impl BindingError {
    fn new(field: &'static str, value: &str, reason: impl ToString) -> BindingError {
        BindingError {
            field,
            value: value.to_owned(),
            reason: reason.to_string(),
        }
    }
}

/// A filter binding: a filter, with parameters, attached to a VM's port.
/// Made by [`BindingBuilder::build`] or read back from a
/// [`Host`](crate::Host).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub(crate) inner: nwfilter_model::Binding,
}

impl Binding {
    /// The host-side device of the VM's port (`vnet0`).
    pub fn port(&self) -> &str {
        self.inner.portdev.as_str()
    }

    /// The guest's MAC address, lower case (`52:54:00:12:34:56`).
    pub fn mac(&self) -> String {
        self.inner.mac.to_string().to_ascii_lowercase()
    }

    /// The top filter's name.
    pub fn filter(&self) -> &str {
        self.inner.filterref.filter.as_str()
    }

    /// The values of parameter `name`, in order (empty when unset).
    pub fn parameter(&self, name: &str) -> &[String] {
        self.inner.filterref.params.get(name).unwrap_or(&[])
    }

    /// The owning VM's name.
    pub fn owner_name(&self) -> &str {
        &self.inner.owner.name
    }

    /// The owning VM's UUID.
    pub fn owner_uuid(&self) -> Uuid {
        self.inner.owner.uuid
    }

    /// The `<filterbinding>` document, formatted as libvirt does.
    pub fn to_xml(&self) -> String {
        nwfilter_model::format_binding(&self.inner)
    }

    /// Parses a `<filterbinding>` document, with the same checks as
    /// [`Host::create_binding_xml`](crate::Host::create_binding_xml).
    ///
    /// # Errors
    /// [`Error::InvalidDocument`](crate::Error::InvalidDocument), naming
    /// the element, attribute and line.
    pub fn from_xml(xml: &str) -> Result<Binding, crate::Error> {
        let inner =
            nwfilter_model::parse_binding(xml).map_err(|e| crate::Error::InvalidDocument {
                message: format!("invalid filter binding document: {e}"),
            })?;
        Ok(Binding { inner })
    }
}

/// Builds a [`Binding`] from typed values.
///
/// ```
/// use nwfilter::{BindingBuilder, LearningMode, Uuid};
///
/// let vm = Uuid::parse_str("d54df46f-1ab5-4a22-8618-4560ef5fac2c").unwrap();
/// let binding = BindingBuilder::new("web1", vm, "vnet0", "52:54:00:12:34:56", "clean-traffic")
///     .learning(LearningMode::Dhcp)
///     .dhcp_server("192.0.2.1".parse().unwrap())
///     .build()
///     .unwrap();
/// assert_eq!(binding.parameter("CTRL_IP_LEARNING"), ["dhcp"]);
///
/// // The same rules as the XML parser: a port name has at most 15 bytes.
/// let err = BindingBuilder::new("web1", vm, "a-very-long-port-name", "52:54:00:12:34:56", "clean-traffic")
///     .build()
///     .unwrap_err();
/// assert_eq!(err.field, "port");
/// ```
#[derive(Debug, Clone)]
pub struct BindingBuilder {
    owner_name: String,
    owner_uuid: Uuid,
    port: String,
    link_device: Option<String>,
    mac: String,
    filter: String,
    params: Vec<(String, String)>,
}

impl BindingBuilder {
    /// A binding of `filter` to `port` of the VM `owner_name`/`owner_uuid`
    /// whose NIC has `mac` (`xx:xx:xx:xx:xx:xx`). Nothing is checked
    /// before [`BindingBuilder::build`].
    pub fn new(
        owner_name: impl Into<String>,
        owner_uuid: Uuid,
        port: impl Into<String>,
        mac: impl Into<String>,
        filter: impl Into<String>,
    ) -> BindingBuilder {
        BindingBuilder {
            owner_name: owner_name.into(),
            owner_uuid,
            port: port.into(),
            link_device: None,
            mac: mac.into(),
            filter: filter.into(),
            params: Vec::new(),
        }
    }

    /// For macvtap-style ports: the device IP learning listens on
    /// (`<linkdev>`).
    pub fn link_device(mut self, device: impl Into<String>) -> BindingBuilder {
        self.link_device = Some(device.into());
        self
    }

    /// Adds one value to parameter `name` (a name given several times is
    /// a list, as in libvirt).
    pub fn parameter(
        mut self,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> BindingBuilder {
        self.params.push((name.into(), value.into()));
        self
    }

    /// Adds an address the guest may use (`IP`, or `IPV6` for an IPv6
    /// address). Without any `IP`, a filter that needs it learns it.
    pub fn ip(self, addr: IpAddr) -> BindingBuilder {
        let name = if addr.is_ipv4() { "IP" } else { "IPV6" };
        self.parameter(name, addr.to_string())
    }

    /// How `IP` is learned when no address is given
    /// (`CTRL_IP_LEARNING`).
    pub fn learning(self, mode: LearningMode) -> BindingBuilder {
        self.parameter("CTRL_IP_LEARNING", mode.as_param())
    }

    /// Trusts DHCP replies from `server` only (`DHCPSERVER`; unset: any).
    pub fn dhcp_server(self, server: Ipv4Addr) -> BindingBuilder {
        self.parameter("DHCPSERVER", server.to_string())
    }

    /// Checks every value as the `<filterbinding>` parser does.
    ///
    /// # Errors
    /// The first value refused, naming its field.
    pub fn build(self) -> Result<Binding, BindingError> {
        if self.owner_name.is_empty() {
            return Err(BindingError::new(
                "owner name",
                "",
                "the owner name is empty",
            ));
        }
        let port =
            IfName::new(self.port.clone()).map_err(|e| BindingError::new("port", &self.port, e))?;
        let linkdev = match &self.link_device {
            Some(dev) => Some(
                IfName::new(dev.clone()).map_err(|e| BindingError::new("link device", dev, e))?,
            ),
            None => None,
        };
        let mac = nwfilter_model::parse_mac(&self.mac).ok_or_else(|| {
            BindingError::new("mac", &self.mac, "expected a MAC address xx:xx:xx:xx:xx:xx")
        })?;
        let filter = FilterName::new(self.filter.clone())
            .map_err(|e| BindingError::new("filter", &self.filter, e))?;
        let mut params = Params::default();
        for (name, value) in self.params {
            if !nwfilter_model::valid_param_name(&name) {
                let why = "a parameter name is one or more of [A-Za-z0-9_]";
                return Err(BindingError::new("parameter name", &name, why));
            }
            if !nwfilter_model::valid_param_value(&value) {
                let why = "a parameter value is one or more of [A-Za-z0-9_.:]";
                return Err(BindingError::new("parameter value", &value, why));
            }
            params.push(name, value);
        }
        Ok(Binding {
            inner: nwfilter_model::Binding {
                owner: Owner {
                    name: self.owner_name,
                    uuid: self.owner_uuid,
                },
                portdev: port,
                linkdev,
                mac,
                filterref: FilterRef { filter, params },
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const VM: &str = "d54df46f-1ab5-4a22-8618-4560ef5fac2c";

    fn xml(port: &str, mac: &str, filter: &str, param: (&str, &str)) -> String {
        let esc = |s: &str| {
            s.replace('&', "&amp;")
                .replace('\'', "&apos;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
        };
        format!(
            "<filterbinding><owner><name>vm</name><uuid>{VM}</uuid></owner>\
             <portdev name='{}'/><mac address='{}'/>\
             <filterref filter='{}'><parameter name='{}' value='{}'/></filterref>\
             </filterbinding>",
            esc(port),
            esc(mac),
            esc(filter),
            esc(param.0),
            esc(param.1)
        )
    }

    fn typed(
        port: &str,
        mac: &str,
        filter: &str,
        param: (&str, &str),
    ) -> Result<Binding, BindingError> {
        BindingBuilder::new("vm", Uuid::parse_str(VM).unwrap(), port, mac, filter)
            .parameter(param.0, param.1)
            .build()
    }

    /// Each case: one field changed from a good binding; both paths must
    /// agree on accepting it, and when they accept, on the binding.
    #[test]
    fn the_builder_accepts_and_refuses_exactly_what_the_xml_parser_does() {
        let good = (
            "vnet0",
            "52:54:00:12:34:56",
            "clean-traffic",
            ("IP", "192.0.2.10"),
        );
        let ports = [
            "vnet0",
            "tap-vm_1.0",
            "a23456789012345",
            "a234567890123456",
            "",
            "a b",
            "a/b",
            "-x",
            ".",
        ];
        let macs = [
            "52:54:00:12:34:56",
            "52:54:0:1:2:3",
            "AA:BB:CC:DD:EE:FF",
            "52:54:00:12:34",
            "52:54:00:12:34:56:78",
            "52-54-00-12-34-56",
            "5254.0012.3456",
            "52:54:00:12:34:5g",
            "",
            "52:54:00:12:34:56 ",
        ];
        let filters = [
            "clean-traffic",
            "my.filter",
            "",
            "a/b",
            "..",
            "it's",
            "a b",
            &"f".repeat(201),
        ];
        let params = [
            ("IP", "10.0.0.1"),
            ("IPV6", "fd00::1"),
            ("MAC", "52:54:00:12:34:56"),
            ("", "x"),
            ("A-B", "x"),
            ("IP", ""),
            ("IP", "10.0.0.1/24"),
            ("IP", "a b"),
            ("CTRL_IP_LEARNING", "dhcp"),
        ];
        let mut cases: Vec<(&str, &str, &str, (&str, &str))> = Vec::new();
        cases.extend(ports.iter().map(|p| (*p, good.1, good.2, good.3)));
        cases.extend(macs.iter().map(|m| (good.0, *m, good.2, good.3)));
        cases.extend(filters.iter().map(|f| (good.0, good.1, *f, good.3)));
        cases.extend(params.iter().map(|p| (good.0, good.1, good.2, *p)));
        let (mut accepted, mut refused) = (0, 0);
        for (port, mac, filter, param) in cases {
            let from_xml = nwfilter_model::parse_binding(&xml(port, mac, filter, param));
            let from_builder = typed(port, mac, filter, param);
            match (&from_xml, &from_builder) {
                (Ok(parsed), Ok(built)) => {
                    assert_eq!(parsed, &built.inner, "{port} {mac} {filter} {param:?}");
                    accepted += 1;
                }
                (Err(_), Err(_)) => refused += 1,
                _ => panic!(
                    "the paths disagree on {port:?} {mac:?} {filter:?} {param:?}: \
                     XML {from_xml:?}, builder {from_builder:?}"
                ),
            }
        }
        assert!(
            accepted >= 10 && refused >= 15,
            "{accepted} accepted, {refused} refused"
        );
    }

    #[test]
    fn an_error_names_the_field_and_the_value() {
        let err = typed(
            "vnet0",
            "52:54:00:12:34",
            "clean-traffic",
            ("IP", "10.0.0.1"),
        )
        .unwrap_err();
        assert_eq!((err.field, err.value.as_str()), ("mac", "52:54:00:12:34"));
        assert!(err.to_string().contains("xx:xx:xx:xx:xx:xx"), "{err}");
        let err = typed("vnet0", "52:54:00:12:34:56", "f", ("IP", "a;b")).unwrap_err();
        assert_eq!(err.field, "parameter value");
        let empty_owner = BindingBuilder::new("", Uuid::nil(), "vnet0", "52:54:00:12:34:56", "f");
        assert_eq!(empty_owner.build().unwrap_err().field, "owner name");
    }

    #[test]
    fn typed_helpers_set_libvirts_parameters_and_round_trip_through_xml() {
        let built = BindingBuilder::new(
            "vm",
            Uuid::parse_str(VM).unwrap(),
            "vnet0",
            "52:54:00:AB:CD:EF",
            "clean-traffic",
        )
        .ip("192.0.2.10".parse().unwrap())
        .ip("2001:db8::10".parse().unwrap())
        .learning(LearningMode::Dhcp)
        .dhcp_server(Ipv4Addr::new(192, 0, 2, 1))
        .link_device("eth0")
        .build()
        .unwrap();
        assert_eq!(built.parameter("IP"), ["192.0.2.10"]);
        assert_eq!(built.parameter("IPV6"), ["2001:db8::10"]);
        assert_eq!(built.parameter("DHCPSERVER"), ["192.0.2.1"]);
        assert_eq!(built.mac(), "52:54:00:ab:cd:ef");
        assert_eq!(Binding::from_xml(&built.to_xml()).unwrap(), built);
    }
}
