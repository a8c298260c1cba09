//! The reporter-facing side of `--connect`: once per interval and on every
//! relay event, make the local node connected to every discovered peer (and,
//! with `--prune`, disconnected from the ones that left).
//!
//! The connector owns at most one [`Session`] and the relay in it (see
//! `relay.rs`). While the VM boots (epmd not up, node not registered) it
//! retries every call quietly; other failures to reach the local node back
//! off exponentially so a wrong cookie does not make the node log a rejected
//! connection every interval. A peer that keeps failing backs off too
//! ([`Dial`]).

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use tracing::{debug, info, trace, warn};

use super::dial::{Dial, Listing, SyncCause, name_and_ip};
use super::named_few;
use crate::dist::{
    DistError, EVENTS_QUEUED, NodeEvent, PendingCall, Session, SessionOptions, atom, decode_bool,
    epmd, start_relay,
};
use crate::peer::{PeerState, PeerStatus};
use crate::secret::Secret;
use erl_dist::term::{Pid, Term};

/// connect_node calls one sync starts. Each makes the peer's name an atom in
/// the VM (never freed, and the table is finite), so a burst of new names
/// (a changing or hostile answer) is spread over syncs. Far above a real
/// cluster's churn; a 48-node mesh dials 47 at most.
pub const MAX_DIALS_PER_SYNC: usize = 256;

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
/// Bound on one epmd probe of a failing peer, or ask before a first dial
/// (also at most the sync's wait).
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);
/// At most this many peers are probed per sync, like the dials they stand
/// in for (a huge hostile answer must not open a socket per name); the rest
/// at the next.
const PROBES_PER_SYNC: usize = MAX_DIALS_PER_SYNC;
/// A peer whose connection dropped has its epmd asked this often between
/// polls (see `Connector::watch`), each probe bounded by the same time (50 ms
/// was measured too: the peer was found back sooner, but the heal after a
/// restored link or partition was no faster, the VMs' own connection setup
/// being the larger part, and the boot no slower; bench/README.md) ...
const WATCH_EVERY: Duration = Duration::from_millis(200);
/// ... or this much per watched peer when that is longer: on average at most
/// one probe per millisecond, whatever the number of peers that dropped
/// (256 are asked every 256 ms) ...
const WATCH_PER_PEER: Duration = Duration::from_millis(1);
/// ... for this long after the drop; after that, once per poll.
const WATCH_FOR: Duration = Duration::from_secs(60);
/// Bound on waiting for the local node to end the setups of peers that are
/// back (`Connector::abandon_setups`; the calls go on without the wait).
const ABANDON_WAIT: Duration = Duration::from_millis(200);
/// Bound on one look for the local node in its epmd (a loopback request).
const LOOK_TIMEOUT: Duration = Duration::from_secs(1);
/// Drops within this long of the first one are one burst, said in one line
/// when it is over (`Connector::say_drops`); the re-dials do not wait for it.
const BURST: Duration = Duration::from_millis(100);

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
    /// Every discovered peer's dialing state (backoff), by node name.
    dials: BTreeMap<String, Dial>,
    relay: Relay,
    /// The session is new: its first sync dials every listed peer at once
    /// (a node joining, or the last of a booting cluster, meshes without
    /// waiting for any epmd's answer); after it, a peer never reached is
    /// asked first (`Dial::unreached`).
    fresh: bool,
    /// The relay's events of the current session.
    events: Option<tokio::sync::mpsc::Receiver<NodeEvent>>,
    /// Events received during a sync, for the next `events` call.
    held: Vec<NodeEvent>,
    /// "The local node cannot run the relay" was said (once per reporter).
    said_no_relay: bool,
    /// When the dropped peers' epmds were last asked (see `watch`).
    watched_at: Option<Instant>,
    /// The burst of drops not said yet: when its first drop came, and the
    /// peers (see `observe`).
    unsaid: Option<(Instant, Vec<String>)>,
}

/// The relay of the current session.
#[derive(Debug)]
enum Relay {
    /// A new session: start it at the next sync.
    Start,
    Running(Pid),
    /// It died: start another at the next poll.
    Restart,
    /// The node refused it: polls only, until the next session.
    Unavailable,
}

/// How often `watched` dropped peers are asked: [`WATCH_EVERY`], or
/// [`WATCH_PER_PEER`] per peer probed when that is longer.
fn watch_period(watched: usize) -> Duration {
    let probed = watched.min(PROBES_PER_SYNC) as u32;
    WATCH_EVERY.max(WATCH_PER_PEER * probed)
}

fn start_connect(session: &Session, peer: &str) -> Result<PendingCall, DistError> {
    session.start_call("net_kernel", "connect_node", vec![atom(peer)])
}

/// What the epmd at `addr` says of `name` within `timeout`.
async fn listing(addr: SocketAddr, name: &str, timeout: Duration) -> Listing {
    match epmd::names(addr, timeout).await {
        Ok(names) => match names.into_iter().find(|r| r.name == name) {
            Some(registered) => Listing::Port(registered.port),
            None => Listing::Absent(
                DistError::NotRegistered {
                    node: format!("{name}@{}", addr.ip()),
                }
                .to_string(),
            ),
        },
        Err(DistError::Timeout(_)) => Listing::Silent,
        Err(e) => Listing::Absent(e.to_string()),
    }
}

/// What a batch of relay events asks of the reporter.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Seen {
    /// Sync now: a peer dropped, or a pruned node connected again.
    pub sync: bool,
    /// Discovered peers that came up (their state is `connected` now).
    pub up: Vec<String>,
}

/// Why a peer's epmd is asked in a sync (`Connector::probe_epmd`).
#[derive(Debug, Clone, Copy)]
enum Asked {
    /// Due, never reached: dialed only if its epmd lists it (`Dial::asked`).
    FirstDial,
    /// Waiting out its backoff: dialed at once if newly registered.
    Backoff,
}

/// What `Connector::start_dials` began, by index into the sync's names.
struct Dials {
    /// Every peer's state so far.
    states: Vec<PeerState>,
    /// The connect_node calls started.
    in_flight: Vec<(usize, PendingCall)>,
    /// Due, never reached: asked first (`Dial::unreached`).
    to_ask: Vec<usize>,
    /// At a poll, the peers waiting out their backoff, whose epmd to ask.
    to_probe: Vec<usize>,
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
            dials: BTreeMap::new(),
            relay: Relay::Start,
            fresh: false,
            events: None,
            held: Vec::new(),
            unsaid: None,
            said_no_relay: false,
            watched_at: None,
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

    /// Syncs the local node with the current peer set and the peers that
    /// just left (after hysteresis): connects missing peers that are due (see
    /// [`Dial`]); disconnects `left` ones only with prune. Called once per
    /// interval ([`SyncCause::Poll`]) and on every relay event. Never fails:
    /// the outcome is in the report.
    pub async fn sync(
        &mut self,
        peers: &BTreeSet<String>,
        left: &[String],
        cause: SyncCause,
    ) -> SyncReport {
        if let Err(local) = self.ensure_session().await {
            return SyncReport::without_local(local, peers);
        }
        // Taken for the sync (so the steps below may borrow `self` mutably)
        // and put back unless the connection was lost meanwhile.
        let Some(session) = self.session.take() else {
            return SyncReport::without_local(LocalState::Error("no session".to_owned()), peers);
        };
        let report = self.sync_with(&session, peers, left, cause).await;
        if report.local == LocalState::Connected {
            self.session = Some(session);
        }
        report
    }

    async fn sync_with(
        &mut self,
        session: &Session,
        peers: &BTreeSet<String>,
        left: &[String],
        cause: SyncCause,
    ) -> SyncReport {
        let connected: BTreeSet<String> = match session.nodes().await {
            Ok(nodes) => nodes.into_iter().collect(),
            Err(e) => {
                // Also a timeout: a node that does not answer erlang:nodes() in
                // time is unusable, and a fresh connection is the cure.
                let local = self.lose_session(&e);
                return SyncReport::without_local(local, peers);
            }
        };
        // A peer gone from discovery is forgotten: back again, it starts with
        // no backoff.
        self.dials.retain(|node, _| peers.contains(node));
        let names: Vec<&String> = peers.iter().collect();

        // Send every connect_node first and wait afterwards: rex runs each call
        // in its own process, so a peer that hangs in connection setup does not
        // hold up the others.
        let wait = self
            .connect_wait
            .map_or(session.call_timeout(), |w| w.min(session.call_timeout()));
        let deadline = Instant::now() + wait;
        let Dials {
            mut states,
            mut in_flight,
            to_ask,
            to_probe,
        } = self.start_dials(session, &names, &connected, cause);
        self.fresh = false;
        let prune_calls = if self.prune {
            let pruned = self.pruned.update(peers, left, cause);
            self.start_prune(session, peers, &pruned, &connected)
        } else {
            Vec::new()
        };
        // Each peer its epmd lists (newly) is dialed as soon as it answers.
        let not_listed = self
            .probe_epmd(&names, to_ask, to_probe, deadline, |i| match start_connect(
                session, names[i],
            ) {
                Ok(call) => in_flight.push((i, call)),
                Err(e) => states[i] = PeerState::Failed(e.to_string()),
            })
            .await;
        for (i, state) in not_listed {
            states[i] = state;
        }
        self.start_relay(session, cause).await;

        let mut lost: Option<DistError> = None;
        for (i, reply) in self.replies(in_flight, deadline).await {
            // Not waited for (a drop came meanwhile): no outcome yet, and no
            // failure; the sync that follows at once sees it in nodes().
            let Some(reply) = reply else {
                states[i] = PeerState::Connecting;
                continue;
            };
            let outcome = reply.and_then(|r| decode_bool(r, "net_kernel:connect_node/1"));
            if let Err(e @ DistError::Closed { .. }) = &outcome {
                lost = Some(e.clone());
            }
            states[i] = self.dialed(names[i], outcome);
        }

        let disconnected = self.finish_prune(prune_calls, deadline, &mut lost).await;
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

    /// Starts connect_node for every missing peer that is due; after the
    /// session's first sync, the due ones never reached are asked first
    /// (see `Dial::unreached`).
    fn start_dials(
        &mut self,
        session: &Session,
        names: &[&String],
        connected: &BTreeSet<String>,
        cause: SyncCause,
    ) -> Dials {
        let mut states = Vec::with_capacity(names.len());
        let mut in_flight = Vec::new();
        let mut to_ask = Vec::new();
        let mut to_probe = Vec::new();
        let now = Instant::now();
        for (i, peer) in names.iter().enumerate() {
            let dial = self.dials.entry((*peer).clone()).or_default();
            if **peer == self.local_node || connected.contains(*peer) {
                dial.connected(now);
                states.push(PeerState::Connected);
                continue;
            }
            if let Some(up) = dial.disconnected(now) {
                let reason = format!(
                    "the connection dropped {} ms after it was made (the peer prunes this \
                     node, or the connection flaps)",
                    up.as_millis()
                );
                let note = dial.cut(PeerState::Failed(reason.clone()));
                note.log(&self.local_node, peer, &reason, dial.failures);
            }
            if cause == SyncCause::Poll {
                dial.poll();
            }
            if !dial.due(cause) {
                states.push(dial.last.clone().unwrap_or(PeerState::Unknown));
                // At a poll; a dropped peer is left to the watch, which ends
                // the VM's pending attempt before the re-dial (see
                // `abandon_setups`).
                if cause == SyncCause::Poll && !dial.watched(now, WATCH_FOR) {
                    to_probe.push(i);
                }
                continue;
            }
            if in_flight.len() + to_ask.len() >= MAX_DIALS_PER_SYNC {
                // Due, and dialed at the next sync: a burst of new names is
                // spread over syncs instead of becoming a burst of atoms.
                states.push(dial.last.clone().unwrap_or(PeerState::Unknown));
                continue;
            }
            states.push(PeerState::Unknown);
            if !self.fresh && dial.unreached() && name_and_ip(peer).is_some() {
                to_ask.push(i);
                continue;
            }
            match start_connect(session, peer) {
                Ok(call) => in_flight.push((i, call)),
                Err(e) => states[i] = PeerState::Failed(e.to_string()),
            }
        }
        if in_flight.len() + to_ask.len() >= MAX_DIALS_PER_SYNC {
            debug!(
                local = %self.local_node,
                limit = MAX_DIALS_PER_SYNC,
                "more peers to dial than one sync starts; the rest at the next sync"
            );
        }
        Dials {
            states,
            in_flight,
            to_ask,
            to_probe,
        }
    }

    /// The outcome of one connect_node: the peer's state, with the backoff
    /// and the log line it deserves.
    fn dialed(&mut self, peer: &str, outcome: Result<bool, DistError>) -> PeerState {
        let (state, reason) = match outcome {
            Ok(true) => {
                debug!(local = %self.local_node, %peer, "connected to peer");
                if let Some(dial) = self.dials.get_mut(peer) {
                    dial.connected(Instant::now());
                }
                return PeerState::Connected;
            }
            Ok(false) => {
                let reason = "net_kernel:connect_node returned false (peer down, unreachable, \
                              or using another cookie)"
                    .to_owned();
                (PeerState::Failed(reason.clone()), reason)
            }
            // No reply within the wait: the VM is still setting the connection
            // up (a host that drops packets holds it for net_setuptime). It
            // counts as a failure for the backoff all the same.
            Err(e @ DistError::Timeout(_)) => (PeerState::Connecting, e.to_string()),
            Err(e) => (PeerState::Failed(e.to_string()), e.to_string()),
        };
        let Some(dial) = self.dials.get_mut(peer) else {
            return state;
        };
        let note = dial.failed(state.clone());
        note.log(&self.local_node, peer, &reason, dial.failures);
        state
    }

    async fn finish_prune(
        &mut self,
        prune_calls: Vec<(String, PendingCall)>,
        deadline: Instant,
        lost: &mut Option<DistError>,
    ) -> Vec<String> {
        let mut disconnected = Vec::new();
        for (node, call) in prune_calls {
            let outcome = call
                .wait_until(deadline)
                .await
                .and_then(|r| decode_bool(r, "erlang:disconnect_node/1"));
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
                        *lost = Some(e);
                    }
                }
            }
        }
        disconnected
    }

    /// Starts the relay when this session has none yet (a relay that died is
    /// restarted at the next poll only, so one that keeps dying cannot spin).
    async fn start_relay(&mut self, session: &Session, cause: SyncCause) {
        let due = match self.relay {
            Relay::Start => true,
            Relay::Restart => cause == SyncCause::Poll,
            Relay::Running(_) | Relay::Unavailable => false,
        };
        if !due {
            return;
        }
        match start_relay(session).await {
            Ok(pid) => {
                debug!(local = %self.local_node, relay = %pid, "relay started: dropped peers are re-dialed as soon as the VM notices");
                self.relay = Relay::Running(pid);
            }
            Err(e) => {
                if !self.said_no_relay {
                    info!(local = %self.local_node, error = %e, "the local node cannot run beamup's relay; dropped peers are re-dialed at each poll only");
                    self.said_no_relay = true;
                } else {
                    debug!(local = %self.local_node, error = %e, "the relay could not start");
                }
                self.relay = Relay::Unavailable;
            }
        }
    }

    /// Asks the epmd of each peer in `to_ask` and `to_probe` whether its
    /// node is registered (the reporter's own TCP request, not the VM's, and
    /// no connect_node call) and calls `dial_now`, as the answers come, for
    /// each one to dial: of `to_ask` (due, never reached), each its epmd
    /// lists or that does not answer; of `to_probe` (backing off), each newly
    /// registered (a peer restarted, a cut link restored). Returns the state
    /// of each asked peer its epmd does not list, counted as a failed dial.
    async fn probe_epmd(
        &mut self,
        names: &[&String],
        to_ask: Vec<usize>,
        to_probe: Vec<usize>,
        deadline: Instant,
        mut dial_now: impl FnMut(usize),
    ) -> Vec<(usize, PeerState)> {
        let timeout = PROBE_TIMEOUT.min(deadline.saturating_duration_since(Instant::now()));
        let asks = to_ask
            .into_iter()
            .map(|i| ((i, Asked::FirstDial), names[i].as_str()));
        let probes = to_probe
            .into_iter()
            .map(|i| ((i, Asked::Backoff), names[i].as_str()));
        let local = self.local_node.clone();
        let mut not_listed = Vec::new();
        self.probe(
            asks.chain(probes),
            timeout,
            |(i, asked), node, listing, dial| match asked {
                Asked::Backoff if dial.probed(listing.port()) => {
                    debug!(peer = %node, ?listing, "peer registered with its epmd; dialing it now");
                    dial_now(i);
                }
                Asked::Backoff => {}
                Asked::FirstDial => match dial.asked(listing) {
                    None => dial_now(i),
                    Some((state, note)) => {
                        let reason = state.reason().unwrap_or_default();
                        note.log(&local, node, reason, dial.failures);
                        not_listed.push((i, state));
                    }
                },
            },
        )
        .await;
        not_listed
    }

    /// Asks the epmd of each of `peers` (at most [`PROBES_PER_SYNC`], each
    /// within `timeout`) whether its node is registered and calls `answered`
    /// with each answer and the peer's [`Dial`] as it comes. A drop meanwhile
    /// ends the probing: the rest are aborted with the JoinSet (asked again
    /// next time), the drop is held for `events`, and its sync comes first.
    async fn probe<K: Send + 'static>(
        &mut self,
        peers: impl Iterator<Item = (K, &str)>,
        timeout: Duration,
        mut answered: impl FnMut(K, &str, &Listing, &mut Dial),
    ) {
        let mut probes = tokio::task::JoinSet::new();
        for (key, node) in peers.take(PROBES_PER_SYNC) {
            let Some((name, ip)) = name_and_ip(node) else {
                continue;
            };
            let addr = SocketAddr::new(ip, self.options.epmd_port);
            let node = node.to_owned();
            probes.spawn(async move {
                let listing = listing(addr, &name, timeout).await;
                (key, node, listing)
            });
        }
        loop {
            let joined = tokio::select! {
                joined = probes.join_next() => joined,
                () = self.urgent_event() => None,
            };
            let Some(joined) = joined else {
                break;
            };
            let Ok((key, node, listing)) = joined else {
                continue;
            };
            if let Some(dial) = self.dials.get_mut(&node) {
                answered(key, &node, &listing, dial);
            }
        }
    }

    /// When the dropped peers' epmds are to be asked next: while any peer
    /// whose connection dropped less than [`WATCH_FOR`] ago is not back,
    /// one [`watch_period`] after the last.
    pub fn next_watch(&self) -> Option<Instant> {
        let now = Instant::now();
        let watched = self.watched(now).count();
        (watched > 0).then(|| self.watched_at.map_or(now, |at| at + watch_period(watched)))
    }

    /// The peers watched now (see `Dial::watched`).
    fn watched(&self, now: Instant) -> impl Iterator<Item = &String> {
        self.dials
            .iter()
            .filter(move |(_, dial)| dial.watched(now, WATCH_FOR))
            .map(|(node, _)| node)
    }

    /// Asks the epmd of every watched peer (see [`next_watch`]) whether its
    /// node is registered again, each within one watch period; true when one
    /// is: the sync that follows dials it, so a restored link heals within
    /// about one period of the network carrying it again, instead of at the
    /// next poll. The local node is asked nothing unless one is back (see
    /// `abandon_setups`).
    ///
    /// [`next_watch`]: Connector::next_watch
    pub async fn watch(&mut self) -> bool {
        let now = Instant::now();
        self.watched_at = Some(now);
        let watched: Vec<String> = self.watched(now).cloned().collect();
        let period = watch_period(watched.len());
        let mut back = Vec::new();
        let peers = watched.iter().map(|node| ((), node.as_str()));
        self.probe(peers, period, |(), node, listing, dial| {
            if dial.probed(listing.port()) {
                debug!(peer = %node, ?listing, "peer registered with its epmd again");
                back.push(node.to_owned());
            }
        })
        .await;
        if back.is_empty() {
            return false;
        }
        self.abandon_setups(&back).await;
        true
    }

    /// The VM may still be setting up the connection the drop's own re-dial
    /// began while the link was down: a TCP connect waiting out SYN
    /// retransmissions (1, 3, 7 s...) until net_setuptime, and connect_node
    /// joins that attempt instead of starting one. So the peers that are
    /// back and still not connected have that attempt ended
    /// (`erlang:disconnect_node/1` ends a pending one too) before the sync
    /// dials them afresh. Best effort: failures show in that sync.
    async fn abandon_setups(&self, back: &[String]) {
        let Some(session) = self.session.as_ref().filter(|s| s.is_alive()) else {
            return;
        };
        let Ok(connected) = session.nodes().await else {
            return;
        };
        let deadline = Instant::now() + ABANDON_WAIT;
        let calls: Vec<PendingCall> = back
            .iter()
            .filter(|node| !connected.contains(node))
            .filter_map(|node| {
                session
                    .start_call("erlang", "disconnect_node", vec![atom(node)])
                    .ok()
            })
            .collect();
        for call in calls {
            let _ = call.wait_until(deadline).await;
        }
    }

    /// The port of the epmds asked, the local one included.
    pub fn epmd_port(&self) -> u16 {
        self.options.epmd_port
    }

    /// Whether the local node is registered with its epmd: one loopback
    /// request, the whole cost of a look while the VM boots (no session, no
    /// report). A name without an address cannot be looked up this way and
    /// counts as registered (the session attempt tells).
    pub async fn local_registered(&self) -> bool {
        let Some((name, ip)) = name_and_ip(&self.local_node) else {
            return true;
        };
        let addr = SocketAddr::new(ip, self.options.epmd_port);
        listing(addr, &name, LOOK_TIMEOUT).await.port().is_some()
    }

    /// The replies to `calls` as they come until `deadline`, in order; but
    /// once the relay reports a drop, the rest are not waited for (`None`):
    /// a dial that hangs (a vanished host holds connect_node for
    /// net_setuptime) must not hold up re-dialing a peer that just dropped.
    async fn replies(
        &mut self,
        calls: Vec<(usize, PendingCall)>,
        deadline: Instant,
    ) -> Vec<(usize, Option<Result<Term, DistError>>)> {
        let mut out = Vec::with_capacity(calls.len());
        let mut dropped = false;
        for (i, mut call) in calls {
            let reply = if dropped {
                None
            } else {
                tokio::select! {
                    reply = call.reply_by(deadline) => Some(reply),
                    () = self.urgent_event() => None,
                }
            };
            dropped |= reply.is_none();
            out.push((i, reply));
        }
        out
    }

    /// Receives relay events into `held` (for the next [`events`]) and
    /// returns at the first that needs a sync at once: a dropped connection.
    /// Never returns without one. Cancel-safe.
    ///
    /// [`events`]: Connector::events
    async fn urgent_event(&mut self) {
        loop {
            let Some(rx) = self.events.as_mut() else {
                return std::future::pending().await;
            };
            // Closed: the session is ending, and the calls see it themselves.
            let Some(event) = rx.recv().await else {
                return std::future::pending().await;
            };
            let urgent = matches!(event, NodeEvent::Down(_));
            // Bounded like the session's queue: a VM that floods news during a
            // long wait must not grow this; every batch ends in the same full
            // sync, so what is dropped beyond the bound adds nothing.
            if urgent || self.held.len() < EVENTS_QUEUED {
                self.held.push(event);
            }
            if urgent {
                return;
            }
        }
    }

    /// Takes in what the relay said since the last call. A burst of drops
    /// (OTP's `global` turns one disconnect into dozens across a cluster,
    /// and the relay forwards them as the VM sees them, milliseconds apart)
    /// is one info line, not one per peer: the drops within [`BURST`] of the
    /// first are said together once it is over ([`say_drops`]).
    ///
    /// [`say_drops`]: Connector::say_drops
    ///
    /// Only a dropped peer (re-dial it) or a pruned node that connected
    /// again (disconnect it) needs a sync; a peer that came up is only
    /// recorded (`Seen::up`): at a cluster's boot every node sees every
    /// other come up, and a sync for each cost the VMs a call apiece.
    pub fn observe(&mut self, events: Vec<NodeEvent>) -> Seen {
        let mut dropped: Vec<String> = Vec::new();
        let mut seen = Seen::default();
        for event in events {
            match event {
                NodeEvent::Ready => debug!(local = %self.local_node, "relay ready"),
                // It connected to us (or we to it): whatever it failed before is over.
                NodeEvent::Up(node) => {
                    if let Some(dial) = self.dials.get_mut(&node) {
                        dial.connected(Instant::now());
                        seen.up.push(node);
                    } else if self.pruned.contains(&node) {
                        seen.sync = true;
                    }
                }
                NodeEvent::Down(node) => {
                    if self.dials.contains_key(&node) && !dropped.contains(&node) {
                        dropped.push(node);
                    }
                }
                NodeEvent::Exited { from, reason } => {
                    if matches!(&self.relay, Relay::Running(pid) if *pid == from) {
                        info!(local = %self.local_node, %reason, "beamup's relay in the local node exited; restarting it at the next poll");
                        self.relay = Relay::Restart;
                    } else {
                        debug!(local = %self.local_node, %from, %reason, "an exit signal from a process that is not the relay");
                    }
                }
            }
        }
        seen.sync |= !dropped.is_empty();
        if !dropped.is_empty() {
            let (_, burst) = self
                .unsaid
                .get_or_insert_with(|| (Instant::now(), Vec::new()));
            for peer in dropped {
                if !burst.contains(&peer) {
                    burst.push(peer);
                }
            }
        }
        seen
    }

    /// When the burst of drops taken in so far is to be said, if any.
    pub fn drops_said_at(&self) -> Option<Instant> {
        self.unsaid.as_ref().map(|(first, _)| *first + BURST)
    }

    /// Says the burst of drops taken in so far, in one line.
    pub fn say_drops(&mut self) {
        let Some((_, dropped)) = self.unsaid.take() else {
            return;
        };
        match dropped.as_slice() {
            [] => {}
            [peer] => {
                info!(local = %self.local_node, %peer, "the connection to peer dropped; re-dialing it");
            }
            peers => info!(
                local = %self.local_node,
                peers = %named_few(peers),
                "the connections to {} peers dropped; re-dialing them",
                peers.len()
            ),
        }
    }

    /// Waits for the relay's next events, returning every one queued; `None`
    /// once when the connection to the local node ended (sync to reconnect).
    /// Without a session it never returns (cancel-safe: call it in a select).
    pub async fn events(&mut self) -> Option<Vec<NodeEvent>> {
        let mut batch = std::mem::take(&mut self.held);
        let Some(rx) = self.events.as_mut() else {
            return if batch.is_empty() {
                std::future::pending().await
            } else {
                Some(batch)
            };
        };
        if batch.is_empty() {
            let Some(first) = rx.recv().await else {
                self.events = None;
                return None;
            };
            batch.push(first);
        }
        while let Ok(event) = rx.try_recv() {
            batch.push(event);
        }
        Some(batch)
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
            self.events = None;
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
            Ok(mut session) => {
                self.events = session.take_events();
                self.held.clear();
                self.relay = Relay::Start;
                self.fresh = true;
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
                let first = self.waiting_since.is_none();
                let since = *self.waiting_since.get_or_insert(now);
                if !self.warned_waiting && now.duration_since(since) >= BOOT_GRACE {
                    warn!(local = %self.local_node, error = %e, "still waiting for the local node after {BOOT_GRACE:?}");
                    self.warned_waiting = true;
                } else if first {
                    debug!(local = %self.local_node, error = %e, "waiting for the local node");
                } else {
                    // Looked for every few milliseconds while it boots.
                    trace!(local = %self.local_node, error = %e, "waiting for the local node");
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
        self.events = None;
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
    fn update(
        &mut self,
        peers: &BTreeSet<String>,
        left: &[String],
        cause: SyncCause,
    ) -> BTreeSet<String> {
        // Ages count in polls (intervals), not in the syncs relay events add.
        if cause == SyncCause::Poll {
            self.syncs += 1;
        }
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

    fn contains(&self, node: &str) -> bool {
        self.nodes.contains_key(node)
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

    /// Drops that come in separate batches within BURST are one burst, said
    /// once; the sync they ask for is not held back.
    #[test]
    fn drops_in_separate_batches_are_one_burst() {
        let mut c = Connector::new(
            "a@127.0.0.1".into(),
            "beamup-1@127.0.0.1".into(),
            Secret::new("c"),
            false,
        );
        for peer in ["b@127.0.0.1", "c@127.0.0.1"] {
            c.dials.insert(peer.into(), Dial::default());
        }
        let down = |node: &str| vec![NodeEvent::Down(node.into())];
        assert_eq!(c.drops_said_at(), None);
        let before = Instant::now();
        assert!(
            c.observe(down("b@127.0.0.1")).sync,
            "a drop re-dials at once"
        );
        let say_at = c.drops_said_at().expect("a burst to say");
        assert!(say_at >= before + BURST, "said once the burst is over");
        assert!(c.observe(down("c@127.0.0.1")).sync);
        assert!(c.observe(down("b@127.0.0.1")).sync);
        assert!(!c.observe(down("x@127.0.0.1")).sync, "not a peer: no sync");
        assert_eq!(c.drops_said_at(), Some(say_at), "the same burst");
        assert_eq!(
            c.unsaid.as_ref().map(|(_, peers)| peers.clone()),
            Some(vec!["b@127.0.0.1".to_string(), "c@127.0.0.1".to_string()])
        );
        c.say_drops();
        assert_eq!(
            c.drops_said_at(),
            None,
            "said: the next drop starts a burst"
        );
    }

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
            let report = c
                .sync(&peers, &["z@127.0.0.1".to_owned()], SyncCause::Poll)
                .await;
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
        let report = c.sync(&set(&["b@127.0.0.1"]), &[], SyncCause::Poll).await;
        assert!(
            matches!(&report.local, LocalState::Error(m) if m.contains("invalid node name")),
            "{report:?}"
        );
        assert!(c.retry_at.is_some());
        // The second call within the backoff repeats the state without trying.
        let again = c.sync(&set(&["b@127.0.0.1"]), &[], SyncCause::Poll).await;
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
        let got = p.update(&set(&["demo@10.0.0.1"]), &names(2..4), SyncCause::Poll);
        assert_eq!(got, names(2..4).into_iter().collect());
        let got = p.update(&set(&["demo@10.0.0.2"]), &[], SyncCause::Poll);
        assert_eq!(got, set(&["demo@10.0.0.3"]));
        // Forgotten after PRUNED_FOR_SYNCS syncs without a re-dial, unless it
        // keeps re-dialing.
        let mut p = Pruned::default();
        p.update(&BTreeSet::new(), &names(2..4), SyncCause::Poll);
        for _ in 1..PRUNED_FOR_SYNCS {
            let got = p.update(&BTreeSet::new(), &[], SyncCause::Poll);
            assert_eq!(got.len(), 2);
            p.disconnected("demo@10.0.0.2");
        }
        assert_eq!(
            p.update(&BTreeSet::new(), &[], SyncCause::Poll),
            set(&["demo@10.0.0.2"])
        );
        // Event syncs (relay news) do not age them.
        let mut p = Pruned::default();
        p.update(&BTreeSet::new(), &names(2..3), SyncCause::Poll);
        for _ in 0..2 * PRUNED_FOR_SYNCS {
            p.update(&BTreeSet::new(), &[], SyncCause::Event);
        }
        assert_eq!(p.update(&BTreeSet::new(), &[], SyncCause::Poll).len(), 1);
        // Churn: at most PRUNED_MAX, the newest kept.
        let mut p = Pruned::default();
        for round in 0..10u32 {
            let start = round * 500;
            let got = p.update(
                &BTreeSet::new(),
                &names(start..start + 500),
                SyncCause::Poll,
            );
            assert!(got.len() <= PRUNED_MAX, "{}", got.len());
            assert!(got.contains(&names(start..start + 1)[0]));
        }
        assert_eq!(p.nodes.len(), PRUNED_MAX);
    }
}
