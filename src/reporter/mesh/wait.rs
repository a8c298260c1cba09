//! How often `--connect` looks for the release's VM while it boots, before
//! it has registered with epmd. A look is one epmd request
//! (`Connector::local_registered`: a TCP connection to epmd, ~0.1 ms of CPU
//! with epmd's share), and a cluster boots many VMs at once on shared cores:
//! looks at a fixed pace cost more the slower the boot (issue 19: a 24-host
//! boot on two cores ~16% slower with a look every 10 ms per reporter, and
//! still ~1.6 CPU-s of reporters and epmds per boot with one per 2 ms of the
//! release's CPU time; ~1.9 CPU-s of wakeups alone with the socket count
//! below read every 5–10 ms).
//!
//! So the reporter looks when the VM may just have registered, told by the
//! first of these it can have:
//! - **epmd's answer to a registration** crossing the loopback interface
//!   ([`RegistrationWatch`], needs CAP_NET_RAW): the reporter sleeps until
//!   one passes and looks at once, then at every [`CHECK`] for [`EAGER`];
//!   besides, one look per [`WATCHED_LOOK_AT_LEAST`] (a registration the
//!   watch could not see: none is known, so seldom).
//! - **the namespace's socket count** (a `USER app` without CAP_NET_RAW):
//!   registering opens sockets (the distribution's listener, the VM's
//!   connection to epmd and epmd's end of it), and the kernel counts the
//!   open sockets of the network namespace (`/proc/net/sockstat`: one read
//!   of a file kept open). The count is read every [`CHECK`] for the first
//!   [`FAST_FOR`] (a VM that registers that soon boots on an idle machine),
//!   then every [`CHECK_LATER`]: each read is a wakeup, ~20–50 µs of CPU on
//!   a virtual machine. A look follows each change, and one at every check
//!   for [`EAGER`] after it (the registration may still be on its way to
//!   epmd), and at least one per [`LOOK_AT_LEAST`] (changes that cancel out).
//! - **the clock** (neither): a look at every check for the first
//!   [`FAST_FOR`], then every [`SLOWER`].
//!
//! After [`LOOK_FOR`] the poll's own attempt, once per interval, goes on
//! alone.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::time::Duration;

use tokio::time::Instant;
use tracing::{debug, info};

use crate::dist::RegistrationWatch;

/// The socket count is read this often for [`FAST_FOR`] ...
const CHECK: Duration = Duration::from_millis(5);
const FAST_FOR: Duration = Duration::from_secs(1);
/// ... then this often.
const CHECK_LATER: Duration = Duration::from_millis(10);
/// After a registration or a change of the count, a look at every check for
/// this long.
const EAGER: Duration = Duration::from_millis(20);
/// At least one look per this much wall time, for what the signal could not
/// tell (a change of the count that cancelled out between two checks).
const LOOK_AT_LEAST: Duration = Duration::from_millis(200);
/// The same while epmd's answers are watched. Each look is a wakeup and an
/// epmd request: one per 200 ms cost ~0.35 of the reporters' 0.58 CPU-s
/// until their VMs registered in a 24-host boot on two cores, for
/// registrations the watch never missed (`bench/results/mesh-19-regwatch.txt`,
/// against 0.22 in `mesh-19-floor.txt` with one a second).
const WATCHED_LOOK_AT_LEAST: Duration = Duration::from_secs(1);
/// By the clock: a look at every check for [`FAST_FOR`], then every this
/// often.
const SLOWER: Duration = Duration::from_millis(20);
/// A VM that has not registered after this (a release that never starts
/// distribution, a crash loop) is looked for once per interval from then on.
const LOOK_FOR: Duration = Duration::from_secs(120);

/// The wait for the local VM, from the first look on.
#[derive(Debug)]
pub struct VmWait {
    /// The local epmd's port (its answers are watched for).
    epmd_port: u16,
    since: Option<Instant>,
    /// The last look.
    looked: Option<Instant>,
    /// A look at every check until then (a registration or a change).
    eager_until: Option<Instant>,
    /// What tells that the VM may just have registered; opened at the first
    /// check, before the first look (so no registration falls between).
    signal: Option<Signal>,
    /// "Looking once per interval from now on" was said.
    said_slow: bool,
}

/// What the wait is told by (see the module's text).
#[derive(Debug)]
enum Signal {
    /// `seen`: an answer passed since the last look.
    Registrations {
        watch: RegistrationWatch,
        seen: bool,
    },
    /// Without CAP_NET_RAW; without /proc it reads nothing, and the clock
    /// rules.
    Sockets(SocketCount),
}

impl Signal {
    fn open(epmd_port: u16) -> Signal {
        match RegistrationWatch::open(epmd_port) {
            Ok(watch) => {
                debug!("waiting for the VM's registration: epmd's answers on lo are watched");
                Signal::Registrations { watch, seen: false }
            }
            Err(e) => {
                debug!(
                    error = %e,
                    "waiting for the VM's registration: epmd's answers cannot be watched \
                     (no CAP_NET_RAW?); the namespace's socket count is read instead"
                );
                Signal::Sockets(SocketCount::open())
            }
        }
    }
}

impl VmWait {
    pub fn new(epmd_port: u16) -> Self {
        VmWait {
            epmd_port,
            since: None,
            looked: None,
            eager_until: None,
            signal: None,
            said_slow: false,
        }
    }

    /// The VM was reached: a later wait (a restarted VM) starts afresh, and
    /// the watch is closed until then.
    pub fn reset(&mut self) {
        if self.since.is_some() {
            *self = VmWait::new(self.epmd_port);
        }
    }

    /// How long until [`look_due`] is worth asking again, or None once the
    /// wait is over [`LOOK_FOR`] (the poll's own attempt goes on alone;
    /// said once).
    ///
    /// [`look_due`]: VmWait::look_due
    pub fn next_check(&mut self, now: Instant, interval: Duration) -> Option<Duration> {
        let waited = now.duration_since(*self.since.get_or_insert(now));
        if waited < LOOK_FOR {
            return Some(match self.looked {
                None => Duration::ZERO,
                Some(_) if self.watching() && !self.eager(now) => WATCHED_LOOK_AT_LEAST,
                Some(_) if waited < FAST_FOR => CHECK,
                Some(_) => CHECK_LATER,
            });
        }
        if !self.said_slow {
            info!(
                "the release's VM has not registered with epmd for {LOOK_FOR:?}; looking for it \
                 once per interval ({interval:?}) from now on"
            );
            self.said_slow = true;
        }
        None
    }

    /// Sleeps `delay` (from [`next_check`]), or less when epmd's answer to a
    /// registration passes meanwhile; a check's delay ([`EAGER`]'s) is
    /// slept whole, so a flood of answers brings one look per [`CHECK`] at
    /// most. Cancel-safe.
    ///
    /// [`next_check`]: VmWait::next_check
    pub async fn until_check(&mut self, delay: Duration) {
        let epmd_port = self.epmd_port;
        let signal = self.signal.get_or_insert_with(|| Signal::open(epmd_port));
        let Signal::Registrations { watch, seen } = signal else {
            return tokio::time::sleep(delay).await;
        };
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            passed = watch.seen(), if delay > CHECK => match passed {
                Ok(()) => {
                    debug!("epmd answered a registration on lo: looking for the VM");
                    *seen = true;
                }
                Err(e) => {
                    debug!(error = %e, "the watch of epmd's answers failed; the socket count is read instead");
                    *signal = Signal::Sockets(SocketCount::open());
                }
            },
        }
    }

    /// Whether to look now: the first time, when the signal told of a
    /// registration or a change since the last look (and for [`EAGER`]
    /// after), or [`LOOK_AT_LEAST`] ([`WATCHED_LOOK_AT_LEAST`]) after the
    /// last look; when it tells nothing, by the clock alone.
    pub fn look_due(&mut self, now: Instant) -> bool {
        let changed = match &mut self.signal {
            Some(Signal::Registrations { seen, .. }) => Some(std::mem::take(seen)),
            Some(Signal::Sockets(count)) => count.changed(),
            None => None,
        };
        self.look_due_with(now, changed)
    }

    /// [`look_due`] with what the signal told: `Some(changed)`, or None when
    /// it could tell nothing.
    ///
    /// [`look_due`]: VmWait::look_due
    fn look_due_with(&mut self, now: Instant, changed: Option<bool>) -> bool {
        let Some(last) = self.looked else {
            self.looked = Some(now);
            return true;
        };
        if changed == Some(true) {
            self.eager_until = Some(now + EAGER);
        }
        let at_least = if self.watching() {
            WATCHED_LOOK_AT_LEAST
        } else {
            LOOK_AT_LEAST
        };
        let due = changed == Some(true)
            || now.duration_since(last) >= at_least
            || self.eager(now)
            || (changed.is_none() && self.by_clock(now, last));
        if due {
            self.looked = Some(now);
        }
        due
    }

    fn watching(&self) -> bool {
        matches!(self.signal, Some(Signal::Registrations { .. }))
    }

    fn eager(&self, now: Instant) -> bool {
        self.eager_until.is_some_and(|until| now < until)
    }

    /// The pace without a signal.
    fn by_clock(&self, now: Instant, last: Instant) -> bool {
        let waited = self.since.map_or(Duration::ZERO, |s| now.duration_since(s));
        let every = if waited < FAST_FOR { CHECK } else { SLOWER };
        now.duration_since(last) >= every
    }
}

/// The open sockets of this network namespace, as the kernel counts them:
/// the first line of `/proc/net/sockstat` ("sockets: used N", per namespace
/// since Linux 4.16), the file opened once and read again from its start.
#[derive(Debug)]
struct SocketCount {
    file: Option<File>,
    /// The count at the last read.
    last: Option<u64>,
}

impl SocketCount {
    fn open() -> Self {
        SocketCount {
            file: File::open("/proc/net/sockstat").ok(),
            last: None,
        }
    }

    /// Whether the count changed since the last read; None when this read
    /// or that one found no count.
    fn changed(&mut self) -> Option<bool> {
        let now = self.read();
        let before = std::mem::replace(&mut self.last, now);
        Some(before? != now?)
    }

    /// None when the file is missing or says something else.
    fn read(&self) -> Option<u64> {
        let mut text = [0u8; 64];
        let n = self.file.as_ref()?.read_at(&mut text, 0).ok()?;
        sockets_used(&text[..n])
    }
}

/// "sockets: used N" from the start of sockstat's text; None unless the
/// line is whole.
fn sockets_used(text: &[u8]) -> Option<u64> {
    let end = text.iter().position(|b| *b == b'\n')?;
    let count = text[..end].strip_prefix(b"sockets: used ")?;
    std::str::from_utf8(count).ok()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks every CHECK, then CHECK_LATER until LOOK_FOR, then only the
    /// poll's attempt; a new wait starts again.
    #[test]
    fn checks_stop_after_look_for() {
        let interval = Duration::from_secs(5);
        let mut wait = VmWait::new(4369);
        let t0 = Instant::now();
        let ms = |ms: u64| t0 + Duration::from_millis(ms);
        assert_eq!(wait.next_check(ms(0), interval), Some(Duration::ZERO));
        assert!(wait.look_due(ms(0)), "the first check looks");
        for (at, next) in [
            (10, Some(CHECK)),
            (999, Some(CHECK)),
            (1_000, Some(CHECK_LATER)),
            (119_999, Some(CHECK_LATER)),
            (120_000, None),
            (600_000, None),
        ] {
            assert_eq!(wait.next_check(ms(at), interval), next, "{at} ms");
        }
        assert!(wait.said_slow);
        wait.reset();
        assert_eq!(wait.next_check(ms(700_000), interval), Some(Duration::ZERO));
    }

    /// A look follows a registration or a change of the socket count, then
    /// one per check for EAGER, then none until LOOK_AT_LEAST; when the
    /// signal tells nothing, the clock.
    #[test]
    fn looks_follow_the_signal_or_the_clock() {
        let t0 = Instant::now();
        let ms = |ms: u64| t0 + Duration::from_millis(ms);
        let mut wait = VmWait {
            since: Some(t0),
            ..VmWait::new(4369)
        };
        // (ms since the start, what the signal told, due)
        let table = [
            (0, Some(false), true),    // the first look
            (5, Some(false), false),   // nothing registered, opened or closed
            (100, Some(false), false), // ... for long
            (105, Some(true), true),   // registered, or the VM dialed epmd: look
            (110, Some(false), true),  // ... and at every check for EAGER
            (120, Some(false), true),
            (125, Some(false), false), // EAGER is over: quiet again
            (315, Some(false), false),
            (320, Some(false), true), // LOOK_AT_LEAST after the last look
            (325, Some(true), true),
            (345, Some(false), false),
            (346, None, true), // nothing told: CHECK by the clock
            (349, None, false),
            (351, None, true),
        ];
        for (at, changed, want) in table {
            assert_eq!(wait.look_due_with(ms(at), changed), want, "at {at} ms");
        }
        // ... and after FAST_FOR, every SLOWER.
        assert!(!wait.by_clock(ms(1_500), ms(1_490)));
        assert!(wait.by_clock(ms(1_500), ms(1_480)));
    }

    #[test]
    fn sockstat_first_line_is_read_whole_or_not_at_all() {
        let cases: [(&[u8], Option<u64>); 5] = [
            (
                b"sockets: used 42\nTCP: inuse 3 orphan 0 tw 0 alloc 5 mem 1\n",
                Some(42),
            ),
            (b"sockets: used 7\n", Some(7)),
            (b"sockets: used 4", None), // cut short: the next digit may be missing
            (b"sockets: used x\n", None),
            (b"TCP: inuse 3\n", None),
        ];
        for (text, want) in cases {
            assert_eq!(
                sockets_used(text),
                want,
                "{:?}",
                String::from_utf8_lossy(text)
            );
        }
    }

    /// epmd's answer to a registration ends a wait of an hour at once and
    /// brings a look, then one at every check for EAGER; before it, one per
    /// WATCHED_LOOK_AT_LEAST. The test command runs as root (CAP_NET_RAW): a watch
    /// that cannot open fails here.
    #[tokio::test]
    async fn a_registration_answer_wakes_the_wait_at_once() {
        use crate::dist::{ALIVE2_X_RESP, EpmdStandIn};
        let interval = Duration::from_secs(5);
        let epmd = EpmdStandIn::on(std::net::Ipv4Addr::LOCALHOST.into()).await;
        let mut wait = VmWait::new(epmd.port());
        assert_eq!(
            wait.next_check(Instant::now(), interval),
            Some(Duration::ZERO)
        );
        wait.until_check(Duration::ZERO).await;
        assert!(
            matches!(wait.signal, Some(Signal::Registrations { .. })),
            "the watch of epmd's answers opened: {:?}",
            wait.signal
        );
        assert!(wait.look_due(Instant::now()), "the first check looks");
        assert_eq!(
            wait.next_check(Instant::now(), interval),
            Some(WATCHED_LOOK_AT_LEAST)
        );
        epmd.answer(&[ALIVE2_X_RESP, 0, 0, 0, 0, 1]).await;
        tokio::time::timeout(
            Duration::from_secs(10),
            wait.until_check(Duration::from_secs(3600)),
        )
        .await
        .expect("the answer ends the wait");
        assert!(wait.look_due(Instant::now()), "a look at once");
        assert_eq!(wait.next_check(Instant::now(), interval), Some(CHECK));
        // Within EAGER a check's delay is slept whole: an answer queued
        // meanwhile is seen after it, not before.
        epmd.answer(&[ALIVE2_X_RESP, 0, 0, 0, 0, 1]).await;
        let before = Instant::now();
        wait.until_check(CHECK).await;
        assert!(before.elapsed() >= CHECK, "slept {:?}", before.elapsed());
        assert!(!matches!(
            wait.signal,
            Some(Signal::Registrations { seen: true, .. })
        ));
    }

    /// The count is this namespace's and follows its sockets (other tests
    /// open and close a few meanwhile; not 100 at once).
    #[test]
    fn the_count_follows_the_namespace_sockets() {
        let count = SocketCount::open();
        let before = count
            .read()
            .expect("/proc/net/sockstat says sockets: used N");
        let held: Vec<_> = (0..200)
            .map(|_| std::net::UdpSocket::bind("127.0.0.1:0").expect("bind"))
            .collect();
        let during = count.read().expect("count");
        drop(held);
        assert!(
            during >= before + 100,
            "200 sockets opened, count {before} then {during}"
        );
    }
}
