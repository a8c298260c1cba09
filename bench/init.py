#!/usr/bin/env python3
"""bench/init: beamup as PID 1, exec mode (the default) against `--init` (issue 8).

Inside a network namespace this bench creates (loopback only), beamup runs as PID 1 of a
fresh PID namespace (`unshare --pid --fork --mount-proc`), as in a container, and gets
SIGTERM from outside, as `docker stop` sends it:
  1. before the exec: beamup waits on a metadata server that accepts and never answers
     (`--ip rancher:http://127.0.0.1:PORT`); time from SIGTERM to beamup's exit (status
     143), both modes, interleaved, median of --pre-runs;
  2. a running release: the demo mix release (tests/fixtures/demo_mix) with a reporter
     (`--peers`), once it answers rpc: the VmRSS (and Pss, and the anonymous part) of the
     supervising beamup (--init), of the reporter (both modes), then the time from
     SIGTERM to the exit of the namespace's PID 1 (graceful init:stop(), status 0), both
     modes interleaved, median of --stop-runs.
Writes bench/results/init.txt. Run as root: `python3 bench/init.py`.
"""

import argparse
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

# No __pycache__ inside the repository.
sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl  # noqa: E402
from reporter import demo_release  # noqa: E402

UNSHARE = ["unshare", "--pid", "--fork", "--mount-proc", "--kill-child"]
SUPERVISOR_TARGET_KIB = 1536
MODES = {"exec": [], "init": ["--init"]}


def clean_env(tmp, **extra):
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("BEAMUP_", "RELEASE_", "RELX_"))
           and k not in ("ELIXIR_ERL_OPTIONS", "ERL_AFLAGS", "ERL_FLAGS", "ERL_ZFLAGS")}
    env.update({"TMPDIR": str(tmp), "BEAMUP_PLATFORM": "none"})
    env.update(extra)
    return env


def pid1_of(unshare_pid, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = bl.children(unshare_pid)
        if kids:
            return kids[0]
        time.sleep(0.005)
    bl.die("unshare did not fork PID 1")


def sigterm(pid1, proc):
    """SIGTERM to the namespace's PID 1 from outside; (ms until unshare reports its end,
    the exit code)."""
    start = time.perf_counter_ns()
    os.kill(pid1, signal.SIGTERM)
    _, status = os.waitpid(proc.pid, 0)
    return (time.perf_counter_ns() - start) / 1e6, os.waitstatus_to_exitcode(status)


class Silent:
    """Accepts on loopback and never answers (a hung metadata API)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.held = []
        self.accepted = 0
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            conn, _ = self.sock.accept()
            self.held.append(conn)
            self.accepted += 1


def stop_before_exec(binary, tmp, server, mode):
    seen = server.accepted
    argv = UNSHARE + [str(binary), *MODES[mode], "--ip", f"rancher:http://127.0.0.1:{server.port}",
                      "--basename", "demo", "--metadata-timeout", "60s", "--peers", "demo@10.0.0.2",
                      "--", "/bin/sleep", "600"]
    proc = subprocess.Popen(argv, env=clean_env(tmp), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    pid1 = pid1_of(proc.pid)
    deadline = time.monotonic() + 20
    while server.accepted == seen:
        if time.monotonic() > deadline:
            bl.die("beamup never asked the metadata server")
        time.sleep(0.002)
    took, code = sigterm(pid1, proc)
    if code != 143:
        bl.die(f"{mode}: exit status {code} after SIGTERM before the exec, not 143")
    return took


def smaps(pid):
    """Pss and Rss_anon... from smaps_rollup, in KiB."""
    out = {}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
                out[parts[0][:-1]] = int(parts[1])
    except OSError:
        pass
    return out


def beamup_children(parent, binary):
    real = os.path.realpath(binary)
    out = []
    for pid in bl.children(parent):
        try:
            if os.path.realpath(f"/proc/{pid}/exe") == real:
                out.append(pid)
        except OSError:
            pass
    return out


def reporter_restart(pid1, binary, old):
    """SIGKILL to the reporter; ms until the supervisor has forked a new one."""
    start = time.perf_counter_ns()
    os.kill(old, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while True:
        new = [p for p in beamup_children(pid1, binary) if p != old]
        if new:
            return (time.perf_counter_ns() - start) / 1e6
        if time.monotonic() > deadline:
            bl.die("the killed reporter was not replaced within 30 s")
        time.sleep(0.002)


def running_release(binary, tmp, root, mode, run):
    rel_tmp = tmp / f"rel-{mode}-{run}"
    rel_tmp.mkdir()
    log = tmp / f"vm-{mode}-{run}.log"
    argv = UNSHARE + [str(binary), *MODES[mode], "--ip", "cidr:127.0.0.0/8",
                      "--peers", "demo@127.0.0.2", "--interval", "1s",
                      "--", str(root / "bin" / "demo"), "start"]
    proc = subprocess.Popen(argv, env=clean_env(tmp, RELEASE_TMP=str(rel_tmp)),
                            stdin=subprocess.DEVNULL, stdout=open(log, "wb"),
                            stderr=subprocess.STDOUT)
    try:
        pid1 = pid1_of(proc.pid)
        rpc_env = clean_env(tmp, RELEASE_NODE="demo@127.0.0.1", RELEASE_DISTRIBUTION="name")
        deadline = time.monotonic() + 90
        while subprocess.run([str(root / "bin" / "demo"), "rpc", ":ok"], env=rpc_env,
                             capture_output=True).returncode != 0:
            if proc.poll() is not None or time.monotonic() > deadline:
                bl.die(f"{mode}: the demo node did not come up:\n{log.read_text()}")
            time.sleep(0.2)
        time.sleep(0.5)
        mem = {}
        if mode == "init":
            mem["supervisor"] = (bl.proc_status(pid1, "VmRSS"), smaps(pid1))
            reporters = beamup_children(pid1, binary)
        else:
            # After the exec, PID 1 is the VM and the reporter its child.
            reporters = beamup_children(pid1, binary)
        if len(reporters) != 1:
            bl.die(f"{mode}: expected one reporter, found {reporters}")
        mem["reporter"] = (bl.proc_status(reporters[0], "VmRSS"), smaps(reporters[0]))
        if mode == "init":
            mem["restart_ms"] = reporter_restart(pid1, binary, reporters[0])
        took, code = sigterm(pid1, proc)
        if code != 0:
            bl.die(f"{mode}: exit status {code} after SIGTERM, not 0:\n{log.read_text()}")
        return took, mem
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pre-runs", type=int, default=20)
    p.add_argument("--stop-runs", type=int, default=5)
    p.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--binary", help=argparse.SUPPRESS)
    args = p.parse_args()
    bl.cleanup_on_signals()
    if args.inner:
        return inner(args)
    bl.require_root()
    bl.require("ip", "unshare")
    binary = bl.static_binary()
    demo_release()
    bl.run_inside("binit", __file__, [
        "--binary", str(binary), f"--pre-runs={args.pre_runs}", f"--stop-runs={args.stop_runs}",
    ])


def inner(args):
    binary = Path(args.binary)
    root = demo_release()
    pre = {m: [] for m in MODES}
    stop = {m: [] for m in MODES}
    mems = {m: [] for m in MODES}
    with bl.temp_dir("init") as tmp:
        tmp = Path(tmp)
        server = Silent()
        for _ in range(args.pre_runs):
            for mode in MODES:
                pre[mode].append(stop_before_exec(binary, tmp, server, mode))
        for run in range(args.stop_runs):
            for mode in MODES:
                took, mem = running_release(binary, tmp, root, mode, run)
                stop[mode].append(took)
                mems[mode].append(mem)
    report(binary, args, pre, stop, mems)


def report(binary, args, pre, stop, mems):
    verdict = lambda ok: "met" if ok else "MISSED"  # noqa: E731

    def med(mode, who, key=None):
        vals = [(m[who][0] if key is None else m[who][1].get(key, 0)) for m in mems[mode]]
        return round(bl.median(vals))

    sup_rss = med("init", "supervisor")
    restart = bl.median([m["restart_ms"] for m in mems["init"]])
    # What --init adds to a container: its two beamup processes share the binary's
    # pages, so the proportional set sizes add up to the real total; exec mode's
    # reporter shares nothing with the VM.
    added_pss = (med("init", "supervisor", "Pss") + med("init", "reporter", "Pss")
                 - med("exec", "reporter", "Pss"))
    ratio = bl.median(stop["init"]) / bl.median(stop["exec"])
    lines = [
        "# bench/init (issue 8): beamup as PID 1, exec mode vs --init",
        *bl.machine_lines(),
        f"binary:  {binary} (static, musl)",
        "setup:   beamup as PID 1 of `unshare --pid --fork --mount-proc` inside a fresh network",
        "         namespace; SIGTERM sent from outside the PID namespace, as `docker stop` does",
        "",
        f"## SIGTERM before the exec (hung metadata server), median of {args.pre_runs}",
    ]
    for mode in MODES:
        xs = pre[mode]
        lines.append(f"{mode:4}: {bl.median(xs):6.2f} ms (p10 {bl.pct(xs, 10):.2f}, p90 {bl.pct(xs, 90):.2f}), "
                     f"exit 143 (target <= 100 ms: {verdict(bl.median(xs) <= 100)})")
    lines += [
        "",
        f"## `docker stop` of a running release (demo mix release, SIGTERM -> init:stop() -> exit 0), "
        f"median of {args.stop_runs}",
    ]
    for mode in MODES:
        xs = stop[mode]
        lines.append(f"{mode:4}: {bl.median(xs):7.1f} ms (min {min(xs):.1f}, max {max(xs):.1f})")
    lines += [
        f"init / exec: {ratio:.3f} (target: --init no slower than exec; medians within 5%: "
        f"{verdict(ratio <= 1.05)})",
        "",
        f"## memory once the release answers rpc (median of {args.stop_runs}; KiB)",
        f"--init supervisor (PID 1): VmRSS {sup_rss}, Pss {med('init', 'supervisor', 'Pss')}, "
        f"anonymous {med('init', 'supervisor', 'Anonymous')}",
        f"--init reporter:           VmRSS {med('init', 'reporter')}, Pss {med('init', 'reporter', 'Pss')}, "
        f"anonymous {med('init', 'reporter', 'Anonymous')}",
        f"exec reporter:             VmRSS {med('exec', 'reporter')}, Pss {med('exec', 'reporter', 'Pss')}, "
        f"anonymous {med('exec', 'reporter', 'Anonymous')}",
        f"memory --init adds on top of exec mode's reporter (Pss supervisor + Pss reporter - Pss exec "
        f"reporter): {added_pss} KiB (target <= {SUPERVISOR_TARGET_KIB} KiB: "
        f"{verdict(added_pss <= SUPERVISOR_TARGET_KIB)})",
        f"the supervisor's VmRSS alone, which also counts the binary's pages it shares with the reporter: "
        f"{sup_rss} KiB ({verdict(sup_rss <= SUPERVISOR_TARGET_KIB)} against the same {SUPERVISOR_TARGET_KIB} KiB)",
        "",
        f"## --init: reporter killed (SIGKILL) -> new reporter forked (first restart; median of {args.stop_runs})",
        f"{restart:.0f} ms (backoff 500 ms; target: within 1 s: "
        f"{verdict(restart <= 1000)})",
    ]
    print("\n".join(lines))
    bl.write_result("init.txt", lines)


if __name__ == "__main__":
    main()
