//! The reporter: the child forked before the exec. It polls discovery for the
//! life of the release, reports joins and leaves (logs, `--peers-file`) with
//! hysteresis, and with `--connect` makes the release connect to its peers.
//!
//! Also `beamup peers`, which shares the polling and the hysteresis.

mod hysteresis;
mod jitter;
pub mod mesh;
mod peers_file;

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::{debug, error, info, warn};

pub use self::hysteresis::Membership;
pub use self::jitter::Jitter;
pub use self::peers_file::MODE as PEERS_FILE_MODE;
pub use self::peers_file::render;
use crate::peer::PeersFormat;

use self::mesh::SyncCause;
use crate::discovery::{self, Discovery, Poll, PollError};
use crate::peer::{PeerState, PeerStatus};
use crate::secret::Secret;
use crate::state;

/// What `--connect` needs.
#[derive(Debug, Clone)]
pub struct ConnectSettings {
    /// The release's own node name (`basename@address`).
    pub local_node: String,
    pub cookie: Secret,
    /// `--prune`: disconnect peers reported left.
    pub prune: bool,
    /// `--leave-when-unlisted`: leave the cluster when this node is missing
    /// from its own DNS answer (see `observe_self`).
    pub leave_when_unlisted: bool,
    /// The port of the local and the peers' epmds.
    pub epmd_port: u16,
}

#[derive(Debug, Clone)]
pub struct ReporterSettings {
    pub interval: Duration,
    pub leave_after: u32,
    pub peers_file: Option<PathBuf>,
    pub peers_format: PeersFormat,
    pub connect: Option<ConnectSettings>,
    /// The live status for `beamup status` (`state::STATUS_FILE` in the
    /// render directory), rewritten after every poll.
    pub status_file: Option<PathBuf>,
}

/// Runs the reporter loop in the forked child; never returns. The caller has
/// already set PR_SET_PDEATHSIG, so the child dies with the release.
pub fn run_child(discovery: discovery::Settings, settings: ReporterSettings) -> ! {
    let runtime = match crate::process::runtime(true) {
        Ok(runtime) => runtime,
        Err(e) => {
            error!(error = %format!("{e:#}"), "the peer reporter cannot start its runtime; peers are not discovered for this release");
            std::process::exit(1)
        }
    };
    match runtime.block_on(report_forever(discovery, settings)) {}
}

async fn report_forever(discovery: discovery::Settings, settings: ReporterSettings) -> Infallible {
    let mut jitter = Jitter::from_entropy();
    let discovery = loop {
        match Discovery::new(discovery.clone()) {
            Ok(discovery) => break discovery,
            Err(e) => {
                warn!(error = %format!("{e:#}"), "cannot set up peer discovery; retrying");
                tokio::time::sleep(jitter.apply(settings.interval)).await;
            }
        }
    };
    let mut reporter = Reporter::new(&discovery, &settings);
    // At once, so `beamup status` sees a live reporter before the first poll ends.
    reporter.write_status();
    loop {
        reporter.tick(&discovery).await;
        let next = tokio::time::Instant::now() + jitter.apply(settings.interval);
        // Between polls, sync with the local node whenever there is news: the
        // relay saw a connection come or go, or the booting VM may have
        // registered (DNS is still polled only once per interval).
        loop {
            let news = tokio::select! {
                () = tokio::time::sleep_until(next) => None,
                news = reporter.news() => Some(news),
            };
            let Some(news) = news else {
                break;
            };
            reporter.take_news(news).await;
        }
    }
}

/// The reporter's state between polls.
struct Reporter {
    own_node: String,
    membership: Membership,
    peers_file: Option<(PathBuf, PeersFormat)>,
    /// The peers file needs (re)writing: set by changes, the first successful
    /// poll and failed writes.
    dirty: bool,
    /// The first successful poll happened (before it, nothing is written).
    polled_once: bool,
    /// The last poll failed (to log the recovery once).
    failing: bool,
    polls: u64,
    connect: Option<mesh::Mesh>,
    /// `--prune` and `--leave-when-unlisted` (false without `--connect`).
    prune: bool,
    leave_when_unlisted: bool,
    /// The own node's presence in the DNS answer, with the same hysteresis
    /// as the peers' (see `observe_self`).
    own: Membership,
    /// Removed from the service (see `observe_self`).
    removed: bool,
    interval: Duration,
    /// `beamup status`'s view of this reporter (see `write_status`).
    live: Option<Live>,
}

/// What the live status file needs besides the peers.
struct Live {
    path: PathBuf,
    /// This reporter's PID and start time: read once, they never change.
    pid: i32,
    start: Option<u64>,
    last_poll: Option<state::LastPoll>,
    /// A failed write was logged (once, not every interval).
    warned: bool,
    /// Why the last write of the peers file failed, until one succeeds: the
    /// live status carries it, so `beamup status` is not ready while the
    /// release reads a stale (or someone else's) peers file.
    peers_file_error: Option<String>,
}

impl Reporter {
    fn new(discovery: &Discovery, settings: &ReporterSettings) -> Self {
        let d = discovery.settings();
        Reporter {
            own_node: d.own_node.clone(),
            membership: Membership::new(settings.leave_after),
            peers_file: settings
                .peers_file
                .clone()
                .map(|path| (path, settings.peers_format)),
            dirty: false,
            polled_once: false,
            failing: false,
            polls: 0,
            connect: settings
                .connect
                .as_ref()
                .map(|c| mesh::Mesh::new(c, d.own_address, settings.interval)),
            prune: settings.connect.as_ref().is_some_and(|c| c.prune),
            leave_when_unlisted: settings
                .connect
                .as_ref()
                .is_some_and(|c| c.leave_when_unlisted),
            own: Membership::new(settings.leave_after),
            removed: false,
            interval: settings.interval,
            live: settings.status_file.clone().map(|path| {
                let pid = std::process::id() as i32;
                Live {
                    path,
                    pid,
                    start: state::process_start(pid),
                    last_poll: None,
                    warned: false,
                    peers_file_error: None,
                }
            }),
        }
    }

    /// Resolves when the local side has news before the next poll (see
    /// `Mesh::news`). Never resolves without `--connect`. Cancel-safe.
    async fn news(&mut self) -> mesh::News {
        match self.connect.as_mut() {
            Some(connect) => connect.news().await,
            None => std::future::pending().await,
        }
    }

    /// Between polls: a sync of the known peers when the news asks for one,
    /// then the files.
    async fn take_news(&mut self, news: mesh::News) {
        match news {
            mesh::News::Sync => {
                if self.sync_connect(Vec::new(), SyncCause::Event).await {
                    self.write_status();
                }
            }
            mesh::News::Changed => {
                self.dirty = true;
                self.write_status();
            }
        }
        self.flush();
    }

    /// One interval: the interval's connect sync, the poll, its report, a
    /// sync for what the answer changed, the peers file and the live status.
    async fn tick(&mut self, discovery: &Discovery) {
        self.polls += 1;
        // First the interval's connect sync over the peers known so far (the
        // failing peers' backoff and epmd probes, the prune repeats): its
        // clock must not depend on DNS, which a partition often cuts off
        // together with the peers (a poll then takes timeout × attempts).
        self.sync_connect(Vec::new(), SyncCause::Poll).await;
        let peers_before = self.membership.reported();
        let removed_before = self.removed;
        let outcome = self.poll_serving_news(discovery).await;
        if let Some(live) = self.live.as_mut() {
            live.last_poll = Some(state::LastPoll {
                at: state::unix_ms(),
                ok: outcome.is_ok(),
                error: outcome.as_ref().err().map(ToString::to_string),
            });
        }
        let left = match outcome {
            Ok(poll) => {
                self.observe_self(poll.own_listed, discovery);
                self.observe(&poll.peers)
            }
            Err(e) => {
                self.failed(&e);
                Vec::new()
            }
        };
        // Then what the answer changed: new peers dialed, left ones pruned.
        if !left.is_empty()
            || self.removed != removed_before
            || self.membership.reported() != peers_before
        {
            self.sync_connect(left, SyncCause::Event).await;
        }
        self.flush();
        self.write_status();
    }

    /// One discovery poll; news from the local node that comes meanwhile is
    /// acted on at once (a DNS server that is slow or cut off, up to the
    /// timeout × attempts, must not hold up a re-dial).
    async fn poll_serving_news(&mut self, discovery: &Discovery) -> Result<Poll, PollError> {
        let poll = discovery.poll_full();
        tokio::pin!(poll);
        loop {
            tokio::select! {
                outcome = &mut poll => return outcome,
                news = self.news() => self.take_news(news).await,
            }
        }
    }

    /// With `--connect`: one connector sync over the reported peers; returns
    /// whether any state changed.
    async fn sync_connect(&mut self, mut left: Vec<String>, cause: SyncCause) -> bool {
        if !self.prune {
            // Without --prune a peer that left is never disconnected.
            left.clear();
        }
        let Some(connect) = self.connect.as_mut() else {
            return false;
        };
        let mut peers = self.membership.reported();
        if self.removed {
            // Removed from the service with --leave-when-unlisted: leave the
            // cluster instead of re-dialing the peers that pruned this node.
            left.extend(std::mem::take(&mut peers));
        }
        let changed = connect.sync(&peers, &left, cause).await;
        self.dirty |= changed;
        changed
    }

    /// Writes the peers file if something changed since the last write (and
    /// a poll has succeeded at all).
    fn flush(&mut self) {
        if self.dirty && self.polled_once {
            self.write_peers_file();
        }
    }

    /// With `--connect --leave-when-unlisted` and a DNS query: a node that
    /// was listed in the answer and then is missing from `leave_after`
    /// consecutive successful polls has been removed from the service (a
    /// drained or blue/green node) and stops connecting peers until it is
    /// listed again. Only on request: a Kubernetes headless service drops a
    /// pod that fails readiness, so a busy node would cut itself off.
    fn observe_self(&mut self, listed: bool, discovery: &Discovery) {
        if !self.leave_when_unlisted || discovery.settings().query.is_none() {
            return;
        }
        let seen: BTreeSet<String> = if listed {
            BTreeSet::from([self.own_node.clone()])
        } else {
            BTreeSet::new()
        };
        let change = self.own.observe(&seen);
        if !change.joined.is_empty() && self.removed {
            info!(node = %self.own_node, "this node is listed again; connecting peers again");
            self.removed = false;
        }
        if !change.left.is_empty() {
            self.removed = true;
            warn!(
                node = %self.own_node,
                "this node is no longer in the discovery answer; with --leave-when-unlisted it disconnects its peers and stops connecting them"
            );
        }
    }

    /// A successful poll: logs joins and leaves, returns who left.
    fn observe(&mut self, seen: &BTreeSet<String>) -> Vec<String> {
        if self.failing {
            info!(peers = seen.len(), "peer discovery works again");
            self.failing = false;
        }
        let change = self.membership.observe(seen);
        let count = self.membership.reported().len();
        for node in &change.joined {
            info!(peer = %node, peers = count, "peer joined");
        }
        for node in &change.left {
            info!(peer = %node, peers = count, "peer left");
        }
        // One line per poll at debug level (tests count polls with it).
        debug!(
            poll = self.polls,
            seen = seen.len(),
            peers = count,
            "poll ok"
        );
        if !self.polled_once || !change.is_empty() {
            self.dirty = true;
        }
        self.polled_once = true;
        change.left
    }

    fn failed(&mut self, e: &PollError) {
        self.failing = true;
        let peers = self.membership.reported().len();
        match e {
            PollError::NxDomain { query } => warn!(
                poll = self.polls,
                %query,
                peers,
                "{e}; keeping the last known peers"
            ),
            PollError::Failed { .. } | PollError::TooLarge { .. } => warn!(
                poll = self.polls,
                peers, "peer discovery failed: {e}; keeping the last known peers"
            ),
        }
    }

    fn write_peers_file(&mut self) {
        let Some((path, format)) = &self.peers_file else {
            self.dirty = false;
            return;
        };
        let entries = self.entries();
        let updated = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let result = peers_file::write(path, *format, &self.own_node, &entries, updated);
        let error = match result {
            Ok(()) => {
                self.dirty = false;
                debug!(path = %path.display(), peers = entries.len(), "peers file written");
                None
            }
            // Kept dirty: the next interval tries again. The error names what
            // holds the name (another user's file: `safe_file`).
            Err(e) => {
                let error = format!("{e:#}");
                warn!(%error, "cannot write --peers-file; it keeps its old content, `beamup status` is not ready; retrying next interval");
                Some(error)
            }
        };
        if let Some(live) = self.live.as_mut() {
            live.peers_file_error = error;
        }
    }

    /// The reported peers with their states: the `--connect` state when
    /// connecting, else discovered.
    fn entries(&self) -> Vec<PeerStatus> {
        self.membership
            .reported()
            .into_iter()
            .map(|node| {
                let state = match &self.connect {
                    Some(connect) => connect.state(&node),
                    None => PeerState::Discovered,
                };
                PeerStatus { node, state }
            })
            .collect()
    }

    /// Rewrites the live status for `beamup status` (atomically, 0600).
    fn write_status(&mut self) {
        let Some(live) = self.live.as_ref() else {
            return;
        };
        let status = state::LiveStatus {
            node: self.own_node.clone(),
            reporter_pid: live.pid,
            reporter_start: live.start,
            interval_ms: self.interval.as_millis() as u64,
            updated: state::unix_ms(),
            polls: self.polls,
            last_poll: live.last_poll.clone(),
            connect: self.connect.is_some(),
            local: self.connect.as_ref().map(mesh::Mesh::local_text),
            peers: self.entries(),
            peers_file_error: live.peers_file_error.clone(),
        };
        let result = state::write_status(&live.path, &status);
        let Some(live) = self.live.as_mut() else {
            return;
        };
        match result {
            Ok(()) => live.warned = false,
            Err(e) if !live.warned => {
                live.warned = true;
                warn!(error = %format!("{e:#}"), "cannot write the live status for `beamup status`; retrying every interval");
            }
            Err(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::IpAddr;

    fn discovery_settings(static_peers: &[&str]) -> discovery::Settings {
        let own: IpAddr = "10.0.0.1".parse().expect("ip");
        discovery::Settings {
            query: None,
            record: discovery::RecordKind::A,
            dns_server: None,
            timeout: Duration::from_secs(1),
            attempts: 1,
            max_srv_targets: discovery::DEFAULT_MAX_SRV_TARGETS,
            max_peers: discovery::DEFAULT_MAX_PEERS,
            static_peers: static_peers.iter().map(|p| p.to_string()).collect(),
            basename: "demo".into(),
            own_node: "demo@10.0.0.1".into(),
            own_address: own,
        }
    }

    fn set(nodes: &[&str]) -> BTreeSet<String> {
        nodes.iter().map(|n| n.to_string()).collect()
    }

    /// The reporter's bookkeeping over a scripted sequence of poll outcomes:
    /// the file is written at the first success (even empty), after changes
    /// only, and failures keep the peers.
    #[test]
    fn reporter_writes_on_first_poll_and_changes_only() {
        let dir = std::env::temp_dir().join(format!("beamup-reporter-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("peers");
        let settings = ReporterSettings {
            interval: Duration::from_secs(1),
            leave_after: 2,
            peers_file: Some(path.clone()),
            peers_format: PeersFormat::Lines,
            connect: None,
            status_file: None,
        };
        let discovery = Discovery::new(discovery_settings(&[])).expect("discovery");
        let mut r = Reporter::new(&discovery, &settings);
        let failure = PollError::Failed {
            query: "q".into(),
            reason: "down".into(),
        };
        // (poll outcome, file written this step?, expected content)
        type Step<'a> = (Result<&'a [&'a str], &'a PollError>, bool, &'a str);
        let steps: [Step; 7] = [
            (Err(&failure), false, ""),
            (Ok(&[]), true, ""),
            (Ok(&["demo@10.0.0.2"]), true, "demo@10.0.0.2\n"),
            (Ok(&["demo@10.0.0.2"]), false, "demo@10.0.0.2\n"),
            (Err(&failure), false, "demo@10.0.0.2\n"),
            (Ok(&[]), false, "demo@10.0.0.2\n"),
            (Ok(&[]), true, ""),
        ];
        for (i, (outcome, written, content)) in steps.into_iter().enumerate() {
            let _ = std::fs::remove_file(&path);
            match outcome {
                Ok(seen) => {
                    r.observe(&set(seen));
                }
                Err(e) => r.failed(e),
            }
            r.flush();
            assert_eq!(path.exists(), written, "step {i}");
            if written {
                assert_eq!(
                    std::fs::read_to_string(&path).expect("read"),
                    content,
                    "step {i}"
                );
            }
            assert_eq!(
                r.membership.reported(),
                content.lines().map(str::to_string).collect(),
                "step {i}"
            );
        }
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn tick_polls_static_peers_into_json() {
        let dir = std::env::temp_dir().join(format!("beamup-tick-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("peers.json");
        let settings = ReporterSettings {
            interval: Duration::from_secs(1),
            leave_after: 3,
            peers_file: Some(path.clone()),
            peers_format: PeersFormat::Json,
            connect: None,
            status_file: None,
        };
        let discovery =
            Discovery::new(discovery_settings(&["demo@10.0.0.3", "demo@10.0.0.1"])).expect("new");
        let mut r = Reporter::new(&discovery, &settings);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(r.tick(&discovery));
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("json");
        assert_eq!(doc["node"], "demo@10.0.0.1");
        assert_eq!(
            doc["peers"],
            serde_json::json!([{"node": "demo@10.0.0.3", "state": "discovered"}])
        );
        assert!(doc["updated"].as_u64().is_some_and(|t| t > 1_600_000_000));
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
