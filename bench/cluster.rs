//! What the multi-host benchmarks (mesh, soak) share on top of the test harness
//! (tests/common): the binary under test, booting the demo release through beamup on a
//! host, finding each host's reporter and reading its memory and descriptors, asking a
//! host's node for `erlang:nodes()` from inside its namespace, and the machine lines
//! every result file starts with.

// Each bench uses only part of it.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use beamup::secret::Secret;
use nix::sched::{CloneFlags, setns};

use super::common::{self, Host, Proc, Release};

/// The binary under test: BEAMUP_BENCH_BIN (the static release build, see mesh.sh and
/// soak.sh), else the one cargo built for this bench.
pub fn binary() -> PathBuf {
    match std::env::var_os("BEAMUP_BENCH_BIN") {
        Some(path) => {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "BEAMUP_BENCH_BIN={} is not a file",
                path.display()
            );
            path
        }
        None => common::beamup_bin(),
    }
}

/// The release's cookie (what beamup itself reads for --connect); never printed.
pub fn release_cookie(release: &Release) -> Secret {
    let path = release.root.join("releases").join("COOKIE");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    Secret::new(text.trim())
}

pub fn node(host: &Host) -> String {
    format!("demo@{}", host.addr())
}

/// `beamup <args> -- bin/demo start` on `host`, as a Dockerfile's ENTRYPOINT + CMD run
/// it (the harness's command: none of our BEAMUP_/RELEASE_/ERL_ variables leak in),
/// with the release's tmp dir under `dir` (the release is shared between hosts);
/// `env` is set after that.
pub fn boot(
    bin: &Path,
    host: &Host,
    release: &Release,
    dir: &Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> Proc {
    let tmp = dir.join(format!("{}.tmp", host.name));
    std::fs::create_dir_all(&tmp).unwrap_or_else(|e| panic!("cannot create {tmp:?}: {e}"));
    let mut cmd = common::beamup_command_with(bin, host, &[], release, args);
    cmd.env("RELEASE_TMP", &tmp).env("TMPDIR", &tmp);
    for (key, value) in env {
        cmd.env(key, value);
    }
    host.spawn(cmd)
}

/// The start of every multi-host bench: nothing unless cargo passed `--bench`
/// (`cargo test --all-targets`, as scripts/test.sh and CI run it, runs bench targets
/// too: the benchmarks are run by hand only), root and the tools checked, then the
/// binary under test, the demo mix release and its cookie.
pub fn start(name: &str) -> Option<(PathBuf, Release, Secret)> {
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "bench/{name}: a benchmark, run by hand: bash bench/{name}.sh (see bench/README.md)"
        );
        return None;
    }
    common::require_root();
    common::require(&["dnsmasq", "erl", "elixir", "ip"]);
    let release = common::mix_release();
    let cookie = release_cookie(&release);
    Some((binary(), release, cookie))
}

/// The flags every host of a `--connect` bench gets before its own.
pub const CONNECT_ARGS: [&str; 5] = ["--ip", "interface:eth0", "--query", "demo", "--connect"];

/// The `--name value` pairs of the command line, cargo's own `--bench` left out.
pub fn flags() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut args = std::env::args().skip(1).filter(|a| a != "--bench");
    while let Some(name) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| panic!("{name} needs a value"));
        out.push((name, value));
    }
    out
}

/// Moves the calling thread into `host`'s network namespace, so that 127.0.0.1 and
/// the host's address are the host's own.
pub fn enter(host: &Host) -> Result<(), String> {
    let ns = File::open(Path::new("/run/netns").join(&host.ns))
        .map_err(|e| format!("cannot open the namespace {}: {e}", host.ns))?;
    setns(&ns, CloneFlags::CLONE_NEWNET).map_err(|e| format!("setns into {}: {e}", host.ns))
}

/// Whether `demo` is registered with the epmd on this thread's loopback (NAMES_REQ).
pub fn demo_registered() -> bool {
    epmd_names().is_some_and(|names| names.lines().any(|l| l.starts_with("name demo ")))
}

/// epmd's NAMES_REQ on this thread's loopback: `name demo at port 4xxxx` lines.
fn epmd_names() -> Option<String> {
    let addr: SocketAddr = "127.0.0.1:4369".parse().ok()?;
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    // Length 1, NAMES_REQ (110).
    stream.write_all(&[0, 1, 110]).ok()?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).ok()?;
    // 4 bytes of epmd's port, then the text.
    reply
        .get(4..)
        .map(|text| String::from_utf8_lossy(text).into_owned())
}

/// The set of node names, as `erlang:nodes()` answers.
pub type Nodes = BTreeSet<String>;

/// The reporter of a booted host: the child of the VM (beamup's pid after the exec)
/// that still runs the beamup binary.
pub fn reporter_pid(vm: u32, bin: &Path) -> Option<u32> {
    let bin = std::fs::canonicalize(bin).ok()?;
    let tasks = std::fs::read_dir(format!("/proc/{vm}/task")).ok()?;
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("children")).ok())
        .flat_map(|c| {
            c.split_whitespace()
                .filter_map(|p| p.parse::<u32>().ok())
                .collect::<Vec<_>>()
        })
        .find(|pid| std::fs::read_link(format!("/proc/{pid}/exe")).is_ok_and(|exe| exe == bin))
}

/// VmRSS of `pid` in KiB.
pub fn vm_rss(pid: u32) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// How many file descriptors `pid` holds open.
pub fn open_fds(pid: u32) -> Option<usize> {
    Some(std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count())
}

pub fn show(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{:.2}s", d.as_secs_f64())
    }
}

pub fn median(mut xs: Vec<f64>) -> Option<f64> {
    if xs.is_empty() {
        return None;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    Some(if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    })
}

pub fn otp_release() -> String {
    std::process::Command::new("erl")
        .args([
            "-noshell",
            "-eval",
            "io:put_chars(erlang:system_info(otp_release)), halt().",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// date, commit, machine and load: the head of every result file.
pub fn machine_lines() -> Vec<String> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "?".into());
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .arg("-C")
            .arg(env!("CARGO_MANIFEST_DIR"))
            .args(args)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    };
    let rev = git(&["rev-parse", "--short", "HEAD"]);
    let dirty = !git(&["status", "--porcelain", "--untracked-files=no"]).is_empty();
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M:%S UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    vec![
        format!("date:    {date}"),
        format!(
            "commit:  {rev}{}",
            if dirty {
                " (+ uncommitted changes)"
            } else {
                ""
            }
        ),
        format!("machine: {cpus} cpu(s), {cpu}, Linux {kernel}"),
        format!(
            "load:    {} (1/5/15 min, at the end: other work on the machine slows the boots)",
            std::fs::read_to_string("/proc/loadavg")
                .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
                .unwrap_or_default()
        ),
    ]
}

/// Writes a result file under bench/results/.
pub fn write_result(name: &str, text: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("bench/results")
        .join(name);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).unwrap_or_else(|e| panic!("cannot create {dir:?}: {e}"));
    }
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {path:?}: {e}"));
    eprintln!("wrote {}", path.display());
}
