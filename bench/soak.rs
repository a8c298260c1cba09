//! bench/soak (issue 9): three hosts booting the demo mix release through
//! `beamup --connect --query demo`, then `--minutes` (default 30) of churn, one event at
//! a time with random pauses:
//!
//! - a fake peer joins the DNS answer (an unused address of the subnet: discovered, never
//!   connectable), or one leaves it (a fake address is never reused);
//! - the DNS server flaps: dnsmasq is stopped for 5-15 s, then started again;
//! - one host's link is cut at the bridge for 15-25 s, longer than the release's
//!   net_ticktime (6 s here), so its distribution connections really break, then restored.
//!
//! Watched all along: every host's `erlang:nodes()` (a hidden node per host, beamup's own
//! `dist::Session`, from a thread inside the host's namespace, every 250 ms); every
//! reporter's JSON log (`peer joined`/`peer left` lines) and `--peers-file` (every
//! second); every reporter's VmRSS and open descriptors (every 15 s).
//!
//! Checked at the end (each `met`/`MISSED` in bench/results/soak.txt):
//! 1. no healthy peer ever dropped: no reporter logs a real host as left, every peers
//!    file always lists the other real hosts, and two hosts whose links are up never lose
//!    each other from `erlang:nodes()`;
//! 2. every departed fake peer that a reporter had reported joined is reported left, and
//!    every fake peer still in the answer at the end is listed;
//! 3. the mesh is whole within one interval (+1 s for the connection set-up and the
//!    250 ms sampling) of each heal (DNS back, link back);
//! 4. reporter RSS and descriptors flat: the highest sample of the last third is no
//!    higher than that of the first third (+64 KiB for RSS, +0 for descriptors).
//!
//! Run (as root): `bash bench/soak.sh [--minutes 30] [--seed N]`. Writes
//! bench/results/soak.txt.

mod cluster;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use beamup::dist::Session;
use beamup::secret::Secret;
use cluster::{Nodes, node, show};
use testkit::{Host, Net, Proc, TempDir, Zone};

const HOSTS: usize = 3;
const INTERVAL: Duration = Duration::from_secs(2);
const LEAVE_AFTER: u32 = 3;
/// Short, so that a cut link breaks the distribution connections within the cut.
const NET_TICKTIME: &str = "6";
const NODES_POLL: Duration = Duration::from_millis(250);
const FILE_POLL: Duration = Duration::from_secs(1);
const MEMORY_POLL: Duration = Duration::from_secs(15);
const BOOT_LIMIT: Duration = Duration::from_secs(180);
/// Slack over one interval for the heal checks: the reporter's ±10% jitter, the
/// connection set-up and the 250 ms sampling.
const HEAL_SLACK: Duration = Duration::from_millis(1200);
/// A peer that left is reported after LEAVE_AFTER successful polls; this bounds the wait
/// at the end for the last departures (DNS restarts in between included).
const SETTLE: Duration = Duration::from_secs(20);
const RSS_SLACK_KIB: u64 = 64;

struct Options {
    minutes: f64,
    seed: u64,
}

fn parse_options() -> Options {
    let mut opts = Options {
        minutes: 30.0,
        seed: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
    };
    for (name, value) in cluster::flags() {
        match name.as_str() {
            "--minutes" => {
                opts.minutes = value
                    .parse()
                    .unwrap_or_else(|_| panic!("--minutes takes a number"));
            }
            "--seed" => {
                opts.seed = value
                    .parse()
                    .unwrap_or_else(|_| panic!("--seed takes a number"));
            }
            other => panic!("unknown flag {other} (--minutes, --seed)"),
        }
    }
    opts
}

/// xorshift64*: reproducible churn from `--seed`.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn secs(&mut self, from: u64, to: u64) -> Duration {
        Duration::from_millis(from * 1000 + self.below((to - from) * 1000))
    }
}

/// One churn event, as the report lists them.
#[derive(Debug, Clone)]
enum Event {
    Joined(String),
    Left(String),
    DnsDown,
    DnsUp,
    LinkDown(usize),
    LinkUp(usize),
}

/// What the observers saw, each with the instant it was seen.
#[derive(Default)]
struct Seen {
    /// Per host: `erlang:nodes()` each time it changed (None: could not ask).
    nodes: Vec<Vec<(Instant, Option<Nodes>)>>,
    /// Per host: `(instant, message, peer)` of every reporter log line with a peer.
    log: Vec<Vec<(Instant, String, String)>>,
    /// Per host: peers-file reads that missed a real host, with what was missing.
    file_misses: Vec<Vec<(Instant, String)>>,
    /// Per host: the last peers file read.
    last_file: Vec<BTreeSet<String>>,
    /// Per host: (instant, VmRSS KiB, open fds) of the reporter.
    memory: Vec<Vec<(Instant, u64, usize)>>,
}

fn main() {
    let Some((bin, release, cookie)) = cluster::start("soak") else {
        return;
    };
    let opts = parse_options();
    let started = Instant::now();

    let mut net = Net::new("soak");
    let hosts: Vec<Host> = (0..HOSTS)
        .map(|i| net.add_host(&format!("h{i}"), true, false))
        .collect();
    let refs: Vec<&Host> = hosts.iter().collect();
    let base_zone = Zone::service("demo", "svc.test", &refs);
    net.start_dns(&base_zone);
    let dir = TempDir::new("soak");
    let real: Vec<String> = hosts.iter().map(node).collect();

    let procs: Vec<Proc> = hosts
        .iter()
        .map(|h| {
            let (interval, leave_after) = (show(INTERVAL), LEAVE_AFTER.to_string());
            let file = peers_file(dir.path(), h).to_string_lossy().into_owned();
            let mut args = cluster::CONNECT_ARGS.to_vec();
            args.extend([
                "--interval",
                &interval,
                "--leave-after",
                &leave_after,
                "--log-format",
                "json",
                "--peers-format",
                "json",
                "--peers-file",
                &file,
            ]);
            let ticktime = format!("-kernel net_ticktime {NET_TICKTIME}");
            cluster::boot(
                &bin,
                h,
                &release,
                dir.path(),
                &args,
                &[("ELIXIR_ERL_OPTIONS", &ticktime)],
            )
        })
        .collect();

    let seen = Arc::new(Mutex::new(Seen {
        nodes: vec![Vec::new(); HOSTS],
        log: vec![Vec::new(); HOSTS],
        file_misses: vec![Vec::new(); HOSTS],
        last_file: vec![BTreeSet::new(); HOSTS],
        memory: vec![Vec::new(); HOSTS],
    }));
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    for (i, host) in hosts.iter().enumerate() {
        let (host, seen, stop, cookie) = (host.clone(), seen.clone(), stop.clone(), cookie.clone());
        threads.push(std::thread::spawn(move || {
            watch_nodes(i, &host, &cookie, &seen, &stop)
        }));
    }

    // The mesh is whole before the churn starts.
    let boot_deadline = Instant::now() + BOOT_LIMIT;
    while !whole(&seen, &real) {
        if Instant::now() > boot_deadline {
            stop.store(true, Ordering::SeqCst);
            let logs: Vec<String> = procs.iter().map(tail_of_log).collect();
            panic!(
                "bench soak: no full mesh within {}:\n{}",
                show(BOOT_LIMIT),
                logs.join("\n---\n")
            );
        }
        std::thread::sleep(NODES_POLL);
    }
    let meshed_after = started.elapsed();
    eprintln!("bench soak: mesh whole after {}", show(meshed_after));
    let reporters: Vec<u32> = procs
        .iter()
        .map(|p| {
            cluster::reporter_pid(p.pid(), &bin)
                .unwrap_or_else(|| panic!("no reporter under VM pid {}", p.pid()))
        })
        .collect();
    {
        let logs: Vec<PathBuf> = procs.iter().map(|p| p.log_path().to_path_buf()).collect();
        let files: Vec<PathBuf> = hosts.iter().map(|h| peers_file(dir.path(), h)).collect();
        let (seen, stop, real) = (seen.clone(), stop.clone(), real.clone());
        threads.push(std::thread::spawn(move || {
            observe(&logs, &files, &reporters, &real, &seen, &stop)
        }));
    }

    let churn_started = Instant::now();
    let events = churn(&mut net, &hosts, &base_zone, &opts, &seen, &real);
    let churn_took = churn_started.elapsed();
    eprintln!("bench soak: churn over, settling for {}", show(SETTLE));
    std::thread::sleep(SETTLE);
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        let _ = t.join();
    }
    let alive: Vec<bool> = procs.iter().map(Proc::alive).collect();

    let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
    let run = Run {
        real: &real,
        events: &events,
        seen: &seen,
        t0: churn_started,
    };
    let text = report(&bin, &opts, &run, &alive, meshed_after, churn_took);
    print!("{text}");
    cluster::write_result("soak.txt", &text);
    drop(procs);
    drop(net);
}

fn peers_file(dir: &Path, host: &Host) -> PathBuf {
    dir.join(format!("{}.peers.json", host.name))
}

fn tail_of_log(p: &Proc) -> String {
    let log = p.log();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// Whether every host's last `erlang:nodes()` lists every other real host.
fn whole(seen: &Mutex<Seen>, real: &[String]) -> bool {
    let seen = seen.lock().unwrap_or_else(|e| e.into_inner());
    seen.nodes.iter().enumerate().all(|(i, history)| {
        history
            .last()
            .and_then(|(_, nodes)| nodes.as_ref())
            .is_some_and(|n| lists_others(n, real, i))
    })
}

/// Whether host `i`'s nodes() `n` lists every other real host.
fn lists_others(n: &Nodes, real: &[String], i: usize) -> bool {
    real.iter()
        .enumerate()
        .all(|(j, other)| i == j || n.contains(other))
}

/// The churn: random events until `--minutes` have passed; returns them with the
/// instant each took effect.
fn churn(
    net: &mut Net,
    hosts: &[Host],
    base: &Zone,
    opts: &Options,
    seen: &Mutex<Seen>,
    real: &[String],
) -> Vec<(Instant, Event)> {
    let mut rng = Rng(opts.seed | 1);
    let end = Instant::now() + Duration::from_secs_f64(opts.minutes * 60.0);
    let prefix = match hosts[0].addr() {
        IpAddr::V4(v4) => v4.octets(),
        IpAddr::V6(_) => panic!("the soak hosts are IPv4"),
    };
    let mut next_fake: u8 = 100;
    let mut fakes: Vec<IpAddr> = Vec::new();
    let mut events = Vec::new();
    let zone = |fakes: &[IpAddr]| {
        let mut z = base.clone();
        z.a.extend(fakes.iter().map(|a| ("demo.svc.test".to_string(), *a)));
        z
    };
    let log = |events: &mut Vec<(Instant, Event)>, e: Event| {
        eprintln!(
            "bench soak: {:>6.0}s {e:?}",
            (Instant::now() + Duration::from_secs_f64(opts.minutes * 60.0))
                .saturating_duration_since(end)
                .as_secs_f64()
        );
        events.push((Instant::now(), e));
    };
    while Instant::now() < end {
        std::thread::sleep(rng.secs(3, 12));
        match rng.below(8) {
            0..=2 if next_fake < 250 => {
                let addr = IpAddr::V4(Ipv4Addr::new(prefix[0], prefix[1], prefix[2], next_fake));
                next_fake += 1;
                fakes.push(addr);
                net.set_dns(&zone(&fakes));
                log(&mut events, Event::Joined(format!("demo@{addr}")));
            }
            3..=5 if !fakes.is_empty() => {
                let gone = fakes.remove(rng.below(fakes.len() as u64) as usize);
                net.set_dns(&zone(&fakes));
                log(&mut events, Event::Left(format!("demo@{gone}")));
            }
            6 => {
                net.stop_dns();
                log(&mut events, Event::DnsDown);
                std::thread::sleep(rng.secs(5, 15));
                net.set_dns(&zone(&fakes));
                log(&mut events, Event::DnsUp);
                wait_whole(seen, real);
            }
            7 => {
                let i = rng.below(hosts.len() as u64) as usize;
                net.link_down(&hosts[i]);
                log(&mut events, Event::LinkDown(i));
                std::thread::sleep(rng.secs(15, 25));
                net.link_up(&hosts[i]);
                log(&mut events, Event::LinkUp(i));
                wait_whole(seen, real);
            }
            _ => {}
        }
    }
    events
}

/// After a heal, the next event waits for the mesh (bounded: a mesh that never heals is
/// reported, not waited for forever).
fn wait_whole(seen: &Mutex<Seen>, real: &[String]) {
    let healed = Instant::now();
    while !whole(seen, real) && healed.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(NODES_POLL);
    }
}

/// Host `i`'s `erlang:nodes()`, from inside its namespace, every NODES_POLL.
fn watch_nodes(i: usize, host: &Host, cookie: &Secret, seen: &Mutex<Seen>, stop: &AtomicBool) {
    if let Err(e) = cluster::enter(host) {
        panic!("bench soak: {e}");
    }
    while !cluster::demo_registered() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        std::thread::sleep(NODES_POLL);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio runtime: {e}"));
    let local = node(host);
    let own = format!("soak{i}-{}@{}", std::process::id(), host.addr());
    runtime.block_on(async {
        let mut session: Option<Session> = None;
        while !stop.load(Ordering::SeqCst) {
            if session.as_ref().is_none_or(|s| !s.is_alive()) {
                session = Session::connect(&local, &own, cookie).await.ok();
            }
            let now: Option<Nodes> = match &session {
                Some(s) => s.nodes().await.ok().map(|n| n.into_iter().collect()),
                None => None,
            };
            // The watcher's own hidden name never shows in nodes(): hidden nodes don't.
            {
                let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
                if seen.nodes[i].last().is_none_or(|(_, last)| *last != now) {
                    seen.nodes[i].push((Instant::now(), now));
                }
            }
            tokio::time::sleep(NODES_POLL).await;
        }
    });
}

/// Follows the reporters' logs and peers files, and samples their memory.
fn observe(
    logs: &[PathBuf],
    files: &[PathBuf],
    reporters: &[u32],
    real: &[String],
    seen: &Mutex<Seen>,
    stop: &AtomicBool,
) {
    let mut offsets = vec![0usize; logs.len()];
    let mut next_memory = Instant::now();
    while !stop.load(Ordering::SeqCst) {
        let now = Instant::now();
        for (i, path) in logs.iter().enumerate() {
            let text = std::fs::read(path).unwrap_or_default();
            let Some(end) = text.iter().rposition(|b| *b == b'\n').map(|e| e + 1) else {
                continue;
            };
            if end <= offsets[i] {
                continue;
            }
            let fresh = String::from_utf8_lossy(&text[offsets[i]..end]).into_owned();
            offsets[i] = end;
            let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
            for line in fresh.lines() {
                let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue; // the VM's own output
                };
                // --log-format json flattens the event's fields into the line.
                if let (Some(msg), Some(peer)) = (v["message"].as_str(), v["peer"].as_str()) {
                    seen.log[i].push((now, msg.to_string(), peer.to_string()));
                }
            }
        }
        for (i, path) in files.iter().enumerate() {
            let Ok(text) = std::fs::read_to_string(path) else {
                continue;
            };
            let Ok(doc) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            let listed: BTreeSet<String> = doc["peers"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|p| p["node"].as_str().map(String::from))
                        .collect()
                })
                .unwrap_or_default();
            let own = doc["node"].as_str().unwrap_or("");
            let missing: Vec<&String> = real
                .iter()
                .filter(|r| r.as_str() != own && !listed.contains(*r))
                .collect();
            let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
            if !missing.is_empty() {
                seen.file_misses[i].push((now, format!("{missing:?}")));
            }
            seen.last_file[i] = listed;
        }
        if now >= next_memory {
            next_memory = now + MEMORY_POLL;
            let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
            for (i, pid) in reporters.iter().enumerate() {
                if let (Some(rss), Some(fds)) = (cluster::vm_rss(*pid), cluster::open_fds(*pid)) {
                    seen.memory[i].push((now, rss, fds));
                }
            }
        }
        std::thread::sleep(FILE_POLL);
    }
}

/// One check's line in the report.
struct Check {
    name: String,
    met: bool,
    detail: String,
}

/// The run as the observers saw it: what the verdicts read.
struct Run<'a> {
    real: &'a [String],
    events: &'a [(Instant, Event)],
    seen: &'a Seen,
    /// When the churn started: event times are shown from there.
    t0: Instant,
}

impl Run<'_> {
    fn at(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.t0).as_secs_f64()
    }

    fn count(&self, what: impl Fn(&Event) -> bool) -> usize {
        self.events.iter().filter(|(_, e)| what(e)).count()
    }

    /// 1. No healthy peer dropped.
    fn no_healthy_peer_dropped(&self) -> Vec<Check> {
        let (real, events, seen) = (self.real, self.events, self.seen);
        let at = |t: Instant| self.at(t);
        let mut checks = Vec::new();
        let real_left: Vec<String> = seen
            .log
            .iter()
            .enumerate()
            .flat_map(|(i, lines)| {
                lines
                    .iter()
                    .filter(|(_, msg, peer)| msg == "peer left" && real.contains(peer))
                    .map(move |(t, _, peer)| format!("h{i} at {:.0}s: {peer}", at(*t)))
            })
            .collect();
        checks.push(Check {
            name: "no real host ever reported left".into(),
            met: real_left.is_empty(),
            detail: if real_left.is_empty() {
                "0 `peer left` lines for h0..h2".into()
            } else {
                real_left.join("; ")
            },
        });
        let misses: usize = seen.file_misses.iter().map(Vec::len).sum();
        checks.push(Check {
            name: "peers files always list the other real hosts".into(),
            met: misses == 0,
            detail: format!(
                "{misses} reads missed one{}",
                seen.file_misses
                    .iter()
                    .enumerate()
                    .flat_map(|(i, m)| m
                        .iter()
                        .take(3)
                        .map(move |(t, w)| format!("; h{i} at {:.0}s: {w}", at(*t))))
                    .collect::<String>()
            ),
        });
        let cuts = cut_windows(events);
        let drops = healthy_drops(seen, real, &cuts, at);
        checks.push(Check {
            name: "hosts with their links up never lose each other".into(),
            met: drops.is_empty(),
            detail: if drops.is_empty() {
                format!(
                    "{} nodes() changes sampled, none dropped a host outside a cut",
                    seen.nodes.iter().map(Vec::len).sum::<usize>()
                )
            } else {
                drops.join("; ")
            },
        });
        checks
    }

    /// 2. Departed peers reported left; present ones listed.
    fn departed_peers_reported(&self) -> Vec<Check> {
        let (real, events, seen) = (self.real, self.events, self.seen);
        let mut checks = Vec::new();
        let departed: Vec<(Instant, &String)> = events
            .iter()
            .filter_map(|(t, e)| match e {
                Event::Left(p) => Some((*t, p)),
                _ => None,
            })
            .collect();
        let present: BTreeSet<&String> = {
            let mut s = BTreeSet::new();
            for (_, e) in events {
                match e {
                    Event::Joined(p) => {
                        s.insert(p);
                    }
                    Event::Left(p) => {
                        s.remove(p);
                    }
                    _ => {}
                }
            }
            s
        };
        let mut unreported = Vec::new();
        let mut delays = Vec::new();
        for (i, lines) in seen.log.iter().enumerate() {
            for (t, peer) in &departed {
                let joined = lines
                    .iter()
                    .any(|(_, m, p)| m == "peer joined" && p == *peer);
                let left = lines
                    .iter()
                    .find(|(lt, m, p)| m == "peer left" && p == *peer && lt >= t);
                match (joined, left) {
                    (true, Some((lt, _, _))) => {
                        delays.push(lt.saturating_duration_since(*t).as_secs_f64())
                    }
                    (true, None) => unreported.push(format!("h{i}: {peer}")),
                    (false, _) => {}
                }
            }
        }
        let last_files_ok = seen.last_file.iter().enumerate().all(|(i, listed)| {
            let want: BTreeSet<&String> = present
                .iter()
                .copied()
                .chain(
                    real.iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .map(|(_, r)| r),
                )
                .collect();
            listed.iter().collect::<BTreeSet<_>>() == want
        });
        let joins_seen = seen
            .log
            .iter()
            .flatten()
            .filter(|(_, m, p)| m == "peer joined" && !real.contains(p))
            .count();
        checks.push(Check {
            name: "every departed peer reported left".into(),
            // Without a single join seen the check would pass vacuously.
            met: unreported.is_empty() && (departed.is_empty() || joins_seen > 0),
            detail: format!(
                "{} departures x {} reporters: {joins_seen} `peer joined` lines for fake peers, {} `peer left` lines, delay after the DNS change median {} max {}{}",
                departed.len(),
                seen.log.len(),
                delays.len(),
                cluster::median(delays.clone()).map_or("-".into(), |m| format!("{m:.1}s")),
                delays.iter().copied().fold(None, |m: Option<f64>, d| Some(m.map_or(d, |m| m.max(d)))).map_or("-".into(), |m| format!("{m:.1}s")),
                if unreported.is_empty() { String::new() } else { format!("; never reported: {}", unreported.join(", ")) }
            ),
        });
        checks.push(Check {
            name: "final peers files = the final answer".into(),
            met: last_files_ok,
            detail: format!(
                "{} fake peers in the answer at the end; files: {}",
                present.len(),
                seen.last_file
                    .iter()
                    .map(|f| f.len().to_string())
                    .collect::<Vec<_>>()
                    .join("/")
            ),
        });
        checks
    }

    /// 3. Whole within one interval of each heal.
    fn whole_after_each_heal(&self) -> Vec<Check> {
        let (real, events, seen) = (self.real, self.events, self.seen);
        let mut checks = Vec::new();
        let mut heals = Vec::new();
        for (t, e) in events {
            if !matches!(e, Event::DnsUp | Event::LinkUp(_)) {
                continue;
            }
            let whole_at = first_whole_after(seen, real, *t);
            heals.push((e.clone(), whole_at.map(|w| w.saturating_duration_since(*t))));
        }
        let limit = INTERVAL + HEAL_SLACK;
        let late: Vec<String> = heals
            .iter()
            .filter(|(_, d)| d.is_none_or(|d| d > limit))
            .map(|(e, d)| format!("{e:?}: {}", d.map_or("never".into(), show)))
            .collect();
        let heal_secs: Vec<f64> = heals
            .iter()
            .filter_map(|(_, d)| d.map(|d| d.as_secs_f64()))
            .collect();
        checks.push(Check {
            name: "mesh whole within one interval of each heal".into(),
            met: late.is_empty(),
            detail: format!(
                "{} heals ({} DNS, {} link), whole after median {} max {} (limit {}){}",
                heals.len(),
                heals
                    .iter()
                    .filter(|(e, _)| matches!(e, Event::DnsUp))
                    .count(),
                heals
                    .iter()
                    .filter(|(e, _)| matches!(e, Event::LinkUp(_)))
                    .count(),
                cluster::median(heal_secs.clone()).map_or("-".into(), |m| format!("{m:.2}s")),
                heal_secs
                    .iter()
                    .copied()
                    .fold(None, |m: Option<f64>, d| Some(m.map_or(d, |m| m.max(d))))
                    .map_or("-".into(), |m| format!("{m:.2}s")),
                show(limit),
                if late.is_empty() {
                    String::new()
                } else {
                    format!("; late: {}", late.join(", "))
                }
            ),
        });
        checks
    }

    /// 4. Memory and descriptors flat.
    fn memory_flat(&self) -> Vec<Check> {
        let seen = self.seen;
        let mut checks = Vec::new();
        for (i, samples) in seen.memory.iter().enumerate() {
            let third = samples.len() / 3;
            if third == 0 {
                checks.push(Check {
                    name: format!("reporter RSS and fds flat (h{i})"),
                    met: false,
                    detail: format!("only {} samples", samples.len()),
                });
                continue;
            }
            let first = &samples[..third];
            let last = &samples[samples.len() - third..];
            let max_rss = |s: &[(Instant, u64, usize)]| s.iter().map(|x| x.1).max().unwrap_or(0);
            // Descriptors by their floor: the reporter's epmd probes of failing
            // peers (issue 11) hold sockets for up to a second, which a sample
            // may catch; a leak raises the lowest count, not just the highest.
            let min_fds = |s: &[(Instant, u64, usize)]| s.iter().map(|x| x.2).min().unwrap_or(0);
            let max_fds = |s: &[(Instant, u64, usize)]| s.iter().map(|x| x.2).max().unwrap_or(0);
            let (r1, r3, f1, f3) = (max_rss(first), max_rss(last), min_fds(first), min_fds(last));
            checks.push(Check {
                name: format!("reporter RSS and fds flat (h{i})"),
                met: r3 <= r1 + RSS_SLACK_KIB && f3 <= f1,
                detail: format!(
                    "{} samples: VmRSS max first third {r1} KiB, last third {r3} KiB ({:+} KiB); fds at least {f1} -> {f3} (at most {} -> {}); range {}..{} KiB",
                    samples.len(),
                    r3 as i64 - r1 as i64,
                    max_fds(first),
                    max_fds(last),
                    samples.iter().map(|x| x.1).min().unwrap_or(0),
                    samples.iter().map(|x| x.1).max().unwrap_or(0),
                ),
            });
        }
        checks
    }
}

fn report(
    bin: &Path,
    opts: &Options,
    run: &Run,
    alive: &[bool],
    meshed_after: Duration,
    churn_took: Duration,
) -> String {
    let mut checks = run.no_healthy_peer_dropped();
    checks.extend(run.departed_peers_reported());
    checks.extend(run.whole_after_each_heal());
    checks.extend(run.memory_flat());
    let mut notes: Vec<String> = Vec::new();
    let seen = run.seen;
    checks.push(Check {
        name: "every VM and reporter still running".into(),
        met: alive.iter().all(|a| *a),
        detail: format!("{alive:?}"),
    });
    let warns: usize = seen
        .log
        .iter()
        .map(|l| {
            l.iter()
                .filter(|(_, m, _)| m == "connecting to peer failed")
                .count()
        })
        .sum();
    notes.push(format!(
        "`connecting to peer failed` lines (fake peers, cut links): {warns}"
    ));

    let mut out = String::new();
    let mut line = |s: String| {
        let _ = writeln!(out, "{s}");
    };
    line(
        "# bench/soak (issue 9): 3 hosts with --connect under DNS churn, flaps and link cuts"
            .into(),
    );
    for l in cluster::machine_lines() {
        line(l);
    }
    line(format!("binary:  {}", bin.display()));
    line(format!(
        "setup:   3 network namespaces on a bridge, dnsmasq answering `demo`; on each host\n\
         \x20        `beamup --ip interface:eth0 --query demo --connect --interval {} --leave-after {LEAVE_AFTER}\n\
         \x20        --peers-file F --peers-format json -- bin/demo start` (demo mix release, OTP {},\n\
         \x20        net_ticktime {NET_TICKTIME}); --minutes {} --seed {}",
        show(INTERVAL),
        cluster::otp_release(),
        opts.minutes,
        opts.seed
    ));
    line(format!(
        "run:     mesh whole {} after the start; churn {}; {} events: {} joins, {} leaves, {} DNS flaps, {} link cuts",
        show(meshed_after),
        show(churn_took),
        run.events.len(),
        run.count(|e| matches!(e, Event::Joined(_))),
        run.count(|e| matches!(e, Event::Left(_))),
        run.count(|e| matches!(e, Event::DnsDown)),
        run.count(|e| matches!(e, Event::LinkDown(_))),
    ));
    line(String::new());
    for c in &checks {
        line(format!(
            "{:<8} {}: {}",
            if c.met { "met" } else { "MISSED" },
            c.name,
            c.detail
        ));
    }
    line(String::new());
    for n in notes {
        line(n);
    }
    line(String::new());
    line("events (seconds after the churn started):".into());
    for (t, e) in run.events {
        line(format!("  {:>7.1}  {e:?}", run.at(*t)));
    }
    out
}

/// Per host, the windows in which its link was down, until one interval plus slack
/// after it came back (connections through it may be down then, legitimately).
fn cut_windows(events: &[(Instant, Event)]) -> BTreeMap<usize, Vec<(Instant, Instant)>> {
    let mut out: BTreeMap<usize, Vec<(Instant, Instant)>> = BTreeMap::new();
    let mut down: BTreeMap<usize, Instant> = BTreeMap::new();
    for (t, e) in events {
        match e {
            Event::LinkDown(i) => {
                down.insert(*i, *t);
            }
            Event::LinkUp(i) => {
                if let Some(from) = down.remove(i) {
                    out.entry(*i)
                        .or_default()
                        .push((from, *t + INTERVAL + HEAL_SLACK));
                }
            }
            _ => {}
        }
    }
    out
}

/// Every time a host's `erlang:nodes()` lost another real host while neither host's
/// link was cut.
fn healthy_drops(
    seen: &Seen,
    real: &[String],
    cuts: &BTreeMap<usize, Vec<(Instant, Instant)>>,
    at: impl Fn(Instant) -> f64,
) -> Vec<String> {
    let in_cut = |host: usize, t: Instant| {
        cuts.get(&host)
            .is_some_and(|w| w.iter().any(|(a, b)| *a <= t && t <= *b))
    };
    let mut drops = Vec::new();
    for (i, history) in seen.nodes.iter().enumerate() {
        // From the first sample that saw the whole mesh on.
        let Some(start) = history
            .iter()
            .position(|(_, n)| n.as_ref().is_some_and(|n| lists_others(n, real, i)))
        else {
            drops.push(format!("h{i} never saw the whole mesh"));
            continue;
        };
        // A loss is a host listed in one sample and missing from the next; a sample the
        // watcher could not take (None) says nothing either way. A host still missing
        // after its heal window is a late heal (check 3), not a drop.
        let known: Vec<(&Instant, &Nodes)> = history[start..]
            .iter()
            .filter_map(|(t, n)| Some((t, n.as_ref()?)))
            .collect();
        for pair in known.windows(2) {
            let ((_, before), (t, now)) = (pair[0], pair[1]);
            for (j, other) in real.iter().enumerate() {
                if j == i || in_cut(i, *t) || in_cut(j, *t) {
                    continue;
                }
                if before.contains(other) && !now.contains(other) {
                    drops.push(format!("h{i} at {:.1}s: lost {other}", at(*t)));
                }
            }
        }
    }
    drops
}

/// The first instant at or after `t` at which every host's nodes() listed all others.
fn first_whole_after(seen: &Seen, real: &[String], t: Instant) -> Option<Instant> {
    // Candidate instants: t itself and every change after it.
    let mut candidates: Vec<Instant> = vec![t];
    candidates.extend(
        seen.nodes
            .iter()
            .flatten()
            .map(|(at, _)| *at)
            .filter(|at| *at >= t),
    );
    candidates.sort();
    candidates.into_iter().find(|c| {
        seen.nodes.iter().enumerate().all(|(i, history)| {
            history
                .iter()
                .rev()
                .find(|(at, _)| at <= c)
                .and_then(|(_, n)| n.as_ref())
                .is_some_and(|n| lists_others(n, real, i))
        })
    })
}
