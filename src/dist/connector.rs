//! The reporter-facing side of `--connect`: once per interval, make the local
//! node connected to every discovered peer (and, with `--prune`, disconnected
//! from the ones that left).
//!
//! The connector owns at most one [`Session`]. While the VM boots (epmd not up,
//! node not registered) it retries every call and logs at debug level only;
//! other failures back off exponentially so a wrong cookie does not make the
//! node log a rejected connection every interval.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::DistError;
use super::rpc::{self, atom};
use super::session::{PendingCall, Session, SessionOptions};
use crate::peer::{PeerState, PeerStatus};
use crate::secret::Secret;

/// How long waiting for the VM is normal before it is worth one warning.
const BOOT_GRACE: Duration = Duration::from_secs(60);
const BACKOFF_START: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// A pruned node is disconnected again while it keeps re-dialing; one that
/// needed no disconnect for this many syncs (5 minutes at the default 5 s
/// interval) is forgotten, so churning pod addresses do not pile up.
const PRUNED_FOR_SYNCS: u64 = 60;
/// And never more than this many are remembered at once (the oldest go).
const PRUNED_MAX: usize = 1024;

/// The connection to the local node, as of one `sync`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", content = "detail", rename_all = "snake_case")]
pub enum LocalState {
    Connected,
    /// The VM is not up yet (epmd unreachable, node not registered).
    Waiting(String),
    CookieRejected,
    Error(String),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    pub local: LocalState,
    /// Every peer of the set passed to `sync`, in its order.
    pub peers: Vec<PeerStatus>,
    /// Peers `--prune` disconnected during this sync.
    pub disconnected: Vec<String>,
}

impl SyncReport {
    fn without_local(local: LocalState, peers: &BTreeSet<String>) -> Self {
        SyncReport {
            local,
            peers: peers
                .iter()
                .map(|node| PeerStatus {
                    node: node.clone(),
                    state: PeerState::Unknown,
                })
                .collect(),
            disconnected: Vec::new(),
        }
    }
}

/// Keeps the local node meshed with the discovered peers.
#[derive(Debug)]
pub struct Connector {
    local_node: String,
    own_name: String,
    cookie: Secret,
    prune: bool,
    options: SessionOptions,
    session: Option<Session>,
    /// No connection attempt before this instant (after errors other than "booting").
    retry_at: Option<Instant>,
    backoff: Duration,
    /// What the last failed attempt said, repeated while backing off.
    last_failure: Option<LocalState>,
    /// Since when the VM has not been up, and whether that was warned about.
    waiting_since: Option<Instant>,
    warned_waiting: bool,
    /// Peers `--prune` disconnected and that are still gone from discovery:
    /// disconnected again on every sync, because a removed host that still
    /// runs `--connect` itself re-dials its old peers.
    pruned: Pruned,
    /// How long one sync waits for its connect_node calls (None: the call
    /// timeout). A peer that vanished makes connect_node hang for up to
    /// net_setuptime; the sync must not hold up the next poll for it.
    connect_wait: Option<Duration>,
}

impl Connector {
    pub fn new(local_node: String, own_name: String, cookie: Secret, prune: bool) -> Self {
        Connector {
            local_node,
            own_name,
            cookie,
            prune,
            options: SessionOptions::default(),
            session: None,
            retry_at: None,
            backoff: BACKOFF_START,
            last_failure: None,
            waiting_since: None,
            warned_waiting: false,
            pruned: Pruned::default(),
            connect_wait: None,
        }
    }

    /// Waits at most `wait` for connect_node replies in a sync; a peer still
    /// unanswered then is reported `Connecting` and its outcome shows in the
    /// next sync's `nodes()`.
    pub fn with_connect_wait(mut self, wait: Duration) -> Self {
        self.connect_wait = Some(wait);
        self
    }

    /// Other epmd port or timeouts than the defaults.
    pub fn with_options(mut self, options: SessionOptions) -> Self {
        self.options = options;
        self
    }

    pub fn local_node(&self) -> &str {
        &self.local_node
    }

    /// Whether `--prune` is on.
    pub fn prune(&self) -> bool {
        self.prune
    }

    /// Whether a live session exists right now.
    pub fn is_connected(&self) -> bool {
        self.session.as_ref().is_some_and(Session::is_alive)
    }

    /// Called once per interval with the current peer set and the peers that
    /// just left (after hysteresis). Connects missing peers; disconnects `left`
    /// ones only with prune. Never fails: the outcome is in the report.
    pub async fn sync(&mut self, peers: &BTreeSet<String>, left: &[String]) -> SyncReport {
        if let Err(local) = self.ensure_session().await {
            return SyncReport::without_local(local, peers);
        }
        let Some(session) = self.session.as_ref() else {
            return SyncReport::without_local(LocalState::Error("no session".to_owned()), peers);
        };

        let connected: BTreeSet<String> = match session.nodes().await {
            Ok(nodes) => nodes.into_iter().collect(),
            Err(e) => {
                // Also a timeout: a node that does not answer erlang:nodes() in
                // time is unusable, and a fresh connection is the cure.
                let local = self.lose_session(&e);
                return SyncReport::without_local(local, peers);
            }
        };

        // Send every connect_node first and wait afterwards: rex runs each call
        // in its own process, so a peer that hangs in connection setup does not
        // hold up the others.
        let wait = self
            .connect_wait
            .map_or(session.call_timeout(), |w| w.min(session.call_timeout()));
        let deadline = Instant::now() + wait;
        let mut states = Vec::with_capacity(peers.len());
        let mut in_flight: Vec<(usize, PendingCall)> = Vec::new();
        for (i, peer) in peers.iter().enumerate() {
            if *peer == self.local_node || connected.contains(peer) {
                states.push(PeerState::Connected);
                continue;
            }
            states.push(PeerState::Unknown);
            match session.start_call("net_kernel", "connect_node", vec![atom(peer)]) {
                Ok(call) => in_flight.push((i, call)),
                Err(e) => states[i] = PeerState::Failed(e.to_string()),
            }
        }
        let prune_calls = if self.prune {
            let pruned = self.pruned.update(peers, left);
            self.start_prune(session, peers, &pruned, &connected)
        } else {
            Vec::new()
        };

        let mut lost: Option<DistError> = None;
        let names: Vec<&String> = peers.iter().collect();
        for (i, call) in in_flight {
            let outcome = call
                .wait_until(deadline)
                .await
                .and_then(|r| rpc::decode_bool(r, "net_kernel:connect_node/1"));
            states[i] = match outcome {
                Ok(true) => {
                    debug!(local = %self.local_node, peer = %names[i], "connected to peer");
                    PeerState::Connected
                }
                Ok(false) => {
                    debug!(local = %self.local_node, peer = %names[i], "connect_node returned false");
                    PeerState::Failed(
                        "net_kernel:connect_node returned false (peer down, unreachable, \
                         or using another cookie)"
                            .to_owned(),
                    )
                }
                Err(DistError::Timeout(_)) => PeerState::Connecting,
                Err(e) => {
                    if matches!(e, DistError::Closed { .. }) {
                        lost = Some(e.clone());
                    }
                    PeerState::Failed(e.to_string())
                }
            };
        }

        let mut disconnected = Vec::new();
        for (node, call) in prune_calls {
            let outcome = call
                .wait_until(deadline)
                .await
                .and_then(|r| rpc::decode_bool(r, "erlang:disconnect_node/1"));
            match outcome {
                Ok(true) => {
                    info!(local = %self.local_node, peer = %node, "disconnected peer that left");
                    self.pruned.disconnected(&node);
                    disconnected.push(node);
                }
                Ok(false) => debug!(peer = %node, "peer was already disconnected"),
                Err(e) => {
                    warn!(local = %self.local_node, peer = %node, error = %e, "could not disconnect peer that left");
                    if matches!(e, DistError::Closed { .. }) {
                        lost = Some(e);
                    }
                }
            }
        }

        let local = match lost {
            Some(e) => self.lose_session(&e),
            None => LocalState::Connected,
        };
        SyncReport {
            local,
            peers: peers
                .iter()
                .zip(states)
                .map(|(node, state)| PeerStatus {
                    node: node.clone(),
                    state,
                })
                .collect(),
            disconnected,
        }
    }

    fn start_prune(
        &self,
        session: &Session,
        peers: &BTreeSet<String>,
        left: &BTreeSet<String>,
        connected: &BTreeSet<String>,
    ) -> Vec<(String, PendingCall)> {
        left.iter()
            // A node listed as left but also present again is not pruned; one
            // the local node is not connected to needs nothing.
            .filter(|node| !peers.contains(*node) && connected.contains(*node))
            .filter(|node| **node != self.local_node)
            .filter_map(|node| {
                match session.start_call("erlang", "disconnect_node", vec![atom(node)]) {
                    Ok(call) => Some((node.clone(), call)),
                    Err(e) => {
                        warn!(peer = %node, error = %e, "could not disconnect peer that left");
                        None
                    }
                }
            })
            .collect()
    }

    /// Makes sure `self.session` is live, connecting if allowed; on failure
    /// returns the state to report.
    async fn ensure_session(&mut self) -> Result<(), LocalState> {
        if let Some(s) = &self.session {
            if s.is_alive() {
                return Ok(());
            }
            info!(local = %self.local_node, "the connection to the local node dropped; reconnecting");
            self.session = None;
        }
        if let (Some(at), Some(last)) = (self.retry_at, &self.last_failure)
            && Instant::now() < at
        {
            return Err(last.clone());
        }

        match Session::connect_with(
            &self.local_node,
            &self.own_name,
            &self.cookie,
            &self.options,
        )
        .await
        {
            Ok(session) => {
                if self.waiting_since.is_some() || self.last_failure.is_some() {
                    info!(local = %self.local_node, "connected to the local node");
                } else {
                    debug!(local = %self.local_node, "connected to the local node");
                }
                self.session = Some(session);
                self.retry_at = None;
                self.backoff = BACKOFF_START;
                self.last_failure = None;
                self.waiting_since = None;
                self.warned_waiting = false;
                Ok(())
            }
            Err(e) => Err(self.failed_attempt(e)),
        }
    }

    /// Logs a failed connection attempt the way its kind deserves and decides
    /// when to try again.
    fn failed_attempt(&mut self, e: DistError) -> LocalState {
        let now = Instant::now();
        let state = match &e {
            // The VM is still booting: quiet, and retried every call.
            DistError::NotRegistered { .. } | DistError::EpmdUnreachable { .. } => {
                let since = *self.waiting_since.get_or_insert(now);
                if !self.warned_waiting && now.duration_since(since) >= BOOT_GRACE {
                    warn!(local = %self.local_node, error = %e, "still waiting for the local node after {BOOT_GRACE:?}");
                    self.warned_waiting = true;
                } else {
                    debug!(local = %self.local_node, error = %e, "waiting for the local node");
                }
                self.last_failure = None;
                self.retry_at = None;
                return LocalState::Waiting(e.to_string());
            }
            DistError::CookieRejected { .. } => {
                warn!(local = %self.local_node, "{e}");
                LocalState::CookieRejected
            }
            _ => {
                warn!(local = %self.local_node, error = %e, "cannot connect to the local node");
                LocalState::Error(e.to_string())
            }
        };
        self.retry_at = Some(now + self.backoff);
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        self.last_failure = Some(state.clone());
        state
    }

    fn lose_session(&mut self, e: &DistError) -> LocalState {
        info!(local = %self.local_node, error = %e, "lost the connection to the local node; will reconnect");
        self.session = None;
        LocalState::Error(e.to_string())
    }
}

/// The nodes `--prune` keeps disconnected, each with the sync it last needed
/// a disconnect in: bounded by age ([`PRUNED_FOR_SYNCS`]) and by count
/// ([`PRUNED_MAX`]).
#[derive(Debug, Default)]
struct Pruned {
    syncs: u64,
    nodes: std::collections::BTreeMap<String, u64>,
}

impl Pruned {
    /// One sync: forgets nodes discovered again (peers again) and those idle
    /// too long, remembers the ones that just `left`; returns the set to keep
    /// disconnected.
    fn update(&mut self, peers: &BTreeSet<String>, left: &[String]) -> BTreeSet<String> {
        self.syncs += 1;
        let now = self.syncs;
        self.nodes.retain(|node, _| !peers.contains(node));
        for node in left.iter().filter(|n| !peers.contains(*n)) {
            self.nodes.insert(node.clone(), now);
        }
        let before = self.nodes.len();
        self.nodes.retain(|_, at| now - *at < PRUNED_FOR_SYNCS);
        if self.nodes.len() < before {
            info!(
                forgotten = before - self.nodes.len(),
                remembered = self.nodes.len(),
                "forgot pruned peers that stayed away for {PRUNED_FOR_SYNCS} intervals"
            );
        }
        if self.nodes.len() > PRUNED_MAX {
            let mut newest: Vec<(String, u64)> =
                std::mem::take(&mut self.nodes).into_iter().collect();
            newest.sort_by_key(|(_, at)| std::cmp::Reverse(*at));
            newest.truncate(PRUNED_MAX);
            self.nodes = newest.into_iter().collect();
            warn!(
                remembered = PRUNED_MAX,
                "more than {PRUNED_MAX} pruned peers at once (fast address churn): forgetting the \
                 oldest, which are not disconnected again if they re-dial"
            );
        }
        self.nodes.keys().cloned().collect()
    }

    /// A pruned node had to be disconnected again: it is still re-dialing.
    fn disconnected(&mut self, node: &str) {
        if let Some(at) = self.nodes.get_mut(node) {
            *at = self.syncs;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    fn set(nodes: &[&str]) -> BTreeSet<String> {
        nodes.iter().map(|s| s.to_string()).collect()
    }

    /// A loopback port with nothing listening (bound, then released).
    fn closed_port() -> u16 {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        l.local_addr().expect("addr").port()
    }

    #[test]
    fn local_states_serialise() {
        let local = [
            (LocalState::Connected, r#"{"state":"connected"}"#),
            (
                LocalState::Waiting("booting".into()),
                r#"{"state":"waiting","detail":"booting"}"#,
            ),
            (LocalState::CookieRejected, r#"{"state":"cookie_rejected"}"#),
            (
                LocalState::Error("x".into()),
                r#"{"state":"error","detail":"x"}"#,
            ),
        ];
        for (state, want) in local {
            assert_eq!(serde_json::to_string(&state).expect("serialise"), want);
        }
    }

    #[tokio::test]
    async fn without_a_vm_every_peer_is_unknown_and_the_local_node_waiting() {
        let options = SessionOptions {
            epmd_port: closed_port(),
            ..SessionOptions::default()
        };
        let mut c = Connector::new(
            "a@127.0.0.1".into(),
            "beamup-1@127.0.0.1".into(),
            Secret::new("c"),
            true,
        )
        .with_options(options);
        let peers = set(&["a@127.0.0.1", "b@127.0.0.1"]);
        for _ in 0..2 {
            let report = c.sync(&peers, &["z@127.0.0.1".to_owned()]).await;
            assert!(
                matches!(&report.local, LocalState::Waiting(m) if m.contains("cannot reach epmd")),
                "{report:?}"
            );
            assert_eq!(report.peers.len(), 2);
            assert!(report.peers.iter().all(|p| p.state == PeerState::Unknown));
            assert!(report.disconnected.is_empty());
            // Booting is retried every call, never backed off.
            assert!(c.retry_at.is_none());
        }
        assert!(!c.is_connected());
    }

    #[tokio::test]
    async fn an_invalid_node_name_is_an_error_with_backoff() {
        let mut c = Connector::new(
            "no-at-sign".into(),
            "beamup-1@127.0.0.1".into(),
            Secret::new("c"),
            false,
        );
        let report = c.sync(&set(&["b@127.0.0.1"]), &[]).await;
        assert!(
            matches!(&report.local, LocalState::Error(m) if m.contains("invalid node name")),
            "{report:?}"
        );
        assert!(c.retry_at.is_some());
        // The second call within the backoff repeats the state without trying.
        let again = c.sync(&set(&["b@127.0.0.1"]), &[]).await;
        assert_eq!(again.local, report.local);
        assert_eq!(c.backoff, BACKOFF_START * 2);
    }

    #[test]
    fn pruned_nodes_are_bounded() {
        let names = |range: std::ops::Range<u32>| -> Vec<String> {
            range
                .map(|i| format!("demo@10.{}.{}.{}", i >> 16, (i >> 8) & 255, i & 255))
                .collect()
        };
        let mut p = Pruned::default();
        // A node that left is kept disconnected; one discovered again is not.
        let got = p.update(&set(&["demo@10.0.0.1"]), &names(2..4));
        assert_eq!(got, names(2..4).into_iter().collect());
        let got = p.update(&set(&["demo@10.0.0.2"]), &[]);
        assert_eq!(got, set(&["demo@10.0.0.3"]));
        // Forgotten after PRUNED_FOR_SYNCS syncs without a re-dial, unless it
        // keeps re-dialing.
        let mut p = Pruned::default();
        p.update(&BTreeSet::new(), &names(2..4));
        for _ in 1..PRUNED_FOR_SYNCS {
            let got = p.update(&BTreeSet::new(), &[]);
            assert_eq!(got.len(), 2);
            p.disconnected("demo@10.0.0.2");
        }
        assert_eq!(p.update(&BTreeSet::new(), &[]), set(&["demo@10.0.0.2"]));
        // Churn: at most PRUNED_MAX, the newest kept.
        let mut p = Pruned::default();
        for round in 0..10u32 {
            let start = round * 500;
            let got = p.update(&BTreeSet::new(), &names(start..start + 500));
            assert!(got.len() <= PRUNED_MAX, "{}", got.len());
            assert!(got.contains(&names(start..start + 1)[0]));
        }
        assert_eq!(p.nodes.len(), PRUNED_MAX);
    }
}
