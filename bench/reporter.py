#!/usr/bin/env python3
"""bench/reporter: what the reporter child costs for the life of a release (issue "reporter").

Inside a network namespace this bench creates (loopback only), with dnsmasq serving
a zone on 127.0.0.1:5300:
  1. memory: beamup --ip cidr:127.0.0.0/8 --basename demo --query svc.test
     --dns-server 127.0.0.1:5300 --interval 100ms -- /bin/sleep ...: the reporter child's
     VmRSS at poll ~100 and ~1000 (polls counted from its `poll ok` debug lines), and
     its CPU time per poll (utime+stime from /proc/<pid>/stat, and the precise on-CPU
     time from /proc/<pid>/schedstat) between those two polls;
  2. resolve + diff of 1000 records: `beamup peers --query big.test` where big.test has
     1000 A records, timed (median of --peers-runs), against the same for 5 records;
  3. the baseline a script pays instead: the peak RSS (wait4's ru_maxrss) and wall time
     of `bin/demo rpc` (the demo mix release from tests/fixtures/demo_mix) against a
     running demo node, median of --rpc-runs calls.
Writes bench/results/reporter.txt. Run as root: `python3 bench/reporter.py`.
"""

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

# No __pycache__ inside the repository.
sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl  # noqa: E402

DNS = "127.0.0.1"
DNS_PORT = 5300
SMALL = "svc.test"
BIG = "big.test"
SMALL_RECORDS = 5
BIG_RECORDS = 1000
RSS_TARGET_KIB = 4 * 1024
# The shortest --interval beamup takes (100ms..1h): 1000 polls in ~100 s.
INTERVAL_MS = 100


def zone_lines():
    """Records are data only: nothing is ever sent to these (private test) addresses."""
    lines = [f"10.213.251.{10 + i} {SMALL}" for i in range(SMALL_RECORDS)]
    lines += [f"10.214.{i // 250}.{i % 250 + 1} {BIG}" for i in range(BIG_RECORDS)]
    return lines


def start_dnsmasq(ns, tmp):
    hosts = tmp / "zone.hosts"
    hosts.write_text("\n".join(zone_lines()) + "\n")
    log = tmp / "dnsmasq.log"
    conf = tmp / "dnsmasq.conf"
    conf.write_text(
        "no-resolv\nno-hosts\nno-poll\nbind-interfaces\n"
        f"listen-address={DNS}\nport={DNS_PORT}\n"
        "no-negcache\nlocal-ttl=0\nuser=root\n"
        f"log-facility={log}\naddn-hosts={hosts}\npid-file={tmp / 'dnsmasq.pid'}\n"
    )
    proc = subprocess.Popen(
        ns.exec_prefix() + ["dnsmasq", "--keep-in-foreground", f"--conf-file={conf}"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(tmp / "dnsmasq.out", "w"),
    )
    deadline = time.monotonic() + 10
    while "started, version" not in (log.read_text() if log.exists() else ""):
        if proc.poll() is not None:
            bl.die(f"dnsmasq exited:\n{(tmp / 'dnsmasq.out').read_text()}")
        if time.monotonic() > deadline:
            bl.die("dnsmasq did not start within 10 s")
        time.sleep(0.05)
    return proc


# ----- 1. the reporter child's memory and CPU -----


class PollCounter:
    """Follows the reporter's debug log and returns the latest `poll=N` of a `poll ok` line."""

    def __init__(self, path):
        self.path = path
        self.pos = 0
        self.rest = b""
        self.last = 0
        self.failed = 0

    def update(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.pos)
                data = f.read()
                self.pos += len(data)
        except OSError:
            return self.last
        lines = (self.rest + data).split(b"\n")
        self.rest = lines.pop()
        for line in lines:
            if b"poll ok" in line:
                for word in line.split():
                    if word.startswith(b"poll="):
                        self.last = int(word[5:])
            elif b"peer discovery failed" in line:
                self.failed += 1
        return self.last


def reporter_memory(ns, binary, tmp, args):
    log = tmp / "reporter.log"
    argv = ns.exec_prefix() + [
        str(binary), "--ip", "cidr:127.0.0.0/8", "--basename", "demo",
        "--query", SMALL, "--dns-server", f"{DNS}:{DNS_PORT}", "--interval", f"{INTERVAL_MS}ms",
        "--", "/bin/sleep", "3600",
    ]
    # `ip netns exec` execs, so the Popen pid is beamup's, then /bin/sleep's.
    proc = subprocess.Popen(
        argv,
        env=bl.beamup_env(tmp, BEAMUP_LOG="debug"),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "wb"),
    )
    try:
        rep = bl.reporter_pid(proc.pid, binary)
        counter = PollCounter(log)
        samples = {}
        # Every 100 polls from the early mark on: a leak grows steadily, a one-off
        # allocation shows as a single step.
        marks = sorted({args.early_poll, *range(args.early_poll, args.polls, 100), args.polls})
        limit = args.polls * INTERVAL_MS / 1000 * 1.5 + 30
        deadline = time.monotonic() + limit
        while marks:
            n = counter.update()
            if n >= marks[0]:
                samples[marks.pop(0)] = {
                    "poll": n,
                    "rss": bl.proc_status(rep, "VmRSS"),
                    "hwm": bl.proc_status(rep, "VmHWM"),
                    "ticks": bl.proc_cpu_ticks(rep),
                    "sched": bl.schedstat_ns(rep),
                    "t": time.monotonic(),
                }
                continue
            if proc.poll() is not None or bl.proc_status(rep, "VmRSS") is None:
                bl.die(f"beamup or its reporter exited early; log:\n{log.read_text()[-3000:]}")
            if time.monotonic() > deadline:
                bl.die(f"only {n} polls after {limit:.0f} s; log:\n{log.read_text()[-3000:]}")
            time.sleep(0.002)
        if counter.failed:
            bl.die(f"{counter.failed} polls failed; log:\n{log.read_text()[-3000:]}")
        seen = [line for line in log.read_text().splitlines() if "poll ok" in line][-1]
        if f"seen={SMALL_RECORDS}" not in seen:
            bl.die(f"the reporter does not see the {SMALL_RECORDS} records: {seen}")
        return samples
    finally:
        # Kills the sleep (our child); the reporter follows it (PR_SET_PDEATHSIG).
        proc.kill()
        proc.wait()


# ----- 2. resolve + diff 1000 records -----


def time_peers(ns, binary, tmp, name, runs, expect):
    argv = ns.exec_prefix() + [
        str(binary), "peers", "--ip", "cidr:127.0.0.0/8", "--basename", "demo",
        "--query", name, "--dns-server", f"{DNS}:{DNS_PORT}",
    ]
    walls = []
    env = bl.beamup_env(tmp)
    for i in range(runs + 3):
        # Wall time of the whole `beamup peers` process: start, resolve, diff, print.
        start = time.perf_counter_ns()
        p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        out, err = p.communicate()
        wall = time.perf_counter_ns() - start
        if p.returncode != 0:
            bl.die(f"beamup peers --query {name} failed ({p.returncode}): {err.decode()}")
        nodes = out.decode().split()
        if len(nodes) != expect:
            bl.die(f"beamup peers --query {name} printed {len(nodes)} nodes, expected {expect}")
        if i >= 3:  # warm-up
            walls.append(wall / 1e6)
    return walls


# ----- 3. the baseline: bin/demo rpc -----


def demo_release():
    """The demo mix release, built like tests/support/release.rs (copy the fixture, `mix
    release` with MIX_ENV=prod, no network), cached under <target>/tmp/bench-fixtures."""
    bl.require("erl", "elixir", "mix")
    source = bl.REPO / "tests" / "fixtures" / "demo_mix"
    h = hashlib.sha256(b"bench-recipe-1")
    for path in sorted(source.rglob("*")):
        if path.is_file() and "_build" not in path.parts and "deps" not in path.parts:
            h.update(str(path.relative_to(source)).encode())
            h.update(path.read_bytes())
    work = bl.target_dir() / "tmp" / "bench-fixtures" / "mix"
    root = work / "src" / "_build" / "prod" / "rel" / "demo"
    stamp = work / "stamp"
    if stamp.exists() and stamp.read_text() == h.hexdigest() and (root / "bin" / "demo").exists():
        return root
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    shutil.copytree(source, work / "src", ignore=shutil.ignore_patterns("_build", "deps"))
    print("bench: building the demo mix release", file=sys.stderr)
    out = subprocess.run(
        ["mix", "release", "--overwrite", "--quiet"],
        cwd=work / "src",
        env={**os.environ, "MIX_ENV": "prod"},
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        bl.die(f"mix release failed:\n{out.stdout}{out.stderr}")
    stamp.write_text(h.hexdigest())
    return root


def rpc_baseline(ns, binary, tmp, runs):
    root = demo_release()
    rel_tmp = tmp / "release-tmp"
    rel_tmp.mkdir()
    node = "demo@127.0.0.1"
    vm_log = tmp / "vm.log"
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("BEAMUP_", "RELEASE_", "RELX_"))
             and k not in ("ELIXIR_ERL_OPTIONS", "ERL_AFLAGS", "ERL_FLAGS", "ERL_ZFLAGS")}
    env = {**clean, "TMPDIR": str(tmp), "RELEASE_TMP": str(rel_tmp)}
    # The node, started the way a container would: beamup in front of the release.
    vm = subprocess.Popen(
        ns.exec_prefix() + [str(binary), "--ip", "cidr:127.0.0.0/8", "--",
                            str(root / "bin" / "demo"), "start"],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=open(vm_log, "wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    rpc_env = {**env, "RELEASE_NODE": node, "RELEASE_DISTRIBUTION": "name"}
    argv = ns.exec_prefix() + [str(root / "bin" / "demo"), "rpc", "IO.puts(Demo.hello())"]

    def rpc():
        start = time.perf_counter_ns()
        pid = os.posix_spawnp(argv[0], argv, rpc_env, file_actions=[
            (os.POSIX_SPAWN_OPEN, 0, "/dev/null", os.O_RDONLY, 0),
            (os.POSIX_SPAWN_OPEN, 1, str(tmp / "rpc.out"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
            (os.POSIX_SPAWN_DUP2, 1, 2),
        ])
        _, status, usage = os.wait4(pid, 0)
        wall = (time.perf_counter_ns() - start) / 1e6
        ok = os.waitstatus_to_exitcode(status) == 0 and \
            (tmp / "rpc.out").read_text().strip() == "world"
        # ru_maxrss (KiB): the largest process in the tree it waited for, i.e. the rpc VM.
        return ok, wall, usage.ru_maxrss

    try:
        deadline = time.monotonic() + 90
        while not rpc()[0]:
            if vm.poll() is not None:
                bl.die(f"the demo node exited:\n{vm_log.read_text()}")
            if time.monotonic() > deadline:
                bl.die(f"the demo node did not answer within 90 s:\n{vm_log.read_text()}")
            time.sleep(0.2)
        walls, peaks = [], []
        for _ in range(runs):
            ok, wall, peak = rpc()
            if not ok:
                bl.die(f"rpc failed: {(tmp / 'rpc.out').read_text()}")
            walls.append(wall)
            peaks.append(peak)
        node_rss = bl.proc_status(vm.pid, "VmRSS")
        return walls, peaks, node_rss
    finally:
        vm.kill()
        vm.wait()


class Inside:
    """The namespace as seen from inside it: commands need no `ip netns exec`."""

    name = "(current)"

    @staticmethod
    def exec_prefix():
        return []


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--polls", type=int, default=1000)
    p.add_argument("--early-poll", type=int, default=100)
    p.add_argument("--peers-runs", type=int, default=30)
    p.add_argument("--rpc-runs", type=int, default=10)
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--binary", help=argparse.SUPPRESS)
    args = p.parse_args()
    bl.cleanup_on_signals()
    if args.inner:
        return inner(args)
    bl.require_root()
    bl.require("ip", "dnsmasq")
    binary = bl.static_binary()
    demo_release()
    bl.run_inside("brep", __file__, [
        "--binary", str(binary), f"--polls={args.polls}", f"--early-poll={args.early_poll}",
        f"--peers-runs={args.peers_runs}", f"--rpc-runs={args.rpc_runs}",
    ])


def inner(args):
    binary = Path(args.binary)
    ns = Inside()
    with bl.temp_dir("reporter") as tmp:
        tmp = Path(tmp)
        dnsmasq = start_dnsmasq(ns, tmp)
        try:
            mem = reporter_memory(ns, binary, tmp, args)
            small = time_peers(ns, binary, tmp, SMALL, args.peers_runs, SMALL_RECORDS)
            big = time_peers(ns, binary, tmp, BIG, args.peers_runs, BIG_RECORDS)
        finally:
            dnsmasq.kill()
            dnsmasq.wait()
        rpc_walls, rpc_peaks, node_rss = rpc_baseline(ns, binary, tmp, args.rpc_runs)
    report(args, binary, mem, small, big, rpc_walls, rpc_peaks, node_rss)


def report(args, binary, mem, small, big, rpc_walls, rpc_peaks, node_rss):
    early, late = mem[args.early_poll], mem[args.polls]
    polls = late["poll"] - early["poll"]
    clk = os.sysconf("SC_CLK_TCK")
    cpu_tick_ms = (late["ticks"] - early["ticks"]) / clk * 1000 / polls
    cpu_sched_ms = (
        (late["sched"] - early["sched"]) / 1e6 / polls
        if late["sched"] is not None and early["sched"] is not None else None
    )
    period_ms = (late["t"] - early["t"]) * 1000 / polls
    growth = late["rss"] - early["rss"]
    series = [m["rss"] for _, m in sorted(mem.items())]
    third = max(1, len(series) // 3)
    trend = max(series[-third:]) - max(series[:third])
    rpc_peak = round(bl.median(rpc_peaks))
    verdict = lambda ok: "met" if ok else "MISSED"  # noqa: E731
    mib = lambda kib: f"{kib} KiB = {kib / 1024:.2f} MiB"  # noqa: E731
    lines = [
        "# bench/reporter (issue reporter): the reporter child's memory and CPU",
        *bl.machine_lines(),
        f"binary:  {binary} (static, musl)",
        f"setup:   dnsmasq on {DNS}:{DNS_PORT} inside a fresh network namespace;",
        f"         {SMALL} has {SMALL_RECORDS} A records, {BIG} has {BIG_RECORDS}",
        "",
        f"## reporter: --query {SMALL} --interval {INTERVAL_MS}ms, BEAMUP_LOG=debug",
        f"VmRSS at poll {early['poll']}:  {mib(early['rss'])}",
        f"VmRSS at poll {late['poll']}: {mib(late['rss'])}  (VmHWM {mib(late['hwm'])})",
        f"growth poll {early['poll']} -> {late['poll']}: {growth:+d} KiB (single samples; RSS moves by a "
        "page or two either way)",
        f"growth, highest VmRSS of the last third of the samples vs the first third: {trend:+d} KiB "
        f"(target: none: {verdict(trend <= 0)})",
        "VmRSS every 100 polls (KiB): "
        + " ".join(f"{m['poll']}:{m['rss']}" for _, m in sorted(mem.items())),
        f"RSS target <= 4 MiB: {verdict(late['rss'] <= RSS_TARGET_KIB)}",
        f"CPU per poll (utime+stime, {clk} Hz ticks, over {polls} polls): {cpu_tick_ms:.3f} ms",
        "CPU per poll (schedstat on-CPU time):                  "
        + (f"{cpu_sched_ms:.3f} ms" if cpu_sched_ms is not None else "n/a (no schedstat)"),
        f"mean poll period: {period_ms:.2f} ms (interval {INTERVAL_MS} ms +-10% jitter + the poll itself)",
        "",
        f"## resolve + diff: beamup peers, wall time of the whole process (median of {len(big)} runs)",
        f"peers --query {SMALL} ({SMALL_RECORDS} records):  {bl.median(small):7.3f} ms "
        f"(p10 {bl.pct(small, 10):.3f}, p90 {bl.pct(small, 90):.3f})",
        f"peers --query {BIG} ({BIG_RECORDS} records): {bl.median(big):7.3f} ms "
        f"(p10 {bl.pct(big, 10):.3f}, p90 {bl.pct(big, 90):.3f})",
        f"1000 vs 5 records: {bl.median(big) - bl.median(small):+.3f} ms, "
        f"{bl.median(big) / bl.median(small):.2f}x",
        "",
        f"## baseline: `bin/demo rpc` against a running demo node (median of {len(rpc_peaks)})",
        f"rpc VM peak RSS (ru_maxrss): {mib(rpc_peak)}",
        f"rpc wall time: {bl.median(rpc_walls):.0f} ms per call",
        f"the demo node itself: VmRSS {mib(node_rss) if node_rss else 'n/a'}",
        f"reporter RSS / rpc VM peak RSS: {late['rss'] / rpc_peak:.3f} "
        f"({rpc_peak / late['rss']:.0f}x less memory than one rpc call)",
    ]
    print("\n".join(lines))
    bl.write_result("reporter.txt", lines)


if __name__ == "__main__":
    main()
