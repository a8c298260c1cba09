//! `--connect`, the mesh policy: after each poll and each relay event, make
//! the release connected to the reported peers through the distribution
//! client (`crate::dist`, the protocol only), log what changed per peer and
//! hand the states to the peers file.
//!
//! - this file: what the reporter calls ([`Mesh`]) and the per-peer log;
//! - [`connector`]: the session to the local node, its relay, the syncs
//!   (whom to dial, prune, leave);
//! - [`dial`]: one peer's dialing policy (backoff, quick drops, probes);
//! - [`wait`]: how often the booting VM is looked for.

mod connector;
mod dial;
mod wait;

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, info};

pub use self::connector::{Connector, LocalState, Seen, SyncReport};
pub use self::dial::SyncCause;
use self::wait::VmWait;
use super::ConnectSettings;
use crate::dist::SessionOptions;
use crate::naming;
use crate::peer::PeerState;

pub struct Mesh {
    connector: Connector,
    local: Option<LocalState>,
    peers: BTreeMap<String, PeerState>,
    /// The look-ups of the booting VM.
    wait: VmWait,
    interval: Duration,
}

/// What the local side says between polls.
#[derive(Debug, PartialEq, Eq)]
pub enum News {
    /// Sync now: the VM registered, a peer dropped (or a dropped one is
    /// back), a pruned node connected again, or the connection to the VM
    /// ended.
    Sync,
    /// Peers came up: only their states changed (rewrite the files).
    Changed,
}

impl Mesh {
    pub fn new(settings: &ConnectSettings, own_address: IpAddr, interval: Duration) -> Self {
        // Half an interval for connect_node replies: a vanished peer (still
        // listed while leave-after counts) must not delay the next poll.
        let wait = (interval / 2).max(Duration::from_millis(200));
        let connector = Connector::new(
            settings.local_node.clone(),
            naming::hidden_node_name(own_address),
            settings.cookie.clone(),
            // Leaving the cluster disconnects every peer: the connector's
            // disconnecting side serves both flags.
            settings.prune || settings.leave_when_unlisted,
        )
        .with_options(SessionOptions {
            epmd_port: settings.epmd_port,
            ..SessionOptions::default()
        })
        .with_connect_wait(wait);
        Mesh {
            wait: VmWait::new(connector.epmd_port()),
            connector,
            local: None,
            peers: BTreeMap::new(),
            interval,
        }
    }

    /// Whether the local node is still booting (not yet reached).
    pub fn waiting(&self) -> bool {
        matches!(self.local, None | Some(LocalState::Waiting(_)))
    }

    /// The local node's state in words, for `beamup status`.
    pub fn local_text(&self) -> String {
        match &self.local {
            None => "not reached yet".into(),
            Some(LocalState::Connected) => "connected".into(),
            Some(LocalState::Waiting(why)) => format!("waiting: {why}"),
            Some(LocalState::CookieRejected) => "cookie rejected".into(),
            Some(LocalState::Error(e)) => format!("error: {e}"),
        }
    }

    /// One sync; returns whether any state changed (the peers file is then
    /// rewritten).
    pub async fn sync(
        &mut self,
        peers: &BTreeSet<String>,
        left: &[String],
        cause: SyncCause,
    ) -> bool {
        let report = self.connector.sync(peers, left, cause).await;
        self.absorb(report)
    }

    /// Waits for news from the local side and takes it in: while the VM
    /// boots, looks for it (see [`VmWait`]); once connected, what the relay
    /// in the VM says, and the watch of dropped peers' epmds. Cancel-safe;
    /// while there is nothing to wait for (no connection, the VM not looked
    /// for any more) it never returns: the next poll syncs.
    pub async fn news(&mut self) -> News {
        loop {
            if self.waiting() {
                // The connection ended: no more of a burst of drops can come.
                self.connector.say_drops();
                let Some(delay) = self.wait.next_check(Instant::now(), self.interval) else {
                    return std::future::pending().await;
                };
                self.wait.until_check(delay).await;
                if self.wait.look_due(Instant::now()) && self.connector.local_registered().await {
                    return News::Sync;
                }
                continue;
            }
            self.wait.reset();
            let watch = self.connector.next_watch();
            let say = self.connector.drops_said_at();
            tokio::select! {
                // What the relay said first: after a sync that outlasted the
                // burst, a drop queued meanwhile is taken in before the burst
                // is said, and said with it (an unbiased select said it in a
                // line of its own half the time).
                biased;
                events = self.connector.events() => {
                    // None: the connection ended, and the sync reconnects.
                    let Some(events) = events else {
                        return News::Sync;
                    };
                    let seen = self.connector.observe(events);
                    let changed = self.came_up(&seen.up);
                    if seen.sync {
                        return News::Sync;
                    }
                    if changed {
                        return News::Changed;
                    }
                }
                () = tokio::time::sleep_until(watch.unwrap_or_else(Instant::now)), if watch.is_some() => {
                    if self.connector.watch().await {
                        return News::Sync;
                    }
                }
                () = tokio::time::sleep_until(say.unwrap_or_else(Instant::now)), if say.is_some() => {
                    self.connector.say_drops();
                }
            }
        }
    }

    /// Peers the relay saw come up are connected; returns whether any state
    /// changed.
    fn came_up(&mut self, nodes: &[String]) -> bool {
        let mut connected = Vec::new();
        for node in nodes {
            if let Some(state) = self.peers.get_mut(node)
                && *state != PeerState::Connected
            {
                *state = PeerState::Connected;
                connected.push(node.clone());
            }
        }
        say_connected(&connected);
        !connected.is_empty()
    }

    /// Logs transitions and keeps the latest states.
    fn absorb(&mut self, report: SyncReport) -> bool {
        let mut changed = false;
        if self.local.as_ref() != Some(&report.local) {
            // The connector itself logs local-node trouble with its hints;
            // here only the transition is recorded.
            debug!(state = ?report.local, "local node state");
            self.local = Some(report.local);
            changed = true;
        }
        let mut next = BTreeMap::new();
        let mut connected = Vec::new();
        for status in report.peers {
            let previous = self.peers.get(&status.node);
            if previous != Some(&status.state) {
                changed = true;
                match &status.state {
                    PeerState::Connected => connected.push(status.node.clone()),
                    // The connector warns about the failures that deserve it.
                    PeerState::Failed(reason) => {
                        debug!(peer = %status.node, %reason, "peer state failed")
                    }
                    PeerState::Connecting => debug!(peer = %status.node, "connecting to peer"),
                    PeerState::Unknown | PeerState::Discovered => {
                        debug!(peer = %status.node, "peer state unknown")
                    }
                }
            }
            next.insert(status.node, status.state);
        }
        say_connected(&connected);
        changed |= next.len() != self.peers.len();
        self.peers = next;
        changed
    }

    /// The state of `node` for the peers file.
    pub fn state(&self, node: &str) -> PeerState {
        self.peers.get(node).cloned().unwrap_or(PeerState::Unknown)
    }
}

/// Says which peers got connected, one line for those taken in at once (a
/// sync's report, or the relay's queued events): a cluster's boot, or its
/// re-mesh after a burst of drops, is one line per node, not one per peer.
fn say_connected(connected: &[String]) {
    match connected {
        [] => {}
        [peer] => info!(%peer, "peer connected"),
        peers => info!(
            peers = %named_few(peers),
            "{} peers connected",
            peers.len()
        ),
    }
}

/// Up to five names and how many more, for one log line about many peers.
fn named_few(peers: &[String]) -> String {
    const SHOWN: usize = 5;
    let mut text = peers
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    if peers.len() > SHOWN {
        text.push_str(&format!(" and {} more", peers.len() - SHOWN));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::peer::PeerStatus;

    use crate::secret::Secret;

    #[test]
    fn many_peers_are_named_in_one_bounded_line() {
        let peers: Vec<String> = (1..=8).map(|i| format!("demo@10.0.0.{i}")).collect();
        assert_eq!(named_few(&peers[..2]), "demo@10.0.0.1, demo@10.0.0.2");
        assert_eq!(
            named_few(&peers),
            "demo@10.0.0.1, demo@10.0.0.2, demo@10.0.0.3, demo@10.0.0.4, demo@10.0.0.5 and 3 more"
        );
    }

    /// `--connect` for demo@10.0.0.1, polling every second.
    fn demo_mesh() -> Mesh {
        let settings = ConnectSettings {
            local_node: "demo@10.0.0.1".into(),
            cookie: Secret::new("c"),
            prune: false,
            leave_when_unlisted: false,
            epmd_port: 4369,
        };
        Mesh::new(
            &settings,
            "10.0.0.1".parse().expect("ip"),
            Duration::from_secs(1),
        )
    }

    /// What `f` logs at INFO, in the text format.
    fn info_lines(f: impl FnOnce()) -> Vec<String> {
        #[derive(Clone, Default)]
        struct Buffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
        impl std::io::Write for Buffer {
            fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
                self.0.lock().expect("buffer").extend_from_slice(bytes);
                Ok(bytes.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, f);
        let text = String::from_utf8(buffer.0.lock().expect("buffer").clone()).expect("utf-8");
        text.lines().map(str::to_string).collect()
    }

    /// Peers connected in one sync, or in one batch of relay events, are one
    /// line (a 24-node boot was 23 lines per node); a single one names it.
    #[test]
    fn peers_connected_at_once_are_one_line() {
        let mut mesh = demo_mesh();
        let nodes: Vec<String> = (2..=9).map(|i| format!("demo@10.0.0.{i}")).collect();
        let unknown: Vec<(&str, PeerState)> = nodes
            .iter()
            .map(|n| (n.as_str(), PeerState::Unknown))
            .collect();
        let lines = info_lines(|| {
            mesh.absorb(report(LocalState::Connected, &unknown));
        });
        assert!(lines.is_empty(), "{lines:?}");

        // A sync that connects seven of them: one line.
        let mut states = unknown.clone();
        for state in &mut states[..7] {
            state.1 = PeerState::Connected;
        }
        let lines = info_lines(|| {
            assert!(mesh.absorb(report(LocalState::Connected, &states)));
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains("7 peers connected")
                && lines[0].contains("demo@10.0.0.2, demo@10.0.0.3")
                && lines[0].contains("and 2 more"),
            "{lines:?}"
        );

        // The relay's events: the eighth, and one already connected.
        let lines = info_lines(|| {
            assert!(mesh.came_up(&[nodes[7].clone(), nodes[0].clone()]));
        });
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].contains("peer connected peer=demo@10.0.0.9"),
            "{lines:?}"
        );
        let lines = info_lines(|| {
            assert!(!mesh.came_up(&nodes));
        });
        assert!(lines.is_empty(), "{lines:?}");
    }

    fn report(local: LocalState, peers: &[(&str, PeerState)]) -> SyncReport {
        SyncReport {
            local,
            peers: peers
                .iter()
                .map(|(node, state)| PeerStatus {
                    node: node.to_string(),
                    state: state.clone(),
                })
                .collect(),
            disconnected: Vec::new(),
        }
    }

    #[test]
    fn transitions_and_states() {
        let mut c = demo_mesh();
        let failed = PeerState::Failed("timeout".into());
        // (report, changed, state of a, state of b)
        let steps = [
            (
                report(
                    LocalState::Waiting("booting".into()),
                    &[("a", PeerState::Unknown)],
                ),
                true,
                "unknown",
                "unknown",
            ),
            (
                report(
                    LocalState::Waiting("booting".into()),
                    &[("a", PeerState::Unknown)],
                ),
                false,
                "unknown",
                "unknown",
            ),
            (
                report(
                    LocalState::Connected,
                    &[("a", PeerState::Connected), ("b", failed.clone())],
                ),
                true,
                "connected",
                "failed",
            ),
            (
                report(
                    LocalState::Connected,
                    &[("a", PeerState::Connected), ("b", failed.clone())],
                ),
                false,
                "connected",
                "failed",
            ),
            (
                report(LocalState::Connected, &[("a", PeerState::Connected)]),
                true,
                "connected",
                "unknown",
            ),
        ];
        for (i, (r, changed, a, b)) in steps.into_iter().enumerate() {
            assert_eq!(c.absorb(r), changed, "step {i}");
            assert_eq!(c.state("a").name(), a, "step {i}");
            assert_eq!(c.state("b").name(), b, "step {i}");
        }
    }
}
