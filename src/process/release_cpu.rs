//! The release's CPU clock, as the reporter sees it: how much CPU time the
//! release has used so far (issue 19). The reporter is forked before the
//! exec, so its parent is the release (the start scripts and `erlexec` exec
//! all the way to `beam.smp`); with `--init` its parent is beamup, and the
//! release is the parent's other child. So: the parent and its children,
//! the reporter itself left out. Read from each one's process CPU clock
//! (all its threads, in ns): one syscall per process, nothing woken.

use std::io::Read;

use nix::time::{clock_getcpuclockid, clock_gettime};
use nix::unistd::{Pid, getpid, getppid};

/// Re-read the parent's children every this many reads (under `--init` the
/// release is spawned just after the reporter).
const CHILDREN_EVERY: u32 = 16;

/// The processes whose CPU time makes the release's.
#[derive(Debug)]
pub struct ReleaseCpu {
    parent: i32,
    own: i32,
    /// The parent is beamup itself (`--init`): the release is among its
    /// other children; else the parent is the release.
    supervised: bool,
    /// This program's path, read once (compared with the parent's).
    own_exe: Option<std::path::PathBuf>,
    children: Vec<i32>,
    reads: u32,
}

impl ReleaseCpu {
    pub fn of_parent() -> Self {
        ReleaseCpu {
            parent: getppid().as_raw(),
            own: getpid().as_raw(),
            supervised: true,
            own_exe: exe("self"),
            children: Vec::new(),
            reads: 0,
        }
    }

    /// The CPU time used by the release so far, in ns; None when /proc
    /// cannot tell (the parent gone, /proc not mounted).
    pub fn used_ns(&mut self) -> Option<u64> {
        // Asked until it says no: the reporter starts before beamup execs
        // the release, so its parent runs beamup for a moment in either mode.
        if self.supervised {
            self.supervised = runs(self.own_exe.as_deref(), self.parent);
        }
        if !self.supervised {
            return on_cpu_ns(self.parent);
        }
        if self.reads.is_multiple_of(CHILDREN_EVERY) {
            self.children = children(self.parent)
                .into_iter()
                .filter(|pid| *pid != self.own)
                .collect();
        }
        self.reads = self.reads.wrapping_add(1);
        // A child that exited since: its time is gone from the sum, and the
        // caller only compares with a smaller earlier sum.
        let used = self.children.iter().filter_map(|c| on_cpu_ns(*c)).sum();
        Some(used)
    }
}

/// Whether `pid` runs this very program, `own_exe` (beamup staying PID 1
/// with `--init`).
fn runs(own_exe: Option<&std::path::Path>, pid: i32) -> bool {
    own_exe.is_some_and(|own| exe(&pid.to_string()).as_deref() == Some(own))
}

/// The program `pid` (or `self`) runs.
fn exe(pid: &str) -> Option<std::path::PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// CPU time used by all of `pid`'s threads so far, in ns: its process CPU
/// clock (`clock_getcpuclockid(3)`), one syscall, no file.
fn on_cpu_ns(pid: i32) -> Option<u64> {
    let clock = clock_getcpuclockid(Pid::from_raw(pid)).ok()?;
    let used = clock_gettime(clock).ok()?;
    let secs = u64::try_from(used.tv_sec()).ok()?;
    let nanos = u64::try_from(used.tv_nsec()).ok()?;
    Some(secs.saturating_mul(1_000_000_000).saturating_add(nanos))
}

/// The PIDs of `pid`'s children (/proc/PID/task/PID/children).
fn children(pid: i32) -> Vec<i32> {
    read_small(&format!("/proc/{pid}/task/{pid}/children"))
        .map(|text| {
            text.split_ascii_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// A small /proc file in one read; a longer one is cut at its last space
/// (a PID list then misses its tail, never holds half a PID).
fn read_small(path: &str) -> Option<String> {
    let mut buf = [0u8; 4096];
    let mut file = std::fs::File::open(path).ok()?;
    let mut n = file.read(&mut buf).ok()?;
    if n == buf.len() {
        n = buf.iter().rposition(u8::is_ascii_whitespace)?;
    }
    std::str::from_utf8(&buf[..n]).ok().map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test process's own parent (cargo's test runner or a shell) has a
    /// CPU clock that only goes forward; our own time is left out.
    #[test]
    fn the_parent_and_its_children_have_a_cpu_clock() {
        let mut cpu = ReleaseCpu::of_parent();
        assert!(cpu.used_ns().is_some(), "/proc/PPID/stat is readable");
        assert!(
            !cpu.supervised,
            "the test runner's parent is not this binary"
        );
        assert!(
            runs(cpu.own_exe.as_deref(), cpu.own),
            "the test process runs itself"
        );
        assert!(!cpu.children.contains(&cpu.own));
        // Above PID_MAX_LIMIT (2^22): never a process.
        assert!(on_cpu_ns(4_194_305).is_none(), "no such process");
    }

    /// All threads count: CPU burnt in another thread of this process shows
    /// (it spins until the process's clock moved 30 ms, at most 10 s).
    #[test]
    fn every_thread_counts() {
        let own = getpid().as_raw();
        let before = on_cpu_ns(own).expect("/proc/self/stat is readable");
        let moved = std::thread::spawn(move || {
            let start = std::time::Instant::now();
            let mut spin = 0u64;
            while start.elapsed() < std::time::Duration::from_secs(10) {
                for _ in 0..100_000 {
                    spin = std::hint::black_box(spin.wrapping_add(1));
                }
                if on_cpu_ns(own).is_some_and(|now| now >= before + 30_000_000) {
                    return true;
                }
            }
            false
        })
        .join()
        .expect("the spinning thread");
        assert!(
            moved,
            "10 s of spinning in a thread did not move /proc/self/stat's clock"
        );
    }
}
