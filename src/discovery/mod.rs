//! Peer discovery: DNS (A, AAAA, SRV) through hickory-resolver and a static
//! list. A poll returns the peers' node names (`basename@address`), own node
//! excluded, sorted, without duplicates.

mod diff;
pub mod dns;

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;
use hickory_resolver::proto::rr::RecordType;

pub use self::diff::{Diff, diff};
use crate::naming;
use crate::resolver::RESOLV_CONF;

/// Which records the DNS query asks for (resolved from `--record` and the
/// own address' family by `config`).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum RecordKind {
    A,
    Aaaa,
    #[value(name = "a+aaaa")]
    #[serde(rename = "a+aaaa")]
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
    /// `--max-srv-targets`: distinct SRV targets one answer may name.
    pub max_srv_targets: usize,
    /// `--max-peers`: addresses one answer may hold (A and AAAA together,
    /// or all SRV targets' together). `--peers` is not counted.
    pub max_peers: usize,
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

/// The default of `--max-srv-targets`. One target is one node; few full
/// meshes of Erlang nodes go past a couple of hundred (each node holds a
/// connection to every other), and each target whose address the server
/// did not send along costs a lookup (16 at once), so 256 bounds a poll to
/// 16 rounds of lookups.
pub const DEFAULT_MAX_SRV_TARGETS: usize = 256;
/// The largest `--max-srv-targets`: more SRV records than fit in a 64 KiB
/// DNS message anyway.
pub const MAX_SRV_TARGETS_LIMIT: usize = 4096;
/// The default of `--max-peers`: 4× the SRV default, room for any mesh
/// Erlang distribution runs well, while an answer of thousands (a
/// wildcard, a hostile or misconfigured server) never becomes thousands of
/// node names, log lines, peers-file lines and atoms in the VM (atoms are
/// never freed: issue 16).
pub const DEFAULT_MAX_PEERS: usize = 1024;
/// The largest `--max-peers`: 1/16 of the VM's default atom table
/// (1,048,576).
pub const MAX_PEERS_LIMIT: usize = 65_536;

/// What an answer held too many of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capped {
    SrvTargets,
    Addresses,
}

impl Capped {
    /// The flag that raises the cap.
    pub fn flag(self) -> &'static str {
        match self {
            Capped::SrvTargets => "--max-srv-targets",
            Capped::Addresses => "--max-peers",
        }
    }
}

impl std::fmt::Display for Capped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Capped::SrvTargets => "SRV targets",
            Capped::Addresses => "addresses",
        })
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
    /// The answer held more than a cap allows: nothing of it is used (no
    /// node name is built from it).
    #[error(
        "`{query}` answered with at least {count} {what}, more than the {cap} beamup takes from \
         one answer, so none of them is used; if the service really is that large, raise {}",
        .what.flag()
    )]
    TooLarge {
        query: String,
        what: Capped,
        /// At least this many: SRV targets' addresses stop being counted
        /// once over the cap.
        count: usize,
        cap: usize,
    },
}

/// Builds the resolver once and polls with it.
pub struct Discovery {
    settings: Settings,
    /// None when there is no query (static peers only).
    dns: Option<dns::Dns>,
}

impl Discovery {
    /// Builds the resolver from /etc/resolv.conf (or `--dns-server`). Logs a
    /// warning when it has to fall back to default nameservers.
    pub fn new(settings: Settings) -> anyhow::Result<Self> {
        Self::with_resolv_conf(settings, Path::new(RESOLV_CONF))
    }

    /// [`Discovery::new`] with another resolv.conf (tests).
    pub fn with_resolv_conf(settings: Settings, resolv_conf: &Path) -> anyhow::Result<Self> {
        let dns = match &settings.query {
            None => None,
            Some(query) => {
                let caps = dns::Caps {
                    srv_targets: settings.max_srv_targets,
                    addresses: settings.max_peers,
                };
                let (dns, warning) = dns::Dns::build(
                    resolv_conf,
                    settings.dns_server,
                    settings.timeout,
                    settings.attempts,
                    caps,
                )
                .with_context(|| format!("while building the DNS resolver for `{query}`"))?;
                if let Some(warning) = &warning {
                    tracing::warn!("{warning}");
                }
                tracing::debug!(servers = dns.servers(), %query, "DNS resolver ready");
                Some(dns)
            }
        };
        Ok(Discovery { settings, dns })
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Where DNS questions go, e.g. `127.0.0.11:53, 127.0.0.1:53 (from fallback)`.
    pub fn servers(&self) -> Option<&str> {
        self.dns.as_ref().map(|d| d.servers())
    }

    /// One poll: the current peer set. Nothing is cached between polls.
    pub async fn poll(&self) -> Result<BTreeSet<String>, PollError> {
        self.poll_full().await.map(|p| p.peers)
    }

    /// One poll, also telling whether the DNS answer listed this node itself.
    pub async fn poll_full(&self) -> Result<Poll, PollError> {
        let mut peers: BTreeSet<String> = self.settings.static_peers.iter().cloned().collect();
        if let (Some(dns), Some(query)) = (&self.dns, &self.settings.query) {
            // SRV targets are resolved in the own address' family: a node
            // speaking inet_tcp cannot dial an IPv6 peer, nor inet6_tcp an
            // IPv4 one.
            let family = if self.settings.own_address.to_canonical().is_ipv4() {
                RecordType::A
            } else {
                RecordType::AAAA
            };
            let addresses = dns.lookup(query, self.settings.record, family).await?;
            peers.extend(
                addresses
                    .into_iter()
                    .filter_map(peer_address)
                    .map(|ip| naming::node_name(&self.settings.basename, ip)),
            );
        }
        let own_listed = peers.iter().any(|node| is_own(node, &self.settings));
        peers.retain(|node| !is_own(node, &self.settings));
        Ok(Poll { peers, own_listed })
    }
}

/// An address from a DNS answer as a peer's address, if another host can
/// reach a node there: an IPv4-mapped IPv6 address is the IPv4 node;
/// loopback, unspecified, multicast, broadcast and link-local addresses are
/// never peers (a poisoned or misconfigured record must not make the release
/// dial itself or the whole link). `--peers` is not filtered: what a user
/// writes there is meant.
fn peer_address(ip: IpAddr) -> Option<IpAddr> {
    let ip = ip.to_canonical();
    match crate::address::unusable(ip, crate::address::IpFamily::Any, false) {
        None => Some(ip),
        Some(why) => {
            tracing::debug!(%ip, "DNS answer skipped: {why}");
            None
        }
    }
}

/// The outcome of one successful poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Poll {
    /// Peers, own node excluded.
    pub peers: BTreeSet<String>,
    /// The answer (DNS or static list) held this node itself: a removed node
    /// can tell it was removed (`--prune`).
    pub own_listed: bool,
}

/// The own node, also when written with another spelling of the own address
/// (`demo@FD00:0::1`, `demo@::ffff:10.0.0.1`).
fn is_own(node: &str, settings: &Settings) -> bool {
    if node == settings.own_node {
        return true;
    }
    let Some((name, host)) = node.split_once('@') else {
        return false;
    };
    let own_name = settings
        .own_node
        .split_once('@')
        .map_or(settings.basename.as_str(), |(name, _)| name);
    name == own_name
        && host
            .parse::<IpAddr>()
            .is_ok_and(|ip| ip.to_canonical() == settings.own_address.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(own: &str, static_peers: &[&str]) -> Settings {
        let own_address: IpAddr = own.parse().expect("own address");
        Settings {
            query: None,
            record: RecordKind::A,
            dns_server: None,
            timeout: Duration::from_secs(1),
            attempts: 1,
            max_srv_targets: DEFAULT_MAX_SRV_TARGETS,
            max_peers: DEFAULT_MAX_PEERS,
            static_peers: static_peers.iter().map(|p| p.to_string()).collect(),
            basename: "demo".into(),
            own_node: naming::node_name("demo", own_address),
            own_address,
        }
    }

    #[test]
    fn own_node_excluded() {
        // (own address, node, is own)
        let table = [
            ("10.0.0.1", "demo@10.0.0.1", true),
            ("10.0.0.1", "demo@10.0.0.2", false),
            ("10.0.0.1", "other@10.0.0.1", false),
            ("10.0.0.1", "demo@::ffff:10.0.0.1", true),
            ("fd00::1", "demo@fd00::1", true),
            ("fd00::1", "demo@FD00:0:0::1", true),
            ("fd00::1", "demo@fd00::2", false),
            ("fd00::1", "demo@host.example", false),
            ("fd00::1", "garbage", false),
        ];
        for (own, node, want) in table {
            assert_eq!(is_own(node, &settings(own, &[])), want, "{own} {node}");
        }
    }

    #[test]
    fn static_peers_sorted_deduplicated_without_own() {
        let s = settings(
            "10.0.0.1",
            &[
                "demo@10.0.0.3",
                "demo@10.0.0.1",
                "demo@10.0.0.2",
                "demo@10.0.0.3",
            ],
        );
        let discovery = Discovery::new(s).expect("discovery");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let peers = runtime.block_on(discovery.poll()).expect("poll");
        assert_eq!(
            peers.into_iter().collect::<Vec<_>>(),
            ["demo@10.0.0.2", "demo@10.0.0.3"]
        );
        assert!(discovery.servers().is_none());
    }

    #[test]
    fn only_reachable_addresses_are_peers() {
        // (address in a DNS answer, peer address)
        let table = [
            ("10.0.0.2", Some("10.0.0.2")),
            ("fd00::2", Some("fd00::2")),
            ("::ffff:10.0.0.2", Some("10.0.0.2")),
            ("127.0.0.1", None),
            ("127.8.9.10", None),
            ("::1", None),
            ("::ffff:127.0.0.1", None),
            ("0.0.0.0", None),
            ("::", None),
            ("224.0.0.1", None),
            ("ff02::1", None),
            ("255.255.255.255", None),
            ("169.254.1.1", None),
            ("fe80::1", None),
            ("::ffff:169.254.1.1", None),
        ];
        for (ip, want) in table {
            let ip: IpAddr = ip.parse().expect("ip");
            let want = want.map(|w| w.parse::<IpAddr>().expect("ip"));
            assert_eq!(peer_address(ip), want, "{ip}");
        }
    }

    #[test]
    fn ipv6_peers_formatted_like_erlang() {
        // Discovered addresses go through naming::node_name: plain, compressed,
        // lower case, no brackets (what `inet:ntoa/1` prints).
        let table = [
            ("fd00:0:0:0:0:0:0:1", "demo@fd00::1"),
            ("FDAA::A", "demo@fdaa::a"),
            ("10.0.0.2", "demo@10.0.0.2"),
        ];
        for (ip, want) in table {
            let ip: IpAddr = ip.parse().expect("ip");
            assert_eq!(naming::node_name("demo", ip), want);
        }
    }
}
