//! Typed access to a bound rule's attributes.
//!
//! The front half promises concrete, type-checked values; these accessors
//! still check kind and range, because a value that slipped through must
//! become an error naming the rule, never a malformed command.

use std::net::IpAddr;

use nwfilter_model::{Attr, AttrValue, IpsetDir, MacAddr6, StateSet, TcpFlags, Value};

use super::error::LowerError;
use crate::bound::BoundRule;
use crate::ir::{AddrMatch, AddrRange, MacMatch, Negatable, PortRange};

/// A bound rule's protocol attributes, with the rule for error messages.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Attrs<'a> {
    pub(crate) rule: &'a BoundRule,
}

impl<'a> Attrs<'a> {
    pub(crate) fn new(rule: &'a BoundRule) -> Attrs<'a> {
        Attrs { rule }
    }

    pub(crate) fn get(&self, attr: Attr) -> Option<&'a AttrValue> {
        self.rule.rule.protocol.as_ref()?.get(attr)
    }

    pub(crate) fn has(&self, attr: Attr) -> bool {
        self.get(attr).is_some()
    }

    pub(crate) fn error(&self, attr: Attr, reason: impl Into<String>) -> LowerError {
        LowerError::Value {
            filter: self.rule.filter.clone(),
            rule: self.rule.rule_index + 1,
            attr: attr.name(),
            reason: reason.into(),
        }
    }

    fn wrong_kind(&self, attr: Attr, want: &str, got: &Value) -> LowerError {
        match got {
            Value::Var(v) => self.error(attr, format!("variable ${} was not bound", v.name)),
            other => self.error(attr, format!("expected {want}, got {other:?}")),
        }
    }

    /// An integer attribute that must fit `T`.
    pub(crate) fn num<T>(&self, attr: Attr) -> Result<Option<Negatable<T>>, LowerError>
    where
        T: TryFrom<u32>,
    {
        let Some(av) = self.get(attr) else {
            return Ok(None);
        };
        let Value::Number(n) = &av.value else {
            return Err(self.wrong_kind(attr, "a number", &av.value));
        };
        let value = T::try_from(n.value).map_err(|_| {
            self.error(
                attr,
                format!("value {} is out of range for this field", n.value),
            )
        })?;
        Ok(Some(Negatable {
            value,
            negated: av.negated,
        }))
    }

    /// `start`[..`end`] as a range; an end without a start is ignored, as
    /// libvirt does.
    pub(crate) fn range<T>(
        &self,
        start: Attr,
        end: Attr,
    ) -> Result<Option<PortRange<T>>, LowerError>
    where
        T: TryFrom<u32> + PartialOrd + Copy,
    {
        let Some(s) = self.num::<T>(start)? else {
            return Ok(None);
        };
        let end_value = self.num::<T>(end)?.map(|e| e.value);
        Ok(Some(PortRange {
            start: s.value,
            end: end_value,
            negated: s.negated,
        }))
    }

    pub(crate) fn mac(&self, attr: Attr) -> Result<Option<(MacAddr6, bool)>, LowerError> {
        let Some(av) = self.get(attr) else {
            return Ok(None);
        };
        match &av.value {
            Value::Mac(m) => Ok(Some((*m, av.negated))),
            other => Err(self.wrong_kind(attr, "a MAC address", other)),
        }
    }

    /// An address attribute with its (optional) mask attribute.
    pub(crate) fn mac_match(&self, addr: Attr, mask: Attr) -> Result<Option<MacMatch>, LowerError> {
        let Some((a, negated)) = self.mac(addr)? else {
            return Ok(None);
        };
        let mask = self.mac(mask)?.map(|(m, _)| m);
        Ok(Some(MacMatch {
            addr: a,
            mask,
            negated,
        }))
    }

    pub(crate) fn ip(&self, attr: Attr) -> Result<Option<(IpAddr, bool)>, LowerError> {
        let Some(av) = self.get(attr) else {
            return Ok(None);
        };
        match &av.value {
            Value::Ipv4(a) => Ok(Some((IpAddr::V4(*a), av.negated))),
            Value::Ipv6(a) => Ok(Some((IpAddr::V6(*a), av.negated))),
            other => Err(self.wrong_kind(attr, "an IP address", other)),
        }
    }

    pub(crate) fn prefix(&self, attr: Attr, max: u8) -> Result<Option<u8>, LowerError> {
        let Some(av) = self.get(attr) else {
            return Ok(None);
        };
        match &av.value {
            Value::Prefix(p) if *p <= max => Ok(Some(*p)),
            Value::Prefix(p) => Err(self.error(attr, format!("prefix length {p} exceeds {max}"))),
            other => Err(self.wrong_kind(attr, "a netmask", other)),
        }
    }

    /// An IP address attribute with its mask attribute.
    pub(crate) fn addr_match(
        &self,
        addr: Attr,
        mask: Attr,
    ) -> Result<Option<AddrMatch>, LowerError> {
        let Some((a, negated)) = self.ip(addr)? else {
            return Ok(None);
        };
        let max = if a.is_ipv4() { 32 } else { 128 };
        Ok(Some(AddrMatch {
            addr: a,
            prefix: self.prefix(mask, max)?,
            negated,
        }))
    }

    pub(crate) fn addr_range(&self, from: Attr, to: Attr) -> Result<Option<AddrRange>, LowerError> {
        let Some((f, negated)) = self.ip(from)? else {
            return Ok(None);
        };
        Ok(Some(AddrRange {
            from: f,
            to: self.ip(to)?.map(|(t, _)| t),
            negated,
        }))
    }

    pub(crate) fn flag(&self, attr: Attr) -> Result<Option<(bool, bool)>, LowerError> {
        let Some(av) = self.get(attr) else {
            return Ok(None);
        };
        match &av.value {
            Value::Bool(b) => Ok(Some((*b, av.negated))),
            other => Err(self.wrong_kind(attr, "true or false", other)),
        }
    }

    pub(crate) fn text(&self, attr: Attr) -> Result<Option<&'a str>, LowerError> {
        let Some(av) = self.get(attr) else {
            return Ok(None);
        };
        match &av.value {
            Value::Text(t) | Value::IpsetName(t) => Ok(Some(t.as_str())),
            other => Err(self.wrong_kind(attr, "text", other)),
        }
    }

    pub(crate) fn states(&self) -> Result<Option<StateSet>, LowerError> {
        let Some(av) = self.get(Attr::State) else {
            return Ok(None);
        };
        match &av.value {
            Value::States(s) => Ok(Some(*s)),
            other => Err(self.wrong_kind(Attr::State, "conntrack states", other)),
        }
    }

    pub(crate) fn tcp_flags(&self) -> Result<Option<(TcpFlags, bool)>, LowerError> {
        let Some(av) = self.get(Attr::Flags) else {
            return Ok(None);
        };
        match &av.value {
            Value::TcpFlags(f) => Ok(Some((*f, av.negated))),
            other => Err(self.wrong_kind(Attr::Flags, "TCP flags MASK/SET", other)),
        }
    }

    pub(crate) fn ipset_flags(&self) -> Result<Option<&'a [IpsetDir]>, LowerError> {
        let Some(av) = self.get(Attr::IpsetFlags) else {
            return Ok(None);
        };
        match &av.value {
            Value::IpsetFlags(f) => Ok(Some(f.as_slice())),
            other => Err(self.wrong_kind(Attr::IpsetFlags, "ipset flags", other)),
        }
    }
}
