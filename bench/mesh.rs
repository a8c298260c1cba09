//! bench/mesh (issue "--connect"): time to full mesh of N hosts booting the demo mix
//! release through `beamup --connect --query`, and the reporter's memory while connected.
//!
//! Each host is a network namespace of the test harness (tests/common/net.rs) with its
//! own epmd; dnsmasq answers the query `demo` (search domain svc.test) with every host.
//! One watcher thread per host joins the host's namespace with setns(2) and
//!   1. polls that host's epmd (NAMES_REQ on 127.0.0.1:4369) every 10 ms until `demo`
//!      is registered: the host's registration instant;
//!   2. then connects to the node as a hidden node (beamup's own distribution client)
//!      and asks `erlang:nodes()` every 20 ms until it lists all N-1 others.
//!
//! Time to full mesh = (last host to see everybody) - (last host to register), i.e.
//! measured from the LAST node's epmd registration. Target: at most interval + 2 s.
//! The reporter's VmRSS is read on every host once the mesh is complete and again one
//! interval later.
//!
//! Run (as root): `bash bench/mesh.sh` (builds the static binary and runs this with it),
//! or `cargo bench --bench mesh -- [--sizes 3,5,8,16] [--intervals 1s,5s] [--runs 5]`.
//! BEAMUP_BENCH_BIN picks the beamup binary (default: the one cargo built for the bench).
//! Writes bench/results/mesh.txt.

#[path = "cluster.rs"]
mod cluster;
#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use beamup::dist::Session;
use beamup::secret::Secret;
use cluster::{machine_lines, median, node, otp_release, show};
use common::{Host, Net, Proc, Release, TempDir, Zone};

/// Bound on one run: boot of every VM plus the mesh (8 VMs on 2 cores boot in ~10 s).
const RUN_LIMIT: Duration = Duration::from_secs(120);
const EPMD_POLL: Duration = Duration::from_millis(10);
const NODES_POLL: Duration = Duration::from_millis(20);

struct Options {
    sizes: Vec<usize>,
    intervals: Vec<Duration>,
    runs: usize,
}

fn parse_options() -> Options {
    let mut opts = Options {
        sizes: vec![3, 5, 8, 16],
        intervals: vec![Duration::from_secs(1), Duration::from_secs(5)],
        runs: 5,
    };
    for (name, value) in cluster::flags() {
        match name.as_str() {
            "--sizes" => {
                opts.sizes = value
                    .split(',')
                    .map(|s| s.parse().unwrap_or_else(|_| panic!("bad size {s:?}")))
                    .collect();
            }
            "--intervals" => {
                opts.intervals = value
                    .split(',')
                    .map(|s| {
                        beamup::duration::parse(s)
                            .unwrap_or_else(|e| panic!("bad interval {s:?}: {e}"))
                    })
                    .collect();
            }
            "--runs" => {
                opts.runs = value
                    .parse()
                    .unwrap_or_else(|_| panic!("--runs takes a number"));
            }
            other => panic!("unknown flag {other} (--sizes, --intervals, --runs)"),
        }
    }
    opts
}

/// What one run measured.
#[derive(Debug, Clone)]
struct Sample {
    /// From the last registration to the last host seeing everybody.
    mesh: Duration,
    /// From the first beamup start to the last registration (boot of all VMs).
    boot: Duration,
    /// The reporters' VmRSS (KiB) when the mesh was complete, and one interval later.
    rss_at_mesh: Vec<u64>,
    rss_later: Vec<u64>,
}

fn main() {
    let Some((bin, release, cookie)) = cluster::start("mesh") else {
        return;
    };
    let opts = parse_options();

    let mut results: Vec<Cell> = Vec::new();
    let started = Instant::now();
    for &interval in &opts.intervals {
        for &size in &opts.sizes {
            let mut samples = Vec::new();
            for run in 0..opts.runs {
                eprintln!(
                    "bench mesh: {size} hosts, --interval {}, run {}/{}",
                    show(interval),
                    run + 1,
                    opts.runs
                );
                let sample = measure(&bin, &release, &cookie, size, interval);
                match &sample {
                    Ok(s) => eprintln!(
                        "bench mesh:   mesh {} after the last registration (boot {}), reporter RSS {:?} KiB",
                        show(s.mesh),
                        show(s.boot),
                        s.rss_at_mesh
                    ),
                    Err(e) => eprintln!("bench mesh:   FAILED: {e}"),
                }
                samples.push(sample);
            }
            results.push((interval, size, samples));
        }
    }
    let text = report(&bin, &opts, &results, started.elapsed());
    print!("{text}");
    cluster::write_result("mesh.txt", &text);
}

/// `beamup --ip interface:eth0 --query demo --connect --interval I -- bin/demo start`.
fn boot(bin: &Path, host: &Host, release: &Release, dir: &Path, interval: Duration) -> Proc {
    let interval = show(interval);
    let mut args = cluster::CONNECT_ARGS.to_vec();
    args.extend(["--interval", &interval]);
    cluster::boot(bin, host, release, dir, &args, &[])
}

/// The runs of one (interval, number of hosts) cell.
type Cell = (Duration, usize, Vec<Result<Sample, String>>);

/// What a watcher thread saw on its host.
#[derive(Debug, Default, Clone)]
struct Seen {
    registered: Option<Instant>,
    meshed: Option<Instant>,
    error: Option<String>,
}

fn measure(
    bin: &Path,
    release: &Release,
    cookie: &Secret,
    size: usize,
    interval: Duration,
) -> Result<Sample, String> {
    let mut net = Net::new("mesh");
    let hosts: Vec<Host> = (0..size)
        .map(|i| net.add_host(&format!("h{i}"), true, false))
        .collect();
    let refs: Vec<&Host> = hosts.iter().collect();
    net.start_dns(&Zone::service("demo", "svc.test", &refs));
    let dir = TempDir::new("mesh");
    let all: BTreeSet<String> = hosts.iter().map(node).collect();

    let seen: Vec<Arc<Mutex<Seen>>> = hosts.iter().map(|_| Arc::default()).collect();
    let deadline = Instant::now() + RUN_LIMIT;
    let watchers: Vec<_> = hosts
        .iter()
        .zip(&seen)
        .enumerate()
        .map(|(i, (host, seen))| {
            let host = host.clone();
            let seen = Arc::clone(seen);
            let cookie = cookie.clone();
            let others: BTreeSet<String> =
                all.iter().filter(|n| **n != node(&host)).cloned().collect();
            std::thread::spawn(move || watch(i, &host, &cookie, &others, &seen, deadline))
        })
        .collect();

    let start = Instant::now();
    let procs: Vec<Proc> = hosts
        .iter()
        .map(|h| boot(bin, h, release, dir.path(), interval))
        .collect();
    for w in watchers {
        let _ = w.join();
    }
    let seen: Vec<Seen> = seen
        .iter()
        .map(|s| s.lock().map(|g| g.clone()).unwrap_or_default())
        .collect();
    if let Some((i, s)) = seen.iter().enumerate().find(|(_, s)| s.meshed.is_none()) {
        let log = procs[i].log();
        let tail: String = log
            .lines()
            .rev()
            .take(15)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n");
        return Err(format!(
            "host h{i}: {} (registered: {}); its log ends with:\n{tail}",
            s.error.clone().unwrap_or_else(|| "no full mesh".into()),
            s.registered.is_some()
        ));
    }
    let last_reg = seen.iter().filter_map(|s| s.registered).max();
    let last_mesh = seen.iter().filter_map(|s| s.meshed).max();
    let (Some(last_reg), Some(last_mesh)) = (last_reg, last_mesh) else {
        return Err("no registration or mesh instant".into());
    };
    let rss_at_mesh = reporter_rss(bin, &procs)?;
    std::thread::sleep(interval);
    let rss_later = reporter_rss(bin, &procs)?;
    drop(procs);
    drop(net);
    Ok(Sample {
        mesh: last_mesh.saturating_duration_since(last_reg),
        boot: last_reg.saturating_duration_since(start),
        rss_at_mesh,
        rss_later,
    })
}

/// The watcher of host `i` (see the module docs); runs in its own thread, which
/// joins the host's network namespace so that 127.0.0.1 is the host's loopback.
fn watch(
    i: usize,
    host: &Host,
    cookie: &Secret,
    others: &BTreeSet<String>,
    seen: &Mutex<Seen>,
    deadline: Instant,
) {
    let fail = |e: String| {
        if let Ok(mut s) = seen.lock() {
            s.error = Some(e);
        }
    };
    if let Err(e) = cluster::enter(host) {
        return fail(e);
    }

    // 1. Registration with the host's epmd.
    loop {
        if cluster::demo_registered() {
            break;
        }
        if Instant::now() >= deadline {
            return fail("demo never registered with epmd".into());
        }
        std::thread::sleep(EPMD_POLL);
    }
    let registered = Instant::now();
    if let Ok(mut s) = seen.lock() {
        s.registered = Some(registered);
    }

    // 2. Ask the node who it is connected to until it is everybody.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(format!("tokio runtime: {e}")),
    };
    let local = node(host);
    let own = format!("bench{i}-{}@{}", std::process::id(), host.addr());
    let outcome = runtime.block_on(async {
        let mut session: Option<Session> = None;
        let mut last_error = String::new();
        loop {
            if Instant::now() >= deadline {
                return Err(format!("no full mesh in time; last: {last_error}"));
            }
            if session.as_ref().is_none_or(|s| !s.is_alive()) {
                match Session::connect(&local, &own, cookie).await {
                    Ok(s) => session = Some(s),
                    Err(e) => last_error = e.to_string(),
                }
            }
            if let Some(s) = &session {
                match s.nodes().await {
                    Ok(nodes) => {
                        let nodes: BTreeSet<String> = nodes.into_iter().collect();
                        if others.is_subset(&nodes) {
                            return Ok(Instant::now());
                        }
                        last_error = format!("nodes() = {nodes:?}");
                    }
                    Err(e) => last_error = e.to_string(),
                }
            }
            tokio::time::sleep(NODES_POLL).await;
        }
    });
    match outcome {
        Ok(at) => {
            if let Ok(mut s) = seen.lock() {
                s.meshed = Some(at);
            }
        }
        Err(e) => fail(e),
    }
}

/// VmRSS (KiB) of every host's reporter: the child of the VM (beamup's pid after the
/// exec) that still runs the beamup binary.
fn reporter_rss(bin: &Path, procs: &[Proc]) -> Result<Vec<u64>, String> {
    procs
        .iter()
        .map(|p| {
            let pid = cluster::reporter_pid(p.pid(), bin)
                .ok_or_else(|| format!("no reporter under VM pid {}", p.pid()))?;
            cluster::vm_rss(pid).ok_or_else(|| format!("no VmRSS for reporter {pid}"))
        })
        .collect()
}

fn report(bin: &Path, opts: &Options, results: &[Cell], took: Duration) -> String {
    let mut out = String::new();
    let line = |out: &mut String, s: String| {
        let _ = writeln!(out, "{s}");
    };
    line(
        &mut out,
        "# bench/mesh (issue --connect): time to full mesh with beamup --connect --query".into(),
    );
    for l in machine_lines() {
        line(&mut out, l);
    }
    line(&mut out, format!("binary:  {}", bin.display()));
    line(
        &mut out,
        format!(
            "setup:   N network namespaces on a bridge, dnsmasq answering `demo` with all N, each host\n\
             \x20        `beamup --ip interface:eth0 --query demo --connect --interval I -- bin/demo start`\n\
             \x20        (demo mix release, OTP {}); {} run(s) per cell, {} in all",
            otp_release(),
            opts.runs,
            show(took)
        ),
    );
    line(
        &mut out,
        "mesh:    from the LAST node's epmd registration until every node's erlang:nodes() lists\n\
         \x20        all others (epmd polled every 10 ms, nodes() every 20 ms, per host namespace)"
            .into(),
    );
    line(&mut out, String::new());
    line(
        &mut out,
        format!(
            "{:>5} {:>8} {:>12} {:>26} {:>10} {:>8} {:>18} {:>7}",
            "hosts",
            "interval",
            "mesh median",
            "mesh runs",
            "target",
            "verdict",
            "reporter RSS med",
            "boot"
        ),
    );
    for (interval, size, samples) in results {
        let ok: Vec<&Sample> = samples.iter().filter_map(|s| s.as_ref().ok()).collect();
        let failed = samples.len() - ok.len();
        let meshes: Vec<f64> = ok.iter().map(|s| s.mesh.as_secs_f64()).collect();
        let runs = meshes
            .iter()
            .map(|m| format!("{m:.2}"))
            .collect::<Vec<_>>()
            .join(" ");
        let target = interval.as_secs_f64() + 2.0;
        let med = median(meshes.clone());
        let verdict = match med {
            Some(m) if m <= target && failed == 0 => "met",
            Some(_) if failed > 0 => "FAILED RUNS",
            Some(_) => "MISSED",
            None => "NO DATA",
        };
        let rss: Vec<f64> = ok
            .iter()
            .flat_map(|s| s.rss_at_mesh.iter().chain(&s.rss_later))
            .map(|k| *k as f64)
            .collect();
        let rss_max = rss.iter().copied().fold(0.0, f64::max);
        let boots = median(ok.iter().map(|s| s.boot.as_secs_f64()).collect());
        line(
            &mut out,
            format!(
                "{:>5} {:>8} {:>11} {:>26} {:>9.1}s {:>8} {:>18} {:>6}",
                size,
                show(*interval),
                med.map_or("-".into(), |m| format!("{m:.2}s")),
                if failed > 0 {
                    format!("{runs} ({failed} failed)")
                } else {
                    runs
                },
                target,
                verdict,
                median(rss).map_or("-".into(), |m| format!("{:.0} KiB (max {:.0})", m, rss_max)),
                boots.map_or("-".into(), |b| format!("{b:.1}s")),
            ),
        );
    }
    let failures: Vec<String> = results
        .iter()
        .flat_map(|(interval, size, samples)| {
            samples.iter().filter_map(move |s| {
                s.as_ref()
                    .err()
                    .map(|e| format!("{size} hosts, {}: {e}", show(*interval)))
            })
        })
        .collect();
    if !failures.is_empty() {
        line(&mut out, String::new());
        line(&mut out, "failed runs:".into());
        for f in failures {
            line(&mut out, format!("  {f}"));
        }
    }
    line(&mut out, String::new());
    line(
        &mut out,
        "reporter RSS: VmRSS of every host's reporter child when the mesh was complete and one\n\
         interval later (median and max over hosts and runs); boot: median time from starting\n\
         the N beamups to the last epmd registration."
            .into(),
    );
    out
}
