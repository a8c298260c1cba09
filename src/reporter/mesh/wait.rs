//! How often `--connect` looks for the release's VM while it boots, before
//! it has registered with epmd. A look is one loopback epmd request
//! (`Connector::local_registered`, ~0.1 ms of CPU with epmd's share), but a
//! cluster boots many VMs at once, and on shared cores looks at a fixed
//! pace cost more the slower the boot: issue 19 measured a 24-host boot on
//! two cores ~16% slower when each reporter looked every 10 ms.
//!
//! So the pace is the VM's own: one look per [`LOOK_PER_CPU`] of CPU time
//! the release has used (`ReleaseCpu`: its process CPU clock, one syscall,
//! read when the release may have used that much at its recent pace), and
//! at least one per [`LOOK_AT_LEAST`]. A VM booting at full speed is looked
//! for every 5 ms; one that gets a twelfth of a core, about every 25 ms.
//! When the clock cannot be read, the pace is the wall clock's: every
//! [`CHECK`] for the first [`FAST_FOR`], then every [`SLOWER`]. After
//! [`LOOK_FOR`] the poll's own
//! attempt, once per interval, goes on alone.

use std::time::Duration;

use tokio::time::Instant;
use tracing::info;

use crate::process::release_cpu::ReleaseCpu;

/// The release's CPU time is read when it may have used [`LOOK_PER_CPU`]
/// since the last look at the pace it ran at lately, but at most every
/// [`CHECK`] (also the pace without a CPU clock).
const CHECK: Duration = Duration::from_millis(5);
/// One look per this much CPU time of the release.
const LOOK_PER_CPU: Duration = Duration::from_millis(2);
/// And at least one look per this much wall time: a VM that waits uses no
/// CPU but may register meanwhile (at 8 hosts on two cores a VM was found up
/// to ~200 ms late with one look per 250 ms).
const LOOK_AT_LEAST: Duration = Duration::from_millis(30);
/// Without a CPU clock: every [`CHECK`] for this long, then every [`SLOWER`].
const FAST_FOR: Duration = Duration::from_secs(1);
const SLOWER: Duration = Duration::from_millis(20);
/// A VM that has not registered after this (a release that never starts
/// distribution, a crash loop) is looked for once per interval from then on.
const LOOK_FOR: Duration = Duration::from_secs(120);

/// The wait for the local VM, from the first look on.
#[derive(Debug, Default)]
pub struct VmWait {
    since: Option<Instant>,
    /// The last look: when, and the release's CPU time then.
    looked: Option<(Instant, Option<u64>)>,
    /// The last read of the release's CPU time, and its pace since the read
    /// before (CPU ns per ns).
    checked: Option<(Instant, u64)>,
    pace: f64,
    cpu: Option<ReleaseCpu>,
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
            return Some(self.check_delay());
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

    /// Whether to look now: the first time, then once the release has used
    /// [`LOOK_PER_CPU`] since the last look (or [`LOOK_AT_LEAST`] passed);
    /// without a CPU clock, by the clock alone.
    pub fn look_due(&mut self, now: Instant) -> bool {
        let cpu = self.cpu.get_or_insert_with(ReleaseCpu::of_parent).used_ns();
        self.paced(now, cpu);
        let due = self.due_at(now, cpu);
        if due {
            self.looked = Some((now, cpu));
        }
        due
    }

    /// [`look_due`] with the release's CPU time `cpu` (ns) read.
    ///
    /// [`look_due`]: VmWait::look_due
    fn due_at(&self, now: Instant, cpu: Option<u64>) -> bool {
        let Some((last, before)) = self.looked else {
            return true;
        };
        if now.duration_since(last) >= LOOK_AT_LEAST {
            return true;
        }
        match (before, cpu) {
            (Some(before), Some(used)) => {
                used.saturating_sub(before) >= LOOK_PER_CPU.as_nanos() as u64
            }
            _ => self.by_clock(now, last),
        }
    }

    /// Records a read of the release's CPU time and the pace since the last.
    fn paced(&mut self, now: Instant, cpu: Option<u64>) {
        let Some(used) = cpu else {
            self.checked = None;
            return;
        };
        if let Some((at, before)) = self.checked {
            let wall = now.duration_since(at).as_nanos() as f64;
            if wall > 0.0 {
                self.pace = used.saturating_sub(before) as f64 / wall;
            }
        }
        self.checked = Some((now, used));
    }

    /// How long until the next read: the time the release needs for the
    /// rest of [`LOOK_PER_CPU`] at its recent pace (a twentieth of a core
    /// at least), but no later than the look [`LOOK_AT_LEAST`] forces, and
    /// no sooner than [`CHECK`].
    fn check_delay(&self) -> Duration {
        let (Some((look_at, Some(at_look))), Some((check_at, used))) = (self.looked, self.checked)
        else {
            return if self.looked.is_none() {
                Duration::ZERO
            } else {
                CHECK
            };
        };
        let left = LOOK_PER_CPU.as_nanos() as f64 - used.saturating_sub(at_look) as f64;
        let paced = Duration::from_nanos((left.max(0.0) / self.pace.max(0.05)) as u64);
        let forced = (look_at + LOOK_AT_LEAST).saturating_duration_since(check_at);
        paced.min(forced).max(CHECK)
    }

    /// The pace without a CPU clock.
    fn by_clock(&self, now: Instant, last: Instant) -> bool {
        let waited = self.since.map_or(Duration::ZERO, |s| now.duration_since(s));
        let every = if waited < FAST_FOR { CHECK } else { SLOWER };
        now.duration_since(last) >= every
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks every CHECK until LOOK_FOR, then only the poll's attempt; a new
    /// wait starts again.
    #[test]
    fn checks_stop_after_look_for() {
        let interval = Duration::from_secs(5);
        let mut wait = VmWait::default();
        let t0 = Instant::now();
        let ms = |ms: u64| t0 + Duration::from_millis(ms);
        assert_eq!(wait.next_check(ms(0), interval), Some(Duration::ZERO));
        assert!(wait.look_due(ms(0)), "the first check looks");
        for (at, checks) in [
            (10, true),
            (119_999, true),
            (120_000, false),
            (600_000, false),
        ] {
            let next = wait.next_check(ms(at), interval);
            assert_eq!(next.is_some(), checks, "{at} ms");
            assert!(
                next.is_none_or(|d| (CHECK..=LOOK_AT_LEAST).contains(&d)),
                "{at} ms: {next:?}"
            );
        }
        assert!(wait.said_slow);
        wait.reset();
        assert_eq!(wait.next_check(ms(700_000), interval), Some(Duration::ZERO));
    }

    /// The pace follows the release's CPU time; without one, the clock.
    #[test]
    fn looks_follow_the_release_cpu_or_the_clock() {
        let t0 = Instant::now();
        let ms = |ms: u64| t0 + Duration::from_millis(ms);
        let cpu_ms = |ms: u64| Some(ms * 1_000_000);
        let mut wait = VmWait {
            since: Some(t0),
            looked: Some((t0, cpu_ms(100))),
            ..VmWait::default()
        };
        // (wall ms since the last look, release CPU ms now, due)
        let table = [
            (10, cpu_ms(101), false), // the VM got 1 ms of CPU in 10 ms: a busy machine
            (20, cpu_ms(102), true),  // LOOK_PER_CPU (2 ms) of its CPU since the look
            (70, cpu_ms(102), true),  // no CPU for LOOK_AT_LEAST: a look all the same
            (74, None, false),        // no CPU clock: CHECK by the wall clock...
            (75, None, true),
        ];
        for (at, cpu, want) in table {
            assert_eq!(wait.due_at(ms(at), cpu), want, "at {at} ms");
            if want {
                wait.looked = Some((ms(at), cpu));
            }
        }
        // The next read comes when the release may have used the rest of
        // LOOK_PER_CPU at its pace: at full speed, soon; on a busy machine, later.
        let mut wait = VmWait {
            since: Some(t0),
            looked: Some((t0, cpu_ms(100))),
            ..VmWait::default()
        };
        wait.paced(ms(0), cpu_ms(100));
        wait.paced(ms(10), cpu_ms(100)); // idle: the look LOOK_AT_LEAST forces, at 30 ms
        assert_eq!(wait.check_delay(), Duration::from_millis(20));
        wait.paced(ms(20), cpu_ms(101)); // a tenth of a core, 1 ms left: 10 ms
        assert_eq!(wait.check_delay(), Duration::from_millis(10));
        wait.paced(ms(28), cpu_ms(102)); // due now, but not sooner than CHECK
        assert_eq!(wait.check_delay(), CHECK);
        // ... and without a clock, after FAST_FOR, every SLOWER.
        assert!(!wait.by_clock(ms(1_500), ms(1_490)));
        assert!(wait.by_clock(ms(1_500), ms(1_480)));
    }
}
