"""Shared helpers of the Python benchmarks in bench/ (startup.py, reporter.py).

Only the standard library: the benches run on the same machines as the tests
(Debian + the packages scripts/test.sh installs), with nothing else to install.
"""

import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
MUSL = "x86_64-unknown-linux-musl"


def die(msg):
    """Fails loudly (a benchmark never silently skips a figure)."""
    print(f"bench: error: {msg}", file=sys.stderr)
    sys.exit(1)


def require(*tools):
    for tool in tools:
        if shutil.which(tool) is None:
            die(f"missing {tool}: install it (bash scripts/test.sh --install-only, or apt-get install it)")


def require_root():
    if os.geteuid() != 0:
        die("this benchmark creates network namespaces: run it as root")


def target_dir():
    return Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))


def static_binary(build=True):
    """The shipped binary, as `scripts/build-static.sh x86_64` builds it (cargo's static
    release build, then the unwind tables dropped: the size users download).

    BEAMUP_BENCH_BIN overrides it (e.g. to time a binary built elsewhere).
    """
    override = os.environ.get("BEAMUP_BENCH_BIN")
    if override:
        path = Path(override)
        if not os.access(path, os.X_OK):
            die(f"BEAMUP_BENCH_BIN={override} is not an executable file")
        return path
    if build:
        require("cargo")
        print("bench: bash scripts/build-static.sh x86_64", file=sys.stderr)
        out = subprocess.run(
            ["bash", str(REPO / "scripts" / "build-static.sh"), "x86_64"],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
        )
        if out.returncode != 0:
            die("scripts/build-static.sh x86_64 failed (its output is above)")
    path = target_dir() / MUSL / "release" / "beamup"
    if not path.is_file():
        die(f"no static binary at {path}")
    return path


def median(xs):
    return statistics.median(xs)


def pct(xs, p):
    """The p-th percentile (nearest rank) of xs."""
    s = sorted(xs)
    k = max(0, min(len(s) - 1, round(p / 100 * (len(s) - 1))))
    return s[k]


def machine_lines():
    """A few lines that say where the figures come from."""
    cpu = "?"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    rev = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return [
        f"date:    {time.strftime('%Y-%m-%d %H:%M:%S %Z')}",
        f"commit:  {rev or '?'}{' (+ uncommitted changes)' if dirty else ''}",
        f"machine: {os.cpu_count()} cpu(s), {cpu}, Linux {platform.release()}",
        f"load:    {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1/5/15 min, at the end: other work "
        "on the machine makes wall times noisier)",
    ]


def write_result(name, lines):
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("\n".join(lines) + "\n")
    tmp.replace(path)
    print(f"bench: wrote {path.relative_to(REPO)}", file=sys.stderr)
    return path


def run_ok(args, **kw):
    out = subprocess.run(args, capture_output=True, text=True, **kw)
    if out.returncode != 0:
        die(f"{' '.join(map(str, args))} failed ({out.returncode}):\n{out.stdout}{out.stderr}")
    return out.stdout


def ns_name(tag):
    """`bu<pid>-<tag>`: the test harness' naming, so a later test run (or bench run)
    removes what a killed bench left behind (the owner pid is dead)."""
    return f"bu{os.getpid()}-{tag}"


class Namespace:
    """A network namespace with lo up; everything in it is killed and it is deleted
    on exit (also on exceptions and SIGTERM/SIGINT, see `cleanup_on_signals`)."""

    def __init__(self, tag):
        require("ip")
        self.name = ns_name(tag)
        run_ok(["ip", "netns", "add", self.name])
        run_ok(["ip", "-n", self.name, "link", "set", "lo", "up"])

    def ip(self, *args):
        run_ok(["ip", "-n", self.name, *args])

    def exec_prefix(self):
        return ["ip", "netns", "exec", self.name]

    def pids(self):
        """The pids of the processes inside, as strings."""
        return subprocess.run(["ip", "netns", "pids", self.name], capture_output=True, text=True).stdout.split()

    def close(self):
        # Every process inside is ours (servers, dnsmasq, releases, epmd).
        for _ in range(100):
            pids = self.pids()
            if not pids:
                break
            for pid in pids:
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (ProcessLookupError, ValueError):
                    pass
            time.sleep(0.02)
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)
        shutil.rmtree(Path("/etc/netns") / self.name, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def run_inside(tag, script, argv):
    """Runs `script --inner ARGV` inside a fresh network namespace (so no `ip netns exec`
    is in the timings); the namespace is deleted with whatever still runs in it."""
    with Namespace(tag) as ns:
        out = subprocess.run(ns.exec_prefix() + [sys.executable, str(script), "--inner", *argv])
    if out.returncode != 0:
        die(f"the run inside the namespace failed ({out.returncode})")


def cleanup_on_signals():
    """SIGTERM/SIGINT become exceptions, so `with` blocks and `finally` clean up."""

    def raise_exit(signum, _frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, raise_exit)
    signal.signal(signal.SIGINT, raise_exit)


def temp_dir(tag):
    return tempfile.TemporaryDirectory(prefix=f"beamup-bench-{tag}-")


def free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid, key):
    """A kB field of /proc/<pid>/status (VmRSS, VmHWM) in KiB, or None."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def proc_cpu_ticks(pid):
    """utime + stime of pid in clock ticks, or None."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    # After the comm: state(0) ppid(1) ... utime(11) stime(12).
    return int(fields[11]) + int(fields[12])


def children(pid):
    """Pids of pid's children (from /proc/<pid>/task/*/children)."""
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out.extend(int(p) for p in (task / "children").read_text().split())
        except OSError:
            pass
    return out


def comm(pid):
    """The command name of pid (/proc/<pid>/comm), or None once it is gone."""
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def reporter_pid(parent, binary, timeout=10):
    """The reporter: the child of beamup's pid (now /bin/sleep) still running beamup."""
    real = os.path.realpath(binary)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for pid in children(parent):
            try:
                if os.path.realpath(f"/proc/{pid}/exe") == real:
                    return pid
            except OSError:
                pass
        time.sleep(0.01)
    die(f"no reporter child under pid {parent}")


def schedstat_ns(pid):
    """The on-CPU time (ns) of pid's main thread, from /proc/<pid>/schedstat, or None."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def process_cpu_ns(pid):
    """The on-CPU time (ns) and the times scheduled in, summed over all of pid's
    threads (/proc/<pid>/task/*/schedstat), or None once it is gone."""
    run = switches = 0
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            fields = (task / "schedstat").read_text().split()
            run += int(fields[0])
            switches += int(fields[2])
    except (OSError, ValueError, IndexError):
        return None
    return run, switches


def beamup_env(tmp, **extra):
    """A clean environment for beamup (nothing inherited from the caller's shell, such as
    a BEAMUP_* setting that would change what is measured), plus `extra`."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp), "TMPDIR": str(tmp)}
    env.update(extra)
    return env
