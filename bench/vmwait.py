#!/usr/bin/env python3
"""bench/vmwait: what a `--connect` reporter costs while its VM boots (issue 19).

Until the release's VM registers with epmd, the reporter checks the network namespace's
socket count every 5 ms (after the first second every 10 ms) and looks in epmd when it
changed (README step 6). Every container of a cluster that boots at once pays this on the
cores its VMs boot on. This bench measures it alone: in a network namespace of its own
(loopback, an epmd, no VM ever registering),

    beamup --ip cidr:127.0.0.0/8 --basename demo --peers demo@127.0.0.2 --connect -- /bin/sleep 600

and reads the reporter's on-CPU time and the times its threads were scheduled in (every
thread, /proc/<pid>/task/*/schedstat) over the first second after it started and over
--window seconds after that. With BEAMUP_BENCH_BASELINE_BIN, that binary runs at the same
time in a namespace of its own, so both are measured under the same load; --rounds rounds,
medians and the ratio to the baseline. Writes bench/results/vmwait.txt (--out NAME: another
file under bench/results/).

Run as root from the repository: `python3 bench/vmwait.py [--rounds 5] [--window 8] [--epmd-poller MS] [--load N]
[--out NAME]`. --epmd-poller MS adds what bench/mesh's observers do in every host: a NAMES request to epmd every
MS ms; --load N runs N busy loops on the machine meanwhile. The namespace's epmd is measured too.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

# No __pycache__ inside the repository.
sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent))
import benchlib as bl  # noqa: E402

# --epmd-poller: what bench/mesh's observers do in every host (cluster::demo_registered):
# a NAMES request to the namespace's epmd every so many ms.
POLLER = """
import socket, sys, time
every = float(sys.argv[1]) / 1000
while True:
    try:
        with socket.create_connection(("127.0.0.1", 4369), timeout=0.2) as s:
            s.sendall(bytes([0, 1, 110]))
            while s.recv(4096):
                pass
    except OSError:
        pass
    time.sleep(every)
"""
ARGS = ["--ip", "cidr:127.0.0.0/8", "--basename", "demo", "--peers", "demo@127.0.0.2", "--connect"]
# The first second: checks every 5 ms (FAST_FOR in src/reporter/mesh/wait.rs).
FAST_FOR = 1.0


class Waiting:
    """One beamup in a namespace of its own whose VM never comes; its reporter's CPU."""

    def __init__(self, tag, binary, tmp, poller_ms):
        self.ns = bl.Namespace(tag)
        self.binary = binary
        self.log = open(Path(tmp) / f"{tag}.log", "wb")
        try:
            # epmd up, as in a booting container once the VM started it: looks reach it.
            bl.run_ok(self.ns.exec_prefix() + ["epmd", "-daemon"])
            if poller_ms:
                # Killed with the namespace's other processes.
                subprocess.Popen(
                    self.ns.exec_prefix() + [sys.executable, "-c", POLLER, str(poller_ms)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            env = bl.beamup_env(tmp, RELEASE_COOKIE="bench-vmwait-cookie", BEAMUP_LOG="info")
            self.proc = subprocess.Popen(
                self.ns.exec_prefix() + [str(binary), *ARGS, "--", "/bin/sleep", "600"],
                env=env,
                stdout=self.log,
                stderr=subprocess.STDOUT,
            )
        except BaseException:
            # Not yet in the round's list: nothing else would remove its namespace.
            self.ns.close()
            self.log.close()
            raise
        self.started = time.monotonic()
        self.reporter = None
        self.epmd = None

    def find_reporter(self):
        self.reporter = bl.reporter_pid(self.proc.pid, self.binary)
        self.epmd = next((int(p) for p in self.ns.pids() if bl.comm(int(p)) == "epmd"), None)
        if self.epmd is None:
            bl.die(f"no epmd in the namespace {self.ns.name}")

    def cpu(self):
        """The reporter's and the namespace's epmd's (CPU ns, times scheduled in)."""
        got = bl.process_cpu_ns(self.reporter)
        if got is None:
            bl.die(f"the reporter {self.reporter} of {self.binary} is gone; its log: {self.log.name}")
        epmd = bl.process_cpu_ns(self.epmd)
        if epmd is None:
            bl.die(f"the epmd {self.epmd} in {self.ns.name} is gone")
        return got + epmd

    def close(self):
        self.proc.kill()
        self.proc.wait()
        self.ns.close()
        self.log.close()


def rates(before, after, secs):
    """Between two Waiting.cpu readings: the reporter's CPU µs per second and wakeups per
    second, then epmd's."""
    cpu, wakeups, epmd_cpu, epmd_wakeups = ((a - b) / secs for a, b in zip(after, before))
    return cpu / 1000, wakeups, epmd_cpu / 1000, epmd_wakeups


def one_round(binaries, window, tmp, poller_ms, load):
    """Both binaries at once: their (first second, after) rates."""
    waits = []
    burners = []
    try:
        # --load: busy loops beside the reporters, as a cluster's VMs boot on the same cores.
        for _ in range(load):
            burners.append(subprocess.Popen([sys.executable, "-c", "while True: pass"]))
        for label, binary in binaries:
            waits.append(Waiting(f"vw-{label}", binary, tmp, poller_ms))
        for w in waits:
            w.find_reporter()
        # The first second, from the reporter's start (found within ms of it).
        first = [w.cpu() for w in waits]
        t0 = time.monotonic()
        time.sleep(max(0.0, FAST_FOR - (t0 - min(w.started for w in waits))))
        mid = [w.cpu() for w in waits]
        t1 = time.monotonic()
        time.sleep(window)
        end = [w.cpu() for w in waits]
        t2 = time.monotonic()
        return [
            (rates(first[i], mid[i], t1 - t0), rates(mid[i], end[i], t2 - t1))
            for i in range(len(waits))
        ]
    finally:
        for b in burners:
            b.kill()
            b.wait()
        for w in waits:
            w.close()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--window", type=float, default=8.0)
    p.add_argument("--out", default="vmwait.txt")
    p.add_argument(
        "--epmd-poller",
        type=float,
        default=0,
        metavar="MS",
        help="in each namespace, also ask epmd for its names every MS ms (bench/mesh's observers: 10)",
    )
    p.add_argument("--load", type=int, default=0, metavar="N", help="N busy loops on the machine meanwhile")
    args = p.parse_args()
    if "/" in args.out or not args.out:
        bl.die("--out takes a file name (written under bench/results/)")
    bl.require_root()
    bl.require("ip", "epmd")
    bl.cleanup_on_signals()
    binaries = [("new", bl.static_binary())]
    baseline = os.environ.get("BEAMUP_BENCH_BASELINE_BIN")
    if baseline:
        binaries.append(("baseline", Path(baseline)))
    results = {label: [] for label, _ in binaries}
    with bl.temp_dir("vmwait") as tmp:
        for r in range(args.rounds):
            print(f"bench vmwait: round {r + 1}/{args.rounds}", file=sys.stderr)
            for (label, _), got in zip(binaries, one_round(binaries, args.window, tmp, args.epmd_poller, args.load)):
                results[label].append(got)
    report(args, binaries, results)


def report(args, binaries, results):
    lines = ["# bench/vmwait (issue 19): a --connect reporter waiting for its VM", *bl.machine_lines()]
    env = f"BEAMUP_BENCH_BASELINE_BIN={binaries[1][1]} " if len(binaries) > 1 else ""
    lines.append(
        f"command: {env}python3 bench/vmwait.py --rounds {args.rounds} --window {args.window:g}"
        + (f" --epmd-poller {args.epmd_poller:g}" if args.epmd_poller else "")
        + (f" --load {args.load}" if args.load else "")
        + f" --out {args.out}"
    )
    for label, binary in binaries:
        lines.append(f"{label + ':':<9}{binary}")
    lines += [
        "setup:   per binary a network namespace (loopback, epmd running, no VM ever registers),",
        f"         `beamup {' '.join(ARGS)} -- /bin/sleep 600`;",
        "         both binaries at once in each round, each in its own namespace; the reporter's",
        "         on-CPU time and times scheduled in, all its threads (/proc/<pid>/task/*/schedstat).",
        *(
            [f"         In each namespace a poller asks epmd for its names every {args.epmd_poller:g} ms."]
            if args.epmd_poller
            else []
        ),
        *([f"         {args.load} busy loop(s) ran on the machine meanwhile."] if args.load else []),
        "",
        f"## median [min–max] over {args.rounds} rounds",
        f"{'':<44}" + "".join(f"{label:<26}" for label, _ in binaries) + ("new/baseline" if len(binaries) > 1 else ""),
    ]

    def row(title, pick):
        cells = []
        medians = []
        for label, _ in binaries:
            xs = [pick(r) for r in results[label]]
            m = bl.median(xs)
            medians.append(m)
            cells.append(f"{m:.0f} [{min(xs):.0f}–{max(xs):.0f}]")
        text = f"{title:<44}" + "".join(f"{c:<26}" for c in cells)
        if len(medians) > 1 and medians[1]:
            text += f"{medians[0] / medians[1]:.2f}"
        lines.append(text)

    row("CPU µs per second, the first second", lambda r: r[0][0])
    row("CPU µs per second, after", lambda r: r[1][0])
    row("times scheduled in per second, first second", lambda r: r[0][1])
    row("times scheduled in per second, after", lambda r: r[1][1])
    row("epmd: CPU µs per second, the first second", lambda r: r[0][2])
    row("epmd: CPU µs per second, after", lambda r: r[1][2])
    row("epmd: times scheduled in per second, after", lambda r: r[1][3])
    lines += [
        "",
        "Per reporter and second of a VM's boot. A 24-host boot on 2 cores (bench/mesh) waits",
        "about 7 s per host on average: 24 × 7 × this figure is the reporters' share of that boot.",
    ]
    print("\n".join(lines))
    bl.write_result(args.out, lines)


if __name__ == "__main__":
    main()
