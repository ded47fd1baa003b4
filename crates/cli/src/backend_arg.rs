//! `--backend`, offered only on the verbs it affects: those that apply
//! rules (define, edit, binding-create, reload) or print them (render).

/// The firewall backends `--backend` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Backend {
    /// ebtables, iptables and ip6tables (libvirt's layout), through their
    /// restore tools.
    Xtables,
    /// Tables of our own in nftables, one transaction per change.
    Nftables,
}

impl From<Backend> for nwfilter_driver::Backend {
    fn from(b: Backend) -> nwfilter_driver::Backend {
        match b {
            Backend::Xtables => nwfilter_driver::Backend::Xtables,
            Backend::Nftables => nwfilter_driver::Backend::Nftables,
        }
    }
}

#[derive(Debug, Clone, clap::Args)]
pub struct BackendArg {
    /// Firewall backend that applies (or `render` prints) the rules
    /// [default: `backend` in CONFIG_DIR/nwfilter.conf, else xtables].
    /// Through a daemon, the daemon's setting decides: a different
    /// --backend is refused.
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,
}
