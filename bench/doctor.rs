//! bench/doctor (issue 12): how long `beamup doctor` takes on a healthy 5-node cluster
//! and with one dead peer (target: under 2 s), against `beamup peers` (address + one
//! DNS poll) measured in the same run as the baseline.
//!
//! Five hosts of the test harness (tests/support/net.rs) boot the demo mix release
//! through `beamup --ip interface:eth0 --query demo --connect` (cookie: the release's
//! releases/COOKIE); dnsmasq answers `demo` with all five. Once doctor on h0 exits 0
//! (full mesh), it is timed `--runs` times (wall time of the whole process, through
//! `ip netns exec`), then with h4 dead in two ways:
//! - silent: h4 drops every packet (iptables in its namespace), so each step to it
//!   waits for the step timeout, the worst case;
//! - cut: h4's cable is pulled (bridge port down), so connects fail once ARP gives up.
//!
//! Run (as root): `bash bench/doctor.sh [--runs 11]`. Writes bench/results/doctor.txt.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use testkit::{Host, Net, Proc, Release, TempDir, Zone, mix_release, require, require_root};

const HOSTS: usize = 5;
const TARGET: Duration = Duration::from_secs(2);
/// Bound on the cluster forming (five VMs booting on two cores take several seconds).
const MESH_LIMIT: Duration = Duration::from_secs(180);

fn main() {
    // `cargo test --all-targets` runs bench targets without --bench: only by hand.
    if !std::env::args().any(|a| a == "--bench") {
        println!(
            "bench/doctor: a benchmark, run by hand: bash bench/doctor.sh (see bench/README.md)"
        );
        return;
    }
    require_root();
    require(&["dnsmasq", "erl", "elixir", "ip", "iptables"]);
    let runs = runs_option();
    let bin = binary();
    let release = mix_release();

    let mut net = Net::new("doctor");
    let hosts: Vec<Host> = (0..HOSTS)
        .map(|i| net.add_host(&format!("h{i}"), true, false))
        .collect();
    let refs: Vec<&Host> = hosts.iter().collect();
    net.start_dns(&Zone::service("demo", "svc.test", &refs));
    let dir = TempDir::new("benchdoctor");
    let _vms: Vec<Proc> = hosts
        .iter()
        .map(|h| boot(&bin, h, &release, dir.path()))
        .collect();
    let me = &hosts[0];
    let doctor = |args: &[&str]| run(&bin, me, &release, "doctor", args);

    let booted = Instant::now();
    loop {
        let (_, code, out) = doctor(&[]);
        if code == 0 {
            break;
        }
        assert!(
            booted.elapsed() < MESH_LIMIT,
            "no healthy cluster within {MESH_LIMIT:?}; last doctor run:\n{out}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let mesh_after = booted.elapsed();
    eprintln!("bench doctor: healthy after {mesh_after:?}; timing {runs} runs each");

    let baseline = time(runs, || run(&bin, me, &release, "peers", &[]), 0);
    let healthy = time(runs, || doctor(&[]), 0);
    let dead = &hosts[HOSTS - 1];
    let in_dead = |args: &[&str]| {
        let mut all = vec!["netns", "exec", dead.ns.as_str(), "iptables"];
        all.extend_from_slice(args);
        testkit::run_ok("ip", &all);
    };
    in_dead(&["-A", "INPUT", "-j", "DROP"]);
    let silent = time(runs, || doctor(&[]), 1);
    in_dead(&["-D", "INPUT", "-j", "DROP"]);
    net.link_down(dead);
    let cut = time(runs, || doctor(&[]), 1);
    net.link_up(dead);

    let text = report(
        &bin,
        runs,
        mesh_after,
        &[
            ("beamup peers (baseline)", &baseline, None),
            ("doctor, 5 healthy nodes", &healthy, Some(&baseline)),
            ("doctor, 1 peer silent (DROP)", &silent, Some(&baseline)),
            ("doctor, 1 peer cut (link down)", &cut, Some(&baseline)),
        ],
    );
    print!("{text}");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("bench/results/doctor.txt");
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {path:?}: {e}"));
    eprintln!("bench doctor: wrote {}", path.display());
}

fn runs_option() -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == "--runs")
        .and_then(|i| args.get(i + 1))
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("--runs takes a number"))
        })
        .unwrap_or(11)
}

/// BEAMUP_BENCH_BIN (the static release build, see doctor.sh), else cargo's build.
fn binary() -> PathBuf {
    std::env::var_os("BEAMUP_BENCH_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(testkit::beamup_bin)
}

/// Removes the runner's own beamup and release settings from `cmd`.
fn clean_env(cmd: &mut Command) {
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy().into_owned();
        if key.starts_with("BEAMUP_") || key.starts_with("RELEASE_") {
            cmd.env_remove(key);
        }
    }
}

fn boot(bin: &Path, host: &Host, release: &Release, dir: &Path) -> Proc {
    let tmp = dir.join(format!("{}.tmp", host.name));
    std::fs::create_dir_all(&tmp).unwrap_or_else(|e| panic!("cannot create {tmp:?}: {e}"));
    let mut cmd = host.command(bin);
    cmd.args(["--ip", "interface:eth0", "--query", "demo", "--connect"])
        .arg("--")
        .arg(release.bin())
        .args(release.start_args())
        .env("RELEASE_TMP", &tmp)
        .env("TMPDIR", &tmp);
    clean_env(&mut cmd);
    host.spawn(cmd)
}

/// `beamup <sub> --ip interface:eth0 --query demo --basename demo <args>` in `host`
/// (doctor: with `-- bin/demo start`):
/// (wall time, exit code, stdout).
fn run(
    bin: &Path,
    host: &Host,
    release: &Release,
    sub: &str,
    args: &[&str],
) -> (Duration, i32, String) {
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &host.ns])
        .arg(bin)
        .args([
            sub,
            "--ip",
            "interface:eth0",
            "--query",
            "demo",
            "--basename",
            "demo",
        ])
        .args(args);
    // doctor finds the release's cookie through its command; peers takes none.
    if sub == "doctor" {
        cmd.arg("--").arg(release.bin()).arg("start");
    }
    cmd.env("BEAMUP_LOG", "error").stdin(Stdio::null());
    clean_env(&mut cmd);
    let started = Instant::now();
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run beamup {sub}: {e}"));
    let took = started.elapsed();
    (
        took,
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// `runs` wall times of `f`, each run's exit code checked (the bench times the
/// outcome it claims to).
fn time(runs: usize, mut f: impl FnMut() -> (Duration, i32, String), want: i32) -> Vec<Duration> {
    (0..runs)
        .map(|_| {
            let (took, code, out) = f();
            assert_eq!(code, want, "unexpected exit {code}:\n{out}");
            took
        })
        .collect()
}

fn median(xs: &[Duration]) -> Duration {
    let mut s = xs.to_vec();
    s.sort();
    s[s.len() / 2]
}

fn p90(xs: &[Duration]) -> Duration {
    let mut s = xs.to_vec();
    s.sort();
    s[((s.len() - 1) * 9).div_ceil(10)]
}

type Row<'a> = (&'a str, &'a Vec<Duration>, Option<&'a Vec<Duration>>);

fn report(bin: &Path, runs: usize, mesh_after: Duration, rows: &[Row]) -> String {
    let mut out = String::new();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let commit = Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let _ = writeln!(
        out,
        "# bench/doctor (issue 12): wall time of `beamup doctor`"
    );
    let _ = writeln!(out, "date:    {}", date());
    let _ = writeln!(out, "commit:  {commit}");
    let _ = writeln!(
        out,
        "load:    {} (1/5/15 min at the end: other work on the machine slows every run)",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let _ = writeln!(out, "binary:  {}", bin.display());
    let _ = writeln!(
        out,
        "setup:   {HOSTS} hosts booting the demo mix release through `beamup --query demo \
         --connect`, healthy after {:.1}s;\n         doctor on h0, {runs} runs per row, through \
         `ip netns exec`; dead peer = h4",
        mesh_after.as_secs_f64()
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{:<32} {:>8} {:>8} {:>8} {:>9}  {:>6}  verdict",
        "run", "median", "p90", "max", "x peers", "target"
    );
    for (name, xs, baseline) in rows {
        let ratio = baseline
            .map(|b| format!("{:.1}x", median(xs).as_secs_f64() / median(b).as_secs_f64()))
            .unwrap_or_else(|| "1.0x".into());
        let verdict = match baseline {
            None => "(baseline)",
            Some(_) if median(xs) < TARGET => "met",
            Some(_) => "MISSED",
        };
        let max = xs.iter().max().copied().unwrap_or_default();
        let _ = writeln!(
            out,
            "{name:<32} {:>7.3}s {:>7.3}s {:>7.3}s {ratio:>9}  {:>5.1}s  {verdict}",
            median(xs).as_secs_f64(),
            p90(xs).as_secs_f64(),
            max.as_secs_f64(),
            TARGET.as_secs_f64()
        );
    }
    let _ = writeln!(
        out,
        "\nx peers: the median over the median of `beamup peers` (own address + one DNS \
         poll) in the same run.\nsilent: h4 drops every packet, so its epmd step waits \
         the 1 s step timeout; cut: its bridge port is down."
    );
    out
}

fn date() -> String {
    Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M:%S UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}
