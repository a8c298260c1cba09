//! One peer's dialing policy for `--connect` (issue 11): when to call
//! `net_kernel:connect_node/1` on a peer that is not connected, which
//! failures are worth a warning, and what ends a backoff. Pure bookkeeping:
//! the connector does the calls and the epmd probes.

use std::net::IpAddr;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, warn};

use crate::peer::PeerState;

/// Polls a failing peer waits before its next connect_node, after its 1st,
/// 2nd, and 3rd and later failure in a row (issue 11: a killed node still
/// listed in DNS costs about 1/8 of the calls of dialing it every poll).
pub(super) const DIAL_WAITS: [u32; 3] = [2, 4, 8];
/// A failure streak this long (the peer was never reached, or is gone for
/// good) is worth one warning; shorter ones are a peer still booting.
const WARN_AFTER_FAILURES: u32 = 4;
/// A connection that drops sooner than this after it was made is a quick
/// drop. The first of a row is re-dialed at once like any drop (OTP's
/// `global` cuts fresh connections while a mesh settles); the next ones count
/// as failed dials and back off: a peer that prunes us (`--prune` on its
/// side) cuts every re-dial at once, and re-dialing at the speed of the relay
/// would make the two spin.
const FLAP_WINDOW: Duration = Duration::from_secs(1);

/// Why a sync runs: a poll advances the failing peers' backoff and probes
/// their epmd; an event (the relay's, the VM coming up) only dials the peers
/// that are not backing off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncCause {
    Poll,
    Event,
}

/// One peer's dialing: after `failures` failed connect_node calls in a row it
/// waits [`DIAL_WAITS`] polls before the next one. Any sign that it is back
/// ends the wait: it shows up connected (it dialed us, e.g. restarted on the
/// same address), it leaves discovery and comes back (a fresh `Dial`), or its
/// epmd shows its node newly registered (restarted, or a cut link restored).
/// The failure count itself is forgotten only once a connection has lasted
/// [`FLAP_WINDOW`], so a peer that keeps cutting us off backs off further.
#[derive(Debug, Default)]
pub(super) struct Dial {
    pub(super) failures: u32,
    /// Since when it is connected (None while it is not).
    connected_since: Option<Instant>,
    /// Quick drops in a row (see [`FLAP_WINDOW`]).
    quick_drops: u32,
    /// Polls still to wait.
    wait: u32,
    /// The state of the last failed call, reported while waiting.
    pub(super) last: Option<PeerState>,
    /// What its epmd said at the last probe: None before any probe, then the
    /// node's port, or None when it was not registered or not reachable.
    epmd: Option<Option<u16>>,
    /// It was connected before the current failures (its first failure is a
    /// peer that went away: worth a warning at once).
    was_connected: bool,
    /// When its connection last dropped (it is watched for a while: see
    /// `Dial::watched`).
    dropped_at: Option<Instant>,
    /// A probe found it newly registered: dial it at the next sync,
    /// whatever the sync's cause and the backoff.
    back: bool,
    warned: bool,
}

/// What a peer's epmd said of its node when asked (`Connector::probe`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Listing {
    /// Registered, on this distribution port.
    Port(u16),
    /// Not listed, or nothing listens on epmd's port there (no VM has
    /// started on that host yet), or no such host: why.
    Absent(String),
    /// No answer within the probe's bound (a host that drops packets, or a
    /// starved one).
    Silent,
}

impl Listing {
    pub(super) fn port(&self) -> Option<u16> {
        match self {
            Listing::Port(port) => Some(*port),
            Listing::Absent(_) | Listing::Silent => None,
        }
    }
}

/// Which failure deserves a warning.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Noteworthy {
    /// The first failure of a peer that was connected.
    Dropped,
    /// A streak reached [`WARN_AFTER_FAILURES`].
    LongStreak(u32),
    No,
}

impl Noteworthy {
    pub(super) fn log(&self, local: &str, peer: &str, reason: &str, failures: u32) {
        match self {
            Noteworthy::Dropped => warn!(%local, %peer, %reason, "connecting to peer failed"),
            Noteworthy::LongStreak(n) => warn!(
                %local, %peer, %reason, failures = n,
                "connecting to peer failed {n} times in a row; trying it every {} polls from \
                 now on (a peer never reached is dialed once its epmd lists it), or at once when \
                 it registers with its epmd again or connects to us",
                DIAL_WAITS[DIAL_WAITS.len() - 1]
            ),
            Noteworthy::No => {
                debug!(%local, %peer, %reason, failures, "connecting to peer failed")
            }
        }
    }
}

impl Dial {
    pub(super) fn connected(&mut self, now: Instant) {
        self.connected_since.get_or_insert(now);
        self.was_connected = true;
        self.wait = 0;
        self.last = None;
        self.epmd = None;
        self.back = false;
    }

    /// It is not connected (any more): if it was, a connection that lasted
    /// [`FLAP_WINDOW`], or the first quick drop of a row, ends the failure
    /// streak (re-dial at once); a further quick drop is returned, to be
    /// counted as a failure.
    pub(super) fn disconnected(&mut self, now: Instant) -> Option<Duration> {
        let up = now.saturating_duration_since(self.connected_since.take()?);
        self.dropped_at = Some(now);
        if up < FLAP_WINDOW {
            self.quick_drops = self.quick_drops.saturating_add(1);
            if self.quick_drops > 1 {
                return Some(up);
            }
        } else {
            self.quick_drops = 0;
        }
        self.failures = 0;
        self.warned = false;
        None
    }

    /// One poll passed.
    pub(super) fn poll(&mut self) {
        self.wait = self.wait.saturating_sub(1);
    }

    /// Whether to call connect_node now: at once when a probe found it back,
    /// or with no failures; on a poll once its wait is over.
    pub(super) fn due(&self, cause: SyncCause) -> bool {
        self.back || self.failures == 0 || (cause == SyncCause::Poll && self.wait == 0)
    }

    /// Whether it is watched (its epmd asked every `WATCH_EVERY` between
    /// polls): its connection dropped less than `for_` ago and it is not
    /// back yet, so a restored link heals in a fraction of a second rather
    /// than at the next poll.
    pub(super) fn watched(&self, now: Instant, for_: Duration) -> bool {
        !self.back
            && self.connected_since.is_none()
            && self
                .dropped_at
                .is_some_and(|at| now.saturating_duration_since(at) < for_)
    }

    /// A connect_node that failed: the peer was not reached (or not in
    /// time).
    pub(super) fn failed(&mut self, state: PeerState) -> Noteworthy {
        // Not probed yet: the failed call stands for "not there", so a first
        // probe that finds the node registered (it finished booting, or its
        // own reporter does not list us yet) dials it at once.
        self.epmd.get_or_insert(None);
        self.count_failure(state)
    }

    /// A quick drop that counts as a failure (see [`Dial::disconnected`]):
    /// the peer was reached, so its epmd listing it is no sign that it is
    /// back. A peer that prunes us stays registered; were the cut taken for
    /// "not there", the watch would find it back and re-dial it every
    /// `WATCH_EVERY`, past the backoff.
    pub(super) fn cut(&mut self, state: PeerState) -> Noteworthy {
        self.count_failure(state)
    }

    fn count_failure(&mut self, state: PeerState) -> Noteworthy {
        self.failures = self.failures.saturating_add(1);
        self.connected_since = None;
        self.back = false;
        let step = (self.failures as usize - 1).min(DIAL_WAITS.len() - 1);
        self.wait = DIAL_WAITS[step];
        self.last = Some(state);
        if self.was_connected && self.failures == 1 && !self.warned {
            Noteworthy::Dropped
        } else if self.failures == WARN_AFTER_FAILURES && !self.warned {
            self.warned = true;
            Noteworthy::LongStreak(self.failures)
        } else {
            Noteworthy::No
        }
    }

    /// Whether its epmd is asked before it is dialed: a peer never reached
    /// is dialed only once its epmd lists it, so the VM makes no connection
    /// attempt (and no atom) for a node that is still booting or a name no
    /// epmd lists (issue 19: ~45% of a 24-host boot's dials were to peers not
    /// registered yet, each a failing connection setup in the VM).
    pub(super) fn unreached(&self) -> bool {
        !self.was_connected
    }

    /// Records the answer to asking before a first dial (see
    /// [`Dial::unreached`]); None: dial it now (its epmd lists it, or did
    /// not answer in time: the VM's own attempt has the longer bound,
    /// net_setuptime). Not listed, it is not dialed and counts as a failed
    /// dial (it backs off, and a probe that finds it registered ends the
    /// wait, as after a failed connect_node): its state and the failure's
    /// note come back.
    pub(super) fn asked(&mut self, listing: &Listing) -> Option<(PeerState, Noteworthy)> {
        let Listing::Absent(why) = listing else {
            return None;
        };
        self.epmd = Some(None);
        let state = PeerState::Failed(why.clone());
        let note = self.failed(state.clone());
        Some((state, note))
    }

    /// Records an epmd probe; true when the node newly registered: it was
    /// absent or unreachable at the last probe, or on another port. It is
    /// then due at once.
    pub(super) fn probed(&mut self, port: Option<u16>) -> bool {
        let before = self.epmd.replace(port);
        let back = matches!((before, port), (Some(was), Some(now)) if was != Some(now));
        self.back |= back;
        back
    }
}

/// `name` and IP address of `name@address` (a host name is not probed).
pub(super) fn name_and_ip(node: &str) -> Option<(String, IpAddr)> {
    let (name, host) = node.split_once('@')?;
    Some((name.to_owned(), host.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The polls at which a peer that always fails is dialed, its warnings,
    /// and what ends the wait.
    #[test]
    fn a_failing_peer_backs_off_and_signs_of_life_end_the_wait() {
        let failed = || PeerState::Failed("down".into());
        let mut dial = Dial::default();
        let mut dialed = Vec::new();
        let mut noteworthy = Vec::new();
        for poll in 0..40 {
            dial.poll();
            if dial.due(SyncCause::Poll) {
                dialed.push(poll);
                let note = dial.failed(failed());
                if note != Noteworthy::No {
                    noteworthy.push((poll, note));
                }
            }
        }
        assert_eq!(dialed, [0, 2, 6, 14, 22, 30, 38]);
        // A peer never reached (still booting, or never there) is quiet until
        // its fourth failure; once.
        assert_eq!(noteworthy, [(14, Noteworthy::LongStreak(4))]);
        // Events dial only peers that are not backing off.
        assert!(!dial.due(SyncCause::Event));
        assert!(Dial::default().due(SyncCause::Event));

        // Seen connected (it dialed us), for long enough: the streak is over,
        // a drop is re-dialed at once and its failure is a peer that went away.
        let t0 = Instant::now();
        dial.connected(t0);
        assert_eq!(dial.disconnected(t0 + FLAP_WINDOW), None);
        assert!(dial.due(SyncCause::Event));
        assert_eq!(dial.failed(failed()), Noteworthy::Dropped);
        assert_eq!(dial.failed(failed()), Noteworthy::No);
        // Not connected: nothing to end.
        assert_eq!(dial.disconnected(t0), None);

        // Cut off at once, again and again (a peer that prunes us): the first
        // quick cut is re-dialed at once, each further one is a failure, and
        // the waits grow.
        let mut dial = Dial::default();
        let mut waits = Vec::new();
        for cut in 0..5u32 {
            let at = t0 + Duration::from_secs(u64::from(cut) * 100);
            dial.connected(at);
            match dial.disconnected(at + Duration::from_millis(5)) {
                None => {
                    assert_eq!(cut, 0, "only the first quick cut is free");
                    assert!(dial.due(SyncCause::Event));
                }
                Some(up) => {
                    assert_eq!(up, Duration::from_millis(5), "cut {cut}");
                    dial.cut(failed());
                    waits.push(dial.wait);
                }
            }
        }
        assert_eq!(waits, [2, 4, 8, 8]);
        // A connection that lasts ends the row: the next quick cut is free again.
        dial.connected(t0);
        assert_eq!(dial.disconnected(t0 + FLAP_WINDOW), None);
        dial.connected(t0);
        assert_eq!(dial.disconnected(t0 + Duration::from_millis(5)), None);

        // epmd: only a change to "registered" (or to another port) counts.
        let mut dial = Dial::default();
        let probes = [
            (Some(4370), false), // the first probe is only a baseline
            (Some(4370), false), // registered all along (e.g. another cookie)
            (None, false),       // killed, or the link is cut
            (None, false),
            (Some(4371), true), // back
            (Some(4372), true), // restarted on another port
        ];
        for (i, (port, back)) in probes.into_iter().enumerate() {
            assert_eq!(dial.probed(port), back, "probe {i}");
        }
        // A failed call before any probe counts as "not registered": a peer
        // that was still booting at our boot is dialed as soon as its epmd
        // knows it; after that the baseline is the probe's.
        let mut dial = Dial::default();
        dial.failed(failed());
        assert!(dial.probed(Some(4370)));
        dial.failed(failed());
        assert!(!dial.probed(Some(4370)));
    }

    /// Issue 19: a dropped peer is watched for a while and dialed as soon
    /// as its epmd lists it again.
    #[test]
    fn dropped_peers_are_watched_until_back() {
        let watch_for = Duration::from_secs(60);
        let mut dial = Dial::default();
        let t0 = Instant::now();
        dial.connected(t0);
        assert!(!dial.watched(t0, watch_for), "connected");
        // Its link is cut: the re-dial fails, and it is watched until it is
        // back or the watch is over.
        let dropped = t0 + Duration::from_secs(5);
        assert_eq!(dial.disconnected(dropped), None);
        assert!(dial.due(SyncCause::Event), "a drop is re-dialed at once");
        dial.failed(PeerState::Failed("timeout".into()));
        assert!(dial.watched(dropped, watch_for));
        assert!(!dial.watched(dropped + watch_for, watch_for));
        assert!(!dial.due(SyncCause::Event));
        assert!(!dial.probed(None), "the link is still down");
        assert!(dial.probed(Some(4370)), "the link is back");
        assert!(dial.due(SyncCause::Event), "back: due whatever the cause");
        assert!(
            !dial.watched(dropped, watch_for),
            "back: dialed, not watched"
        );
        dial.failed(PeerState::Failed("another cookie".into()));
        assert!(!dial.due(SyncCause::Event), "a failed dial ends `back`");
        assert!(
            !dial.probed(Some(4370)),
            "registered all along: not back again"
        );
    }

    /// A peer that cuts us off at once (it prunes us) stays registered with
    /// its epmd: the watch that follows each cut must not take that for a
    /// return and re-dial it past the backoff (it did, at every watch, until
    /// this node noticed it had left: the prune test saw 10 cuts).
    #[test]
    fn a_peer_that_cuts_us_off_is_not_back_while_its_epmd_lists_it() {
        let watch_for = Duration::from_secs(60);
        let mut dial = Dial::default();
        let t0 = Instant::now();
        let mut redials = 0;
        for cut in 0..6u32 {
            let at = t0 + Duration::from_millis(u64::from(cut) * 200);
            dial.connected(at);
            if dial.disconnected(at + Duration::from_millis(5)).is_some() {
                dial.cut(PeerState::Failed("cut".into()));
            }
            assert!(dial.watched(at, watch_for), "cut {cut}: watched");
            // The watch's probes: registered on the same port all along.
            let back = [dial.probed(Some(4370)), dial.probed(Some(4370))].contains(&true);
            if back || dial.due(SyncCause::Event) {
                redials += 1;
            }
        }
        assert_eq!(redials, 1, "only the first quick cut is re-dialed at once");
        // Restarted (another port): back.
        assert!(dial.probed(Some(4371)));
        assert!(dial.due(SyncCause::Event));
    }

    /// Issue 19: a peer never reached is dialed only once its epmd lists it;
    /// not listed, it backs off as if dialed, and a probe that finds it
    /// registered ends the wait as before.
    #[test]
    fn a_peer_never_reached_is_dialed_only_once_its_epmd_lists_it() {
        let mut dial = Dial::default();
        assert!(dial.unreached());
        assert!(dial.asked(&Listing::Absent("refused".into())).is_some());
        assert!(!dial.due(SyncCause::Event), "not listed: backs off");
        assert!(!dial.probed(None), "still not listed");
        assert!(dial.probed(Some(4370)), "registered meanwhile");
        assert!(dial.due(SyncCause::Event));
        assert!(dial.asked(&Listing::Port(4370)).is_none());
        assert!(
            dial.asked(&Listing::Silent).is_none(),
            "no answer: the VM's own attempt has the longer bound"
        );
        dial.connected(Instant::now());
        assert!(!dial.unreached(), "reached once: re-dialed without asking");
    }

    #[test]
    fn probed_names_need_an_address() {
        let table = [
            ("demo@10.0.0.2", Some(("demo", "10.0.0.2"))),
            ("demo@fd00::2", Some(("demo", "fd00::2"))),
            ("demo@host.example", None),
            ("no-at-sign", None),
        ];
        for (node, want) in table {
            let want = want.map(|(n, ip)| (n.to_owned(), ip.parse().expect("ip")));
            assert_eq!(name_and_ip(node), want, "{node}");
        }
    }
}
