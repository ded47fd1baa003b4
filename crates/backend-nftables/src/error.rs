//! Why a program cannot be rendered for nftables (its own module so that
//! the renderer and the match spellings share it without importing each
//! other).

/// A rule nft cannot express.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Unsupported {
    #[error("{0} cannot be expressed in nftables")]
    Feature(&'static str),
    #[error("ipset '{0}': kernel ipsets are not visible to nftables; use the xtables backend")]
    Ipset(String),
    #[error("tcp option kind {0} has no nft name (known kinds: 2, 3, 4, 5, 8)")]
    TcpOption(u8),
    #[error("reject in a bridge chain (the IR lowers it to drop there)")]
    BridgeReject,
    #[error("comment {0:?} {1}")]
    Comment(String, &'static str),
}

/// Why a port's program could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RenderError {
    #[error("port {port}, chain {chain}, rule {rule}: {source}")]
    Rule {
        port: String,
        chain: String,
        /// 1-based position in the IR chain.
        rule: usize,
        #[source]
        source: Unsupported,
    },
}
