//! How often `--connect` looks for the release's VM while it boots, before
//! it has registered with epmd. A look is one epmd request
//! (`Connector::local_registered`: a TCP connection to epmd, ~0.1 ms of CPU
//! with epmd's share), and a cluster boots many VMs at once on shared cores:
//! looks at a fixed pace cost more the slower the boot (issue 19: a 24-host
//! boot on two cores ~16% slower with a look every 10 ms per reporter, and
//! still ~1.6 CPU-s of reporters and epmds per boot with one per 2 ms of the
//! release's CPU time).
//!
//! So the reporter looks when the VM may just have registered. Registering
//! opens sockets (the distribution's listener, the VM's connection to epmd
//! and epmd's end of it), and the open sockets of the network namespace are
//! counted by the kernel (`/proc/net/sockstat`: one read of a file kept
//! open). The count is read every [`CHECK`] for the first [`FAST_FOR`] (a
//! VM that registers that soon boots on an idle machine), then every
//! [`CHECK_LATER`]: each read is a wakeup, ~20–50 µs of CPU on a virtual
//! machine (measured here: 19 µs for a bare sleep and wake, 7 µs more for
//! the read, more with the runtime's timer), and later VMs boot on a busy
//! machine. A look follows each change, and one at every check for
//! [`EAGER`] after it (the registration may still be on its way to epmd),
//! and at least one per [`LOOK_AT_LEAST`] (changes that cancel out).
//! Without the count (no /proc), the pace is the wall clock's: a look at
//! every check for the first [`FAST_FOR`], then every [`SLOWER`]. After
//! [`LOOK_FOR`] the poll's own attempt, once per interval, goes on alone.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::time::Duration;

use tokio::time::Instant;
use tracing::info;

/// The socket count is read this often for [`FAST_FOR`] ...
const CHECK: Duration = Duration::from_millis(5);
const FAST_FOR: Duration = Duration::from_secs(1);
/// ... then this often.
const CHECK_LATER: Duration = Duration::from_millis(10);
/// After a change, a look at every check for this long.
const EAGER: Duration = Duration::from_millis(20);
/// At least one look per this much wall time, for a change that cancelled
/// out between two checks (a socket opened as another closed).
const LOOK_AT_LEAST: Duration = Duration::from_millis(200);
/// Without the count: a look at every check for [`FAST_FOR`], then every
/// this often.
const SLOWER: Duration = Duration::from_millis(20);
/// A VM that has not registered after this (a release that never starts
/// distribution, a crash loop) is looked for once per interval from then on.
const LOOK_FOR: Duration = Duration::from_secs(120);

/// The wait for the local VM, from the first look on.
#[derive(Debug, Default)]
pub struct VmWait {
    since: Option<Instant>,
    /// The last look: when, and the socket count then.
    looked: Option<(Instant, Option<u64>)>,
    /// A look at every check until then (the count changed).
    eager_until: Option<Instant>,
    sockets: Option<SocketCount>,
    /// "Looking once per interval from now on" was said.
    said_slow: bool,
}

impl VmWait {
    /// The VM was reached: a later wait (a restarted VM) starts afresh.
    pub fn reset(&mut self) {
        if self.since.is_some() {
            *self = VmWait::default();
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

    /// Whether to look now: the first time, when the namespace's socket
    /// count changed since the last look (and for [`EAGER`] after), or
    /// [`LOOK_AT_LEAST`] after the last look; without a count, by the clock
    /// alone.
    pub fn look_due(&mut self, now: Instant) -> bool {
        let count = self.sockets.get_or_insert_with(SocketCount::open).read();
        self.look_due_with(now, count)
    }

    /// [`look_due`] with the socket count `count` read.
    ///
    /// [`look_due`]: VmWait::look_due
    fn look_due_with(&mut self, now: Instant, count: Option<u64>) -> bool {
        let Some((last, before)) = self.looked else {
            self.looked = Some((now, count));
            return true;
        };
        let changed = matches!((before, count), (Some(b), Some(c)) if b != c);
        if changed {
            self.eager_until = Some(now + EAGER);
        }
        let due = changed
            || now.duration_since(last) >= LOOK_AT_LEAST
            || self.eager_until.is_some_and(|until| now < until)
            || ((before.is_none() || count.is_none()) && self.by_clock(now, last));
        if due {
            self.looked = Some((now, count));
        }
        due
    }

    /// The pace without a socket count.
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
struct SocketCount(Option<File>);

impl SocketCount {
    fn open() -> Self {
        SocketCount(File::open("/proc/net/sockstat").ok())
    }

    /// None when the file is missing or says something else.
    fn read(&self) -> Option<u64> {
        let mut text = [0u8; 64];
        let n = self.0.as_ref()?.read_at(&mut text, 0).ok()?;
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
        let mut wait = VmWait::default();
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

    /// A look follows a change of the socket count, then one per check for
    /// EAGER, then none until LOOK_AT_LEAST; without a count, the clock.
    #[test]
    fn looks_follow_the_socket_count_or_the_clock() {
        let t0 = Instant::now();
        let ms = |ms: u64| t0 + Duration::from_millis(ms);
        let mut wait = VmWait {
            since: Some(t0),
            ..VmWait::default()
        };
        // (ms since the start, socket count, due)
        let table = [
            (0, Some(10), true),    // the first look
            (5, Some(10), false),   // nothing opened or closed
            (100, Some(10), false), // ... for long
            (105, Some(13), true),  // the VM listened, dialed epmd: look
            (110, Some(13), true),  // ... and at every check for EAGER
            (120, Some(13), true),
            (125, Some(13), false), // EAGER is over: quiet again
            (315, Some(13), false),
            (320, Some(13), true), // LOOK_AT_LEAST after the last look
            (325, Some(12), true), // a socket closed: a change too
            (345, Some(12), false),
            (346, None, true), // no count: CHECK by the clock
            (349, None, false),
            (351, None, true),
        ];
        for (at, count, want) in table {
            assert_eq!(wait.look_due_with(ms(at), count), want, "at {at} ms");
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
