//! `beamup --connect` across several hosts (issue "beamup --connect", and issue 11:
//! heal at the speed of the network): every host (a network namespace) boots the real
//! demo mix release, which has no clustering dependency of its own, through beamup.
//! beamup's reporter child finds the peers in DNS (dnsmasq in its own namespace) and
//! makes the release connect to them. What the releases themselves see is asked with
//! `bin/demo rpc` (`Node.list()`, i.e. `nodes()`); the reporters' view is their JSON
//! `--peers-file`.
//!
//! Issue 11's behaviour (the relay beamup starts in each VM, re-dial on nodedown,
//! backoff for failing peers) is timed and counted from inside the VMs: a watcher
//! process started through rpc records nodeup/nodedown and every
//! `net_kernel:connect_node/1` call (a call trace) with the OS clock, because one rpc
//! costs a whole VM boot (see "watching a VM from inside" below). Its bounds are
//! generous (a heal within 2 s at a 30 s interval, at most 7 dials of a dead peer in
//! 20 s, a restarted node back within interval + 3 s); the targets themselves
//! (≤ 100 ms, ≤ ¼ of the dials) are the benchmark's (bench/README.md).
//!
//! The tests run alone ([`testkit::heavy::exclusive`]): each boots up to five VMs (~100 MiB
//! and a good share of a core each while booting) and the machine has two cores.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use testkit::boot::ip_source;
use testkit::{
    Cookie, Host, Net, Proc, TempDir, Zone, beamup_command, mix_release, require, try_rpc,
    wait_until,
};

/// Bound on every wait for a cluster state: a deadline, not a timing assertion.
const LONG: Duration = Duration::from_secs(60);
const INTERVAL: &str = "1s";
const INTERVAL_SECS: f64 = 1.0;
const LEAVE_AFTER: usize = 3;
const DOMAIN: &str = "svc.test";
/// Every node's vm.args (through `--vm-args`): with the default net_ticktime of 60 s
/// a pulled cable goes unnoticed for about a minute; with 4 s, within 3–5 s.
const VM_ARGS: &str = "## rendered by beamup (connect tests)\n-kernel net_ticktime 4\n";
/// `--interval` where no poll may explain what is seen: a heal within seconds came from
/// the relay's nodedown, not from the next poll (30 s away).
const SLOW_INTERVAL: &str = "30s";
/// Issue 11: a forced disconnect heals at once (target ≤ 100 ms median, the bench's
/// business); this bound only says "well inside one interval, not on a poll".
const HEAL_BOUND_MS: i64 = 2_000;
/// How long after a disconnect the test keeps asking for the heal: the bound plus the
/// rpc VMs' slowness (the figure itself comes from the watchers' stamps).
const HEAL_WAIT: Duration = Duration::from_secs(10);
/// The window in which a dead-but-listed peer's dials are counted, from its nodedown.
const DEAD_WINDOW_MS: i64 = 20_000;
/// At most this many dials of a dead peer in [`DEAD_WINDOW_MS`] at 1 s polls: one per
/// poll before issue 11 (~20); the backoff's schedule (polls 0, 2, 6, 14 after the
/// death, plus the re-dial on the nodedown itself) gives about 5.
const DEAD_MAX_DIALS: usize = 7;
/// Polls of the host with another cookie during which its dials are counted.
const ODD_WINDOW_POLLS: usize = 8;

/// `<group>.svc.test` resolves to the addresses of the group's hosts (A or AAAA by
/// address type).
fn zone(groups: &[(&str, &[&Host])]) -> Zone {
    Zone {
        search: vec![DOMAIN.into()],
        a: groups
            .iter()
            .flat_map(|(group, hosts)| {
                hosts
                    .iter()
                    .map(move |h| (format!("{group}.{DOMAIN}"), h.addr()))
            })
            .collect(),
        srv: Vec::new(),
    }
}

/// One network whose hosts all answer the name `demo`: the hosts, a temp
/// dir and the vm.args template every test boots with.
fn demo_cluster(
    tag: &str,
    names: &[&str],
    v4: bool,
    v6: bool,
) -> (Net, Vec<Host>, TempDir, PathBuf) {
    let mut net = Net::new(tag);
    let hosts: Vec<Host> = names
        .iter()
        .map(|name| net.add_host(name, v4, v6))
        .collect();
    let refs: Vec<&Host> = hosts.iter().collect();
    net.start_dns(&zone(&[("demo", &refs)]));
    let dir = TempDir::new(&format!("conn{tag}"));
    let vm_args = write_vm_args(dir.path());
    (net, hosts, dir, vm_args)
}

/// Boot settings of a plain `--connect` member of `demo`.
fn connecting<'a>(cookie: &'a Cookie, vm_args: &'a Path) -> Boot<'a> {
    Boot {
        group: "demo",
        cookie,
        interval: INTERVAL,
        connect: true,
        prune: false,
        leave_when_unlisted: false,
        vm_args,
        epmd_port: None,
    }
}

fn node_name(host: &Host) -> String {
    format!("demo@{}", host.addr())
}

fn write_vm_args(dir: &Path) -> PathBuf {
    let path = dir.join("vm.args.tmpl");
    std::fs::write(&path, VM_ARGS).expect("write the vm.args template");
    path
}

/// How one host runs beamup.
#[derive(Clone, Copy)]
struct Boot<'a> {
    /// The DNS group (`<group>.svc.test`) it discovers its peers in.
    group: &'a str,
    cookie: &'a Cookie,
    /// `--interval`: the poll period.
    interval: &'a str,
    connect: bool,
    prune: bool,
    leave_when_unlisted: bool,
    vm_args: &'a Path,
    /// ERL_EPMD_PORT for the release and beamup (None: unset, epmd's 4369).
    epmd_port: Option<&'a str>,
}

/// A release running behind beamup on one host.
struct Member {
    host: Host,
    node: String,
    cookie: String,
    peers_file: PathBuf,
    proc: Proc,
}

/// beamup in front of the release, as a Dockerfile's ENTRYPOINT + CMD runs it.
fn boot(host: &Host, dir: &Path, how: Boot) -> Member {
    let release = mix_release();
    let peers_file = dir.join(format!("{}.peers.json", host.name));
    // A restarted host must not show the previous run's file.
    let _ = std::fs::remove_file(&peers_file);
    let tmp = dir.join(format!("{}.tmp", host.name));
    std::fs::create_dir_all(&tmp).expect("create the release tmp dir");
    let mut args: Vec<String> = [
        "--ip".to_string(),
        ip_source(host),
        "--query".into(),
        format!("{}.{DOMAIN}", how.group),
        "--interval".into(),
        how.interval.into(),
        "--leave-after".into(),
        LEAVE_AFTER.to_string(),
        "--peers-file".into(),
        peers_file.display().to_string(),
        "--peers-format".into(),
        "json".into(),
        "--cookie-file".into(),
        how.cookie.path.display().to_string(),
        "--vm-args".into(),
        how.vm_args.display().to_string(),
    ]
    .into();
    if how.connect {
        args.push("--connect".into());
    }
    if how.prune {
        args.push("--prune".into());
    }
    if how.leave_when_unlisted {
        args.push("--leave-when-unlisted".into());
    }
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut cmd = beamup_command(host, &release, &argv);
    // Debug: one `poll ok` line per successful poll (counted below).
    cmd.env("BEAMUP_LOG", "debug")
        // The release is shared between hosts: each VM gets its own tmp dir.
        .env("RELEASE_TMP", &tmp);
    if let Some(port) = how.epmd_port {
        cmd.env("ERL_EPMD_PORT", port);
    }
    Member {
        host: host.clone(),
        node: node_name(host),
        cookie: how.cookie.value.clone(),
        peers_file,
        proc: host.spawn(cmd),
    }
}

/// The release's own `nodes()`, sorted (the rpc VM and beamup's reporter are hidden
/// nodes, so never listed).
fn try_nodes(m: &Member) -> Result<Vec<String>, String> {
    let env = [
        ("RELEASE_NODE", m.node.as_str()),
        ("RELEASE_COOKIE", m.cookie.as_str()),
    ];
    let out = try_rpc(
        &m.host,
        &mix_release(),
        &env,
        "IO.puts(Enum.join(Enum.sort(Enum.map(Node.list(), &Atom.to_string/1)), \" \"))",
    )?;
    Ok(out.split_whitespace().map(str::to_string).collect())
}

fn ask(m: &Member, expr: &str) -> String {
    let env = [
        ("RELEASE_NODE", m.node.as_str()),
        ("RELEASE_COOKIE", m.cookie.as_str()),
    ];
    try_rpc(&m.host, &mix_release(), &env, expr).unwrap_or_else(|e| panic!("{e}"))
}

fn sorted(mut nodes: Vec<String>) -> Vec<String> {
    nodes.sort();
    nodes
}

/// What each member's `nodes()` must be in a full mesh of `members`.
fn full_mesh(members: &[Member]) -> Vec<(&Member, Vec<String>)> {
    mesh_without(members, &[])
}

/// The mesh of `members` minus the ones at `out` (which are not asked).
fn mesh_without<'a>(members: &'a [Member], out: &[usize]) -> Vec<(&'a Member, Vec<String>)> {
    let inside: Vec<&Member> = members
        .iter()
        .enumerate()
        .filter(|(i, _)| !out.contains(i))
        .map(|(_, m)| m)
        .collect();
    inside
        .iter()
        .map(|m| {
            let others = inside
                .iter()
                .filter(|o| o.node != m.node)
                .map(|o| o.node.clone())
                .collect();
            (*m, sorted(others))
        })
        .collect()
}

/// Waits until, in one round of asking, every member's `nodes()` is exactly what
/// `want` says (asking all in the same round: a mesh that comes and goes is not done).
fn wait_views(what: &str, want: &[(&Member, Vec<String>)]) {
    let deadline = Instant::now() + LONG;
    loop {
        let mut last = Vec::new();
        let mut all = true;
        for (m, nodes) in want {
            assert!(
                m.proc.alive(),
                "{}'s release exited while waiting for {what}:\n{}",
                m.host.name,
                m.proc.log()
            );
            let got = try_nodes(m);
            all &= got.as_ref().is_ok_and(|g| g == nodes);
            last.push((m, nodes, got));
        }
        if all {
            return;
        }
        if Instant::now() >= deadline {
            let report: String = last
                .iter()
                .map(|(m, want, got)| {
                    format!(
                        "{} ({}): want {want:?}, got {got:?}\n  peers file: {}\n",
                        m.host.name,
                        m.node,
                        std::fs::read_to_string(&m.peers_file).unwrap_or_default()
                    )
                })
                .collect();
            panic!("timed out after {LONG:?} waiting for {what}:\n{report}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The reporter's view: peer → (state, reason) from the JSON peers file.
fn states(m: &Member) -> BTreeMap<String, (String, String)> {
    testkit::peer_states(&m.peers_file)
}

fn state_of(m: &Member, peer: &str) -> String {
    states(m)
        .get(peer)
        .map(|(state, _)| state.clone())
        .unwrap_or_default()
}

/// Every one of `peers` is `connected` in `m`'s peers file, and no other peer is listed.
fn all_connected(m: &Member, peers: &[String]) -> bool {
    let got = states(m);
    got.len() == peers.len()
        && peers
            .iter()
            .all(|p| got.get(p).is_some_and(|(state, _)| state == "connected"))
}

/// The node `demo` is registered with the epmd of `host`.
fn registered(host: &Host) -> bool {
    let out = host.output("epmd", &["-names"], Duration::from_secs(10));
    String::from_utf8_lossy(&out.stdout).contains("name demo at port")
}

/// Watches a booting cluster: when each node registers with its epmd, and when every
/// peers file first shows all the others connected. Returns (last registration,
/// mesh seen), both since `start`. Only the 60 s bound is asserted: the speed target
/// (interval + 3 s after the last registration) is printed, and checked by the
/// benchmark.
fn watch_mesh_forming(members: &[Member], start: Instant) -> (Duration, Duration) {
    let deadline = Instant::now() + LONG;
    let mut seen_at: Vec<Option<Instant>> = vec![None; members.len()];
    loop {
        for (m, at) in members.iter().zip(seen_at.iter_mut()) {
            assert!(
                m.proc.alive(),
                "{}'s release exited while booting:\n{}",
                m.host.name,
                m.proc.log()
            );
            if at.is_none() && registered(&m.host) {
                *at = Some(Instant::now());
            }
        }
        let meshed = members.iter().all(|m| {
            let others: Vec<String> = members
                .iter()
                .filter(|o| o.node != m.node)
                .map(|o| o.node.clone())
                .collect();
            all_connected(m, &others)
        });
        if meshed && let Some(last) = seen_at.iter().copied().collect::<Option<Vec<_>>>() {
            let last = last.into_iter().max().unwrap_or(start);
            return (last - start, Instant::now() - start);
        }
        if Instant::now() >= deadline {
            let files: String = members
                .iter()
                .map(|m| {
                    format!(
                        "{}: {}\n",
                        m.host.name,
                        std::fs::read_to_string(&m.peers_file).unwrap_or_default()
                    )
                })
                .collect();
            panic!(
                "no full mesh in the peers files within {LONG:?} (epmd registrations seen: \
                 {seen_at:?}):\n{files}"
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every reporter (root, so with CAP_NET_RAW) watched its epmd's answers on
/// lo and saw its VM register, instead of looking for it at a fixed pace
/// (issue 19; the debug lines of `src/reporter/mesh/wait.rs`).
fn assert_registration_seen(members: &[Member]) {
    for m in members {
        let log = m.proc.log();
        assert!(
            testkit::saw_registration(&log),
            "{}'s reporter did not see its VM register:\n{log}",
            m.host.name
        );
    }
}

/// How many successful polls the reporter logged (`poll ok`, debug level).
fn polls(log: &str) -> usize {
    log.lines().filter(|l| l.contains("poll ok")).count()
}

/// No log and no peers file shows a cookie.
fn assert_cookies_secret(members: &[Member], cookies: &[&Cookie]) {
    for m in members {
        let log = m.proc.log();
        let file = std::fs::read_to_string(&m.peers_file).unwrap_or_default();
        for cookie in cookies {
            assert!(
                !log.contains(&cookie.value) && !file.contains(&cookie.value),
                "a cookie appears in {}'s log or peers file",
                m.host.name
            );
        }
    }
}

// --- watching a VM from inside (issue 11) -----------------------------------------------
//
// `bin/demo rpc` boots a whole VM per question (0.3–1 s, more with VMs booting on two
// cores), far too coarse to time a heal of milliseconds. So every VM whose events matter
// gets a watcher process (stdlib only, started through rpc, gone with `stop_watch`):
// it takes nodeup/nodedown (`net_kernel:monitor_nodes/1`: visible nodes only, so neither
// the rpc VMs nor beamup's hidden reporter) and a call trace of
// `net_kernel:connect_node/1` (what beamup's reporter runs through rex to dial a peer,
// as the bench counts it), each stamped with the OS clock in ms at arrival. The test
// reads the list whenever it likes; the figures come from those stamps, not from when
// the test happened to ask. A nodeup arrives when the connection is up, which is when
// `nodes()` lists the peer (on both ends: one connection).

/// Elixir for `bin/demo rpc`: spawns and registers the watcher (as
/// `beamup_test_watch`, the name the other expressions use), and answers `watching`
/// once its monitor and trace are in place (events before that are not recorded).
const WATCH_START: &str = r##"
parent = self()
w = spawn(fn ->
  :ok = :net_kernel.monitor_nodes(true)
  :erlang.trace_pattern({:net_kernel, :connect_node, 1}, true, [:global])
  :erlang.trace(:all, true, [:call])
  send(parent, {:watching, self()})
  now = fn -> System.os_time(:millisecond) end
  loop = fn loop, evs ->
    receive do
      {:nodeup, n} -> loop.(loop, [{:up, n, now.()} | evs])
      {:nodedown, n} -> loop.(loop, [{:down, n, now.()} | evs])
      {:trace, _, :call, {:net_kernel, :connect_node, [n]}} -> loop.(loop, [{:dial, n, now.()} | evs])
      {:get, from} -> send(from, {:events, Enum.reverse(evs)}); loop.(loop, evs)
      :stop ->
        :erlang.trace(:all, false, [:call])
        :erlang.trace_pattern({:net_kernel, :connect_node, 1}, false, [:global])
    end
  end
  loop.(loop, [])
end)
true = Process.register(w, :beamup_test_watch)
receive do
  {:watching, ^w} -> IO.puts("watching")
after
  10_000 -> IO.puts("the watcher did not start")
end
"##;

/// Elixir: the watcher's events so far, one `<up|down|dial> <node> <ms>` line each.
const WATCH_EVENTS: &str = r##"
send(:beamup_test_watch, {:get, self()})
receive do
  {:events, evs} -> Enum.each(evs, fn {what, n, at} -> IO.puts("#{what} #{n} #{at}") end)
after
  10_000 -> IO.puts("no answer from the watcher")
end
"##;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    /// nodeup: the connection to the node is up.
    Up,
    /// nodedown: the connection went.
    Down,
    /// `net_kernel:connect_node(Node)` was called (by anyone in the VM).
    Dial,
}

/// One thing a watcher saw, at `at_ms` (OS clock, ms since the epoch).
#[derive(Debug, Clone)]
struct Event {
    what: Seen,
    node: String,
    at_ms: i64,
}

/// Starts the watcher in `m`'s VM (see the section comment).
fn start_watch(m: &Member) {
    let answer = ask(m, WATCH_START);
    assert_eq!(
        answer.lines().last().unwrap_or_default(),
        "watching",
        "starting the watcher in {}: {answer}",
        m.host.name
    );
}

/// Stops `m`'s watcher and removes its trace (nothing of the test stays in the VM).
fn stop_watch(m: &Member) {
    ask(m, "send(:beamup_test_watch, :stop)");
}

/// Everything `m`'s watcher saw since it started, oldest first.
fn events(m: &Member) -> Vec<Event> {
    let answer = ask(m, WATCH_EVENTS);
    answer
        .lines()
        .map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let what = match fields.first() {
                Some(&"up") => Seen::Up,
                Some(&"down") => Seen::Down,
                Some(&"dial") => Seen::Dial,
                _ => panic!(
                    "{}'s watcher: unexpected line {line:?} in:\n{answer}",
                    m.host.name
                ),
            };
            match (fields.get(1), fields.get(2).and_then(|t| t.parse().ok())) {
                (Some(node), Some(at_ms)) if fields.len() == 3 => Event {
                    what,
                    node: node.to_string(),
                    at_ms,
                },
                _ => panic!(
                    "{}'s watcher: unexpected line {line:?} in:\n{answer}",
                    m.host.name
                ),
            }
        })
        .collect()
}

/// The first nodeup of `node` that comes after a nodedown of it stamped at or after
/// `since_ms` (so an earlier drop and heal is not taken for this one).
fn up_after_down(events: &[Event], node: &str, since_ms: i64) -> Option<i64> {
    let down = events
        .iter()
        .position(|e| e.what == Seen::Down && e.node == node && e.at_ms >= since_ms)?;
    events[down..]
        .iter()
        .find(|e| e.what == Seen::Up && e.node == node)
        .map(|e| e.at_ms)
}

fn show_events(events: &[Event]) -> String {
    events
        .iter()
        .map(|e| format!("  {:?} {} at {}\n", e.what, e.node, e.at_ms))
        .collect()
}

/// The OS clock in ms since the epoch: the same clock the VMs stamp events with.
fn now_ms() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970");
    i64::try_from(since.as_millis()).expect("ms since 1970 fit in i64")
}

/// Elixir: `erlang:disconnect_node(peer)` inside the asked VM; prints the OS clock in
/// ms just before the call.
fn disconnect_expr(peer: &str) -> String {
    format!(
        "t = System.os_time(:millisecond); true = :erlang.disconnect_node(:\"{peer}\"); \
         IO.puts(t)"
    )
}

/// Elixir: with the relay suspended, `erlang:disconnect_node/1` of each of `peers`,
/// then the relay resumed (it finds every nodedown in its mailbox); prints `cut`.
/// Only the first cut must find its peer connected: from OTP 25 on, `global` in the
/// asked VM tells the others it lost the first peer, and they disconnect from the
/// asked VM themselves (prevent_overlapping_partitions), on a busy machine before its
/// own `disconnect_node` of them, which then returns false. Either way their nodedowns
/// come while the relay is suspended.
fn burst_expr(peers: &[&str]) -> String {
    let cuts: String = peers
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let must = if i == 0 { "true = " } else { "" };
            format!("{must}:erlang.disconnect_node(:\"{p}\"); ")
        })
        .collect();
    format!(
        "relay = Enum.find(Process.list(), fn p -> case Process.info(p, :dictionary) do \
         {{:dictionary, d}} -> List.keymember?(d, :beamup_relay, 0); nil -> false end end); \
         true = :erlang.suspend_process(relay); {cuts}Process.sleep(100); \
         true = :erlang.resume_process(relay); IO.puts(:cut)"
    )
}

/// Elixir: how many processes carry `beamup_relay` in their dictionary (the relay
/// beamup's reporter starts in the VM, issue 11).
const RELAY_COUNT: &str = "IO.puts(Enum.count(Process.list(), fn p -> \
    case Process.info(p, :dictionary) do \
    {:dictionary, d} -> List.keymember?(d, :beamup_relay, 0); \
    nil -> false end end))";

fn relay_count(m: &Member) -> usize {
    let answer = ask(m, RELAY_COUNT);
    answer
        .trim()
        .parse()
        .unwrap_or_else(|_| panic!("{}: relay count {answer:?}", m.host.name))
}

/// Elixir: what beamup's reporter may hold in a VM. Every connection links net_kernel
/// to two things (its connection process and its port, checked on OTP 25); the rpc
/// VM that asks is one connection too, so its pair (and any other rpc VM's) is left
/// out. `reporter_links` is the pair of beamup's hidden node.
const FOOTPRINT: &str = r##"
nk = Process.whereis(:net_kernel)
{:links, links} = Process.info(nk, :links)
{:monitors, mons} = Process.info(nk, :monitors)
{:ok, info} = :net_kernel.nodes_info()
ctrl = :erlang.system_info(:dist_ctrl)
pair = fn n ->
  owner = case List.keyfind(info, n, 0) do {_, i} -> [Keyword.get(i, :owner)]; nil -> [] end
  port = case List.keyfind(ctrl, n, 0) do {_, c} -> [c]; nil -> [] end
  owner ++ port
end
named = fn prefix -> Enum.filter(Enum.map(info, &elem(&1, 0)), &String.starts_with?(Atom.to_string(&1), prefix)) end
reporters = named.("beamup-")
rpc_links = Enum.flat_map(named.("rpc-"), pair)
relays = Enum.count(Process.list(), fn p ->
  case Process.info(p, :dictionary) do
    {:dictionary, d} -> List.keymember?(d, :beamup_relay, 0)
    nil -> false
  end
end)
IO.puts("relays #{relays}")
IO.puts("reporters " <> Enum.map_join(reporters, " ", &Atom.to_string/1))
IO.puts("links " <> Enum.map_join(links -- rpc_links, " ", &inspect/1))
IO.puts("reporter_links " <> Enum.map_join(Enum.flat_map(reporters, pair), " ", &inspect/1))
IO.puts("monitors " <> Enum.map_join(mons, " ", &inspect/1))
"##;

/// What [`FOOTPRINT`] printed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Footprint {
    relays: usize,
    /// Hidden nodes named `beamup-...` with a connection (up or pending).
    reporters: BTreeSet<String>,
    /// net_kernel's links, the asking rpc VMs' left out.
    links: BTreeSet<String>,
    /// The links that belong to the reporters' connections.
    reporter_links: BTreeSet<String>,
    /// net_kernel's monitors.
    monitors: BTreeSet<String>,
}

fn footprint(m: &Member) -> Footprint {
    let answer = ask(m, FOOTPRINT);
    // `<name> <value> <value> ...` per line.
    let mut fields: BTreeMap<&str, BTreeSet<String>> = answer
        .lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let name = words.next()?;
            Some((name, words.map(str::to_string).collect()))
        })
        .collect();
    let mut take = |name: &str| {
        fields
            .remove(name)
            .unwrap_or_else(|| panic!("{}: no {name:?} line in:\n{answer}", m.host.name))
    };
    let relays = take("relays");
    Footprint {
        relays: relays
            .iter()
            .next()
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{}: relays {relays:?}", m.host.name)),
        reporters: take("reporters"),
        links: take("links"),
        reporter_links: take("reporter_links"),
        monitors: take("monitors"),
    }
}

/// Seconds into the day of a beamup log line (`2026-12-01T18:26:23.157060Z ...`).
fn log_secs(line: &str) -> Option<f64> {
    let time = line.split_whitespace().next()?.split_once('T')?.1;
    let mut parts = time.trim_end_matches('Z').split(':');
    let (h, m, s) = (parts.next()?, parts.next()?, parts.next()?);
    Some(h.parse::<f64>().ok()? * 3600.0 + m.parse::<f64>().ok()? * 60.0 + s.parse::<f64>().ok()?)
}

/// The reporter of `m` (see `testkit::pid1::reporter_of`).
fn reporter_pid(m: &Member) -> Option<u32> {
    testkit::pid1::reporter_of(m.proc.pid(), &testkit::beamup_bin())
}

/// Waits for `host`'s epmd to list `demo`, asking every ~20 ms; returns the OS clock
/// in ms when it was first seen (each `epmd -names` run takes a few ms more).
fn wait_registered(m: &Member) -> i64 {
    let deadline = Instant::now() + LONG;
    loop {
        assert!(
            m.proc.alive(),
            "{}'s release exited before registering with epmd:\n{}",
            m.host.name,
            m.proc.log()
        );
        if registered(&m.host) {
            return now_ms();
        }
        assert!(
            Instant::now() < deadline,
            "{} did not register with epmd within {LONG:?}:\n{}",
            m.host.name,
            m.proc.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Cases 1–3 of the issue, on one five-host IPv4 cluster:
/// - the five releases mesh;
/// - a VM killed with -9 and started again (through beamup, same address) rejoins;
/// - a host whose cable is pulled is dropped by the others, and the mesh heals when
///   the cable is back, without restarting anything.
#[test]
fn five_hosts_mesh_rejoin_after_kill_and_heal_after_partition() {
    let _heavy = testkit::heavy::exclusive();
    require(&["dnsmasq", "erl", "elixir", "epmd"]);
    let (net, hosts, dir, vm_args) =
        demo_cluster("mesh", &["h1", "h2", "h3", "h4", "h5"], true, false);
    let cookie = Cookie::new();
    let how = connecting(&cookie, &vm_args);

    // --- 1. the mesh -------------------------------------------------------------
    let start = Instant::now();
    let mut members: Vec<Member> = hosts.iter().map(|h| boot(h, dir.path(), how)).collect();
    let (registered_at, meshed_at) = watch_mesh_forming(&members, start);
    let after = meshed_at.saturating_sub(registered_at);
    println!(
        "MEASURE five-host mesh: last epmd registration {:.2} s after spawn, every peers file \
         showing the four others connected {:.2} s after spawn: {:.2} s after the last \
         registration (issue's target: interval + 3 s = {:.1} s; the peers files are written \
         once per interval, so this is an upper bound)",
        registered_at.as_secs_f64(),
        meshed_at.as_secs_f64(),
        after.as_secs_f64(),
        INTERVAL_SECS + 3.0
    );
    wait_views("the five-node mesh", &full_mesh(&members));
    assert_registration_seen(&members);
    // The template reached every VM (the partition below relies on it).
    for m in &members {
        assert_eq!(
            ask(m, "IO.puts(:net_kernel.get_net_ticktime())"),
            "4",
            "{}",
            m.host.name
        );
    }

    // --- 2. kill -9 and start again ----------------------------------------------------
    let victim = 4;
    members[victim].proc.kill9();
    wait_views(
        "the others to drop the killed node",
        &mesh_without(&members, &[victim]),
    );
    let restarted_at = Instant::now();
    members[victim] = boot(&hosts[victim], dir.path(), how);
    wait_views("the restarted node to rejoin", &full_mesh(&members));
    println!(
        "MEASURE rejoin: the restarted node was in every nodes() {:.2} s after its start \
         (boot included)",
        restarted_at.elapsed().as_secs_f64()
    );

    // --- 3. partition and heal --------------------------------------------------------
    let cut = 2;
    let cut_node = members[cut].node.clone();
    net.link_down(&members[cut].host);
    let mut split = mesh_without(&members, &[cut]);
    // Cut off, the host sees nobody.
    split.push((&members[cut], Vec::new()));
    wait_views("the others to drop the cut-off host", &split);
    for m in members.iter().filter(|m| m.node != cut_node) {
        wait_until(
            LONG,
            &format!(
                "{}'s peers file to show the cut-off host not connected",
                m.host.name
            ),
            || matches!(state_of(m, &cut_node).as_str(), "connecting" | "failed"),
        );
    }
    let healing = Instant::now();
    net.link_up(&members[cut].host);
    wait_views(
        "the mesh to heal after the link is back",
        &full_mesh(&members),
    );
    println!(
        "MEASURE heal: full mesh {:.2} s after the link came back (net_ticktime 4)",
        healing.elapsed().as_secs_f64()
    );
    for m in &members {
        assert!(
            m.proc.alive(),
            "{} was restarted or died during the partition",
            m.host.name
        );
        assert!(
            !m.proc.log().contains("disconnected peer that left"),
            "{} disconnected a peer without --prune:\n{}",
            m.host.name,
            m.proc.log()
        );
    }
    assert_cookies_secret(&members, &[&cookie]);
}

/// Case 4: a host with another cookie is refused. Its reporter and the others' show
/// the failure, no `nodes()` ever holds it, and the others mesh all the same.
#[test]
fn a_host_with_another_cookie_is_refused_and_the_others_mesh() {
    let _heavy = testkit::heavy::exclusive();
    require(&["dnsmasq", "erl", "elixir"]);
    let (_net, hosts, dir, vm_args) =
        demo_cluster("cookie", &["g1", "g2", "g3", "odd"], true, false);
    let good = Cookie::new();
    let other = Cookie::new();
    assert_ne!(good.value, other.value);
    let members: Vec<Member> = hosts
        .iter()
        .map(|h| {
            let cookie = if h.name == "odd" { &other } else { &good };
            boot(h, dir.path(), connecting(cookie, &vm_args))
        })
        .collect();
    let odd = 3;
    let odd_node = members[odd].node.clone();
    let mut want = mesh_without(&members, &[odd]);
    want.push((&members[odd], Vec::new()));
    wait_views("the three good nodes to mesh without the odd one", &want);

    // The reporters say why: `failed`, with a reason naming the cookie.
    for m in members.iter().filter(|m| m.node != odd_node) {
        wait_until(
            LONG,
            &format!("{}'s peers file to show the odd host failed", m.host.name),
            || state_of(m, &odd_node) == "failed",
        );
        let (_, reason) = states(m).remove(&odd_node).unwrap_or_default();
        assert!(
            reason.contains("cookie"),
            "{}: reason {reason:?}",
            m.host.name
        );
    }
    let good_nodes: Vec<String> = members
        .iter()
        .filter(|m| m.node != odd_node)
        .map(|m| m.node.clone())
        .collect();
    wait_until(
        LONG,
        "the odd host's peers file to show every peer failed",
        || {
            let got = states(&members[odd]);
            got.len() == good_nodes.len() && got.values().all(|(state, _)| state == "failed")
        },
    );
    assert!(
        members[odd]
            .proc
            .log()
            .contains("connecting to peer failed"),
        "the odd host's reporter logged no failure:\n{}",
        members[odd].proc.log()
    );

    // It stays out: several more polls (each one may retry), then ask again. Its
    // dials meanwhile are counted (issue 11): a peer that keeps refusing it is backed
    // off, so it is dialed on at most half of these polls (before: on every one).
    start_watch(&members[odd]);
    let mark = polls(&members[odd].proc.log());
    wait_until(
        LONG,
        &format!("{ODD_WINDOW_POLLS} more polls on the odd host"),
        || polls(&members[odd].proc.log()) >= mark + ODD_WINDOW_POLLS,
    );
    let seen = events(&members[odd]);
    let window = polls(&members[odd].proc.log()) - mark;
    stop_watch(&members[odd]);
    for good in &good_nodes {
        let dials = seen
            .iter()
            .filter(|e| e.what == Seen::Dial && e.node == *good)
            .count();
        println!(
            "MEASURE refused peer: the odd host called connect_node on {good} {dials} times \
             in {window} polls"
        );
        assert!(
            dials * 2 <= window,
            "the odd host dialed {good}, which refuses it, {dials} times in {window} polls \
             (want at most half: backoff):\n{}",
            show_events(&seen)
        );
    }
    wait_views("the odd host to stay out", &want);
    // The refused side says so too: OTP logs every rejected handshake.
    let odd_addr = members[odd].host.addr().to_string();
    assert!(
        members[..odd].iter().any(|m| m
            .proc
            .log()
            .lines()
            .any(|l| l.contains("Invalid challenge reply") && l.contains(&odd_addr))),
        "no good node logged rejecting the odd one"
    );
    assert_cookies_secret(&members, &[&good, &other]);
}

/// Case 5: three IPv6-only hosts found through AAAA records mesh.
#[test]
fn ipv6_only_cluster_meshes() {
    let _heavy = testkit::heavy::exclusive();
    require(&["dnsmasq", "erl", "elixir"]);
    let (_net, hosts, dir, vm_args) = demo_cluster("six", &["s1", "s2", "s3"], false, true);
    let cookie = Cookie::new();
    let how = connecting(&cookie, &vm_args);
    let members: Vec<Member> = hosts.iter().map(|h| boot(h, dir.path(), how)).collect();
    for m in &members {
        assert!(m.node.starts_with("demo@fd00:"), "{}", m.node);
    }
    wait_views("the IPv6 mesh", &full_mesh(&members));
    assert_registration_seen(&members);
    for m in &members {
        let others: Vec<String> = members
            .iter()
            .filter(|o| o.node != m.node)
            .map(|o| o.node.clone())
            .collect();
        wait_until(
            LONG,
            &format!("{}'s peers file to show both peers connected", m.host.name),
            || all_connected(m, &others),
        );
        assert_eq!(
            ask(m, "IO.puts(:net_kernel.longnames())"),
            "true",
            "{}",
            m.host.name
        );
    }
    assert_cookies_secret(&members, &[&cookie]);
}

/// ERL_EPMD_PORT moves epmd off 4369 for the VMs and their epmds (all nodes share
/// it): the reporters ask the same port, of their own VM (its registration seen
/// there too) and of the peers', and mesh the nodes.
#[test]
fn nodes_on_another_epmd_port_mesh() {
    let _heavy = testkit::heavy::exclusive();
    require(&["dnsmasq", "erl", "elixir"]);
    let (_net, hosts, dir, vm_args) = demo_cluster("epmdp", &["p1", "p2"], true, false);
    let cookie = Cookie::new();
    let how = Boot {
        epmd_port: Some("4370"),
        ..connecting(&cookie, &vm_args)
    };
    let members: Vec<Member> = hosts.iter().map(|h| boot(h, dir.path(), how)).collect();
    for (m, other) in members.iter().zip(members.iter().rev()) {
        wait_until(
            LONG,
            &format!(
                "{}'s peers file to show {} connected",
                m.host.name, other.node
            ),
            || all_connected(m, std::slice::from_ref(&other.node)),
        );
    }
    assert_registration_seen(&members);
    for m in &members {
        let out = m.host.output(
            "epmd",
            &["-port", "4370", "-names"],
            Duration::from_secs(10),
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("name demo at port"),
            "{}: no demo on the epmd of port 4370: {out:?}",
            m.host.name
        );
        assert!(
            !registered(&m.host),
            "{}: an epmd on 4369 has demo: ERL_EPMD_PORT was not the VM's",
            m.host.name
        );
    }
    assert_cookies_secret(&members, &[&cookie]);
}

/// Case 6: a host removed from DNS while its VM keeps running. `--prune` disconnects
/// it once it is reported left (after --leave-after polls missing it); without
/// `--prune`, beamup never disconnects it.
///
/// Two groups on one network: `demo` is a and b (`--connect --prune`) plus c
/// (`--connect --prune --leave-when-unlisted`); `other` is d (`--connect`) plus e
/// (`--connect --prune`). A removed host that kept connecting would dial its peers
/// again within an interval, undoing the prune: c, which asked for it, leaves. e did
/// not ask, so it never cuts itself off (a Kubernetes pod failing readiness is
/// unlisted the same way).
#[test]
fn prune_disconnects_a_host_removed_from_dns_and_only_with_prune() {
    let _heavy = testkit::heavy::exclusive();
    require(&["dnsmasq", "erl", "elixir"]);
    let mut net = Net::new("prune");
    let names = ["a", "b", "c", "d", "e"];
    let hosts: Vec<Host> = names
        .iter()
        .map(|name| net.add_host(name, true, false))
        .collect();
    let [a, b, c, d, e] = [0, 1, 2, 3, 4].map(|i| &hosts[i]);
    net.start_dns(&zone(&[("demo", &[a, b, c]), ("other", &[d, e])]));
    let dir = TempDir::new("connprune");
    let cookie = Cookie::new();
    let vm_args = write_vm_args(dir.path());
    let how = |group, prune, leave_when_unlisted| Boot {
        group,
        cookie: &cookie,
        interval: INTERVAL,
        connect: true,
        prune,
        leave_when_unlisted,
        vm_args: &vm_args,
        epmd_port: None,
    };
    let pruned = [
        boot(a, dir.path(), how("demo", true, false)),
        boot(b, dir.path(), how("demo", true, false)),
        // c asks to leave: once removed from DNS it must not re-dial a and b
        // every interval.
        boot(c, dir.path(), how("demo", true, true)),
    ];
    let kept = [
        boot(d, dir.path(), how("other", false, false)),
        boot(e, dir.path(), how("other", true, false)),
    ];
    let mut want = full_mesh(&pruned);
    want.extend(full_mesh(&kept));
    wait_views("both groups to mesh", &want);

    // c and e leave DNS; their VMs keep running.
    let marks: Vec<usize> = [&pruned[0], &pruned[1], &kept[0]]
        .iter()
        .map(|m| m.proc.log().lines().count())
        .collect();
    net.set_dns(&zone(&[("demo", &[a, b]), ("other", &[d])]));

    // With --prune: a and b drop c; c, still running, is left alone.
    let mut want = mesh_without(&pruned, &[2]);
    want.push((&pruned[2], Vec::new()));
    wait_views("a and b to prune c", &want);
    assert!(pruned[2].proc.alive(), "c's VM stopped");
    let c_node = &pruned[2].node;
    let mut disconnected_by = Vec::new();
    for (m, mark) in pruned[..2].iter().zip(&marks) {
        // The views can be right before this reporter's own polls say c left (another
        // reporter pruned c, and OTP's global dropped it here too).
        let peer = format!("peer={c_node}");
        testkit::wait_until(
            Duration::from_secs(30),
            &format!("{} to report c left", m.host.name),
            || {
                m.proc
                    .log()
                    .lines()
                    .skip(*mark)
                    .any(|l| l.contains("peer left") && l.contains(&peer))
            },
        );
        let log = m.proc.log();
        let lines: Vec<&str> = log.lines().skip(*mark).collect();
        let left = lines
            .iter()
            .position(|l| l.contains("peer left") && l.contains(&peer))
            .unwrap_or_else(|| panic!("{} never reported c left:\n{log}", m.host.name));
        // The reporter that got there first disconnects c; when it is the other one,
        // OTP 25's global (prevent_overlapping_partitions) may drop c here first.
        if let Some(cut) = lines
            .iter()
            .position(|l| l.contains("disconnected peer that left") && l.contains(&peer))
        {
            assert!(
                cut > left,
                "{} disconnected c before reporting it left:\n{log}",
                m.host.name
            );
            // Polls that missed c before the disconnect: the leaving poll is the
            // LEAVE_AFTER-th (its `poll ok` line comes before the disconnect).
            let missed = lines[..cut]
                .iter()
                .filter(|l| l.contains("poll ok") && l.contains("seen=1 "))
                .count();
            assert_eq!(
                missed, LEAVE_AFTER,
                "{}: c must be disconnected on the {LEAVE_AFTER}th poll missing it:\n{log}",
                m.host.name
            );
            disconnected_by.push(m.host.name.clone());
        }
    }
    // c itself (--leave-when-unlisted, removed from the answer) may be the one to cut the
    // links first, on its own LEAVE_AFTER-th poll without itself.
    if pruned[2].proc.log().contains("disconnected peer that left") {
        disconnected_by.push(pruned[2].host.name.clone());
    }
    assert!(
        !disconnected_by.is_empty(),
        "neither a, b nor c logged disconnecting:\n{}\n{}\n{}",
        pruned[0].proc.log(),
        pruned[1].proc.log(),
        pruned[2].proc.log()
    );

    // c saw itself leave the answer and stopped dialing: a few polls later c
    // is still alone, nobody has cut c since shortly after it noticed, and the
    // cuts before were a handful, not a spin. While a, b and c disagree (each
    // sees the DNS change at its own poll), c re-dials a drop of a long-lived
    // connection at once (it cannot tell it from any other drop, issue 11),
    // and OTP's `global` itself reconnects nodes while the mesh settles; a
    // connection cut again within a second backs c off (2, 4, 8 polls). A
    // re-dialing c would be cut again every interval, or every millisecond.
    wait_until(LONG, "c to notice it left the service", || {
        pruned[2]
            .proc
            .log()
            .contains("this node is no longer in the discovery answer")
    });
    let c_mark = polls(&pruned[2].proc.log());
    wait_until(LONG, "c to poll 3 more times", || {
        polls(&pruned[2].proc.log()) >= c_mark + 3
    });
    let mut want = mesh_without(&pruned, &[2]);
    want.push((&pruned[2], Vec::new()));
    wait_views("c to stay out of a and b", &want);
    let noticed = pruned[2]
        .proc
        .log()
        .lines()
        .find(|l| l.contains("this node is no longer in the discovery answer"))
        .and_then(log_secs)
        .expect("c's notice has a timestamp");
    for m in &pruned[..2] {
        let cuts: Vec<f64> = m
            .proc
            .log()
            .lines()
            .filter(|l| {
                l.contains("disconnected peer that left") && l.contains(&format!("peer={c_node}"))
            })
            .filter_map(log_secs)
            .collect();
        let late: Vec<&f64> = cuts.iter().filter(|at| **at > noticed + 2.0).collect();
        assert!(
            cuts.len() <= 8 && late.is_empty(),
            "{} disconnected c {} times, {} of them more than 2 s after c noticed it left: c \
             kept re-dialing",
            m.host.name,
            cuts.len(),
            late.len()
        );
    }

    // Without --prune: d reports e left, and 2 polls later e is still connected.
    let d_log = || {
        kept[0]
            .proc
            .log()
            .lines()
            .skip(marks[2])
            .collect::<Vec<_>>()
            .join("\n")
    };
    let e_node = &kept[1].node;
    wait_until(LONG, "d to report e left", || {
        d_log().contains(&format!("peer left peer={e_node}"))
    });
    let after_left = || {
        let log = d_log();
        let at = log.find("peer left").unwrap_or(log.len());
        polls(&log[at..])
    };
    // The leaving poll's own `poll ok` line, then two more.
    wait_until(LONG, "d to poll twice more after e left", || {
        after_left() >= 3
    });
    wait_views("e to stay connected to d", &full_mesh(&kept));
    assert!(
        !kept[0].proc.log().contains("disconnected peer"),
        "d disconnected a peer without --prune:\n{}",
        kept[0].proc.log()
    );
    // e, unlisted too but without --leave-when-unlisted, stayed in its cluster.
    let e_log = kept[1].proc.log();
    assert!(
        !e_log.contains("no longer in the discovery answer")
            && !e_log.contains("disconnected peer"),
        "e left its cluster without --leave-when-unlisted:\n{e_log}"
    );
    let mut all: Vec<Member> = Vec::new();
    all.extend(pruned);
    all.extend(kept);
    assert_cookies_secret(&all, &[&cookie]);
}

/// Issue 11, re-mesh on events and the relay, on three hosts that poll only every 30 s
/// (no poll can explain a heal):
/// - `erlang:disconnect_node(b)` run inside a, three times (one heal at a time): a and b
///   list each other again within 2 s each time; every VM holds exactly one relay;
/// - the relay goes with the reporter: after kill -9 of c's reporter, c holds no relay
///   and net_kernel in c nothing of beamup (its links lose exactly the reporter
///   connection's pair, its monitors are unchanged); c's VM keeps running and its peers.
#[test]
fn forced_disconnect_heals_between_polls_and_the_relay_goes_with_the_reporter() {
    let _heavy = testkit::heavy::exclusive();
    require(&["dnsmasq", "erl", "elixir", "epmd"]);
    let (_net, hosts, dir, vm_args) = demo_cluster("heal", &["a", "b", "c"], true, false);
    let cookie = Cookie::new();
    let how = Boot {
        interval: SLOW_INTERVAL,
        ..connecting(&cookie, &vm_args)
    };
    let members: Vec<Member> = hosts.iter().map(|h| boot(h, dir.path(), how)).collect();
    wait_views("the three-node mesh", &full_mesh(&members));

    // --- forced disconnects ----------------------------------------------------------
    let (a, b) = (&members[0], &members[1]);
    start_watch(a);
    start_watch(b);
    let mut heals = Vec::new();
    for round in 1..=3 {
        let answer = ask(a, &disconnect_expr(&b.node));
        let cut_at: i64 = answer
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("round {round}: disconnect_node in a said {answer:?}"));
        let deadline = Instant::now() + HEAL_WAIT;
        let healed_at = loop {
            let (seen_a, seen_b) = (events(a), events(b));
            if let (Some(up_a), Some(up_b)) = (
                up_after_down(&seen_a, &b.node, cut_at),
                up_after_down(&seen_b, &a.node, cut_at),
            ) {
                break up_a.max(up_b);
            }
            assert!(
                Instant::now() < deadline,
                "round {round}: a and b were not connected again {HEAL_WAIT:?} after \
                 disconnect_node (at {cut_at}) with --interval {SLOW_INTERVAL}: nothing \
                 re-dialed on the nodedown.\na saw:\n{}b saw:\n{}a's reporter:\n{}",
                show_events(&seen_a),
                show_events(&seen_b),
                a.proc.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let heal = healed_at - cut_at;
        assert!(
            heal <= HEAL_BOUND_MS,
            "round {round}: a and b were connected again only {heal} ms after \
             disconnect_node (bound {HEAL_BOUND_MS} ms, --interval {SLOW_INTERVAL})"
        );
        heals.push(heal);
        // OTP 25's global (prevent_overlapping_partitions) may have cut c off too when
        // a and b lost each other: the next round starts from a whole mesh.
        wait_views(
            &format!("the mesh to be whole after round {round}"),
            &full_mesh(&members),
        );
        // Each round cuts a connection older than the reporter's flap window (1 s): a
        // second cut of a connection younger than that in a row counts as flapping by
        // design (a peer that prunes us) and waits for a poll, which is not what this
        // test measures.
        std::thread::sleep(Duration::from_millis(1_200));
    }
    println!(
        "MEASURE forced disconnect_node(b) in a, --interval {SLOW_INTERVAL}: a and b \
         connected again after {heals:?} ms (from the call to the later of the two \
         nodeups, OS clock stamps in the VMs; bound {HEAL_BOUND_MS} ms)"
    );
    for m in &members {
        assert_eq!(
            relay_count(m),
            1,
            "{}: processes with beamup_relay in their dictionary; reporter log:\n{}",
            m.host.name,
            m.proc.log()
        );
    }
    stop_watch(a);
    stop_watch(b);

    // --- the relay goes with the reporter --------------------------------------------
    let c = &members[2];
    let before = footprint(c);
    assert_eq!(before.relays, 1, "c before the kill: {before:?}");
    assert_eq!(
        before.reporters.len(),
        1,
        "c before the kill: one beamup hidden node: {before:?}"
    );
    assert_eq!(
        before.reporter_links.len(),
        2,
        "c before the kill: the reporter connection's process and port: {before:?}"
    );
    let reporter = reporter_pid(c).unwrap_or_else(|| {
        panic!(
            "no reporter (a child of c's VM, pid {}, running beamup)",
            c.proc.pid()
        )
    });
    let want = Footprint {
        relays: 0,
        reporters: BTreeSet::new(),
        links: before
            .links
            .difference(&before.reporter_links)
            .cloned()
            .collect(),
        reporter_links: BTreeSet::new(),
        monitors: before.monitors.clone(),
    };
    let reporter = i32::try_from(reporter).expect("a pid fits in i32");
    kill(Pid::from_raw(reporter), Signal::SIGKILL).expect("kill -9 c's reporter");
    let killed = Instant::now();
    let deadline = killed + HEAL_WAIT;
    loop {
        let now = footprint(c);
        if now == want {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{HEAL_WAIT:?} after kill -9 of c's reporter, c still holds some of it:\n\
             want {want:?}\ngot  {now:?}\n(before the kill: {before:?})"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    println!(
        "MEASURE relay gone: c held no relay and none of the reporter's links {:.2} s after \
         kill -9 of its reporter (asked through rpc VMs: ~0.5 s resolution)",
        killed.elapsed().as_secs_f64()
    );
    assert!(c.proc.alive(), "c's VM stopped with its reporter");
    wait_views(
        "c to keep its peers without its reporter",
        &full_mesh(&members),
    );
    assert_cookies_secret(&members, &[&cookie]);
}

/// Issue 11, dead peers, on three hosts polling every second:
/// - one VM killed with -9, still listed in DNS (its host and epmd stay): over the 20 s
///   after its nodedown, each survivor calls `net_kernel:connect_node(dead)` at least
///   once and at most 7 times (before issue 11: every poll, ~20);
/// - the node restarted on the same address (through beamup) is in every `nodes()`
///   within interval + 3 s of registering with its epmd: it dials everyone at boot.
#[test]
fn a_dead_but_listed_peer_is_dialed_with_backoff_and_rejoins_when_restarted() {
    let _heavy = testkit::heavy::exclusive();
    require(&["dnsmasq", "erl", "elixir", "epmd"]);
    let (_net, hosts, dir, vm_args) = demo_cluster("dead", &["d1", "d2", "d3"], true, false);
    let cookie = Cookie::new();
    let how = connecting(&cookie, &vm_args);
    let mut members: Vec<Member> = hosts.iter().map(|h| boot(h, dir.path(), how)).collect();
    wait_views("the three-node mesh", &full_mesh(&members));
    let victim = 2;
    let dead = members[victim].node.clone();
    for m in &members[..victim] {
        start_watch(m);
    }

    // --- a dead peer, still listed ---------------------------------------------------
    let killed_ms = now_ms();
    let killed = Instant::now();
    members[victim].proc.kill9();
    wait_views(
        "the survivors to drop the killed node",
        &mesh_without(&members, &[victim]),
    );
    let window = Duration::from_millis(u64::try_from(DEAD_WINDOW_MS).expect("positive"));
    // The nodedown comes ~15 ms after the kill; a second of margin for the last dial.
    std::thread::sleep((window + Duration::from_secs(1)).saturating_sub(killed.elapsed()));
    let mut report = Vec::new();
    for m in &members[..victim] {
        let seen = events(m);
        let down_at = seen
            .iter()
            .find(|e| e.what == Seen::Down && e.node == dead && e.at_ms >= killed_ms)
            .map(|e| e.at_ms)
            .unwrap_or_else(|| {
                panic!(
                    "{} saw no nodedown of the killed node:\n{}",
                    m.host.name,
                    show_events(&seen)
                )
            });
        let dials: Vec<f64> = seen
            .iter()
            .filter(|e| e.what == Seen::Dial && e.node == dead)
            .map(|e| e.at_ms - down_at)
            .filter(|offset| (0..=DEAD_WINDOW_MS).contains(offset))
            .map(|offset| offset as f64 / 1000.0)
            .collect();
        report.push((m, dials));
    }
    for (m, dials) in &report {
        println!(
            "MEASURE dead-but-listed peer: {} called connect_node on it {} times in the \
             {DEAD_WINDOW_MS} ms after its nodedown (--interval {INTERVAL}), at {dials:?} s \
             (before issue 11: one per poll)",
            m.host.name,
            dials.len()
        );
    }
    for (m, dials) in &report {
        assert!(
            (1..=DEAD_MAX_DIALS).contains(&dials.len()),
            "{} dialed the dead-but-listed peer {} times in {DEAD_WINDOW_MS} ms (want 1 to \
             {DEAD_MAX_DIALS}: still dialed, with backoff), at {dials:?} s after its \
             nodedown; reporter log:\n{}",
            m.host.name,
            dials.len(),
            m.proc.log()
        );
    }

    // --- restarted on the same address -----------------------------------------------
    members[victim] = boot(&hosts[victim], dir.path(), how);
    let registered_ms = wait_registered(&members[victim]);
    let deadline = Instant::now() + LONG;
    let rejoined_ms = loop {
        let ups: Vec<Option<i64>> = members[..victim]
            .iter()
            .map(|m| up_after_down(&events(m), &dead, killed_ms))
            .collect();
        if let Some(ups) = ups.iter().copied().collect::<Option<Vec<i64>>>() {
            break ups.into_iter().max().unwrap_or(registered_ms);
        }
        assert!(
            Instant::now() < deadline,
            "the restarted node did not reconnect to every survivor within {LONG:?} \
             (nodeups seen: {ups:?}); its log:\n{}",
            members[victim].proc.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    wait_views("the restarted node to rejoin", &full_mesh(&members));
    let rejoin = rejoined_ms - registered_ms;
    let bound = (INTERVAL_SECS * 1000.0) as i64 + 3_000;
    println!(
        "MEASURE restarted dead peer: in every nodes() {rejoin} ms after the test saw it \
         registered with its epmd (`epmd -names` every ~20 ms, so a join faster than that \
         reads as ≤ 0; bound interval + 3 s = {bound} ms)"
    );
    assert!(
        rejoin <= bound,
        "the restarted node joined {rejoin} ms after registering with epmd (bound {bound} \
         ms); its log:\n{}",
        members[victim].proc.log()
    );
    for m in &members[..victim] {
        stop_watch(m);
    }
    assert_cookies_secret(&members, &[&cookie]);
}

/// Issue 19, on three hosts polling every 30 s (no poll explains what is seen):
/// - a host booted after the others joins them (DNS lists it from the first poll);
///   listed only after their first sync, it is asked for in its epmd until it boots,
///   never dialed (no atom of its name in their VMs);
/// - a burst of drops is one line: c cuts both peers while its relay is suspended, and
///   its reporter names both in one line;
/// - a link cut long enough for the peers to drop the host heals once it is back,
///   well inside the interval: the peers of a dropped host ask its epmd every 200 ms
///   and re-dial it as soon as it answers, ending the VM's own attempt, which would
///   wait out its SYN retransmissions (before, the next poll or a retransmission
///   seconds later healed it).
#[test]
fn a_late_host_joins_a_burst_of_drops_is_one_line_and_a_restored_link_heals_between_polls() {
    let _heavy = testkit::heavy::exclusive();
    require(&["dnsmasq", "erl", "elixir", "epmd"]);
    let (mut net, hosts, dir, vm_args) = demo_cluster("late", &["a", "b", "c"], true, false);
    let cookie = Cookie::new();
    let how = Boot {
        interval: SLOW_INTERVAL,
        ..connecting(&cookie, &vm_args)
    };
    // a and b first; DNS lists c from a later poll on, long before it boots.
    net.set_dns(&zone(&[("demo", &[&hosts[0], &hosts[1]])]));
    let mut members: Vec<Member> = hosts[..2]
        .iter()
        .map(|h| boot(h, dir.path(), how))
        .collect();
    wait_views("the mesh of a and b", &full_mesh(&members));
    net.set_dns(&zone(&[("demo", &hosts.iter().collect::<Vec<_>>())]));
    // Listed after their first sync, c is asked for in its epmd, not dialed, until it
    // boots (issue 19): a's and b's peers files say why, and neither VM has c's name
    // as an atom (a connect_node would have made one).
    let c_node = node_name(&hosts[2]);
    for m in &members {
        testkit::wait_until(
            LONG,
            &format!("{}'s peers file to show c's epmd not there", m.host.name),
            || {
                states(m)
                    .get(&c_node)
                    .is_some_and(|(state, why)| state == "failed" && why.contains("epmd"))
            },
        );
        let answer = ask(
            m,
            &format!(
                "IO.puts(try do String.to_existing_atom(\"{c_node}\"); \"dialed\" \
                 rescue ArgumentError -> \"never dialed\" end)"
            ),
        );
        assert_eq!(
            answer.lines().last(),
            Some("never dialed"),
            "{}'s VM has c's name as an atom before c booted: it was dialed, not asked first",
            m.host.name
        );
    }
    members.push(boot(&hosts[2], dir.path(), how));
    wait_views("the three-node mesh", &full_mesh(&members));
    let c = &members[2];

    // --- a burst of drops is one line -------------------------------------------------
    // c cuts both its peers while its relay is suspended: the relay then forwards both
    // nodedowns (in one read, or milliseconds apart on a busy machine), and c's reporter
    // says them in one line naming both once the burst is over.
    let before = c.proc.log().len();
    let answer = ask(c, &burst_expr(&[&members[0].node, &members[1].node]));
    assert_eq!(
        answer.lines().last(),
        Some("cut"),
        "cutting a and b in c: {answer}"
    );
    wait_views("the mesh after the burst", &full_mesh(&members));
    testkit::wait_until(
        Duration::from_secs(10),
        "c's reporter to say the drops",
        || c.proc.log()[before..].contains(" dropped; re-dialing"),
    );
    let log = c.proc.log();
    let said: Vec<&str> = log[before..]
        .lines()
        .filter(|l| l.contains(" dropped; re-dialing"))
        .collect();
    assert!(
        said.len() == 1 && said[0].contains("the connections to 2 peers dropped"),
        "c's reporter should say the burst of 2 drops in one line, said:\n{}",
        said.join("\n")
    );

    // --- a cut link, restored --------------------------------------------------------
    let a = &members[0];
    start_watch(a);
    let cut_at = now_ms();
    net.link_down(&c.host);
    wait_views("a and b to drop c", &mesh_without(&members, &[2]));
    // Past the drop's re-dial and its first SYN retransmissions (1 and 3 s after it).
    std::thread::sleep(Duration::from_secs(4));
    let restored_at = now_ms();
    net.link_up(&c.host);
    let deadline = Instant::now() + HEAL_WAIT;
    let healed_at = loop {
        let seen = events(a);
        if let Some(up) = up_after_down(&seen, &c.node, cut_at) {
            break up;
        }
        assert!(
            Instant::now() < deadline,
            "a and c were not connected again {HEAL_WAIT:?} after the link came back \
             (--interval {SLOW_INTERVAL}).\na saw:\n{}a's reporter:\n{}",
            show_events(&seen),
            a.proc.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let heal = healed_at - restored_at;
    assert!(
        heal <= HEAL_BOUND_MS,
        "a and c were connected again only {heal} ms after the link came back (bound \
         {HEAL_BOUND_MS} ms, --interval {SLOW_INTERVAL}): nothing watched the dropped peer"
    );
    println!(
        "MEASURE link restored after a cut ≥ 4 s past the drop, --interval {SLOW_INTERVAL}: \
         a and c connected again {heal} ms after the link (OS clock stamps; the bench has \
         the target)"
    );
    stop_watch(a);
    wait_views("the three-node mesh again", &full_mesh(&members));
    assert_cookies_secret(&members, &[&cookie]);
}
