//! Variable environments along the `<filterref>` tree (reference
//! `nwfilter-xml.md` §6.4): the binding's parameters plus `MAC` at the top;
//! below, each `<filterref>`'s parameters are defaults that every variable
//! of the enclosing environment overrides.
//!
//! Environments are never copied: each is a node in an arena pointing at
//! its parent, and a lookup walks up to the top first (outer values win).

use nwfilter_model::{MacAddr6, Params};

use crate::iterate::Lookup;
use crate::reserved;

/// Index of an environment in an [`Envs`] arena.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct EnvId(usize);

#[derive(Debug)]
struct Env<'a> {
    parent: Option<EnvId>,
    /// At the top: the binding's parameters (they win over `MAC`). Below:
    /// the `<filterref>`'s parameters (defaults only).
    params: &'a Params,
}

/// All environments created while flattening one binding's filter tree.
#[derive(Debug)]
pub(crate) struct Envs<'a> {
    envs: Vec<Env<'a>>,
    /// `MAC` as libvirt fills it in: the binding's MAC in lowercase, used
    /// only when the binding's parameters do not supply `MAC`.
    mac: [String; 1],
    /// `TRUSTED_DHCPV6` and its prefix when no server is listed: `::`/0.
    any_server: [String; 2],
    /// `128` as many times as the longest `DHCPSERVERV6` list: the
    /// prefixes of listed servers (parallel to them on one iterator).
    host_prefixes: Vec<String>,
}

impl<'a> Envs<'a> {
    /// The arena with its top environment (always [`Envs::TOP`]), with
    /// room for `children` more.
    pub(crate) fn new(binding_params: &'a Params, mac: MacAddr6, children: usize) -> Envs<'a> {
        let mut envs = Vec::with_capacity(children + 1);
        envs.push(Env {
            parent: None,
            params: binding_params,
        });
        let mut envs = Envs {
            envs,
            mac: [mac_text(mac)],
            any_server: reserved::ANY_SERVER.map(str::to_owned),
            host_prefixes: Vec::new(),
        };
        envs.note_servers(binding_params);
        envs
    }

    pub(crate) const TOP: EnvId = EnvId(0);

    /// The environment a `<filterref>` with `params` sees inside `parent`.
    pub(crate) fn child(&mut self, parent: EnvId, params: &'a Params) -> EnvId {
        self.note_servers(params);
        self.envs.push(Env {
            parent: Some(parent),
            params,
        });
        EnvId(self.envs.len() - 1)
    }

    /// The value list of `name` in environment `id` (never empty).
    pub(crate) fn lookup(&self, id: EnvId, name: &str) -> Option<&[String]> {
        self.given(id, name).or_else(|| self.derived(id, name))
    }

    /// The value list some environment from `id` up gives `name`.
    fn given(&self, id: EnvId, name: &str) -> Option<&[String]> {
        let env = &self.envs[id.0];
        let own = || env.params.get(name).filter(|v| !v.is_empty());
        match env.parent {
            Some(parent) => self.given(parent, name).or_else(own),
            // `MAC` belongs to the top environment, so it beats a
            // `<filterref>`'s `MAC` parameter as in libvirt.
            None => own().or_else(|| (name == "MAC").then_some(&self.mac[..])),
        }
    }

    /// The values the compiler fills in when no environment gives them:
    /// the trusted DHCPv6 servers with their prefixes (see
    /// [`reserved::TRUSTED_DHCPV6`]), from a `DHCPSERVERV6` given anywhere
    /// up the tree.
    fn derived(&self, id: EnvId, name: &str) -> Option<&[String]> {
        match name {
            reserved::TRUSTED_DHCPV6 => Some(
                self.given(id, reserved::DHCPSERVERV6)
                    .unwrap_or(&self.any_server[..1]),
            ),
            reserved::TRUSTED_DHCPV6_PREFIX => Some(match self.given(id, reserved::DHCPSERVERV6) {
                Some(servers) => &self.host_prefixes[..servers.len()],
                None => &self.any_server[1..],
            }),
            _ => None,
        }
    }

    /// Whether `name` has the compiler's fixed default here, the same for
    /// every port: `TRUSTED_DHCPV6` and its prefix without a listed server
    /// (`::`/0). A backend that shares rules among ports then writes the
    /// value into the shared rule instead of looking it up per port.
    pub(crate) fn same_for_every_port(&self, id: EnvId, name: &str) -> bool {
        matches!(
            name,
            reserved::TRUSTED_DHCPV6 | reserved::TRUSTED_DHCPV6_PREFIX
        ) && self.given(id, name).is_none()
            && self.given(id, reserved::DHCPSERVERV6).is_none()
    }

    /// Makes [`Envs::derived`] able to give `TRUSTED_DHCPV6_PREFIX` for a
    /// `DHCPSERVERV6` list of `params`' length.
    fn note_servers(&mut self, params: &Params) {
        let listed = params
            .get(reserved::DHCPSERVERV6)
            .map_or(0, <[String]>::len);
        while self.host_prefixes.len() < listed {
            self.host_prefixes.push(reserved::HOST_PREFIX.to_owned());
        }
    }
}

/// `aa:bb:cc:dd:ee:ff`, lowercase as libvirt fills `MAC` in. Written by
/// hand: `format!` costs more than the rest of setting up a binding.
pub(crate) fn mac_text(mac: MacAddr6) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(17);
    for (i, b) in mac.as_bytes().iter().enumerate() {
        if i > 0 {
            s.push(':');
        }
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

/// One environment of an arena, as the rule expander sees it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct EnvView<'e, 'a> {
    pub(crate) envs: &'e Envs<'a>,
    pub(crate) id: EnvId,
}

impl<'e> Lookup<'e> for EnvView<'e, '_> {
    fn values(&self, name: &str) -> Option<&'e [String]> {
        self.envs.lookup(self.id, name)
    }
}
