//! bench/mesh (issues "--connect" and 11): how fast `beamup --connect` meshes N hosts
//! booting the demo mix release, and how fast it heals, against a baseline binary (the
//! commit before issue 11) measured in the same run, interleaved run by run.
//!
//! Each host is a network namespace of the test harness (tests/support/net.rs) with its
//! own epmd; dnsmasq answers the query `demo` (search domain svc.test) with every host;
//! every release runs with `-kernel net_ticktime 4` (`--ticktime`), so that a cut link
//! really breaks its connections within seconds. One run, per binary:
//!
//! 1. **Boot.** All N beamups start at once. An observer per host (cluster::Agent: a
//!    thread in the host's namespace) polls that host's epmd every 10 ms until `demo` is
//!    registered, connects as a hidden node and starts a *recorder* in the VM (an
//!    erl_eval'd process, stdlib only, gone when the observer's connection goes) that
//!    subscribes to `net_kernel:monitor_nodes/1` and stamps every nodeup/nodedown with
//!    `os:system_time(microsecond)`. Times below are those VM stamps, not the moments the
//!    bench fetched them (every 20 ms). Reported: the full mesh after the LAST
//!    registration, and for every pair the connection after the LATER of its two
//!    registrations (the worst pair per run is the figure compared with the target).
//! 2. **Disconnect.** After a random pause in [0, interval) (so the phase of the poll is
//!    random), h0 runs `erlang:disconnect_node(h1)`: time from just before the call (VM
//!    clock) until both h0 and h1 have seen the other come up again.
//! 3. **Link cut.** h(N-1)'s bridge port goes down until every node has seen the
//!    connections to it drop (net_ticktime 4: ~4-6 s), and for at least 8 s; then up:
//!    time until the mesh is full again.
//! 4. **Dead peer.** A call-trace process on h0 counts `net_kernel:connect_node/1` calls
//!    whose argument is h(N-2), then h(N-2) is killed with SIGKILL (its DNS record
//!    stays) and the calls are counted for `--dead-polls` intervals, reported per 15 s.
//!    (Only for the sizes in `--dead-sizes`: the count is one reporter's retries of one
//!    peer and does not depend on N, and at 5 s a window of 24 polls is two minutes.)
//! 5. **Memory.** Every reporter's VmRSS when the boot mesh is complete and at the end.
//!
//! **Scale (issue 19).** From 16 hosts on, a cell also runs the no-library baseline
//! `nolib` (the binary under test without `--connect`: boot only), and the report has a
//! table per scale cell with every variant side by side (`--variants` picks them: new,
//! baseline, nolib, selfonly, nolib+poll, vmpoll: dns_cluster's way of meshing, run in
//! every VM, and vmevent: vmpoll re-dialing every dropped node at once). Every run
//! records the CPU time of the reporters, VMs and epmds during the boot (a /proc
//! sampler, see cluster::CpuSampler), beamup's INFO lines per host and dnsmasq's
//! queries; `--trace-boot yes` call-traces connect_node in every VM during the boot; `--work yes` adds every VM's reductions by process at the end of
//! the boot. bench/README.md has the details.
//!
//! Run (as root): `bash bench/mesh.sh` (builds the static binary and the baseline, and
//! runs this with both), or `cargo bench --bench mesh -- [--sizes 3,5,8] [--intervals
//! 1s,5s] [--runs 3] [--only new|baseline] [--dead-polls 24] [--dead-sizes 3|all]
//! [--seed N] [--variants new,baseline,nolib,selfonly,nolib+poll,vmpoll,vmevent]
//! [--trace-boot yes]
//! [--work yes] [--boot-only yes]
//! [--cut link|ip] [--ticktime 4] [--erl-flags '+sbwt none'] [--toolchain trixie] [--out NAME]`.
//! BEAMUP_BENCH_BIN picks the binary under test (default: the one cargo
//! built for the bench), BEAMUP_BENCH_BASELINE the baseline. Writes
//! bench/results/mesh.txt (mesh-scale.txt when every size is 16 or more).

mod cluster;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use beamup::secret::Secret;
use cluster::{
    Agent, as_atom, as_i64, as_list, as_tuple, atom, int, machine_lines, median, node, now_us,
    otp_release, show,
};
use erl_dist::term::{List, Term};
use testkit::{Host, Net, Proc, Release, TempDir, Zone};

/// Bound on the boot of one run (8 VMs on 2 cores boot in ~10 s, 48 in about a minute).
fn boot_limit(size: usize) -> Duration {
    Duration::from_secs(120 + 3 * size as u64)
}
/// From this size on a cell is a "scale" cell (issue 19): the no-library baseline runs in
/// it by default, and the report has a table per size for it.
const SCALE_FROM: usize = 16;
/// How often the CPU sampler reads /proc (the reporters', VMs' and epmds' CPU times).
const CPU_SAMPLE: Duration = Duration::from_millis(100);
/// A reporter looks for its booting VM every 10 ms for this long, then once per interval
/// (BOOT_RETRY_FOR in src/reporter/mod.rs): registrations later than this after the start
/// are counted.
const BOOT_RETRY_FOR_S: f64 = 30.0;
const EPMD_POLL: Duration = Duration::from_millis(10);
/// How often the bench fetches the recorders' events (the events carry their own stamps).
const EVENTS_POLL: Duration = Duration::from_millis(20);
/// The releases' net_ticktime by default (`--ticktime`): a cut link breaks their
/// connections within 4-6 s.
const NET_TICKTIME: u32 = 4;
/// The least time a link stays cut, and the bound on waiting for everyone to drop it.
const CUT_HOLD: Duration = Duration::from_secs(8);
fn cut_drop_limit(size: usize) -> Duration {
    Duration::from_secs(20 + size as u64 / 2)
}
/// The recorders and tracers end by themselves after this, whatever happens to the bench.
const RECORDER_LIMIT_MS: i32 = 30 * 60 * 1000;
/// The issue's targets.
const REMESH_TARGET: f64 = 0.100;
const BOOT_TARGET: f64 = 0.050;
const DEAD_RATIO_TARGET: f64 = 0.25;
const RSS_TARGET_KIB: f64 = 4096.0;

/// Started in every VM as soon as its observer is connected; answers
/// `{Recorder, Start, Nodes}` once subscribed. It keeps every nodeup/nodedown of a visible
/// node with the VM's clock, hands them out on `{events, From}`, and ends when the
/// observer's connection goes (monitor_node), or after LimitMs. With TraceConnect
/// (`--trace-boot`) it also call-traces net_kernel:connect_node/1 in every process from
/// its start (who called: the caller's module, `rpc`/`erpc` for the reporter's calls
/// through rex; when; what it returned) until `{connects, From}` hands the calls out and
/// ends the trace.
///
/// With PollQuery other than `none` (the `vmpoll` variant) it first starts, in a process of
/// its own that ends when the observer's connection goes, what dns_cluster does in a VM: at
/// once and then PollEvery ms after each round, resolve PollQuery (A records, from the DNS
/// server at PollDns) and call net_kernel:connect_node/1 for every `<basename>@<address>`
/// not in nodes(), all at once, waiting for them (at most 10 s, dns_cluster's
/// connect_timeout) before the next wait. With PollOnDown `true` (the `vmevent` variant)
/// another process of its own subscribes to nodeup/nodedown and calls connect_node/1 for
/// every node that went down, at once: the quickest re-mesh a library inside the VM could
/// make, with no hop to anyone (OTP's own floor for a re-dial on a drop).
const RECORDER_START: &str = "begin
    (fun() -> case PollOnDown of
        true ->
            spawn(fun() ->
                true = erlang:monitor_node(Observer, true),
                ok = net_kernel:monitor_nodes(true),
                DownLoop = fun DownL() ->
                    receive
                        {nodedown, Observer} -> gone;
                        {nodedown, DownN} ->
                            spawn(fun() -> net_kernel:connect_node(DownN) end),
                            DownL();
                        _ -> DownL()
                    end
                end,
                DownLoop()
            end);
        false -> ok
    end end)(),
    (fun() -> case PollQuery of
        none -> ok;
        _ ->
            {ok, PollNs} = inet:parse_address(atom_to_list(PollDns)),
            [PollBase, _] = string:split(atom_to_list(node()), \"@\"),
            spawn(fun() ->
                true = erlang:monitor_node(Observer, true),
                PollRound = fun PollLoop() ->
                    PollKnown = [atom_to_list(PollN) || PollN <- nodes()],
                    PollIps = inet_res:lookup(atom_to_list(PollQuery), in, a,
                        [{nameservers, [{PollNs, 53}]}]),
                    PollDials = [spawn_monitor(fun() -> net_kernel:connect_node(list_to_atom(PollName)) end)
                        || PollIp <- PollIps,
                           PollName <- [PollBase ++ \"@\" ++ inet:ntoa(PollIp)],
                           not lists:member(PollName, PollKnown)],
                    [receive {'DOWN', PollRef, process, _, _} -> ok after 10000 -> ok end
                        || {_, PollRef} <- PollDials],
                    receive {nodedown, Observer} -> gone after PollEvery -> PollLoop() end
                end,
                PollRound()
            end)
    end end)(),
    Caller = self(),
    Recorder = spawn(fun() ->
        ok = net_kernel:monitor_nodes(true),
        true = erlang:monitor_node(Observer, true),
        case TraceConnect of
            true ->
                erlang:trace_pattern({net_kernel, connect_node, 1},
                    [{'_', [], [{return_trace}, {message, {caller}}]}], [global]),
                erlang:trace(all, true, [call]);
            false -> ok
        end,
        Caller ! {self(), started, os:system_time(microsecond), nodes()},
        erlang:send_after(LimitMs, self(), expire),
        Loop = fun L(Events, Calls) ->
            receive
                {nodedown, Observer} -> gone;
                {nodeup, N} -> L([{up, N, os:system_time(microsecond)} | Events], Calls);
                {nodedown, N} -> L([{down, N, os:system_time(microsecond)} | Events], Calls);
                {events, From} -> From ! {self(), events, lists:reverse(Events)}, L(Events, Calls);
                {trace, P, call, {net_kernel, connect_node, [Peer]}, Where} ->
                    By = case Where of {M, _, _} -> M; _ -> unknown end,
                    L(Events, [{call, P, Peer, By, os:system_time(microsecond)} | Calls]);
                {trace, P, return_from, {net_kernel, connect_node, 1}, R} ->
                    L(Events, [{return, P, R, os:system_time(microsecond)} | Calls]);
                {trace, _, _, _} -> L(Events, Calls);
                {trace, _, _, _, _} -> L(Events, Calls);
                {connects, From} ->
                    erlang:trace(all, false, [call]),
                    erlang:trace_pattern({net_kernel, connect_node, 1}, false, [global]),
                    From ! {self(), connects, lists:reverse(Calls)},
                    L(Events, []);
                expire -> expired
            end
        end,
        Loop([], [])
    end),
    receive {Recorder, started, Start, Nodes} -> {Recorder, Start, Nodes}
    after 5000 -> recorder_did_not_start
    end
end.";
const RECORDER_EVENTS: &str = "begin
    Recorder ! {events, self()},
    receive {Recorder, events, Events} -> Events after 5000 -> recorder_gone end
end.";
const RECORDER_CONNECTS: &str = "begin
    Recorder ! {connects, self()},
    receive {Recorder, connects, Calls} -> Calls after 5000 -> recorder_gone end
end.";
/// `vmevent` at the instant a cut ends (which the bench knows and no library can): every
/// one of Peers not in nodes() has its pending attempt ended and is dialed again, all at
/// once, so the restore measured is OTP's own, with nothing spent noticing the network.
const REDIAL: &str = "begin
    [spawn(fun() -> erlang:disconnect_node(P), net_kernel:connect_node(P) end)
        || P <- Peers, not lists:member(P, nodes())],
    ok
end.";
const DISCONNECT: &str = "begin
    T = os:system_time(microsecond),
    {T, erlang:disconnect_node(Peer)}
end.";
/// A call trace of net_kernel:connect_node/1 in every process (rex runs each call of a
/// reporter in a process of its own), keeping the instants of the calls for `Dead`.
/// Untraces itself on `stop`, when the observer goes, or after LimitMs.
const TRACER_START: &str = "begin
    Caller = self(),
    Tracer = spawn(fun() ->
        true = erlang:monitor_node(Observer, true),
        erlang:trace_pattern({net_kernel, connect_node, 1}, true, [global]),
        erlang:trace(all, true, [call]),
        Caller ! {self(), tracing, os:system_time(microsecond)},
        erlang:send_after(LimitMs, self(), expire),
        Loop = fun L(Calls) ->
            receive
                {trace, _, call, {net_kernel, connect_node, [Dead]}} ->
                    L([os:system_time(microsecond) | Calls]);
                {trace, _, call, _} -> L(Calls);
                {calls, From} -> From ! {self(), calls, lists:reverse(Calls)}, L(Calls);
                {nodedown, Observer} -> gone;
                expire -> expired;
                stop -> stopped
            end
        end,
        Loop([]),
        erlang:trace(all, false, [call]),
        erlang:trace_pattern({net_kernel, connect_node, 1}, false, [global])
    end),
    receive {Tracer, tracing, T} -> {Tracer, T} after 5000 -> tracer_did_not_start end
end.";
const TRACER_CALLS: &str = "begin
    Tracer ! {calls, self()},
    receive {Tracer, calls, Calls} -> Tracer ! stop, Calls after 5000 -> tracer_gone end
end.";
/// `--work yes`: the VM's reductions so far, by process (`{Total, [{Group, Reductions}]}`),
/// a process grouped by its registered name, `beamup_relay` for issue 11's relay, its
/// proc_lib initial call, else the function it is in now (a fun's initial call,
/// erlang:apply/2, names nothing). Total is every reduction the VM made, so Total minus
/// the live processes' is what processes that have exited made (rex's workers, the
/// connection setups).
const WORK: &str = "begin
    Group = fun(P) ->
        case process_info(P, [registered_name, dictionary, current_function]) of
            undefined -> gone;
            Info ->
                D = proplists:get_value(dictionary, Info),
                case {proplists:get_value(registered_name, Info),
                      lists:keymember(beamup_relay, 1, D),
                      lists:keyfind('$initial_call', 1, D)} of
                    {Name, _, _} when is_atom(Name) -> Name;
                    {_, true, _} -> beamup_relay;
                    {_, _, {_, Call}} -> Call;
                    _ -> proplists:get_value(current_function, Info)
                end
        end
    end,
    Live = [{Group(P), R} || P <- processes(), {reductions, R} <- [process_info(P, reductions)]],
    {Total, _} = statistics(exact_reductions),
    {Total, Live}
end.";
/// Issue 11's relay, as the contract describes how to find it (0 for the baseline).
const RELAYS: &str = "length([P || P <- processes(),
    {dictionary, D} <- [process_info(P, dictionary)],
    lists:keymember(beamup_relay, 1, D)]).";

/// The expressions above, parsed once.
struct Exprs {
    recorder_start: Term,
    recorder_events: Term,
    recorder_connects: Term,
    disconnect: Term,
    tracer_start: Term,
    tracer_calls: Term,
    relays: Term,
    work: Term,
    redial: Term,
}

impl Exprs {
    fn parse() -> Exprs {
        let mut forms = cluster::parse_erlang(&[
            RECORDER_START,
            RECORDER_EVENTS,
            RECORDER_CONNECTS,
            DISCONNECT,
            TRACER_START,
            TRACER_CALLS,
            RELAYS,
            WORK,
            REDIAL,
        ])
        .into_iter();
        let mut next = || forms.next().expect("parse_erlang checks the count");
        Exprs {
            recorder_start: next(),
            recorder_events: next(),
            recorder_connects: next(),
            disconnect: next(),
            tracer_start: next(),
            tracer_calls: next(),
            relays: next(),
            work: next(),
            redial: next(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Only {
    Both,
    New,
    Baseline,
}

struct Options {
    sizes: Vec<usize>,
    intervals: Vec<Duration>,
    runs: usize,
    only: Only,
    dead_polls: u32,
    /// None: every size.
    dead_sizes: Option<Vec<usize>>,
    seed: u64,
    /// `--variants`: the labels to run in every cell (None: new and baseline, plus nolib
    /// from SCALE_FROM hosts on).
    variants: Option<Vec<String>>,
    /// `--trace-boot`: call-trace connect_node in every VM during the boot.
    trace_boot: bool,
    /// `--work`: every VM's reductions by process at the end of the boot (see WORK).
    work: bool,
    /// `--boot-only`: no phase after the boot mesh, so that more runs fit the time a
    /// boot ratio needs (a 24-host boot varies by ±20% from run to run on this machine).
    boot_only: bool,
    /// `--out`: the result file's name under bench/results/.
    out: Option<String>,
    /// `--cut`: how phase 3 cuts h(N-1) off.
    cut: Cut,
    /// `--ticktime`: the releases' net_ticktime in seconds (at 48 hosts on two cores a
    /// starved VM can miss 4 s of ticks while booting, and OTP's `global` then
    /// disconnects nodes "to prevent overlapping partitions").
    ticktime: u32,
    /// `--erl-flags`: more flags for every release's VM (appended to ELIXIR_ERL_OPTIONS),
    /// e.g. `+sbwt none` to see what the schedulers' busy waiting costs a shared host.
    erl_flags: String,
    /// `--toolchain`: the Debian root whose OTP and Elixir every host runs (the tests'
    /// roots, `tests/support/chroot.rs`: bookworm OTP 25, trixie 27, sid 29); None: the
    /// machine's own.
    toolchain: Option<testkit::chroot::Toolchain>,
}

/// Phase 3's cut: `link`, h(N-1)'s bridge port down (the carrier gone: traffic sent to it
/// leaves ARP entries unresolved, retried once per second after the link is back), or
/// `ip`, an IPv4 partition (its incoming IPv4 dropped by nftables; ARP still resolves).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cut {
    Link,
    Ip,
}

impl Cut {
    fn start(self, net: &Net, host: &Host) {
        match self {
            Cut::Link => net.link_down(host),
            Cut::Ip => net.partition(host),
        }
    }

    fn end(self, net: &Net, host: &Host) {
        match self {
            Cut::Link => net.link_up(host),
            Cut::Ip => net.partition_end(host),
        }
    }

    fn what(self) -> &'static str {
        match self {
            Cut::Link => "bridge port down",
            Cut::Ip => "incoming IPv4 dropped (nftables)",
        }
    }
}

/// A yes/no flag's value.
fn yes_no(flag: &str, value: &str) -> bool {
    match value {
        "yes" => true,
        "no" => false,
        other => panic!("{flag} takes yes or no, not {other:?}"),
    }
}

fn parse_options() -> Options {
    let mut opts = Options {
        sizes: vec![3, 5, 8],
        intervals: vec![Duration::from_secs(1), Duration::from_secs(5)],
        runs: 3,
        only: Only::Both,
        dead_polls: 24,
        dead_sizes: Some(vec![3]),
        seed: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64),
        variants: None,
        trace_boot: false,
        work: false,
        boot_only: false,
        out: None,
        cut: Cut::Link,
        ticktime: NET_TICKTIME,
        erl_flags: String::new(),
        toolchain: None,
    };
    let sizes = |value: &str| -> Vec<usize> {
        value
            .split(',')
            .map(|s| s.parse().unwrap_or_else(|_| panic!("bad size {s:?}")))
            .collect()
    };
    for (name, value) in cluster::flags() {
        match name.as_str() {
            "--sizes" => opts.sizes = sizes(&value),
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
            "--only" => {
                opts.only = match value.as_str() {
                    "new" => Only::New,
                    "baseline" => Only::Baseline,
                    "both" => Only::Both,
                    other => panic!("--only takes new, baseline or both, not {other:?}"),
                };
            }
            "--dead-polls" => {
                opts.dead_polls = value
                    .parse()
                    .unwrap_or_else(|_| panic!("--dead-polls takes a number of intervals"));
            }
            "--dead-sizes" => {
                opts.dead_sizes = match value.as_str() {
                    "all" => None,
                    "none" => Some(Vec::new()),
                    list => Some(sizes(list)),
                };
            }
            "--seed" => {
                opts.seed = value
                    .parse()
                    .unwrap_or_else(|_| panic!("--seed takes a number"));
            }
            "--variants" => {
                let labels: Vec<String> = value.split(',').map(str::to_string).collect();
                let known = variant_labels();
                for l in &labels {
                    assert!(
                        known.contains(&l.as_str()),
                        "--variants takes some of {known:?}, not {l:?}"
                    );
                }
                opts.variants = Some(labels);
            }
            "--trace-boot" => opts.trace_boot = yes_no("--trace-boot", &value),
            "--boot-only" => opts.boot_only = yes_no("--boot-only", &value),
            "--work" => opts.work = yes_no("--work", &value),
            "--cut" => {
                opts.cut = match value.as_str() {
                    "link" => Cut::Link,
                    "ip" => Cut::Ip,
                    other => panic!("--cut takes link or ip, not {other:?}"),
                };
            }
            "--ticktime" => {
                opts.ticktime =
                    value.parse().ok().filter(|&t| t >= 1).unwrap_or_else(|| {
                        panic!("--ticktime takes a number of seconds, 1 or more")
                    });
            }
            "--erl-flags" => opts.erl_flags = value,
            "--toolchain" => {
                assert!(
                    ["bookworm", "trixie", "sid"].contains(&value.as_str()),
                    "--toolchain takes bookworm (OTP 25), trixie (27) or sid (29), not {value:?}"
                );
                opts.toolchain = Some(testkit::chroot::toolchain(&value));
            }
            "--out" => {
                assert!(
                    !value.contains('/') && !value.is_empty(),
                    "--out takes a file name (written under bench/results/)"
                );
                opts.out = Some(value);
            }
            other => panic!(
                "unknown flag {other} (--sizes, --intervals, --runs, --only, --dead-polls, --dead-sizes, --seed, --variants, --trace-boot, --work, --boot-only, --cut, --ticktime, --erl-flags, --toolchain, --out)"
            ),
        }
    }
    opts
}

impl Options {
    fn dead_at(&self, size: usize) -> bool {
        self.dead_sizes.as_ref().is_none_or(|s| s.contains(&size))
    }

    /// Whether the variant `label` runs in a cell of `size` hosts.
    fn runs_variant(&self, label: &str, size: usize) -> bool {
        match &self.variants {
            Some(v) => v.iter().any(|l| l == label),
            None => match label {
                "new" => self.only != Only::Baseline,
                "baseline" => self.only != Only::New,
                "nolib" => size >= SCALE_FROM,
                _ => false,
            },
        }
    }

    /// The result file: mesh.txt, or mesh-scale.txt when every size is a scale size.
    fn out(&self) -> String {
        self.out.clone().unwrap_or_else(|| {
            if self.sizes.iter().all(|&s| s >= SCALE_FROM) {
                "mesh-scale.txt".into()
            } else {
                "mesh.txt".into()
            }
        })
    }
}

/// Every variant a cell may run (`--variants`):
/// - `new`: the binary under test with `--connect` (the phases of the module doc);
/// - `baseline`: the baseline binary, the same way;
/// - `nolib`: the binary under test WITHOUT `--connect` (it names the node and polls DNS;
///   nothing meshes the VMs: the observer alone joins each VM, once) — the no-library
///   baseline of issue 19, boot only;
/// - `selfonly`: the binary under test with `--connect` but `--peers` its own node only
///   instead of `--query`: the reporter waits for its VM (README step 6), connects as a hidden
///   node and starts the relay, but has no peer to dial (boot only; issue 19's question
///   of where the boot-time cost goes).
/// - `nolib+poll`: nolib, plus a thread per host in the bench that asks the host's epmd
///   for `demo` (PORT_PLEASE2) every 10 ms until it is registered, as the reporter's
///   look-up loop does (BOOT_RETRY): that loop's cost without beamup (boot only).
/// - `vmpoll`: nolib, plus dns_cluster's algorithm in every VM (RECORDER_START's poller,
///   started by the observer as soon as the VM registered): the library way of meshing,
///   measured through every phase like `new`. It is not dns_cluster's own code (this
///   machine has no hex), so its figures stand for the method, not the package.
/// - `vmevent`: vmpoll, plus a re-dial at once from inside the VM of every node that goes
///   down (RECORDER_START's PollOnDown): what OTP itself takes to re-mesh when the re-dial
///   costs nothing, the floor issue 19 compares beamup's re-mesh with; and at the instant a
///   cut ends, the cut host and its peers re-dial each other (REDIAL): OTP's own restore.
///
/// Each: its label, what it is (the results' header; None for the baseline, whose
/// revision says it), how it boots; cells run them in this order.
const VARIANTS: [(&str, Option<&str>, Kind); 7] = [
    ("new", Some("this checkout"), Kind::Connect),
    // The baseline binary (None: its own revision, from bench/mesh.sh).
    ("baseline", None, Kind::Connect),
    (
        "nolib",
        Some("this checkout, without --connect"),
        Kind::NoConnect,
    ),
    (
        "selfonly",
        Some("this checkout, --connect --peers <own node> (no peer to dial)"),
        Kind::SelfOnly,
    ),
    (
        "nolib+poll",
        Some(
            "nolib, plus the bench asking each host's epmd for demo every 10 ms until it registers",
        ),
        Kind::NoConnectPoll,
    ),
    (
        "vmpoll",
        Some(
            "nolib, plus dns_cluster's algorithm in every VM (a poll at once, then every interval)",
        ),
        Kind::VmPoll,
    ),
    (
        "vmevent",
        Some("vmpoll, plus a re-dial at once from inside the VM of every node that goes down"),
        Kind::VmEvent,
    ),
];

/// The variants' labels, in [`VARIANTS`]' order.
fn variant_labels() -> Vec<&'static str> {
    VARIANTS.iter().map(|(label, _, _)| *label).collect()
}

/// How a variant boots its hosts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Connect,
    NoConnect,
    SelfOnly,
    NoConnectPoll,
    VmPoll,
    VmEvent,
}

impl Kind {
    /// Whether something meshes the VMs (so the boot mesh and the phases are measured).
    fn meshes(self) -> bool {
        matches!(self, Kind::Connect | Kind::VmPoll | Kind::VmEvent)
    }
}

/// xorshift64*: the random pauses, reproducible from the printed seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, d: Duration) -> Duration {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d);
        d.mul_f64((x >> 11) as f64 / (1u64 << 53) as f64)
    }
}

/// A beamup binary under measurement, and how it boots the hosts.
struct Binary {
    label: &'static str,
    path: PathBuf,
    rev: String,
    kind: Kind,
}

/// What one run of one binary measured (seconds unless said otherwise).
#[derive(Debug, Clone, Default)]
struct Sample {
    /// How the run booted its hosts (None only in Default).
    kind: Option<Kind>,
    /// From starting the N beamups to the last registration: every node's distribution up.
    boot: f64,
    /// From starting the N beamups to the first registration.
    first_reg: f64,
    /// Registrations later than BOOT_RETRY_FOR_S after the start.
    late_registrations: usize,
    /// CPU seconds, summed over the hosts (see `boot_cpu`): the reporters until each one's
    /// own VM registered, until every VM had (all distribution up), until the boot mesh;
    /// the median reporter until all distribution up; the VMs and the epmds until all
    /// distribution up, the VMs until the boot mesh.
    rep_cpu_own_reg: Option<f64>,
    rep_cpu_boot: Option<f64>,
    rep_cpu_mesh: Option<f64>,
    rep_cpu_boot_host: Option<f64>,
    vm_cpu_boot: Option<f64>,
    vm_cpu_mesh: Option<f64>,
    epmd_cpu_boot: Option<f64>,
    /// beamup's INFO lines per host at the boot mesh and at the end of the run.
    info_boot: Vec<usize>,
    info_end: Vec<usize>,
    /// dnsmasq's queries per host until the boot mesh.
    dns_boot_per_node: f64,
    /// "peer discovery failed" warnings in all logs until the boot mesh (a DNS poll that
    /// timed out under the boot's load: that host knows no peers until its next poll).
    discovery_failures: usize,
    /// With `--trace-boot`: the VMs' connect_node calls during the boot.
    connects: Option<ConnectStats>,
    /// With `--work`: the VMs' reductions at the end of the boot by process group, summed
    /// over the hosts (see `boot_work`).
    work: Option<BTreeMap<String, f64>>,
    /// With `--work`: the VMs' threads' context switches at the end of the boot, summed
    /// over the hosts, voluntary and nonvoluntary (see `cluster::vm_switches`).
    vm_switches: Option<(f64, f64)>,
    /// Full mesh after the last registration (None: no boot mesh within the bound).
    mesh: Option<f64>,
    /// Of `mesh`: the last node's first link up (the earlier side's nodeup) after its
    /// registration: noticing the node and dialing, one handshake included. The rest of
    /// `mesh` is the VMs setting up its other links and `global` syncing them.
    first_link: Option<f64>,
    /// Per pair: connected after the later of its two registrations.
    pairs: Vec<f64>,
    /// "connecting to peer failed" warnings in all logs until the boot mesh.
    boot_warnings: usize,
    /// Forced disconnect: h0 and h1 see each other again / the whole mesh is back.
    disconnect: Option<f64>,
    disconnect_full: Option<f64>,
    /// Link cut: the last node noticing it / the full mesh after the link is back.
    cut_drop: Option<f64>,
    cut_heal: Option<f64>,
    /// Link restored: the network carrying the cut host's packets to every peer again
    /// (its neighbour entries resolved, see `cluster::NeighWatch`): the heal's floor.
    cut_net: Option<f64>,
    /// Dead peer: the calls' instants after the kill, and the window (s).
    dead_calls: Option<Vec<f64>>,
    dead_window: f64,
    /// The run's --interval (s).
    interval: f64,
    /// Reporter VmRSS (KiB) at the boot mesh and at the end.
    rss: Vec<u64>,
    /// dnsmasq's queries over the whole run, per host and minute.
    dns_per_node_min: f64,
    /// Hosts whose VM holds exactly one issue-11 relay at the end, of those alive.
    relays: Option<(usize, usize)>,
    /// Why the run stopped early, if it did (the phases before it count).
    failure: Option<String>,
}

/// net_kernel:connect_node/1 calls in every VM from its recorder's start to the boot
/// mesh (`--trace-boot`), summed over the VMs.
#[derive(Debug, Clone, Default)]
struct ConnectStats {
    /// Called through rex (the reporter's), or by anything else (OTP's global, ...).
    by_rex: usize,
    by_other: usize,
    /// The rex calls' results.
    returned_true: usize,
    returned_false: usize,
    /// Rex calls made before the peer's VM had registered with its epmd.
    early: usize,
    /// Time inside the rex calls (a process each): all of them, the failed ones, the early ones.
    rex_secs: f64,
    failed_secs: f64,
    early_secs: f64,
}

fn median_of(xs: &[usize]) -> Option<f64> {
    median(xs.iter().map(|&x| x as f64).collect())
}

impl Sample {
    fn worst_pair(&self) -> Option<f64> {
        self.pairs.iter().copied().reduce(f64::max)
    }

    /// Of `mesh`, what follows the last node's first link: its other links (OTP's share).
    fn mesh_rest(&self) -> Option<f64> {
        Some((self.mesh? - self.first_link?).max(0.0))
    }

    fn dead_per_15s(&self) -> Option<f64> {
        let calls = self.dead_calls.as_ref()?;
        Some(calls.len() as f64 * 15.0 / self.dead_window)
    }
}

/// The runs of one (interval, size) cell, per binary.
struct Cell {
    interval: Duration,
    size: usize,
    runs: Vec<Vec<Result<Sample, String>>>,
}

fn main() {
    let Some((bin, release, cookie)) = cluster::start("mesh") else {
        return;
    };
    let mut opts = parse_options();
    let (release, cookie) = match &opts.toolchain {
        Some(tc) => {
            let release = tc.mix_release();
            let cookie = cluster::release_cookie(&release);
            (release, cookie)
        }
        None => (release, cookie),
    };
    let mut binaries = Vec::new();
    let wanted: Vec<&str> = variant_labels()
        .into_iter()
        .filter(|label| opts.sizes.iter().any(|&n| opts.runs_variant(label, n)))
        .collect();
    for (label, rev, kind) in VARIANTS {
        if !wanted.contains(&label) {
            continue;
        }
        let Some(rev) = rev else {
            match cluster::baseline_binary() {
                Some((path, rev)) => binaries.push(Binary {
                    label,
                    path,
                    rev,
                    kind,
                }),
                None if opts.only == Only::Baseline
                    || opts
                        .variants
                        .as_ref()
                        .is_some_and(|v| v.iter().any(|l| l == label)) =>
                {
                    panic!("the baseline needs BEAMUP_BENCH_BASELINE (bench/mesh.sh builds it)")
                }
                None => {
                    eprintln!(
                        "bench mesh: no BEAMUP_BENCH_BASELINE (bench/mesh.sh builds it): measuring the binary under test only"
                    );
                    opts.only = Only::New;
                }
            }
            continue;
        };
        binaries.push(Binary {
            label,
            path: bin.clone(),
            rev: rev.into(),
            kind,
        });
    }
    let exprs = Exprs::parse();
    let mut rng = Rng(opts.seed | 1);
    eprintln!("bench mesh: seed {}", opts.seed);

    let mut cells: Vec<Cell> = Vec::new();
    let started = Instant::now();
    for &interval in &opts.intervals {
        for &size in &opts.sizes {
            let mut runs: Vec<Vec<Result<Sample, String>>> =
                binaries.iter().map(|_| Vec::new()).collect();
            let active: Vec<usize> = (0..binaries.len())
                .filter(|&b| opts.runs_variant(binaries[b].label, size))
                .collect();
            for run in 0..opts.runs {
                // Interleaved, the order alternating, so that neither binary always runs
                // on a machine the other just warmed up (or loaded).
                let mut order = active.clone();
                if run % 2 == 1 {
                    order.reverse();
                }
                for b in order {
                    let binary = &binaries[b];
                    eprintln!(
                        "bench mesh: {size} hosts, --interval {}, run {}/{}, {}",
                        show(interval),
                        run + 1,
                        opts.runs,
                        binary.label
                    );
                    let run_started = Instant::now();
                    let sample = measure(
                        binary, &release, &cookie, &exprs, size, interval, &opts, &mut rng,
                    );
                    match &sample {
                        Ok(s) => eprintln!(
                            "bench mesh:   {} ({})",
                            summary(s),
                            show_secs(run_started.elapsed().as_secs_f64())
                        ),
                        Err(e) => eprintln!("bench mesh:   FAILED: {e}"),
                    }
                    runs[b].push(sample);
                }
            }
            cells.push(Cell {
                interval,
                size,
                runs,
            });
        }
    }
    let text = report(&binaries, &opts, &cells, started.elapsed());
    print!("{text}");
    cluster::write_result(&opts.out(), &text);
}

fn show_secs(s: f64) -> String {
    if s < 10.0 {
        format!("{:.0} ms", s * 1000.0)
    } else {
        format!("{s:.1} s")
    }
}

fn opt_secs(s: Option<f64>) -> String {
    s.map_or("-".into(), show_secs)
}

fn summary(s: &Sample) -> String {
    if !s.kind.is_some_and(Kind::meshes) {
        return format!(
            "all distribution up {} (first {}), no mesh (boot only){}; RSS {:?} KiB; {:.1} DNS queries/host/min",
            show_secs(s.boot),
            show_secs(s.first_reg),
            boot_figures(s),
            s.rss,
            s.dns_per_node_min
        );
    }
    let mut out = format!(
        "boot {}, mesh {} after the last registration (its first link {}), worst pair {}, {} warning(s); disconnect heal {} (full {}); cut dropped after {}, healed {} (network back after {})",
        show_secs(s.boot),
        opt_secs(s.mesh),
        opt_secs(s.first_link),
        opt_secs(s.worst_pair()),
        s.boot_warnings,
        opt_secs(s.disconnect),
        opt_secs(s.disconnect_full),
        opt_secs(s.cut_drop),
        opt_secs(s.cut_heal),
        opt_secs(s.cut_net),
    );
    if let Some(calls) = &s.dead_calls {
        let _ = write!(
            out,
            "; dead peer: {} call(s) in {:.0} s, at polls {:?} after the kill",
            calls.len(),
            s.dead_window,
            calls
                .iter()
                .map(|c| (c / s.interval * 10.0).round() / 10.0)
                .collect::<Vec<_>>()
        );
    }
    let _ = write!(
        out,
        "; RSS {:?} KiB; {:.1} DNS queries/host/min",
        s.rss, s.dns_per_node_min
    );
    out.push_str(&boot_figures(s));
    if let Some((with, of)) = s.relays {
        let _ = write!(out, "; relays {with}/{of}");
    }
    if let Some(f) = &s.failure {
        let _ = write!(out, "; STOPPED: {f}");
    }
    out
}

/// The issue-19 figures of a run's boot, for its `every run` line.
fn boot_figures(s: &Sample) -> String {
    let cpu = |x: Option<f64>| x.map_or("-".into(), |v| format!("{v:.3}"));
    let mut out = format!(
        "; CPU s until all distribution up: reporters {} (until own registration {}, until the boot mesh {}), VMs {} (until the boot mesh {}), epmds {}; {} registration(s) after {BOOT_RETRY_FOR_S:.0} s; INFO lines per host at the boot mesh {:?}, at the end {:?}; DNS queries per host until the boot mesh {:.1}; {} failed DNS poll(s) until the boot mesh",
        cpu(s.rep_cpu_boot),
        cpu(s.rep_cpu_own_reg),
        cpu(s.rep_cpu_mesh),
        cpu(s.vm_cpu_boot),
        cpu(s.vm_cpu_mesh),
        cpu(s.epmd_cpu_boot),
        s.late_registrations,
        s.info_boot,
        s.info_end,
        s.dns_boot_per_node,
        s.discovery_failures,
    );
    if let Some(c) = &s.connects {
        let _ = write!(
            out,
            "; connect_node during the boot: {} through rex ({} true, {} false/other; {} before the peer registered, {:.2} s inside them; {:.2} s inside all, {:.2} s inside the failed ones), {} by other callers",
            c.by_rex,
            c.returned_true,
            c.returned_false,
            c.early,
            c.early_secs,
            c.rex_secs,
            c.failed_secs,
            c.by_other
        );
    }
    out
}

/// One host's recorder as last fetched: what the VM listed when it started, and every
/// nodeup/nodedown since, all stamped by the VM (µs since the epoch).
#[derive(Debug, Clone)]
struct View {
    start: i64,
    initial: BTreeSet<String>,
    /// (up?, node, instant), oldest first.
    events: Vec<(bool, String, i64)>,
}

impl View {
    /// Whether the node lists `peer` now; since when (its last nodeup, or the recorder's
    /// start for a connection that was already there: an upper bound).
    fn since(&self, peer: &str) -> Option<i64> {
        match self.events.iter().rev().find(|(_, n, _)| n == peer) {
            Some((true, _, t)) => Some(*t),
            Some((false, _, _)) => None,
            None => self.initial.contains(peer).then_some(self.start),
        }
    }

    fn first_after(&self, up: bool, peer: &str, after: i64) -> Option<i64> {
        self.events
            .iter()
            .find(|(u, n, t)| *u == up && n == peer && *t >= after)
            .map(|(_, _, t)| *t)
    }
}

/// The hosts of one run with their observers.
struct Cluster<'a> {
    names: Vec<String>,
    agents: Vec<Agent>,
    recorders: Vec<Term>,
    views: Vec<View>,
    exprs: &'a Exprs,
}

impl Cluster<'_> {
    /// Fetches every host's events.
    fn refresh(&mut self) -> Result<(), String> {
        for i in 0..self.agents.len() {
            let events = self.agents[i]
                .eval(
                    &self.exprs.recorder_events,
                    &[("Recorder", self.recorders[i].clone())],
                )
                .map_err(|e| format!("h{i}'s recorder: {e}"))?;
            self.views[i].events = parse_events(&events)
                .ok_or_else(|| format!("h{i}'s recorder answered {events:?}"))?;
        }
        Ok(())
    }

    /// When `a` and `b` got connected (the earlier of the two sides' stamps: a recorder
    /// that started after the connection only gives an upper bound), if they are.
    fn connected(&self, a: usize, b: usize) -> Option<i64> {
        let ab = self.views[a].since(&self.names[b]);
        let ba = self.views[b].since(&self.names[a]);
        match (ab, ba) {
            (Some(x), Some(y)) => Some(x.min(y)),
            _ => None,
        }
    }

    /// If every pair of `hosts` is connected, the instant the last one got connected.
    fn full_mesh(&self, hosts: &[usize]) -> Option<i64> {
        let mut last = i64::MIN;
        for (k, &a) in hosts.iter().enumerate() {
            for &b in &hosts[k + 1..] {
                last = last.max(self.connected(a, b)?);
            }
        }
        Some(last)
    }

    /// With BEAMUP_BENCH_DEBUG, every host's events since `since` (µs), relative to it.
    fn dump(&self, what: &str, since: i64) {
        if !cluster::debugging() {
            return;
        }
        for (i, v) in self.views.iter().enumerate() {
            let events: Vec<String> = v
                .events
                .iter()
                .filter(|(_, _, t)| *t >= since)
                .map(|(up, n, t)| {
                    format!(
                        "{}{} {:+.1}ms",
                        if *up { "+" } else { "-" },
                        n,
                        (t - since) as f64 / 1000.0
                    )
                })
                .collect();
            cluster::debug_log(&format!("{what}: h{i} {events:?}"));
        }
    }

    /// Polls the events until `done` says the phase is over, or `limit` passes.
    fn wait<T>(
        &mut self,
        limit: Duration,
        what: &str,
        mut done: impl FnMut(&Self) -> Option<T>,
    ) -> Result<T, String> {
        let deadline = Instant::now() + limit;
        loop {
            self.refresh()?;
            if let Some(value) = done(self) {
                return Ok(value);
            }
            if Instant::now() >= deadline {
                return Err(format!("{what}: not within {}", show(limit)));
            }
            std::thread::sleep(EVENTS_POLL);
        }
    }
}

fn parse_events(term: &Term) -> Option<Vec<(bool, String, i64)>> {
    as_list(term)?
        .iter()
        .map(|e| match as_tuple(e)? {
            [kind, node, at] => Some((
                as_atom(kind)? == "up",
                as_atom(node)?.to_string(),
                as_i64(at)?,
            )),
            _ => None,
        })
        .collect()
}

/// When the network carried packets both ways between the cut host `c` and every other
/// host again, after `up_at`: for each pair, the later of the two sides' neighbour
/// entries resolved (a side whose entry stayed usable still waits for the other's: its
/// SYN arrives, the answer does not). None when an entry never resolved.
fn network_back(
    watches: &[cluster::NeighWatch],
    hosts: &[Host],
    c: usize,
    up_at: i64,
) -> Option<i64> {
    let cut_ip = hosts[c].addr();
    let mut last = up_at;
    for (x, host) in hosts.iter().enumerate().filter(|(x, _)| *x != c) {
        let theirs = watches[x].usable_at(cut_ip, up_at)?;
        let ours = watches[c].usable_at(host.addr(), up_at)?;
        last = last.max(theirs).max(ours);
    }
    Some(last)
}

fn secs(us: i64) -> f64 {
    us as f64 / 1e6
}

/// The last `n` lines of a process's log, for a failure message.
fn log_tail(p: &Proc, n: usize) -> String {
    let log = p.log();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[allow(clippy::too_many_arguments)]
fn measure(
    binary: &Binary,
    release: &Release,
    cookie: &Secret,
    exprs: &Exprs,
    size: usize,
    interval: Duration,
    opts: &Options,
    rng: &mut Rng,
) -> Result<Sample, String> {
    assert!(size >= 3, "the phases need at least 3 hosts");
    let bin = binary.path.as_path();
    let mut net = Net::new("mesh");
    let hosts: Vec<Host> = (0..size)
        .map(|i| {
            let host = net.add_host(&format!("h{i}"), true, false);
            match &opts.toolchain {
                Some(tc) => host.in_root(tc),
                None => host,
            }
        })
        .collect();
    let refs: Vec<&Host> = hosts.iter().collect();
    net.start_dns(&Zone::service("demo", "svc.test", &refs));
    let dir = TempDir::new("mesh");
    let names: Vec<String> = hosts.iter().map(node).collect();

    // The observers first, so that they catch each registration.
    let boot_deadline = Instant::now() + boot_limit(size);
    let trace = if opts.trace_boot { "true" } else { "false" };
    let in_vm = matches!(binary.kind, Kind::VmPoll | Kind::VmEvent);
    let poll_query = if in_vm { "demo.svc.test" } else { "none" };
    let on_down = if binary.kind == Kind::VmEvent {
        "true"
    } else {
        "false"
    };
    let dns = net.dns_addr().to_string();
    let interval_ms = i32::try_from(interval.as_millis()).unwrap_or(i32::MAX);
    let agents: Vec<Agent> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            Agent::spawn(
                h,
                format!("bench{i}-{}@{}", std::process::id(), h.addr()),
                cookie,
                EPMD_POLL,
                boot_deadline,
                (
                    exprs.recorder_start.clone(),
                    vec![
                        ("LimitMs".into(), int(RECORDER_LIMIT_MS)),
                        ("TraceConnect".into(), atom(trace)),
                        ("PollQuery".into(), atom(poll_query)),
                        ("PollDns".into(), atom(&dns)),
                        ("PollEvery".into(), int(interval_ms)),
                        ("PollOnDown".into(), atom(on_down)),
                    ],
                ),
            )
        })
        .collect();

    let start = now_us();
    let interval_arg = show(interval);
    let erl_options = format!("-kernel net_ticktime {} {}", opts.ticktime, opts.erl_flags);
    let mut env = vec![("ELIXIR_ERL_OPTIONS", erl_options.trim_end())];
    if cluster::debugging() {
        env.push(("BEAMUP_LOG", "debug"));
    }
    let mut procs: Vec<Proc> = hosts
        .iter()
        .zip(&names)
        .map(|(h, own)| {
            let mut args: Vec<&str> = match binary.kind {
                Kind::Connect => cluster::CONNECT_ARGS.to_vec(),
                Kind::NoConnect | Kind::NoConnectPoll | Kind::VmPoll | Kind::VmEvent => {
                    vec!["--ip", "interface:eth0", "--query", "demo"]
                }
                Kind::SelfOnly => {
                    vec![
                        "--ip",
                        "interface:eth0",
                        "--peers",
                        own.as_str(),
                        "--connect",
                    ]
                }
            };
            args.extend(["--interval", &interval_arg]);
            cluster::boot(bin, h, release, dir.path(), &args, &env)
        })
        .collect();
    let pollers = (binary.kind == Kind::NoConnectPoll).then(|| EpmdPollers::start(&hosts));
    let sampler = cluster::CpuSampler::start(
        bin,
        procs.iter().map(Proc::pid).collect(),
        &hosts,
        CPU_SAMPLE,
    );

    // 1. Boot: every recorder running, then the full mesh.
    let mut recorders = Vec::new();
    let mut views = Vec::new();
    for (i, agent) in agents.iter().enumerate() {
        let first = loop {
            if let Some(e) = agent.error() {
                return Err(format!(
                    "h{i}: {e}; its log ends with:\n{}",
                    log_tail(&procs[i], 15)
                ));
            }
            if let Some(first) = agent.first() {
                break first;
            }
            std::thread::sleep(EPMD_POLL);
        };
        let first = first.map_err(|e| format!("h{i}: starting the recorder: {e}"))?;
        let Some([recorder, t0, nodes]) =
            as_tuple(&first).and_then(|t| <&[Term; 3]>::try_from(t).ok())
        else {
            return Err(format!("h{i}: the recorder answered {first:?}"));
        };
        recorders.push(recorder.clone());
        views.push(View {
            start: as_i64(t0).ok_or("recorder start time")?,
            initial: as_list(nodes)
                .unwrap_or_default()
                .iter()
                .filter_map(|n| as_atom(n).map(str::to_string))
                .collect(),
            events: Vec::new(),
        });
    }
    let registrations: Vec<i64> = agents
        .iter()
        .map(|a| a.registered().map_or(i64::MAX, |r| r.before))
        .collect();
    let mut cluster = Cluster {
        names: names.clone(),
        agents,
        recorders,
        views,
        exprs,
    };
    let everyone: Vec<usize> = (0..size).collect();
    // The last to register (its registration is `last_reg`).
    let last_host = (0..size).max_by_key(|&i| registrations[i]);
    let last_reg = last_host.map_or(start, |i| registrations[i]);
    let first_reg = registrations.iter().copied().min().unwrap_or(start);
    // Without a boot mesh within the bound the run stops there, its boot figures kept.
    let mut no_mesh = None;
    let mesh_at = if binary.kind.meshes() {
        let left = boot_deadline.saturating_duration_since(Instant::now());
        match cluster.wait(left, "the boot mesh", |c| c.full_mesh(&everyone)) {
            Ok(at) => Some(at),
            Err(e) => {
                let lonely = (0..size)
                    .find(|&a| (0..size).any(|b| b != a && cluster.connected(a, b).is_none()))
                    .unwrap_or(0);
                no_mesh = Some(format!(
                    "{e}; h{lonely}'s log ends with:\n{}",
                    log_tail(&procs[lonely], 15)
                ));
                None
            }
        }
    } else {
        cluster.refresh()?;
        None
    };
    // The CPU figures need the sampler until the later of the two instants only.
    let boot_end = mesh_at.unwrap_or(last_reg).max(last_reg);
    while now_us() < boot_end + 2 * CPU_SAMPLE.as_micros() as i64 {
        std::thread::sleep(CPU_SAMPLE);
    }
    let cpu = sampler.finish();
    drop(pollers);
    cluster::debug_log(&format!(
        "registrations (ms after start): {:?}",
        registrations
            .iter()
            .map(|r| (r - start) / 1000)
            .collect::<Vec<_>>()
    ));
    cluster.dump("boot (from the start)", start);
    let mut sample = Sample {
        kind: Some(binary.kind),
        boot: secs(last_reg - start),
        first_reg: secs(first_reg - start),
        mesh: mesh_at.map(|at| secs(at - last_reg).max(0.0)),
        first_link: mesh_at.and_then(|_| {
            let last = last_host?;
            let first = (0..size)
                .filter(|&b| b != last)
                .filter_map(|b| cluster.connected(last, b))
                .min()?;
            Some(secs(first - last_reg).max(0.0))
        }),
        interval: interval.as_secs_f64(),
        late_registrations: registrations
            .iter()
            .filter(|&&r| secs(r - start) > BOOT_RETRY_FOR_S)
            .count(),
        ..Sample::default()
    };
    boot_cpu(&cpu, &registrations, last_reg, mesh_at, &mut sample);
    if mesh_at.is_some() {
        for a in 0..size {
            for b in a + 1..size {
                if let Some(at) = cluster.connected(a, b) {
                    let later = registrations[a].max(registrations[b]);
                    sample.pairs.push(secs(at - later).max(0.0));
                }
            }
        }
    }
    sample.boot_warnings = procs
        .iter()
        .map(|p| {
            p.log()
                .lines()
                .filter(|l| l.contains("WARN") && l.contains("connecting to peer failed"))
                .count()
        })
        .sum();
    sample.info_boot = info_lines(&procs);
    sample.discovery_failures = procs
        .iter()
        .map(|p| {
            p.log()
                .lines()
                .filter(|l| l.contains("WARN") && l.contains("peer discovery failed"))
                .count()
        })
        .sum();
    sample.dns_boot_per_node = dns_queries(&net) as f64 / size as f64;
    if opts.trace_boot {
        sample.connects = Some(boot_connects(&cluster, &registrations)?);
    }
    if opts.work {
        sample.work = Some(boot_work(&cluster)?);
        let roots: Vec<u32> = procs.iter().map(Proc::pid).collect();
        let (voluntary, preempted) = cluster::vm_switches(bin, &roots);
        sample.vm_switches = Some((voluntary as f64, preempted as f64));
    }
    sample.rss.extend(reporter_rss(bin, &procs)?);

    // The phases after the boot: a failure ends the run, what was measured stays.
    if let Some(e) = no_mesh {
        sample.failure = Some(e);
    } else if binary.kind.meshes()
        && !opts.boot_only
        && let Err(e) = phases(
            &mut cluster,
            &net,
            &hosts,
            &mut procs,
            bin,
            interval,
            opts,
            rng,
            &mut sample,
        )
    {
        sample.failure = Some(e);
    }
    if cluster::debugging() {
        cluster::debug_log(&format!("h0's log:\n{}", log_tail(&procs[0], 200)));
        // The cut host (phase 3).
        cluster::debug_log(&format!(
            "h{}'s log (the cut host):\n{}",
            size - 1,
            log_tail(&procs[size - 1], 200)
        ));
        // The last to register: what its reporter did for the boot's last joins.
        if let Some(last) = last_host {
            cluster::debug_log(&format!(
                "h{last}'s log (the last to register, at {} µs):\n{}",
                registrations[last],
                procs[last].log()
            ));
        }
    }
    sample.info_end = info_lines(&procs);
    sample.dns_per_node_min =
        dns_queries(&net) as f64 / size as f64 / (secs(now_us() - start) / 60.0);
    drop(cluster);
    drop(procs);
    drop(net);
    Ok(sample)
}

/// `vmevent` at a cut's end: the cut host re-dials every peer and every peer the cut host,
/// at once (REDIAL through every observer, in parallel).
fn redial_at_once(
    agents: &[Agent],
    redial: &Term,
    names: &[String],
    cut: usize,
) -> Result<(), String> {
    let peers_of = |i: usize| -> Term {
        let peers: Vec<Term> = if i == cut {
            names
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != cut)
                .map(|(_, n)| atom(n))
                .collect()
        } else {
            vec![atom(&names[cut])]
        };
        List::from(peers).into()
    };
    std::thread::scope(|scope| {
        let calls: Vec<_> = agents
            .iter()
            .enumerate()
            .map(|(i, agent)| {
                let peers = peers_of(i);
                scope.spawn(move || agent.eval(redial, &[("Peers", peers)]))
            })
            .collect();
        calls.into_iter().try_for_each(|call| {
            call.join()
                .map_err(|_| "a re-dial thread panicked".to_string())?
                .map(drop)
        })
    })
}

/// `nolib+poll`'s stand-in for the reporters' look-up loop: a thread per host that asks
/// the host's epmd for `demo` every 10 ms (BOOT_RETRY) until it is registered.
struct EpmdPollers {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl EpmdPollers {
    fn start(hosts: &[Host]) -> EpmdPollers {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let threads = hosts
            .iter()
            .map(|h| {
                let (host, stop) = (h.clone(), std::sync::Arc::clone(&stop));
                std::thread::spawn(move || {
                    if cluster::enter(&host).is_err() {
                        return;
                    }
                    while !stop.load(std::sync::atomic::Ordering::Relaxed)
                        && !cluster::epmd_port_please("demo")
                    {
                        std::thread::sleep(EPMD_POLL);
                    }
                })
            })
            .collect();
        EpmdPollers { stop, threads }
    }
}

impl Drop for EpmdPollers {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// dnsmasq's queries so far.
fn dns_queries(net: &Net) -> usize {
    net.dns_log()
        .lines()
        .filter(|l| l.contains("query["))
        .count()
}

/// beamup's INFO lines in every host's log so far (its text format: `<RFC 3339 time>Z  INFO`;
/// the VM's own lines look otherwise and are not counted).
fn info_lines(procs: &[Proc]) -> Vec<usize> {
    procs
        .iter()
        .map(|p| p.log().lines().filter(|l| l.contains("Z  INFO ")).count())
        .collect()
}

/// The CPU figures of the boot from the sampler's snapshots.
fn boot_cpu(
    cpu: &cluster::CpuTrace,
    registrations: &[i64],
    last_reg: i64,
    mesh_at: Option<i64>,
    sample: &mut Sample,
) {
    use cluster::CpuSnapshot;
    if let Some(at) = cpu.at(last_reg) {
        sample.rep_cpu_boot = Some(CpuSnapshot::secs(&at.reporter));
        sample.vm_cpu_boot = Some(CpuSnapshot::secs(&at.vm));
        sample.epmd_cpu_boot = Some(CpuSnapshot::secs(&at.epmd));
        sample.rep_cpu_boot_host = median(
            at.reporter
                .iter()
                .map(|&t| CpuSnapshot::secs(&[t]))
                .collect(),
        );
    }
    // Each reporter's CPU until its own VM registered: what it spent looking for it.
    let own: Option<Vec<u64>> = registrations
        .iter()
        .enumerate()
        .map(|(h, &r)| cpu.at(r).map(|s| s.reporter[h]))
        .collect();
    sample.rep_cpu_own_reg = own.map(|t| CpuSnapshot::secs(&t));
    if let Some(at) = mesh_at.and_then(|m| cpu.at(m)) {
        sample.rep_cpu_mesh = Some(CpuSnapshot::secs(&at.reporter));
        sample.vm_cpu_mesh = Some(CpuSnapshot::secs(&at.vm));
    }
}

/// With `--trace-boot`: every VM's net_kernel:connect_node/1 calls since its recorder
/// started (its registration), until now (the boot mesh); the trace ends.
fn boot_connects(cluster: &Cluster, registrations: &[i64]) -> Result<ConnectStats, String> {
    let mut stats = ConnectStats::default();
    for (i, agent) in cluster.agents.iter().enumerate() {
        let answer = agent.eval(
            &cluster.exprs.recorder_connects,
            &[("Recorder", cluster.recorders[i].clone())],
        )?;
        let calls =
            as_list(&answer).ok_or_else(|| format!("h{i}'s recorder answered {answer:?}"))?;
        // Call instants by the calling process (each rex call runs in its own).
        let mut open: std::collections::HashMap<String, (bool, i64, bool)> =
            std::collections::HashMap::new();
        for c in &calls {
            match as_tuple(c) {
                Some([kind, pid, peer, by, at]) if as_atom(kind) == Some("call") => {
                    let rex = matches!(as_atom(by), Some("rpc" | "erpc"));
                    let at = as_i64(at).unwrap_or(0);
                    let peer = as_atom(peer).unwrap_or("");
                    let early = cluster
                        .names
                        .iter()
                        .position(|n| n == peer)
                        .is_some_and(|p| at < registrations[p]);
                    if rex {
                        stats.by_rex += 1;
                        if early {
                            stats.early += 1;
                        }
                    } else {
                        stats.by_other += 1;
                    }
                    open.insert(format!("{pid:?}"), (rex, at, early));
                }
                Some([kind, pid, result, at]) if as_atom(kind) == Some("return") => {
                    let Some((rex, called, early)) = open.remove(&format!("{pid:?}")) else {
                        continue;
                    };
                    let took = secs(as_i64(at).unwrap_or(called) - called);
                    if !rex {
                        continue;
                    }
                    match as_atom(result) {
                        Some("true") => stats.returned_true += 1,
                        _ => {
                            stats.returned_false += 1;
                            stats.failed_secs += took;
                        }
                    }
                    if early {
                        stats.early_secs += took;
                    }
                    stats.rex_secs += took;
                }
                _ => {}
            }
        }
    }
    Ok(stats)
}

/// `boot_work`'s group for the reductions no live process counts (they were made by
/// processes that have exited) ...
const EXITED: &str = "(processes that exited)";
/// ... and for all of the VM's reductions.
const ALL: &str = "(all)";

/// With `--work`: every VM's reductions so far by process group (see WORK), summed over
/// the VMs, with EXITED and ALL.
fn boot_work(cluster: &Cluster) -> Result<BTreeMap<String, f64>, String> {
    let mut work: BTreeMap<String, f64> = BTreeMap::new();
    for (i, agent) in cluster.agents.iter().enumerate() {
        let answer = agent.eval(&cluster.exprs.work, &[])?;
        let Some([total, live]) = as_tuple(&answer) else {
            return Err(format!("h{i}'s reductions: {answer:?}"));
        };
        let (Some(total), Some(live)) = (as_i64(total), as_list(live)) else {
            return Err(format!("h{i}'s reductions: {answer:?}"));
        };
        let mut counted = 0;
        for entry in &live {
            let Some([group, reds]) = as_tuple(entry) else {
                continue;
            };
            let reds = as_i64(reds).unwrap_or(0);
            counted += reds;
            *work.entry(group_name(group)).or_default() += reds as f64;
        }
        *work.entry(EXITED.into()).or_default() += (total - counted).max(0) as f64;
        *work.entry(ALL.into()).or_default() += total as f64;
    }
    Ok(work)
}

/// A process group of WORK as text: a name, or `module:function/arity`.
fn group_name(group: &Term) -> String {
    if let Some(name) = as_atom(group) {
        return name.to_string();
    }
    match as_tuple(group) {
        Some([m, f, a]) => format!(
            "{}:{}/{}",
            as_atom(m).unwrap_or("?"),
            as_atom(f).unwrap_or("?"),
            as_i64(a).unwrap_or(-1)
        ),
        _ => format!("{group}"),
    }
}

#[allow(clippy::too_many_arguments)]
fn phases(
    cluster: &mut Cluster,
    net: &Net,
    hosts: &[Host],
    procs: &mut [Proc],
    bin: &Path,
    interval: Duration,
    opts: &Options,
    rng: &mut Rng,
    sample: &mut Sample,
) -> Result<(), String> {
    let size = hosts.len();
    let everyone: Vec<usize> = (0..size).collect();
    let heal_limit = interval * 3 + Duration::from_secs(15);

    // 2. A forced disconnect between h0 and h1, at a random phase of the poll.
    let (a, b) = (0, 1);
    std::thread::sleep(rng.below(interval));
    let answer = cluster.agents[a].eval(
        &cluster.exprs.disconnect,
        &[("Peer", atom(&cluster.names[b]))],
    )?;
    let t0 = match as_tuple(&answer) {
        Some([t, done]) if as_atom(done) == Some("true") => as_i64(t).ok_or("disconnect time")?,
        _ => return Err(format!("disconnect_node answered {answer:?}")),
    };
    let (name_a, name_b) = (cluster.names[a].clone(), cluster.names[b].clone());
    let healed = cluster.wait(heal_limit, "re-mesh after disconnect_node", |c| {
        let up_a = c.views[a].first_after(true, &name_b, t0)?;
        let up_b = c.views[b].first_after(true, &name_a, t0)?;
        let full = c.full_mesh(&everyone)?;
        Some((up_a.max(up_b), full))
    })?;
    cluster.dump("disconnect", t0);
    sample.disconnect = Some(secs(healed.0 - t0));
    sample.disconnect_full = Some(secs(healed.1.max(healed.0) - t0));

    // 3. h(N-1)'s link cut until everyone has dropped it (and at least CUT_HOLD), then back.
    let c = size - 1;
    let cut = cluster.names[c].clone();
    let down_at = now_us();
    let cut_started = Instant::now();
    opts.cut.start(net, &hosts[c]);
    let others: Vec<usize> = (0..size).filter(|&x| x != c).collect();
    let dropped = cluster.wait(
        cut_drop_limit(size),
        "everyone dropping the cut host",
        |cl| {
            let mut last = down_at;
            for &x in &others {
                last = last.max(cl.views[x].first_after(false, &cut, down_at)?);
                last = last.max(cl.views[c].first_after(false, &cl.names[x], down_at)?);
            }
            Some(last)
        },
    );
    let dropped = match dropped {
        Ok(t) => t,
        Err(e) => {
            opts.cut.end(net, &hosts[c]);
            return Err(e);
        }
    };
    sample.cut_drop = Some(secs(dropped - down_at));
    // Each host's neighbour entries: the cut host's for its peers, and theirs for it.
    let neigh: Result<Vec<cluster::NeighWatch>, String> =
        hosts.iter().map(cluster::NeighWatch::start).collect();
    std::thread::sleep(CUT_HOLD.saturating_sub(cut_started.elapsed()));
    let up_at = now_us();
    opts.cut.end(net, &hosts[c]);
    if sample.kind == Some(Kind::VmEvent) {
        redial_at_once(&cluster.agents, &cluster.exprs.redial, &cluster.names, c)?;
    }
    let healed = cluster.wait(heal_limit, "full mesh after the link came back", |cl| {
        cl.full_mesh(&everyone)
    })?;
    cluster.dump("link cut (from the link down)", down_at);
    sample.cut_heal = Some(secs(healed - up_at).max(0.0));
    sample.cut_net = neigh
        .ok()
        .and_then(|watches| network_back(&watches, hosts, c, up_at))
        .map(|at| secs(at - up_at).max(0.0));

    // 4. h(N-2) killed while DNS still lists it; h0's connect_node calls to it counted.
    let mut alive: Vec<usize> = everyone.clone();
    if opts.dead_at(size) {
        let (t, d) = (0, size - 2);
        let answer = cluster.agents[t].eval(
            &cluster.exprs.tracer_start,
            &[
                ("Dead", atom(&cluster.names[d])),
                ("LimitMs", int(RECORDER_LIMIT_MS)),
            ],
        )?;
        let tracer = match as_tuple(&answer) {
            Some([tracer, _]) => tracer.clone(),
            _ => return Err(format!("the tracer answered {answer:?}")),
        };
        let window = interval * opts.dead_polls;
        let killed_at = now_us();
        procs[d].kill9();
        alive.retain(|&x| x != d);
        std::thread::sleep(window);
        let answer = cluster.agents[t].eval(&cluster.exprs.tracer_calls, &[("Tracer", tracer)])?;
        let calls: Vec<f64> = as_list(&answer)
            .ok_or_else(|| format!("the tracer answered {answer:?}"))?
            .iter()
            .filter_map(as_i64)
            .map(|at| secs(at - killed_at))
            .filter(|&s| s >= 0.0 && s < window.as_secs_f64())
            .collect();
        sample.dead_calls = Some(calls);
        sample.dead_window = window.as_secs_f64();
    }

    // 5. The end: memory, and whether each VM holds issue 11's relay.
    for &x in &alive {
        let pid = cluster::reporter_pid(procs[x].pid(), bin)
            .ok_or_else(|| format!("no reporter under h{x}'s VM (pid {})", procs[x].pid()))?;
        sample
            .rss
            .push(cluster::vm_rss(pid).ok_or_else(|| format!("no VmRSS for reporter {pid}"))?);
    }
    let mut with_relay = 0;
    for &x in &alive {
        let n = cluster.agents[x].eval(&cluster.exprs.relays, &[])?;
        if as_i64(&n) == Some(1) {
            with_relay += 1;
        }
    }
    sample.relays = Some((with_relay, alive.len()));
    Ok(())
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

// ------------------------------------------------------------------ the report

/// `median [min–max]` of some seconds, in ms.
fn spread(xs: &[f64]) -> String {
    match min_median_max(xs) {
        None => "-".into(),
        Some((min, m, max)) => format!("{} [{}–{}]", ms(m), ms(min), ms(max)),
    }
}

/// The least, the median and the greatest of `xs`; None when it is empty.
fn min_median_max(xs: &[f64]) -> Option<(f64, f64, f64)> {
    let m = median(xs.to_vec())?;
    let min = xs.iter().copied().fold(f64::INFINITY, f64::min);
    let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    Some((min, m, max))
}

fn ms(s: f64) -> String {
    format!("{:.0}", s * 1000.0)
}

/// Each variant's boot over nolib's in the same round (the runs of a round follow each
/// other, so a slower or faster spell of the machine weighs on both): median [min–max]
/// and in how many rounds the ratio was ≤ 1.10.
fn paired_ratios(present: &[usize], cell: &Cell, nolib: Option<usize>) -> String {
    let mut row = format!(
        "{:<58}",
        "  ratio to nolib in the same round, median [min–max]"
    );
    for &b in present {
        let ratios: Vec<f64> = nolib
            .map(|n| {
                cell.runs[b]
                    .iter()
                    .zip(&cell.runs[n])
                    .filter_map(|(x, y)| Some(x.as_ref().ok()?.boot / y.as_ref().ok()?.boot))
                    .collect()
            })
            .unwrap_or_default();
        let text = match min_median_max(&ratios) {
            None => "–".to_string(),
            Some((min, m, max)) => {
                let within = ratios.iter().filter(|r| **r <= 1.10).count();
                format!("{m:.2} [{min:.2}–{max:.2}] {within}/{}", ratios.len())
            }
        };
        let _ = write!(row, " {text:<24}");
    }
    row.push_str(" (n/m: rounds ≤ 1.10)");
    row
}

/// How many process groups `work_rows` shows (the busiest), besides EXITED and ALL.
const WORK_GROUPS: usize = 16;

/// With `--work`: the scale table's rows of the VMs' reductions by process group at the
/// end of the boot, all hosts, in millions, median [min–max] per variant; the busiest
/// WORK_GROUPS groups (by the greatest of the variants' medians), then EXITED and ALL.
fn work_rows(present: &[usize], cell: &Cell) -> Vec<String> {
    // A variant's figures of a group, one per run.
    let per_run = |b: usize, group: &str| -> Vec<f64> {
        cell.runs[b]
            .iter()
            .filter_map(|r| r.as_ref().ok()?.work.as_ref())
            .map(|w| w.get(group).copied().unwrap_or(0.0) / 1e6)
            .collect()
    };
    let groups: BTreeSet<&str> = present
        .iter()
        .flat_map(|&b| cell.runs[b].iter())
        .filter_map(|r| r.as_ref().ok()?.work.as_ref())
        .flat_map(|w| w.keys().map(String::as_str))
        .filter(|g| *g != EXITED && *g != ALL)
        .collect();
    if groups.is_empty() {
        return Vec::new();
    }
    // The busiest first: by the greatest of the variants' medians.
    let mut by_load: Vec<(f64, &str)> = groups
        .into_iter()
        .map(|g| {
            let load = present
                .iter()
                .filter_map(|&b| median(per_run(b, g)))
                .fold(0.0, f64::max);
            (load, g)
        })
        .collect();
    by_load.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut ranked: Vec<&str> = by_load.into_iter().map(|(_, g)| g).collect();
    ranked.truncate(WORK_GROUPS);
    ranked.extend([EXITED, ALL]);
    let mut rows = vec![
        "VM reductions at the end of the boot, all hosts [millions] (--work; a process by its registered name, proc_lib initial call, else where it is)"
            .to_string(),
    ];
    for group in ranked {
        let mut row = format!("  {:<56}", group.chars().take(56).collect::<String>());
        for &b in present {
            let text = match min_median_max(&per_run(b, group)) {
                None => "–".to_string(),
                Some((min, m, max)) => format!("{m:.2} [{min:.2}–{max:.2}]"),
            };
            let _ = write!(row, " {text:<24}");
        }
        rows.push(row);
    }
    rows
}

/// The figures of one metric over a binary's runs of a cell.
fn figures(runs: &[Result<Sample, String>], metric: &dyn Fn(&Sample) -> Option<f64>) -> Vec<f64> {
    runs.iter()
        .filter_map(|r| r.as_ref().ok())
        .filter_map(metric)
        .collect()
}

struct Metric<'a> {
    title: &'a str,
    unit: &'a str,
    get: &'a dyn Fn(&Sample) -> Option<f64>,
    /// The verdict of the new binary's median against the baseline's median, if any.
    verdict: Option<&'a dyn Fn(f64, Option<f64>, Duration) -> bool>,
    target: &'a str,
}

/// One line of a scale table.
struct Row<'r> {
    title: &'r str,
    /// Figures in seconds shown in ms (else plain numbers).
    ms: bool,
    get: &'r dyn Fn(&Sample) -> Option<f64>,
    target: &'r str,
    /// The new binary's verdict on its median.
    verdict: Option<&'r dyn Fn(f64) -> bool>,
}

fn report(binaries: &[Binary], opts: &Options, cells: &[Cell], took: Duration) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        let _ = writeln!(out, "{s}");
    };
    line("# bench/mesh (issues --connect, 11): mesh and re-mesh with beamup --connect, against a baseline".into());
    for l in machine_lines() {
        line(l);
    }
    line(format!(
        "command: {}bash bench/mesh.sh {}",
        std::env::var("BEAMUP_BENCH_BASELINE_REV")
            .map(|r| format!("BEAMUP_BENCH_BASELINE_REV={r} "))
            .unwrap_or_default(),
        std::env::args()
            .skip(1)
            .filter(|a| a != "--bench")
            .collect::<Vec<_>>()
            .join(" ")
    ));
    for b in binaries {
        line(format!(
            "{:<9}{} ({})",
            format!("{}:", b.label),
            b.path.display(),
            b.rev
        ));
    }
    if binaries.iter().any(|b| b.kind != Kind::Connect) {
        line(
            "variants: nolib = the binary under test without --connect (`--ip interface:eth0 --query demo`:\n\
             \x20        names the node, polls DNS; nothing meshes the VMs, the observer alone joins each VM once);\n\
             \x20        selfonly = with --connect but `--peers <own node>` instead of the query (the reporter\n\
             \x20        looks for its VM as it does (README step 6), connects, starts the relay, dials no peer); nolib+poll = nolib\n\
             \x20        plus a bench thread per host asking its epmd for demo (PORT_PLEASE2) every 10 ms until\n\
             \x20        registered, like the reporter's look-up loop. All three: boot only. vmpoll = nolib\n\
             \x20        plus dns_cluster's algorithm in every VM, started by the observer as soon as the VM\n\
             \x20        registered (resolve the query, connect_node every name not in nodes(), at once and\n\
             \x20        then every interval): the library way of meshing, measured like new. vmevent = vmpoll\n\
             \x20        plus a re-dial from inside the VM, at once, of every node that goes down, and at the\n\
             \x20        instant a cut ends of the cut host and its peers (the bench knows it): OTP's own\n\
             \x20        re-mesh and restore with a re-dial that costs nothing (the floors for beamup's)."
                .into(),
        );
    }
    line(format!(
        "setup:   N network namespaces on a bridge, dnsmasq answering `demo` with all N, each host\n\
         \x20        `beamup --ip interface:eth0 --query demo --connect --interval I -- bin/demo start`\n\
         \x20        (demo mix release, OTP {}, -kernel net_ticktime {}{}); {} run(s) per cell and\n\
         \x20        binary, interleaved (order alternating); seed {}; {} in all",
        opts.toolchain
            .as_ref()
            .map_or_else(otp_release, |tc| format!(
                "{} in a {} root",
                tc.otp, tc.suite
            )),
        opts.ticktime,
        if opts.erl_flags.is_empty() {
            String::new()
        } else {
            format!(" {}", opts.erl_flags)
        },
        opts.runs,
        opts.seed,
        show(took)
    ));
    line(
        "observer: per host a hidden node in the host's namespace; registration = the last epmd poll\n\
         \x20        (every 10 ms) that did NOT list the node, so boot figures are pessimistic by up to\n\
         \x20        10 ms; connections = the VM's own net_kernel:monitor_nodes nodeup/nodedown, stamped\n\
         \x20        with os:system_time(microsecond) in the VM by a recorder process (fetched every 20 ms,\n\
         \x20        which delays the bench, not the stamps); a connection already up when the recorder\n\
         \x20        started counts from the recorder's start (an upper bound)."
            .into(),
    );
    if opts.boot_only {
        line("phases:  the boot only (--boot-only yes).".into());
    } else {
        line(format!(
            "phases:  boot (all N at once) → after a random pause in [0, I) h0 runs\n\
         \x20        erlang:disconnect_node(h1) → h{{N-1}} cut ({}) until all dropped it (≥ {} s), back\n\
         \x20        → h{{N-2}} killed (SIGKILL, DNS unchanged), h0's net_kernel:connect_node(h{{N-2}}) calls\n\
         \x20        counted by a call trace for {} intervals (at sizes {}) → RSS, relays.",
            opts.cut.what(),
            CUT_HOLD.as_secs(),
            opts.dead_polls,
            opts.dead_sizes.as_ref().map_or("all".into(), |s| {
                s.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            }),
        ));
    }
    line(String::new());

    let new = binaries.iter().position(|b| b.label == "new");
    let base = binaries.iter().position(|b| b.label == "baseline");
    let remesh_ok = |m: f64, _: Option<f64>, _: Duration| m <= REMESH_TARGET;
    let boot_ok = |m: f64, _: Option<f64>, _: Duration| m <= BOOT_TARGET;
    let dead_ok =
        |m: f64, b: Option<f64>, _: Duration| b.is_some_and(|b| m <= b * DEAD_RATIO_TARGET);
    let cut_ok = |m: f64, _: Option<f64>, i: Duration| m <= i.as_secs_f64();
    let metrics = [
        Metric {
            title: "time to full mesh after the LAST epmd registration",
            unit: "ms",
            get: &|s| s.mesh,
            verdict: None,
            target: "(informational; the target is per pair, below)",
        },
        Metric {
            title: "the same, first part: the last node's first link up after its registration (noticing it, dialing, one handshake)",
            unit: "ms",
            get: &|s| s.first_link,
            verdict: None,
            target: "(informational)",
        },
        Metric {
            title: "the same, second part: the last node's other links up after its first (the VMs' connection setup, global)",
            unit: "ms",
            get: &Sample::mesh_rest,
            verdict: None,
            target: "(informational)",
        },
        Metric {
            title: "boot: each pair connected after the LATER of its two registrations, worst pair per run",
            unit: "ms",
            get: &|s| s.worst_pair(),
            verdict: Some(&boot_ok),
            target: "target: ≤ 50 ms median",
        },
        Metric {
            title: "re-mesh after erlang:disconnect_node(h1) on h0: both list each other again",
            unit: "ms",
            get: &|s| s.disconnect,
            verdict: Some(&remesh_ok),
            target: "target: ≤ 100 ms median at every interval",
        },
        Metric {
            title: "the same, until the whole mesh is back (OTP's global may drop more pairs)",
            unit: "ms",
            get: &|s| s.disconnect_full,
            verdict: None,
            target: "(informational)",
        },
        Metric {
            title: "link cut: the last node noticing (net_ticktime)",
            unit: "ms",
            get: &|s| s.cut_drop,
            verdict: None,
            target: "(informational)",
        },
        Metric {
            title: "link cut and restored: full mesh after the link is back",
            unit: "ms",
            get: &|s| s.cut_heal,
            verdict: Some(&cut_ok),
            target: "contract: within one poll (≤ interval)",
        },
        Metric {
            title: "link restored: the network carrying the cut host's packets to every peer \
                    again (neighbour entries resolved; the kernel retries once per second)",
            unit: "ms",
            get: &|s| s.cut_net,
            verdict: None,
            target: "(informational: the heal's floor)",
        },
        Metric {
            title: "link restored: full mesh after the network is back (beamup's own share)",
            unit: "ms",
            get: &|s| Some((s.cut_heal? - s.cut_net?).max(0.0)),
            verdict: None,
            target: "(informational)",
        },
        Metric {
            title: "connect_node calls to a dead, still listed peer, per 15 s",
            unit: "calls",
            get: &|s| s.dead_per_15s(),
            verdict: Some(&dead_ok),
            target: "target: ≤ ¼ of the baseline's",
        },
        Metric {
            title: "DNS queries per host and minute, over the whole run",
            unit: "queries",
            get: &|s| Some(s.dns_per_node_min),
            verdict: None,
            target: "(issue: nothing gets worse)",
        },
        Metric {
            title: "\"connecting to peer failed\" warnings until the boot mesh, all hosts",
            unit: "lines",
            get: &|s| Some(s.boot_warnings as f64),
            verdict: None,
            target: "(issue: a booting peer is not a warning)",
        },
    ];
    let mut verdicts: Vec<String> = Vec::new();
    for m in &metrics {
        line(format!("## {} [{}] — {}", m.title, m.unit, m.target));
        line(format!(
            "{:>5} {:>8}  {:<28} {:<28} {:>9}  {}",
            "hosts",
            "interval",
            "new median [min–max]",
            "baseline median [min–max]",
            "new/base",
            "verdict"
        ));
        for cell in cells {
            let get = |b: Option<usize>| -> Vec<f64> {
                b.map_or_else(Vec::new, |b| figures(&cell.runs[b], m.get))
            };
            let (xs, ys) = (get(new), get(base));
            if xs.is_empty() && ys.is_empty() {
                continue;
            }
            let fmt = |v: &[f64]| -> String {
                if m.unit == "ms" {
                    spread(v)
                } else {
                    match min_median_max(v) {
                        None => "-".into(),
                        Some((min, med, max)) => format!("{med:.1} [{min:.1}–{max:.1}]"),
                    }
                }
            };
            let (mx, my) = (median(xs.clone()), median(ys.clone()));
            let ratio = match (mx, my) {
                (Some(x), Some(y)) if y > 0.0 => format!("{:.2}", x / y),
                _ => "-".into(),
            };
            let failed = new.map_or(0, |n| cell.runs[n].iter().filter(|r| r.is_err()).count());
            let verdict = match (m.verdict, mx) {
                (None, _) => String::new(),
                (Some(_), None) => "NO DATA".into(),
                (Some(ok), Some(x)) => {
                    let v = if ok(x, my, cell.interval) && failed == 0 && xs.len() == opts.runs {
                        "met"
                    } else {
                        "MISSED"
                    };
                    verdicts.push(format!(
                        "{:<8} {} hosts, {}: {}",
                        v,
                        cell.size,
                        show(cell.interval),
                        m.title
                    ));
                    v.into()
                }
            };
            line(format!(
                "{:>5} {:>8}  {:<28} {:<28} {:>9}  {}",
                cell.size,
                show(cell.interval),
                fmt(&xs),
                fmt(&ys),
                ratio,
                verdict
            ));
        }
        line(String::new());
    }

    // Memory: over every host, sample and run of a binary.
    line(format!(
        "## reporter VmRSS [KiB], at the boot mesh and at the end, all hosts — target (issue): ≤ {RSS_TARGET_KIB:.0} KiB; the difference to the baseline is shown"
    ));
    line(format!(
        "{:>5} {:>8}  {:<22} {:<22} {:<12} {}",
        "hosts", "interval", "new median (max)", "baseline median (max)", "new - base", "verdict"
    ));
    for cell in cells {
        let rss = |b: Option<usize>| -> Vec<f64> {
            b.map_or_else(Vec::new, |b| {
                cell.runs[b]
                    .iter()
                    .filter_map(|r| r.as_ref().ok())
                    .flat_map(|s| s.rss.iter().map(|k| *k as f64))
                    .collect()
            })
        };
        let (xs, ys) = (rss(new), rss(base));
        let max = |v: &[f64]| v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let fmt = |v: &[f64]| {
            median(v.to_vec()).map_or("-".into(), |m| format!("{m:.0} ({:.0})", max(v)))
        };
        let verdict = if xs.is_empty() {
            "NO DATA".to_string()
        } else {
            let ok = max(&xs) <= RSS_TARGET_KIB;
            let v = if ok { "met" } else { "MISSED" };
            verdicts.push(format!(
                "{v:<8} {} hosts, {}: reporter RSS",
                cell.size,
                show(cell.interval)
            ));
            v.into()
        };
        let delta = match (median(xs.clone()), median(ys.clone())) {
            (Some(x), Some(y)) => format!("{:+.0} KiB", x - y),
            _ => "-".into(),
        };
        line(format!(
            "{:>5} {:>8}  {:<22} {:<22} {:<12} {}",
            cell.size,
            show(cell.interval),
            fmt(&xs),
            fmt(&ys),
            delta,
            verdict
        ));
    }
    line(String::new());

    // Issue 19: a table per scale cell, every variant side by side.
    for cell in cells {
        let present: Vec<usize> = (0..binaries.len())
            .filter(|&b| !cell.runs[b].is_empty())
            .collect();
        if cell.size < SCALE_FROM && present.iter().all(|&b| binaries[b].kind == Kind::Connect) {
            continue;
        }
        line(format!(
            "## scale (issue 19): {} hosts, --interval {} — median [min–max] over {} run(s) per variant",
            cell.size,
            show(cell.interval),
            opts.runs
        ));
        let mut head = format!("{:<58}", "");
        for &b in &present {
            let _ = write!(head, " {:<24}", binaries[b].label);
        }
        head.push_str(" target (new)");
        line(head);
        let nolib = present
            .iter()
            .copied()
            .find(|&b| binaries[b].kind == Kind::NoConnect);
        let nolib_boot = nolib.and_then(|b| median(figures(&cell.runs[b], &|s| Some(s.boot))));
        let meshes = |s: &Sample| s.kind.is_some_and(Kind::meshes);
        let boot_ok = |m: f64| nolib_boot.is_some_and(|n| m <= n * 1.10);
        let boot_ok: &dyn Fn(f64) -> bool = &boot_ok;
        let mesh_ok = |m: f64| m <= BOOT_TARGET;
        let remesh_ok = |m: f64| m <= REMESH_TARGET;
        let cut_ok = |m: f64| m <= 0.250;
        let rows = [
            Row {
                title: "all distribution up (every node registered) [ms]",
                ms: true,
                get: &|s| Some(s.boot),
                target: "≤ 1.10 × nolib",
                // No nolib in the cell: no ratio, no verdict.
                verdict: nolib_boot.map(|_| boot_ok),
            },
            Row {
                title: "full mesh − last distribution up [ms]",
                ms: true,
                get: &|s| s.mesh,
                target: "≤ 50 ms",
                verdict: Some(&mesh_ok),
            },
            Row {
                title: "  of which: the last node's first link up [ms]",
                ms: true,
                get: &|s| s.first_link,
                target: "",
                verdict: None,
            },
            Row {
                title: "  and then: its other links up [ms]",
                ms: true,
                get: &Sample::mesh_rest,
                target: "",
                verdict: None,
            },
            Row {
                title: "re-mesh after disconnect_node, the pair [ms]",
                ms: true,
                get: &|s| s.disconnect,
                target: "≤ 100 ms",
                verdict: Some(&remesh_ok),
            },
            Row {
                title: "re-mesh after disconnect_node, whole mesh [ms]",
                ms: true,
                get: &|s| s.disconnect_full,
                target: "",
                verdict: None,
            },
            Row {
                title: "link cut ≥ 8 s, restored: full mesh after the link [ms]",
                ms: true,
                get: &|s| s.cut_heal,
                target: "≤ 250 ms",
                verdict: Some(&cut_ok),
            },
            Row {
                title: "link restored: network back (the heal's floor) [ms]",
                ms: true,
                get: &|s| s.cut_net,
                target: "",
                verdict: None,
            },
            Row {
                title: "link restored: full mesh − network back [ms]",
                ms: true,
                get: &|s| Some((s.cut_heal? - s.cut_net?).max(0.0)),
                target: "",
                verdict: None,
            },
            Row {
                title: "INFO lines per host, whole run (median host)",
                ms: false,
                get: &|s| median_of(&s.info_end),
                target: "",
                verdict: None,
            },
            Row {
                title: "INFO lines per host, until the boot mesh",
                ms: false,
                get: &|s| median_of(&s.info_boot),
                target: "",
                verdict: None,
            },
            Row {
                title: "\"connecting to peer failed\" warnings until the boot mesh",
                ms: false,
                get: &|s| meshes(s).then_some(s.boot_warnings as f64),
                target: "",
                verdict: None,
            },
            Row {
                title: "\"peer discovery failed\" warnings until the boot mesh",
                ms: false,
                get: &|s| Some(s.discovery_failures as f64),
                target: "",
                verdict: None,
            },
            Row {
                title: "reporter CPU s until all distribution up, all hosts",
                ms: false,
                get: &|s| s.rep_cpu_boot,
                target: "",
                verdict: None,
            },
            Row {
                title: "  the same, median host",
                ms: false,
                get: &|s| s.rep_cpu_boot_host,
                target: "",
                verdict: None,
            },
            Row {
                title: "  all hosts, each until its own VM registered",
                ms: false,
                get: &|s| s.rep_cpu_own_reg,
                target: "",
                verdict: None,
            },
            Row {
                title: "reporter CPU s until the boot mesh, all hosts",
                ms: false,
                get: &|s| s.rep_cpu_mesh,
                target: "",
                verdict: None,
            },
            Row {
                title: "VM CPU s until all distribution up, all hosts",
                ms: false,
                get: &|s| s.vm_cpu_boot,
                target: "",
                verdict: None,
            },
            Row {
                title: "VM CPU s until the boot mesh, all hosts",
                ms: false,
                get: &|s| s.vm_cpu_mesh,
                target: "",
                verdict: None,
            },
            Row {
                title: "VM threads woken at the end of the boot, all hosts",
                ms: false,
                get: &|s| s.vm_switches.map(|v| v.0),
                target: "(--work: voluntary context switches)",
                verdict: None,
            },
            Row {
                title: "VM threads preempted at the end of the boot, all hosts",
                ms: false,
                get: &|s| s.vm_switches.map(|v| v.1),
                target: "(--work: nonvoluntary context switches)",
                verdict: None,
            },
            Row {
                title: "epmd CPU s until all distribution up, all hosts",
                ms: false,
                get: &|s| s.epmd_cpu_boot,
                target: "",
                verdict: None,
            },
            Row {
                title: "DNS queries per host until the boot mesh",
                ms: false,
                get: &|s| Some(s.dns_boot_per_node),
                target: "",
                verdict: None,
            },
            Row {
                title: "DNS queries per host and minute, whole run",
                ms: false,
                get: &|s| Some(s.dns_per_node_min),
                target: "",
                verdict: None,
            },
            Row {
                title: "registrations later than 30 s after the start",
                ms: false,
                get: &|s| Some(s.late_registrations as f64),
                target: "",
                verdict: None,
            },
        ];
        for Row {
            title,
            ms: is_ms,
            get,
            target,
            verdict,
        } in rows
        {
            let mut row = format!("{title:<58}");
            let mut any = false;
            let mut new_median = None;
            for &b in &present {
                let xs = figures(&cell.runs[b], get);
                any |= !xs.is_empty();
                let text = match min_median_max(&xs) {
                    None => "–".to_string(),
                    Some(_) if is_ms => spread(&xs),
                    Some((min, m, max)) => {
                        // Counts plain, CPU seconds to the ms.
                        let p = if xs.iter().all(|x| x.fract() == 0.0) {
                            0
                        } else if max < 10.0 {
                            3
                        } else {
                            1
                        };
                        if xs.len() == 1 {
                            format!("{m:.p$}")
                        } else {
                            format!("{m:.p$} [{min:.p$}–{max:.p$}]")
                        }
                    }
                };
                if binaries[b].label == "new" {
                    new_median = median(xs);
                }
                let _ = write!(row, " {text:<24}");
            }
            if !any {
                continue;
            }
            row.push_str(&format!(" {target}"));
            if let (Some(ok), Some(m)) = (verdict, new_median) {
                let v = if ok(m) { "met" } else { "MISSED" };
                row.push_str(&format!(" {v}"));
                verdicts.push(format!(
                    "{v:<8} {} hosts, {}: {title} ({target})",
                    cell.size,
                    show(cell.interval)
                ));
            }
            line(row);
            if title.starts_with("all distribution up")
                && let Some(n) = nolib_boot
            {
                let mut ratio = format!("{:<58}", "  ratio of the medians to nolib");
                for &b in &present {
                    let r = median(figures(&cell.runs[b], get))
                        .map_or("–".into(), |m| format!("{:.2}×", m / n));
                    let _ = write!(ratio, " {r:<24}");
                }
                line(ratio);
                line(paired_ratios(&present, cell, nolib));
            }
        }
        let connects: Vec<(usize, &ConnectStats)> = present
            .iter()
            .flat_map(|&b| {
                cell.runs[b]
                    .iter()
                    .filter_map(|r| r.as_ref().ok())
                    .filter_map(move |s| s.connects.as_ref().map(|c| (b, c)))
                    // Only a variant that dials has calls to show.
                    .filter(|(_, c)| c.by_rex + c.by_other > 0)
            })
            .collect();
        for (b, c) in connects {
            line(format!(
                "  --trace-boot, {}: connect_node calls in the VMs until the boot mesh: {} through rex ({} true, {} false; {} before the peer had registered, {:.2} s inside them; {:.2} s inside all rex calls, {:.2} s inside the failed ones); {} by other callers",
                binaries[b].label,
                c.by_rex,
                c.returned_true,
                c.returned_false,
                c.early,
                c.early_secs,
                c.rex_secs,
                c.failed_secs,
                c.by_other
            ));
        }
        for row in work_rows(&present, cell) {
            line(row);
        }
        if !opts.dead_at(cell.size) {
            line(format!(
                "  not measured at {} hosts: the dead-peer phase (--dead-sizes; it does not depend on N)",
                cell.size
            ));
        }
        if present.iter().any(|&b| !binaries[b].kind.meshes()) {
            line(
                "  nolib, nolib+poll and selfonly boot only: no mesh, no disconnect, no cut (nothing meshes the VMs)."
                    .into(),
            );
        }
        line(String::new());
    }

    line("## verdicts (new binary)".into());
    for v in &verdicts {
        line(v.clone());
    }
    line(String::new());

    line("## every run".into());
    for cell in cells {
        for (b, runs) in cell.runs.iter().enumerate() {
            for (r, run) in runs.iter().enumerate() {
                line(format!(
                    "{} hosts, {}, {} run {}: {}",
                    cell.size,
                    show(cell.interval),
                    binaries[b].label,
                    r + 1,
                    match run {
                        Ok(s) => summary(s),
                        Err(e) => format!("FAILED: {e}"),
                    }
                ));
            }
        }
    }
    line(String::new());
    line(
        "Figures in ms unless said otherwise; median [min–max] over the runs. dead-peer calls are\n\
         h0's net_kernel:connect_node(h{N-2}) calls in the window after the kill, scaled to 15 s; the\n\
         instants in `every run` are in polls (intervals) after the kill. relays: hosts whose VM holds exactly\n\
         one issue-11 relay process at the end."
            .into(),
    );
    out
}
