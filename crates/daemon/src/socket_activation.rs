//! Sockets handed over by systemd (socket activation, `sd_listen_fds(3)`):
//! with `contrib/nwfilterd-libvirt*.socket` systemd owns libvirt's socket
//! paths, as it does for libvirt's own `virtnwfilterd`, and passes the
//! listening sockets to the daemon. Clients that connect while the daemon
//! restarts wait in the socket's queue instead of failing.
//!
//! Each descriptor is known by its name (`LISTEN_FDNAMES`, set by the
//! unit's `FileDescriptorName=` or `systemd-socket-activate --fdname`):
//! [`LIBVIRT`] is served read-write, [`LIBVIRT_RO`] read-only. Without
//! `LISTEN_FDS` the daemon binds the paths it was given itself.
//!
//! The descriptors are taken with the `listenfd` crate, which checks
//! `LISTEN_PID`, checks that each is a Unix stream socket, marks it
//! close-on-exec and hands it over as an owned [`UnixListener`] (turning a
//! number into a socket is `unsafe`, which this workspace forbids).

use std::io;
use std::os::unix::net::UnixListener;
use std::path::Path;

use crate::libvirt::{Listener, ListenerError};

/// The name of the read-write libvirt socket's descriptor.
pub const LIBVIRT: &str = "libvirt";
/// The name of the read-only libvirt socket's descriptor.
pub const LIBVIRT_RO: &str = "libvirt-ro";

/// The environment of the protocol; removed once read, so that the
/// programs the daemon starts (firewall tools, dnsmasq) do not see it.
const VARIABLES: [&str; 3] = ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"];

/// What a passed descriptor is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Libvirt,
    LibvirtReadOnly,
}

impl Role {
    fn read_only(self) -> bool {
        self == Role::LibvirtReadOnly
    }
}

/// Why the passed sockets cannot be used (the daemon does not start: a
/// unit that passes sockets the daemon ignores would leave its clients
/// waiting forever).
#[derive(Debug, thiserror::Error)]
pub enum ActivationError {
    #[error(
        "socket activation: LISTEN_FDNAMES names {names} socket(s) but LISTEN_FDS passes {fds}"
    )]
    NameCount { names: usize, fds: usize },
    #[error(
        "socket activation: socket {index} is named '{name}'; nwfilterd serves '{LIBVIRT}' \
         (read-write) and '{LIBVIRT_RO}' (read-only): set FileDescriptorName= in the .socket unit \
         (systemd-socket-activate: --fdname)"
    )]
    UnknownName { index: usize, name: String },
    #[error(
        "socket activation: {fds} socket(s) passed without names (LISTEN_FDNAMES): name them \
         '{LIBVIRT}' and '{LIBVIRT_RO}' with FileDescriptorName= (systemd-socket-activate: --fdname)"
    )]
    Unnamed { fds: usize },
    #[error("socket activation: two sockets are named '{name}'")]
    Twice { name: String },
    #[error("socket activation: socket {index} ('{name}'): {source}")]
    Unusable {
        index: usize,
        name: String,
        #[source]
        source: io::Error,
    },
}

/// The libvirt sockets systemd passed, by role.
#[derive(Debug, Default)]
pub struct Activated {
    libvirt: Option<UnixListener>,
    libvirt_ro: Option<UnixListener>,
}

impl Activated {
    /// Takes the sockets passed to this process, if any, and clears the
    /// protocol's variables. Call it before any thread starts (the
    /// environment is changed).
    pub fn take_from_env() -> Result<Activated, ActivationError> {
        let names = std::env::var("LISTEN_FDNAMES").ok();
        let mut fds = listenfd::ListenFd::from_env();
        for variable in VARIABLES {
            std::env::remove_var(variable);
        }
        let roles = roles(names.as_deref(), fds.len())?;
        let mut activated = Activated::default();
        for (index, role) in roles.into_iter().enumerate() {
            let unusable = |source| ActivationError::Unusable {
                index,
                name: role_name(role).to_owned(),
                source,
            };
            let listener = fds
                .take_unix_listener(index)
                .map_err(unusable)?
                .ok_or_else(|| unusable(io::Error::other("taken twice")))?;
            prepare(&listener).map_err(unusable)?;
            let slot = match role {
                Role::Libvirt => &mut activated.libvirt,
                Role::LibvirtReadOnly => &mut activated.libvirt_ro,
            };
            *slot = Some(listener);
        }
        Ok(activated)
    }

    /// Whether systemd passed any socket.
    pub fn is_empty(&self) -> bool {
        self.libvirt.is_none() && self.libvirt_ro.is_none()
    }

    /// The libvirt listeners to serve: a passed socket for each role, else
    /// the path given on the command line, bound by the daemon (systemd
    /// knows the path of a socket it passed; one given too is not bound).
    pub fn libvirt_listeners(
        self,
        read_write: Option<&Path>,
        read_only: Option<&Path>,
    ) -> Result<Vec<Listener>, ListenerError> {
        let wanted = [
            (self.libvirt, read_write, false),
            (self.libvirt_ro, read_only, true),
        ];
        let mut listeners = Vec::new();
        for (passed, path, read_only) in wanted {
            match (passed, path) {
                (Some(socket), _) => listeners.push(Listener::passed(socket, read_only)),
                (None, Some(path)) => listeners.push(Listener::bind(path, read_only)?),
                (None, None) => {}
            }
        }
        Ok(listeners)
    }
}

/// The role of each passed descriptor, in order, from `LISTEN_FDNAMES`
/// (`names`, colon-separated) and the number passed.
pub fn roles(names: Option<&str>, fds: usize) -> Result<Vec<Role>, ActivationError> {
    if fds == 0 {
        return Ok(Vec::new());
    }
    let Some(names) = names.filter(|n| !n.is_empty()) else {
        return Err(ActivationError::Unnamed { fds });
    };
    let names: Vec<&str> = names.split(':').collect();
    if names.len() != fds {
        return Err(ActivationError::NameCount {
            names: names.len(),
            fds,
        });
    }
    let mut roles = Vec::with_capacity(fds);
    for (index, name) in names.into_iter().enumerate() {
        let role = match name {
            LIBVIRT => Role::Libvirt,
            LIBVIRT_RO => Role::LibvirtReadOnly,
            _ => {
                return Err(ActivationError::UnknownName {
                    index,
                    name: name.to_owned(),
                })
            }
        };
        if roles.contains(&role) {
            return Err(ActivationError::Twice {
                name: name.to_owned(),
            });
        }
        roles.push(role);
    }
    Ok(roles)
}

fn role_name(role: Role) -> &'static str {
    if role.read_only() {
        LIBVIRT_RO
    } else {
        LIBVIRT
    }
}

/// systemd may pass a listening socket non-blocking; the accept loop
/// blocks. (listenfd has already marked it close-on-exec: the programs
/// the daemon runs, such as a long-lived dnsmasq, must not inherit it and
/// take clients' connections after the daemon is gone.)
fn prepare(listener: &UnixListener) -> io::Result<()> {
    listener.set_nonblocking(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_passed_is_no_socket() {
        assert_eq!(roles(None, 0).unwrap(), Vec::new());
        assert_eq!(roles(Some(""), 0).unwrap(), Vec::new());
    }

    #[test]
    fn names_give_the_roles_in_order() {
        assert_eq!(
            roles(Some("libvirt-ro:libvirt"), 2).unwrap(),
            vec![Role::LibvirtReadOnly, Role::Libvirt]
        );
        assert_eq!(roles(Some("libvirt"), 1).unwrap(), vec![Role::Libvirt]);
    }

    #[test]
    fn wrong_or_missing_names_are_refused_naming_what_is_wrong() {
        let err = roles(None, 1).unwrap_err().to_string();
        assert!(err.contains("without names"), "{err}");
        let err = roles(Some("libvirt"), 2).unwrap_err().to_string();
        assert!(
            err.contains("names 1 socket(s) but LISTEN_FDS passes 2"),
            "{err}"
        );
        let err = roles(Some("libvirt:virtnwfilterd-admin"), 2)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("socket 1 is named 'virtnwfilterd-admin'"),
            "{err}"
        );
        let err = roles(Some("libvirt:libvirt"), 2).unwrap_err().to_string();
        assert!(err.contains("two sockets are named 'libvirt'"), "{err}");
    }
}
