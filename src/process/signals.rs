//! Signal policy of every beamup process, in one place:
//!
//! - before the release runs, SIGTERM, SIGINT and SIGQUIT stop beamup at once
//!   with 128+n ([`stop_before_exec`]). As PID 1 of a container a signal
//!   without a handler is dropped by the kernel, so without this `docker stop`
//!   waited out a hung metadata server and ended in SIGKILL;
//! - the release gets a plain process: an empty mask and default dispositions
//!   ([`restore_for_release`]);
//! - the reporter shrugs off the signals that reach it by accident
//!   ([`harden_reporter`]);
//! - `--init` forwards [`FORWARDED`] to the release (tini's list).

use std::os::fd::BorrowedFd;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::libc;
use nix::sys::signal::{
    SaFlags, SigAction, SigHandler, SigSet, SigmaskHow, Signal, sigaction, sigprocmask,
};

/// The signals that stop beamup before the release runs: `docker stop`
/// (SIGTERM), a terminal's Ctrl-C (SIGINT) and Ctrl-\ (SIGQUIT).
pub const STOP: [Signal; 3] = [Signal::SIGTERM, Signal::SIGINT, Signal::SIGQUIT];

/// What `--init` forwards to the release: every signal a user or a platform
/// sends. Like tini, not the synchronous ones a fault raises in beamup itself
/// (SEGV, BUS, FPE, ILL, ABRT, TRAP, SYS), not SIGTTIN/SIGTTOU (job control of
/// beamup's own terminal access), not SIGCHLD (it reaps). Unlike tini, not
/// SIGPIPE either: the one beamup would see is its own, from a log write to a
/// closed stderr, and it is not the VM's business. SIGKILL/SIGSTOP cannot be
/// caught.
pub const FORWARDED: [Signal; 18] = [
    Signal::SIGHUP,
    Signal::SIGINT,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
    Signal::SIGALRM,
    Signal::SIGTERM,
    Signal::SIGSTKFLT,
    Signal::SIGCONT,
    Signal::SIGTSTP,
    Signal::SIGURG,
    Signal::SIGXCPU,
    Signal::SIGXFSZ,
    Signal::SIGVTALRM,
    Signal::SIGPROF,
    Signal::SIGWINCH,
    Signal::SIGIO,
    Signal::SIGPWR,
];

/// Whether the stop message is a JSON log line (`--log-format json`); read by
/// the signal handler, so an atomic.
static JSON: AtomicBool = AtomicBool::new(false);

/// Installs the handlers that stop beamup before the release runs. Called as
/// the first thing `run()` does. execve resets caught handlers to the
/// default, so the release never sees them, and there is no window in which
/// a signal to PID 1 is dropped: until the exec, the handler runs.
pub fn stop_before_exec() {
    // Other signals are blocked while the handler runs: one exit, one message.
    let action = SigAction::new(
        SigHandler::Handler(on_stop),
        SaFlags::empty(),
        SigSet::all(),
    );
    for signal in STOP {
        // SAFETY: the handler only calls async-signal-safe functions
        // (write, _exit) and reads an atomic.
        let _ = unsafe { sigaction(signal, &action) };
    }
}

/// Once the log format is known: the stop message follows it.
pub fn log_json(json: bool) {
    JSON.store(json, Ordering::Relaxed);
}

/// The stop line for one signal: text, and a JSON log line.
macro_rules! stop_lines {
    ($signal:ident, $code:literal) => {
        (
            libc::$signal,
            concat!(
                "beamup: ",
                stringify!($signal),
                " received: exiting ",
                $code,
                " without starting anything\n"
            ),
            concat!(
                "{\"level\":\"WARN\",\"message\":\"",
                stringify!($signal),
                " received: exiting ",
                $code,
                " without starting anything\"}\n"
            ),
        )
    };
}

/// Built at compile time: the handler may not allocate.
const STOP_LINES: [(libc::c_int, &str, &str); 3] = [
    stop_lines!(SIGTERM, 143),
    stop_lines!(SIGINT, 130),
    stop_lines!(SIGQUIT, 131),
];

extern "C" fn on_stop(signo: libc::c_int) {
    let json = JSON.load(Ordering::Relaxed);
    let message = STOP_LINES
        .iter()
        .find(|(s, _, _)| *s == signo)
        .map_or("", |(_, text, line)| if json { line } else { text });
    // SAFETY: fd 2 stays open for the life of the process; write(2) is
    // async-signal-safe. A failed write changes nothing about the exit.
    let _ = nix::unistd::write(unsafe { BorrowedFd::borrow_raw(2) }, message.as_bytes());
    // SAFETY: _exit is async-signal-safe; nothing needs flushing (stdout is
    // the release's, logs are written unbuffered). A forked reporter ends
    // through its PR_SET_PDEATHSIG.
    unsafe { libc::_exit(128 + signo) }
}

/// What a plain exec would give the release: an empty signal mask and the
/// default disposition of every signal beamup caught, ignored or blocked
/// (Rust's runtime ignores SIGPIPE, `--init` ignores SIGTTIN/SIGTTOU, and an
/// ignored signal stays ignored across exec). The stop handlers are reset
/// before the mask is emptied: `--init`'s release child inherits them and
/// the blocked SIGTERM it was forwarded must kill it, not print beamup's
/// "exiting without starting anything". Dispositions beamup did not set
/// (nohup's SIGHUP) are the caller's choice and kept.
pub fn restore_for_release() {
    for signal in STOP
        .into_iter()
        .chain([Signal::SIGPIPE, Signal::SIGTTIN, Signal::SIGTTOU])
    {
        // SAFETY: a default disposition installs no handler.
        let _ = unsafe { nix::sys::signal::signal(signal, SigHandler::SigDfl) };
    }
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

/// The reporter's signals. It must outlive every accident: SIGHUP (a closed
/// terminal), SIGINT/SIGQUIT (a terminal's keys, should they reach its
/// group), SIGUSR1/SIGUSR2/SIGALRM (meant for the VM), SIGPIPE (a peer
/// closing mid-write) are ignored. SIGTERM stays the deliberate way to stop
/// it; its PR_SET_PDEATHSIG is SIGKILL, which nothing can ignore.
pub fn harden_reporter() {
    for signal in [
        Signal::SIGHUP,
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGUSR1,
        Signal::SIGUSR2,
        Signal::SIGALRM,
        Signal::SIGPIPE,
    ] {
        // SAFETY: ignoring installs no handler.
        let _ = unsafe { nix::sys::signal::signal(signal, SigHandler::SigIgn) };
    }
    // SAFETY: a default disposition installs no handler.
    let _ = unsafe { nix::sys::signal::signal(Signal::SIGTERM, SigHandler::SigDfl) };
    // The reporter forked by `--init` inherits the supervisor's blocked set.
    let _ = sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None);
}

/// The exit status a shell (and Docker) gives a process killed by `signal`.
pub fn exit_code(signal: Signal) -> i32 {
    128 + signal as i32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwards_what_users_send_and_nothing_synchronous() {
        for s in [
            Signal::SIGTERM,
            Signal::SIGINT,
            Signal::SIGQUIT,
            Signal::SIGHUP,
            Signal::SIGUSR1,
            Signal::SIGUSR2,
            Signal::SIGWINCH,
            Signal::SIGCONT,
        ] {
            assert!(FORWARDED.contains(&s), "{s} is not forwarded");
        }
        for s in [
            Signal::SIGSEGV,
            Signal::SIGBUS,
            Signal::SIGFPE,
            Signal::SIGILL,
            Signal::SIGABRT,
            Signal::SIGTRAP,
            Signal::SIGSYS,
            Signal::SIGPIPE,
            Signal::SIGCHLD,
            Signal::SIGTTIN,
            Signal::SIGTTOU,
            Signal::SIGKILL,
            Signal::SIGSTOP,
        ] {
            assert!(!FORWARDED.contains(&s), "{s} must not be forwarded");
        }
        assert_eq!(exit_code(Signal::SIGTERM), 143);
        assert_eq!(exit_code(Signal::SIGINT), 130);
        assert_eq!(exit_code(Signal::SIGQUIT), 131);
        for (signo, text, json) in STOP_LINES {
            let signal = Signal::try_from(signo).expect("a signal");
            let exiting = format!("{signal} received: exiting {} ", exit_code(signal));
            assert!(text.contains(&exiting) && json.contains(&exiting), "{text}");
            let line: serde_json::Value = serde_json::from_str(json).expect("a JSON line");
            assert_eq!(line["level"], "WARN");
        }
        assert_eq!(STOP.len(), STOP_LINES.len());
    }
}
