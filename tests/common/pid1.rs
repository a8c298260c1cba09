//! beamup as PID 1, as in a container: `unshare --pid --fork --mount-proc` starts it as
//! the first process of a fresh PID namespace (the kernel's PID-1 rules apply: a signal
//! without a handler is dropped, orphans are reparented to it), and the namespace's
//! processes can be listed from outside, e.g. to count zombies.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use super::{Host, Release, beamup_command_via, wait_until};

/// The wrapper that makes beamup PID 1 of a new PID namespace. `--kill-child`: if the
/// test kills unshare, its child (the namespace's PID 1, hence everything in it) dies too.
pub const UNSHARE_PID1: &[&str] = &["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"];

/// `beamup <args> -- <release>` as PID 1 of a fresh PID namespace inside `host`.
pub fn pid1_command(host: &Host, release: &Release, args: &[&str]) -> Command {
    beamup_command_via(host, UNSHARE_PID1, release, args)
}

/// One process as /proc shows it.
#[derive(Debug, Clone)]
pub struct ProcInfo {
    pub pid: u32,
    pub ppid: u32,
    /// R, S, D, Z, ...
    pub state: String,
    pub comm: String,
}

impl ProcInfo {
    pub fn read(pid: u32) -> Option<ProcInfo> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (head, rest) = stat.rsplit_once(')')?;
        let comm = head.split_once('(')?.1.to_string();
        let mut fields = rest.split_whitespace();
        let state = fields.next()?.to_string();
        let ppid = fields.next()?.parse().ok()?;
        Some(ProcInfo {
            pid,
            ppid,
            state,
            comm,
        })
    }

    pub fn zombie(&self) -> bool {
        self.state == "Z"
    }
}

/// The pids of `parent`'s children.
pub fn children(parent: u32) -> Vec<u32> {
    all_pids()
        .into_iter()
        .filter(|&pid| ProcInfo::read(pid).is_some_and(|p| p.ppid == parent))
        .collect()
}

fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The namespace's PID 1 (its pid seen from here): the child unshare forks.
pub fn pid1_of(unshare: u32) -> u32 {
    let mut found = None;
    wait_until(Duration::from_secs(20), "unshare to fork PID 1", || {
        found = children(unshare).first().copied();
        found.is_some()
    });
    found.unwrap_or_default()
}

/// The PID namespace of `pid` (`pid:[4026532xxx]`).
pub fn pid_ns(pid: u32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/ns/pid")).ok()
}

/// Every process of the PID namespace whose PID 1 is `pid1` (zombies included: their
/// /proc entry and namespace link stay until they are reaped).
pub fn namespace_processes(pid1: u32) -> Vec<ProcInfo> {
    pid_ns(pid1).map(|ns| processes_in(&ns)).unwrap_or_default()
}

/// Every process of the PID namespace `ns` (see [`pid_ns`]).
pub fn processes_in(ns: &Path) -> Vec<ProcInfo> {
    all_pids()
        .into_iter()
        .filter(|&pid| pid_ns(pid).as_deref() == Some(ns))
        .filter_map(ProcInfo::read)
        .collect()
}

/// The zombies among [`namespace_processes`].
pub fn zombies(pid1: u32) -> Vec<ProcInfo> {
    namespace_processes(pid1)
        .into_iter()
        .filter(ProcInfo::zombie)
        .collect()
}

/// The pids in the namespace running `exe` (compared by /proc/<pid>/exe).
pub fn running_exe(pid1: u32, exe: &Path) -> Vec<u32> {
    let exe = std::fs::canonicalize(exe).unwrap_or_else(|_| exe.to_path_buf());
    namespace_processes(pid1)
        .into_iter()
        .filter(|p| !p.zombie())
        .filter(|p| {
            std::fs::read_link(format!("/proc/{}/exe", p.pid))
                .ok()
                .as_deref()
                == Some(&exe)
        })
        .map(|p| p.pid)
        .collect()
}

/// The time from `since` to now, for the figures a test prints (never asserted).
pub fn ms_since(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}
