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

/// The file at `path` as (device, inode): one binary, whatever path a process
/// sees it at (in a toolchain root it is bind-mounted elsewhere, so
/// `/proc/<pid>/exe` reads differently).
pub fn file_id(path: impl AsRef<std::path::Path>) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Whether `pid` runs the file `bin` (a [`file_id`]).
pub fn runs(pid: u32, bin: (u64, u64)) -> bool {
    file_id(format!("/proc/{pid}/exe")) == Some(bin)
}

/// beamup's reporter behind a booted release: the child of the VM (beamup's
/// pid after the exec) that still runs the beamup binary `bin`.
pub fn reporter_of(vm: u32, bin: &std::path::Path) -> Option<u32> {
    let bin = file_id(bin)?;
    let tasks = std::fs::read_dir(format!("/proc/{vm}/task")).ok()?;
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok())
                .collect::<Vec<_>>()
        })
        .find(|&pid| runs(pid, bin))
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

/// The pids in the namespace running `exe` (see [`runs`]).
pub fn running_exe(pid1: u32, exe: &Path) -> Vec<u32> {
    let exe = file_id(exe).unwrap_or_else(|| panic!("cannot stat {}", exe.display()));
    namespace_processes(pid1)
        .into_iter()
        .filter(|p| !p.zombie() && runs(p.pid, exe))
        .map(|p| p.pid)
        .collect()
}

/// The time from `since` to now, for the figures a test prints (never asserted).
pub fn ms_since(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

/// The demo mix release booted through beamup as PID 1 of its own PID namespace, in a
/// fresh IPv4 network-namespace host, with a cookie file; ready to answer rpc.
pub struct Pid1Node {
    pub vm: super::Proc,
    /// beamup's pid (PID 1 inside), seen from here.
    pub pid1: u32,
    pub node: String,
    pub cookie: super::Cookie,
    pub release: Release,
    pub host: Host,
    pub dir: super::TempDir,
    // Last: dropped after the processes in it.
    pub net: super::Net,
}

impl Pid1Node {
    /// Boots with `args` (e.g. `--init`) besides the address and cookie flags. The
    /// release gets `ERL_CRASH_DUMP=<dir>/erl_crash.dump`.
    pub fn boot(tag: &str, args: &[&str]) -> Pid1Node {
        super::require(&["unshare", "erl", "elixir"]);
        let mut net = super::Net::new(tag);
        let host = net.add_host("n1", true, false);
        let release = super::mix_release();
        let cookie = super::Cookie::new();
        let dir = super::TempDir::new("pid1");
        let cookie_path = cookie.path.to_string_lossy().into_owned();
        let mut all = vec!["--ip", "interface:eth0", "--cookie-file", &cookie_path];
        all.extend_from_slice(args);
        let mut cmd = pid1_command(&host, &release, &all);
        cmd.env("ERL_CRASH_DUMP", dir.path().join("erl_crash.dump"))
            .env("BEAMUP_LOG", "debug")
            // The release is shared: each VM gets its own tmp dir.
            .env("RELEASE_TMP", dir.path());
        let vm = host.spawn(cmd);
        let pid1 = pid1_of(vm.pid());
        let node = format!("demo@{}", host.addr());
        let booted = Pid1Node {
            vm,
            pid1,
            node,
            cookie,
            release,
            host,
            dir,
            net,
        };
        super::wait_node(&booted.host, &booted.release, &booted.vm, &booted.env());
        booted
    }

    /// What rpc needs to reach the node.
    pub fn env(&self) -> [(&str, &str); 2] {
        [
            ("RELEASE_NODE", self.node.as_str()),
            ("RELEASE_COOKIE", self.cookie.value.as_str()),
        ]
    }

    /// Runs an Erlang expression in the node (see [`super::rpc_erl`]).
    pub fn rpc(&self, erl_expr: &str) -> String {
        super::rpc_erl(&self.host, &self.release, &self.env(), erl_expr)
    }

    /// Sends `signal` to beamup (PID 1) from outside, as `docker stop`/`docker kill` do.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.pid1 as i32), signal)
            .expect("signal PID 1");
    }

    /// The exit code after `signal`, and the time it took; panics after a generous
    /// deadline with the log.
    pub fn stop_with(&mut self, signal: nix::sys::signal::Signal) -> (i32, f64) {
        let sent = Instant::now();
        self.signal(signal);
        let status = self
            .vm
            .wait_exit(Duration::from_secs(60))
            .unwrap_or_else(|| {
                panic!(
                    "{} did not exit within 60 s of {signal}; log:\n{}",
                    self.node,
                    self.vm.log()
                )
            });
        (status.code().unwrap_or(-1), ms_since(sent))
    }
}
