//! `--init`: beamup stays PID 1 and runs the release as its child, as tini
//! does: it forwards every signal a user or platform sends
//! ([`signals::FORWARDED`]), reaps every zombie reparented to it, restarts
//! the reporter when it dies, and exits with the release's status (128+n when
//! signal n killed it).
//!
//! Single-threaded, no async runtime: the signals are blocked and read from a
//! signalfd, whose poll(2) timeout is also the reporter's restart timer. A
//! blocked signal is queued even for PID 1, whose unhandled signals the
//! kernel otherwise drops, so nothing sent between the forks is lost.

use std::os::fd::AsFd;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigHandler, SigSet, Signal, kill, signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use tracing::{debug, info, warn};

use super::{Launch, fork_reporter, fork_single_threaded, signals};
use crate::exit_codes::{ExitCode, Failure};

/// Runs the release (and the reporter, when `reporter` is given) as children
/// and supervises them until the release exits; returns its exit status.
pub fn supervise(launch: &Launch, reporter: Option<&dyn Fn()>) -> Result<i32, Failure> {
    // PID 1 for the node's life: later allocations are the system
    // allocator's, not the boot's arena.
    crate::arena::close();
    let signals = Signals::take()?;
    become_reaper();
    let release = spawn_release(launch)?;
    info!(
        pid = release.as_raw(),
        "release started (--init: beamup stays its parent)"
    );
    let mut reporter = reporter.map(Reporter::new);
    if let Some(reporter) = reporter.as_mut() {
        reporter.start();
    }
    loop {
        let wake_at = reporter.as_ref().and_then(|r| r.restart_at);
        for signal in signals.wait(wake_at) {
            if signal != Signal::SIGCHLD {
                // The release may be exiting already (ESRCH): nothing to do.
                let _ = kill(release, signal);
                debug!(%signal, "forwarded to the release");
            }
        }
        for (pid, status) in reap() {
            if pid == release {
                if let Some(reporter) = reporter.as_mut() {
                    reporter.stop();
                }
                return Ok(release_exit(status));
            }
            match reporter.as_mut() {
                Some(r) if r.pid == Some(pid) => r.died(status),
                _ => debug!(pid = pid.as_raw(), "reaped an orphan"),
            }
        }
        if let Some(reporter) = reporter.as_mut() {
            reporter.restart_if_due();
        }
    }
}

/// The supervisor's signals: blocked, read from a signalfd.
struct Signals {
    fd: SignalFd,
}

impl Signals {
    fn take() -> Result<Signals, Failure> {
        let mut set = SigSet::empty();
        for signal in signals::FORWARDED {
            set.add(signal);
        }
        set.add(Signal::SIGCHLD);
        // Blocked before the signalfd exists: from here on every signal waits
        // in the queue for the loop, also while the children are forked.
        set.thread_block()
            .map_err(|e| Failure::msg(ExitCode::Config, format!("cannot block signals: {e}")))?;
        // SAFETY: setting dispositions installs no handler. SIGCHLD at its
        // default (an inherited SIG_IGN would make the kernel reap the
        // release before beamup sees its status); beamup's own terminal
        // access must not stop it (tini does the same).
        unsafe {
            let _ = signal(Signal::SIGCHLD, SigHandler::SigDfl);
            let _ = signal(Signal::SIGTTIN, SigHandler::SigIgn);
            let _ = signal(Signal::SIGTTOU, SigHandler::SigIgn);
        }
        let fd = SignalFd::with_flags(&set, SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC)
            .map_err(|e| Failure::msg(ExitCode::Config, format!("cannot open a signalfd: {e}")))?;
        Ok(Signals { fd })
    }

    /// Waits for signals (or until `until`) and returns those that arrived.
    fn wait(&self, until: Option<Instant>) -> Vec<Signal> {
        let timeout = match until {
            None => PollTimeout::NONE,
            Some(at) => {
                // Rounded up: waking a millisecond early would spin.
                let left =
                    at.saturating_duration_since(Instant::now()) + Duration::from_micros(999);
                PollTimeout::try_from(left).unwrap_or(PollTimeout::MAX)
            }
        };
        let mut fds = [PollFd::new(self.fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, timeout) {
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => {
                warn!(error = %e, "poll on the signalfd failed");
                // Never a busy loop, whatever the kernel says.
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        let mut out = Vec::new();
        while let Ok(Some(info)) = self.fd.read_signal() {
            if let Ok(signal) = Signal::try_from(info.ssi_signo as i32) {
                out.push(signal);
            }
        }
        out
    }
}

/// Orphans of the release are reparented to beamup: to PID 1 when beamup is
/// PID 1, else to the nearest child subreaper, which beamup becomes.
fn become_reaper() {
    if nix::unistd::getpid().as_raw() == 1 {
        return;
    }
    match nix::sys::prctl::set_child_subreaper(true) {
        Ok(()) => info!(
            "another init is present (beamup is not PID 1): beamup supervises the release and reaps its orphans as a child subreaper"
        ),
        Err(e) => warn!(
            error = %e,
            "another init is present (beamup is not PID 1) and beamup cannot become a child subreaper: the release's orphans are that init's to reap"
        ),
    }
}

/// Forks the release. Like tini, it gets its own process group and, when
/// beamup has a terminal, the terminal's foreground: a Ctrl-C reaches the
/// release once, from the terminal, not a second time through beamup.
fn spawn_release(launch: &Launch) -> Result<Pid, Failure> {
    match fork_single_threaded("the release")? {
        Some(pid) => Ok(pid),
        None => {
            let _ = nix::unistd::setpgid(Pid::from_raw(0), Pid::from_raw(0));
            let stdin = std::io::stdin();
            if nix::unistd::isatty(&stdin).unwrap_or(false) {
                // SIGTTOU is ignored (see Signals::take), so this cannot stop us.
                let _ = nix::unistd::tcsetpgrp(&stdin, nix::unistd::getpgrp());
            }
            let failure = launch.exec();
            eprintln!("beamup: error: {:#}", failure.error);
            std::process::exit(failure.code.code())
        }
    }
}

/// Every child that has exited, reaped: the release, the reporter, and any
/// orphan reparented to beamup.
fn reap() -> Vec<(Pid, WaitStatus)> {
    let mut out = Vec::new();
    loop {
        match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
            Ok(status @ (WaitStatus::Exited(pid, _) | WaitStatus::Signaled(pid, _, _))) => {
                out.push((pid, status));
            }
            Err(Errno::EINTR) => continue,
            // StillAlive, no children left (ECHILD), or a stop/continue report.
            _ => return out,
        }
    }
}

/// The container's exit status: the release's own, or 128+n as a shell
/// reports a process killed by signal n.
fn release_exit(status: WaitStatus) -> i32 {
    match status {
        WaitStatus::Exited(_, code) => {
            info!(status = code, "release exited");
            code
        }
        WaitStatus::Signaled(_, signal, _) => {
            info!(%signal, "release killed by a signal");
            signals::exit_code(signal)
        }
        _ => ExitCode::Config.code(),
    }
}

/// The reporter under supervision: restarted with [`Backoff`] when it dies.
///
/// A restarted reporter starts afresh, like at boot: it re-reads nothing, its
/// membership is empty, and its first successful poll defines the peer set
/// and rewrites `--peers-file` (which stays in place meanwhile). So a peer
/// still leaves only after `--leave-after` successful polls of one reporter
/// without it, and a restart never reports anybody as left, hence never
/// disconnects a peer with `--prune`: the release keeps its connections.
struct Reporter<'a> {
    body: &'a dyn Fn(),
    pid: Option<Pid>,
    started: Instant,
    restart_at: Option<Instant>,
    backoff: Backoff,
}

impl<'a> Reporter<'a> {
    fn new(body: &'a dyn Fn()) -> Self {
        Reporter {
            body,
            pid: None,
            started: Instant::now(),
            restart_at: None,
            backoff: Backoff::default(),
        }
    }

    fn start(&mut self) {
        self.restart_at = None;
        self.started = Instant::now();
        match fork_reporter(self.body) {
            Ok(pid) => {
                debug!(reporter = pid.as_raw(), "reporter forked");
                self.pid = Some(pid);
            }
            Err(e) => {
                let delay = self.backoff.next_delay(Duration::ZERO);
                warn!(error = %format!("{:#}", e.error), "cannot start the reporter; retrying in {delay:?}");
                self.restart_at = Some(Instant::now() + delay);
            }
        }
    }

    fn died(&mut self, status: WaitStatus) {
        self.pid = None;
        let lived = self.started.elapsed();
        let delay = self.backoff.next_delay(lived);
        let how = match status {
            WaitStatus::Signaled(_, signal, _) => format!("was killed by {signal}"),
            WaitStatus::Exited(_, code) => format!("exited with status {code}"),
            _ => "ended".to_string(),
        };
        warn!(
            after = ?lived,
            "the reporter {how}; restarting it in {delay:?} (the release is not affected)"
        );
        self.restart_at = Some(Instant::now() + delay);
    }

    fn restart_if_due(&mut self) {
        if self.restart_at.is_some_and(|at| Instant::now() >= at) {
            self.start();
            if let Some(pid) = self.pid {
                info!(reporter = pid.as_raw(), "reporter restarted");
            }
        }
    }

    /// The release is gone: so goes the reporter.
    fn stop(&mut self) {
        if let Some(pid) = self.pid.take() {
            let _ = kill(pid, Signal::SIGKILL);
            let _ = waitpid(pid, None);
        }
    }
}

/// Restart delays: 0.5 s, doubling up to 30 s; a reporter that ran for a
/// minute crashed for a new reason and starts over from 0.5 s.
#[derive(Debug)]
struct Backoff {
    next: Duration,
}

const FIRST_RESTART: Duration = Duration::from_millis(500);
const MAX_RESTART: Duration = Duration::from_secs(30);
const STABLE_RUN: Duration = Duration::from_secs(60);

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            next: FIRST_RESTART,
        }
    }
}

impl Backoff {
    /// The delay before restarting a reporter that ran for `lived`.
    fn next_delay(&mut self, lived: Duration) -> Duration {
        if lived >= STABLE_RUN {
            self.next = FIRST_RESTART;
        }
        let delay = self.next;
        self.next = (self.next * 2).min(MAX_RESTART);
        delay
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_a_cap_and_resets_after_a_stable_run() {
        let mut b = Backoff::default();
        let quick = Duration::from_millis(10);
        let delays: Vec<u64> = (0..9)
            .map(|_| b.next_delay(quick).as_millis() as u64)
            .collect();
        assert_eq!(
            delays,
            [500, 1000, 2000, 4000, 8000, 16000, 30000, 30000, 30000]
        );
        assert_eq!(b.next_delay(STABLE_RUN), FIRST_RESTART);
        assert_eq!(b.next_delay(quick), Duration::from_secs(1));
    }

    #[test]
    fn exit_status_is_the_releases() {
        let pid = Pid::from_raw(42);
        assert_eq!(release_exit(WaitStatus::Exited(pid, 0)), 0);
        assert_eq!(release_exit(WaitStatus::Exited(pid, 3)), 3);
        assert_eq!(
            release_exit(WaitStatus::Signaled(pid, Signal::SIGKILL, false)),
            137
        );
        assert_eq!(
            release_exit(WaitStatus::Signaled(pid, Signal::SIGTERM, false)),
            143
        );
    }
}
