//! What the multi-host benchmarks (mesh, soak) share on top of the test harness
//! (the testkit crate, tests/support): the binary under test (and the baseline binary), booting the demo
//! release through beamup on a host, finding each host's reporter and reading its memory
//! and descriptors, asking a host's node for `erlang:nodes()` from inside its namespace,
//! the observer agent (a hidden node per host that evaluates small Erlang expressions in
//! that host's VM, see [`Agent`]), and the machine lines every result file starts with.

// Each bench uses only part of it.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use beamup::dist::{Session, SessionOptions};
use beamup::secret::Secret;
use erl_dist::term::{Atom, FixInteger, List, Term, Tuple};
use nix::sched::{CloneFlags, setns};

use testkit::{Host, Proc, Release};

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
        None => testkit::beamup_bin(),
    }
}

/// The baseline binary to compare with in the same run: BEAMUP_BENCH_BASELINE (mesh.sh
/// builds the commit before the change under test and sets it), with its short commit
/// from BEAMUP_BENCH_BASELINE_REV when known.
pub fn baseline_binary() -> Option<(PathBuf, String)> {
    let path = PathBuf::from(std::env::var_os("BEAMUP_BENCH_BASELINE")?);
    assert!(
        path.is_file(),
        "BEAMUP_BENCH_BASELINE={} is not a file",
        path.display()
    );
    let rev = std::env::var("BEAMUP_BENCH_BASELINE_REV").unwrap_or_else(|_| "?".into());
    Some((path, rev))
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
    let mut cmd = testkit::beamup_command_with(bin, host, &[], release, args);
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
    testkit::require_root();
    testkit::require(&["dnsmasq", "erl", "elixir", "ip"]);
    let release = testkit::mix_release();
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

/// Whether epmd on this thread's loopback knows `name` (PORT_PLEASE2_REQ, what a
/// distribution client such as beamup's reporter asks before connecting to a node).
pub fn epmd_port_please(name: &str) -> bool {
    let Ok(addr) = "127.0.0.1:4369".parse::<SocketAddr>() else {
        return false;
    };
    let Ok(mut stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(1)));
    let mut request = vec![0, (name.len() + 1) as u8, 122];
    request.extend_from_slice(name.as_bytes());
    if stream.write_all(&request).is_err() {
        return false;
    }
    let mut reply = [0u8; 2];
    // PORT2_RESP (119), then 0 when the node is registered.
    stream.read_exact(&mut reply).is_ok() && reply == [119, 0]
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
    testkit::pid1::reporter_of(vm, bin)
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

// ------------------------------------------------------------------ Erlang expressions

/// Erlang expressions (`begin ... end.` texts, free variables bound per call) parsed once
/// by the local `erl` into their abstract form, so that evaluating one in a VM is a single
/// `erl_eval:expr/5` call through rex: no module is loaded into the release, and nothing
/// is left behind that the expression does not leave itself.
pub fn parse_erlang(texts: &[&str]) -> Vec<Term> {
    // Each text is a plain argument; each abstract form comes back as the bytes of its
    // external term format, one line of comma-separated integers per text.
    let program = "[begin {ok, T, _} = erl_scan:string(S), {ok, [E]} = erl_parse:parse_exprs(T), \
                   io:format(\"~w~n\", [binary_to_list(term_to_binary(E))]) end \
                   || S <- init:get_plain_arguments()], halt().";
    let out = std::process::Command::new("erl")
        .args(["-noshell", "-eval", program, "-extra"])
        .args(texts)
        .output()
        .unwrap_or_else(|e| panic!("cannot run erl to parse the observer's expressions: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let forms: Vec<Term> = stdout
        .lines()
        .map(|line| {
            let bytes: Vec<u8> = line
                .trim_matches(|c| c == '[' || c == ']')
                .split(',')
                .map(|b| b.parse().unwrap_or_else(|_| panic!("erl printed {line:?}")))
                .collect();
            Term::decode(&bytes[..]).unwrap_or_else(|e| panic!("undecodable abstract form: {e}"))
        })
        .collect();
    assert_eq!(
        forms.len(),
        texts.len(),
        "erl parsed {} of {} observer expressions (a syntax error?); it said:\n{}{}",
        forms.len(),
        texts.len(),
        stdout,
        String::from_utf8_lossy(&out.stderr)
    );
    forms
}

pub fn atom(name: &str) -> Term {
    Term::from(Atom::from(name))
}

pub fn int(n: i32) -> Term {
    Term::from(FixInteger::from(n))
}

/// An integer of any size (`os:system_time(microsecond)` is a bignum on the wire).
pub fn as_i64(term: &Term) -> Option<i64> {
    match term {
        Term::FixInteger(i) => Some(i64::from(i.value)),
        Term::BigInteger(b) => b.to_string().parse().ok(),
        _ => None,
    }
}

pub fn as_atom(term: &Term) -> Option<&str> {
    match term {
        Term::Atom(a) => Some(&a.name),
        _ => None,
    }
}

pub fn as_tuple(term: &Term) -> Option<&[Term]> {
    match term {
        Term::Tuple(t) => Some(&t.elements),
        _ => None,
    }
}

/// A proper list; a list of small integers comes as a byte list, the empty list as `[]`.
pub fn as_list(term: &Term) -> Option<Vec<Term>> {
    match term {
        Term::List(l) => Some(l.elements.clone()),
        Term::ByteList(b) => Some(b.bytes.iter().map(|&x| int(i32::from(x))).collect()),
        _ => None,
    }
}

/// Microseconds since the Unix epoch: the clock `os:system_time(microsecond)` reads in the
/// VMs (the same machine), so bench instants and VM timestamps compare directly.
pub fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

// ------------------------------------------------------------------ the observer agent

/// Whether BEAMUP_BENCH_DEBUG is set: the benches then print what their observers see.
pub fn debugging() -> bool {
    std::env::var_os("BEAMUP_BENCH_DEBUG").is_some()
}

pub fn debug_log(text: &str) {
    if debugging() {
        eprintln!("bench debug: {text}");
    }
}

/// When the agent saw its host's node register with epmd, in µs since the epoch.
#[derive(Debug, Clone, Copy)]
pub struct Registration {
    /// The last epmd poll that did not list `demo`: the registration happened after it.
    pub before: i64,
    /// The first poll that listed it.
    pub seen: i64,
}

/// What an agent thread publishes.
#[derive(Debug, Default)]
pub struct AgentState {
    pub registered: Option<Registration>,
    /// The first expression's value (the agent evaluates it as soon as it is connected,
    /// so that e.g. a recorder starts with the least delay), or why it failed.
    pub first: Option<Result<Term, String>>,
    pub error: Option<String>,
}

struct Request {
    expr: Term,
    bindings: Vec<(String, Term)>,
    reply: std::sync::mpsc::Sender<Result<Term, String>>,
}

/// One observer per host: a thread inside the host's network namespace that polls the
/// host's epmd until `demo` registers, connects to it as the hidden node `own` with
/// beamup's own distribution client, evaluates `first` at once, then evaluates whatever
/// [`Agent::eval`] sends it, one at a time. Dropping the agent closes its connection, so
/// every process an expression linked or monitor_node'd to the observer goes with it.
pub struct Agent {
    pub own: String,
    pub state: Arc<Mutex<AgentState>>,
    requests: Option<tokio::sync::mpsc::UnboundedSender<Request>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Agent {
    /// `first` is evaluated with its bindings plus `Observer` (this agent's node name).
    pub fn spawn(
        host: &Host,
        own: String,
        cookie: &Secret,
        epmd_poll: Duration,
        deadline: Instant,
        first: (Term, Vec<(String, Term)>),
    ) -> Agent {
        let state = Arc::new(Mutex::new(AgentState::default()));
        let (requests, queue) = tokio::sync::mpsc::unbounded_channel();
        let thread = {
            let (host, own, cookie, state) = (
                host.clone(),
                own.clone(),
                cookie.clone(),
                Arc::clone(&state),
            );
            std::thread::spawn(move || {
                agent_main(
                    &host, &own, &cookie, epmd_poll, deadline, first, &state, queue,
                )
            })
        };
        Agent {
            own,
            state,
            requests: Some(requests),
            thread: Some(thread),
        }
    }

    pub fn registered(&self) -> Option<Registration> {
        self.state.lock().ok()?.registered
    }

    pub fn first(&self) -> Option<Result<Term, String>> {
        self.state.lock().ok()?.first.clone()
    }

    pub fn error(&self) -> Option<String> {
        self.state.lock().ok()?.error.clone()
    }

    /// Evaluates `expr` in the host's VM with `bindings` plus `Observer`; waits for the
    /// value (the session's call timeout bounds it).
    pub fn eval(&self, expr: &Term, bindings: &[(&str, Term)]) -> Result<Term, String> {
        let (reply, answer) = std::sync::mpsc::channel();
        let request = Request {
            expr: expr.clone(),
            bindings: bindings
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.clone()))
                .collect(),
            reply,
        };
        self.requests
            .as_ref()
            .and_then(|r| r.send(request).ok())
            .ok_or_else(|| format!("observer {} has stopped", self.own))?;
        answer
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| format!("observer {} gave no answer", self.own))?
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        // Closing the queue ends the agent's loop, which drops its session.
        self.requests.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn agent_main(
    host: &Host,
    own: &str,
    cookie: &Secret,
    epmd_poll: Duration,
    deadline: Instant,
    first: (Term, Vec<(String, Term)>),
    state: &Mutex<AgentState>,
    mut queue: tokio::sync::mpsc::UnboundedReceiver<Request>,
) {
    let fail = |e: String| {
        if let Ok(mut s) = state.lock() {
            s.error = Some(e);
        }
    };
    if let Err(e) = enter(host) {
        return fail(e);
    }

    // 1. Registration with the host's epmd.
    let mut before = now_us();
    loop {
        let polled = now_us();
        if demo_registered() {
            if let Ok(mut s) = state.lock() {
                s.registered = Some(Registration {
                    before,
                    seen: polled,
                });
            }
            break;
        }
        before = polled;
        if Instant::now() >= deadline {
            return fail("demo never registered with epmd".into());
        }
        std::thread::sleep(epmd_poll);
    }

    // 2. Connect (the node may not accept connections the very moment it registers),
    // evaluate the first expression, then serve requests until the agent is dropped.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(format!("tokio runtime: {e}")),
    };
    let local = node(host);
    runtime.block_on(async {
        let options = SessionOptions::default();
        let session = loop {
            match Session::connect_with(&local, own, cookie, &options).await {
                Ok(s) => break s,
                Err(e) if Instant::now() >= deadline => {
                    return fail(format!("cannot connect to {local}: {e}"));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        };
        // rex may come up a moment after the registration: retry until the deadline.
        let value = loop {
            match eval_in(&session, &first.0, &first.1, own).await {
                Err(e) if Instant::now() < deadline && session.is_alive() => {
                    debug_log(&format!("{own}: first expression failed, again: {e}"));
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                value => break value,
            }
        };
        if let Ok(mut s) = state.lock() {
            s.first = Some(value);
        }
        while let Some(request) = queue.recv().await {
            let value = eval_in(&session, &request.expr, &request.bindings, own).await;
            let _ = request.reply.send(value);
        }
    });
}

/// `erl_eval:expr(Expr, Bindings, none, none, value)` through rex: the expression's value
/// only (its bindings may hold funs). Bindings are an orddict: sorted by name.
async fn eval_in(
    session: &Session,
    expr: &Term,
    bindings: &[(String, Term)],
    own: &str,
) -> Result<Term, String> {
    let mut all: Vec<(String, Term)> = bindings.to_vec();
    all.push(("Observer".into(), atom(own)));
    all.sort_by(|a, b| a.0.cmp(&b.0));
    let bindings = List::from(
        all.into_iter()
            .map(|(k, v)| Term::from(Tuple::from(vec![atom(&k), v])))
            .collect::<Vec<_>>(),
    );
    session
        .call(
            "erl_eval",
            "expr",
            vec![
                expr.clone(),
                Term::from(bindings),
                atom("none"),
                atom("none"),
                atom("value"),
            ],
        )
        .await
        .map_err(|e| format!("evaluating in {}: {e}", session.local_node()))
}

// ------------------------------------------------------------------ CPU time per process

/// The kernel's clock ticks per second for /proc/<pid>/stat's times (USER_HZ: 100 on
/// every Linux this runs on).
const TICKS_PER_SEC: f64 = 100.0;

/// One look at the CPU times of every host's processes, in µs: the reporters' and epmds'
/// from /proc/<pid>/task/*/schedstat (the scheduler's run time, in ns: a reporter spends
/// milliseconds, below the 10 ms ticks of /proc/<pid>/stat), the VMs' from
/// /proc/<pid>/stat (utime + stime, in ticks).
#[derive(Debug, Clone, Default)]
pub struct CpuSnapshot {
    /// µs since the epoch.
    pub at: i64,
    /// Per host: the reporter (the child of the VM that runs the beamup binary).
    pub reporter: Vec<u64>,
    /// Per host: the VM and every other process under beamup's pid (the start scripts,
    /// beam.smp, erl_child_setup, ...; the reporter left out; children already reaped
    /// count through their parent's cutime + cstime).
    pub vm: Vec<u64>,
    /// Per host: the epmd daemon in the host's namespace (started by the VM, not under it).
    pub epmd: Vec<u64>,
}

impl CpuSnapshot {
    pub fn secs(us: &[u64]) -> f64 {
        us.iter().sum::<u64>() as f64 / 1e6
    }
}

/// µs of CPU per clock tick of /proc/<pid>/stat.
const US_PER_TICK: u64 = (1e6 / TICKS_PER_SEC) as u64;

/// The run time of every thread a process has had so far, in µs (schedstat's first
/// field is ns). /proc has it for the live threads only, so a thread that ended (the
/// reporter's checker, once its VM is reached) keeps its last reading here: at most one
/// sample short.
#[derive(Default)]
struct RunTimes(std::collections::BTreeMap<(u32, u32), u64>);

impl RunTimes {
    fn of(&mut self, pid: u32) -> Option<u64> {
        let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
        for task in tasks.flatten() {
            let Some(tid) = task.file_name().to_str().and_then(|t| t.parse().ok()) else {
                continue;
            };
            let text = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            if let Some(ns) = text.split_whitespace().next().and_then(|v| v.parse().ok()) {
                self.0.insert((pid, tid), ns);
            }
        }
        Some(
            self.0
                .range((pid, 0)..=(pid, u32::MAX))
                .map(|(_, ns)| ns)
                .sum::<u64>()
                / 1000,
        )
    }
}

/// A thread that reads /proc/<pid>/stat of every process every `every` and keeps the
/// per-host sums, so that the CPU spent until any instant of a run (a registration, the
/// boot mesh) can be read afterwards ([`CpuTrace::at`]).
pub struct CpuSampler {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<Vec<CpuSnapshot>>>,
}

/// What a [`CpuSampler`] saw, oldest first.
pub struct CpuTrace(pub Vec<CpuSnapshot>);

impl CpuTrace {
    /// The last snapshot taken at or before `at` (µs since the epoch).
    pub fn at(&self, at: i64) -> Option<&CpuSnapshot> {
        self.0.iter().take_while(|s| s.at <= at).last()
    }
}

struct ProcStat {
    ppid: u32,
    comm: String,
    /// utime + stime.
    own: u64,
    /// cutime + cstime.
    reaped: u64,
}

fn proc_stat(pid: u32) -> Option<ProcStat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_string();
    let rest: Vec<&str> = text.get(close + 2..)?.split_whitespace().collect();
    // rest[0] is field 3 (state): field n is rest[n - 3].
    let field = |n: usize| rest.get(n - 3).and_then(|v| v.parse::<u64>().ok());
    Some(ProcStat {
        ppid: u32::try_from(field(4)?).ok()?,
        comm,
        own: field(14)? + field(15)?,
        reaped: field(16)? + field(17)?,
    })
}

/// Every process's stat, by pid.
fn all_stats() -> std::collections::HashMap<u32, ProcStat> {
    let mut stats = std::collections::HashMap::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse().ok()) else {
                continue;
            };
            if let Some(stat) = proc_stat(pid) {
                stats.insert(pid, stat);
            }
        }
    }
    stats
}

/// Processes' children, by pid.
type Children = std::collections::HashMap<u32, Vec<u32>>;

/// Each process's children in `stats`.
fn children_of(stats: &std::collections::HashMap<u32, ProcStat>) -> Children {
    let mut children = Children::new();
    for (&pid, stat) in stats {
        children.entry(stat.ppid).or_default().push(pid);
    }
    children
}

/// The reporter under `root` (beamup's pid on a host): the child running the binary
/// `bin` (its file id, `testkit::pid1::file_id`).
fn reporter_of(children: &Children, root: u32, bin: (u64, u64)) -> Option<u32> {
    children
        .get(&root)?
        .iter()
        .copied()
        .find(|&pid| testkit::pid1::runs(pid, bin))
}

/// The VM's processes under `root`: the whole tree, the reporter's branch left out.
fn vm_tree(children: &Children, root: u32, reporter: Option<u32>) -> Vec<u32> {
    let mut tree = Vec::new();
    let mut stack = vec![root];
    while let Some(pid) = stack.pop() {
        if Some(pid) == reporter {
            continue;
        }
        tree.push(pid);
        if let Some(kids) = children.get(&pid) {
            stack.extend(kids);
        }
    }
    tree
}

/// The context switches so far of every thread of `pid`: (voluntary, nonvoluntary).
fn task_switches(pid: u32) -> (u64, u64) {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return (0, 0);
    };
    let count = |v: &str| v.trim().parse::<u64>().unwrap_or(0);
    let mut sum = (0, 0);
    for status in tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
    {
        for line in status.lines() {
            if let Some(v) = line.strip_prefix("voluntary_ctxt_switches:") {
                sum.0 += count(v);
            } else if let Some(v) = line.strip_prefix("nonvoluntary_ctxt_switches:") {
                sum.1 += count(v);
            }
        }
    }
    sum
}

/// The context switches so far of every thread of the VMs under `roots` (beamup's pid
/// on every host, the VM after the exec; the reporters, running `bin`, left out), summed
/// over the hosts as (voluntary, nonvoluntary): how often a VM thread slept and was
/// woken again, and how often another process preempted one. Threads and processes that
/// have ended are not counted.
pub fn vm_switches(bin: &Path, roots: &[u32]) -> (u64, u64) {
    let bin = testkit::pid1::file_id(bin);
    let children = children_of(&all_stats());
    let mut total = (0, 0);
    for &root in roots {
        let reporter = bin.and_then(|b| reporter_of(&children, root, b));
        for pid in vm_tree(&children, root, reporter) {
            let (voluntary, preempted) = task_switches(pid);
            total.0 += voluntary;
            total.1 += preempted;
        }
    }
    total
}

impl CpuSampler {
    /// `roots`: beamup's pid on every host (the VM after the exec); `hosts`: the same
    /// hosts, for their namespaces (to tell their epmds apart).
    pub fn start(bin: &Path, roots: Vec<u32>, hosts: &[Host], every: Duration) -> CpuSampler {
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let bin = testkit::pid1::file_id(bin)
            .unwrap_or_else(|| panic!("cannot stat the binary {}", bin.display()));
        let inode = |ns: &str| {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(Path::new("/run/netns").join(ns))
                .map(|m| m.ino())
                .unwrap_or(0)
        };
        let namespaces: Vec<u64> = hosts.iter().map(|h| inode(&h.ns)).collect();
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let n = roots.len();
                let mut reporters: Vec<Option<u32>> = vec![None; n];
                // epmd pid → host (None: another namespace's).
                let mut epmds: std::collections::HashMap<u32, Option<usize>> =
                    std::collections::HashMap::new();
                let mut run_times = RunTimes::default();
                let mut out = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let at = now_us();
                    let stats = all_stats();
                    let children = children_of(&stats);
                    let mut snap = CpuSnapshot {
                        at,
                        reporter: vec![0; n],
                        vm: vec![0; n],
                        epmd: vec![0; n],
                    };
                    for (h, &root) in roots.iter().enumerate() {
                        if reporters[h].is_none() {
                            reporters[h] = reporter_of(&children, root, bin);
                        }
                        let reporter = reporters[h];
                        if let Some(us) = reporter.and_then(|pid| run_times.of(pid)) {
                            snap.reporter[h] = us;
                        }
                        for pid in vm_tree(&children, root, reporter) {
                            if let Some(s) = stats.get(&pid) {
                                snap.vm[h] += (s.own + s.reaped) * US_PER_TICK;
                            }
                        }
                    }
                    for (&pid, stat) in &stats {
                        if stat.comm != "epmd" {
                            continue;
                        }
                        let host = *epmds.entry(pid).or_insert_with(|| {
                            let link = std::fs::metadata(format!("/proc/{pid}/ns/net")).ok()?;
                            use std::os::unix::fs::MetadataExt;
                            namespaces.iter().position(|&ino| ino == link.ino())
                        });
                        if let Some(h) = host {
                            snap.epmd[h] += run_times.of(pid).unwrap_or(stat.own * US_PER_TICK);
                        }
                    }
                    out.push(snap);
                    std::thread::sleep(every);
                }
                out
            })
        };
        CpuSampler {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops the sampler and hands over what it saw.
    pub fn finish(mut self) -> CpuTrace {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        CpuTrace(
            self.thread
                .take()
                .and_then(|t| t.join().ok())
                .unwrap_or_default(),
        )
    }
}

impl Drop for CpuSampler {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The neighbour (ARP/NDP) entries of one host, as `ip monitor neigh` reports them
/// changing, each stamped with [`now_us`] when read: when the network carries that
/// host's packets to a peer again after a cut. A restored link is usable only once the
/// entry is resolved again, and the kernel retries an unresolved one once per second
/// (`retrans_time_ms`), whoever sends: that, not beamup, is the floor of a heal.
pub struct NeighWatch {
    child: std::process::Child,
    lines: Arc<Mutex<Vec<(i64, String)>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    ns: String,
}

impl NeighWatch {
    pub fn start(host: &Host) -> Result<NeighWatch, String> {
        use std::io::BufRead as _;
        let mut child = std::process::Command::new("ip")
            .args(["-n", &host.ns, "monitor", "neigh"])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .map_err(|e| format!("ip monitor neigh in {}: {e}", host.ns))?;
        let out = child.stdout.take().ok_or("ip monitor: no stdout")?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let into = Arc::clone(&lines);
        let reader = std::thread::spawn(move || {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                let at = now_us();
                into.lock().expect("neigh lines").push((at, line));
            }
        });
        Ok(NeighWatch {
            child,
            lines,
            reader: Some(reader),
            ns: host.ns.clone(),
        })
    }

    /// When this host's entry for `peer` was first usable (resolved: REACHABLE, STALE,
    /// DELAY or PROBE) at or after `since`; `since` itself for an entry that did not
    /// change because it was usable all along; None for one still unresolved.
    pub fn usable_at(&self, peer: std::net::IpAddr, since: i64) -> Option<i64> {
        const USABLE: [&str; 4] = ["REACHABLE", "STALE", "DELAY", "PROBE"];
        let usable = |line: &str| {
            line.contains("lladdr") && line.split_whitespace().any(|w| USABLE.contains(&w))
        };
        let ip = peer.to_string();
        let of_peer = |line: &str| line.split_whitespace().next() == Some(ip.as_str());
        let changes: Vec<(i64, String)> = self
            .lines
            .lock()
            .expect("neigh lines")
            .iter()
            .filter(|(at, line)| *at >= since && of_peer(line))
            .cloned()
            .collect();
        if let Some((at, _)) = changes.iter().find(|(_, line)| usable(line)) {
            return Some(*at);
        }
        if !changes.is_empty() {
            return None;
        }
        let now = std::process::Command::new("ip")
            .args(["-n", &self.ns, "neigh", "show", &ip])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        usable(&now).then_some(since)
    }
}

impl Drop for NeighWatch {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}
