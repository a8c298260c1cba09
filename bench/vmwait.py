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

Run as root from the repository: `python3 bench/vmwait.py [--rounds 5] [--window 8] [--out NAME]`.
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

ARGS = ["--ip", "cidr:127.0.0.0/8", "--basename", "demo", "--peers", "demo@127.0.0.2", "--connect"]
# The first second: checks every 5 ms (FAST_FOR in src/reporter/mesh/wait.rs).
FAST_FOR = 1.0


class Waiting:
    """One beamup in a namespace of its own whose VM never comes; its reporter's CPU."""

    def __init__(self, tag, binary, tmp):
        self.ns = bl.Namespace(tag)
        self.binary = binary
        self.log = open(Path(tmp) / f"{tag}.log", "wb")
        try:
            # epmd up, as in a booting container once the VM started it: looks reach it.
            bl.run_ok(self.ns.exec_prefix() + ["epmd", "-daemon"])
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

    def find_reporter(self):
        self.reporter = bl.reporter_pid(self.proc.pid, self.binary)

    def cpu(self):
        got = bl.process_cpu_ns(self.reporter)
        if got is None:
            bl.die(f"the reporter {self.reporter} of {self.binary} is gone; its log: {self.log.name}")
        return got

    def close(self):
        self.proc.kill()
        self.proc.wait()
        self.ns.close()
        self.log.close()


def rates(before, after, secs):
    """(CPU µs per second, wakeups per second) between two process_cpu_ns readings."""
    return (after[0] - before[0]) / 1000 / secs, (after[1] - before[1]) / secs


def one_round(binaries, window, tmp):
    """Both binaries at once: their (first second, after) rates."""
    waits = []
    try:
        for label, binary in binaries:
            waits.append(Waiting(f"vw-{label}", binary, tmp))
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
        for w in waits:
            w.close()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--window", type=float, default=8.0)
    p.add_argument("--out", default="vmwait.txt")
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
            for (label, _), got in zip(binaries, one_round(binaries, args.window, tmp)):
                results[label].append(got)
    report(args, binaries, results)


def report(args, binaries, results):
    lines = ["# bench/vmwait (issue 19): a --connect reporter waiting for its VM", *bl.machine_lines()]
    env = f"BEAMUP_BENCH_BASELINE_BIN={binaries[1][1]} " if len(binaries) > 1 else ""
    lines.append(
        f"command: {env}python3 bench/vmwait.py --rounds {args.rounds} --window {args.window:g} --out {args.out}"
    )
    for label, binary in binaries:
        lines.append(f"{label + ':':<9}{binary}")
    lines += [
        "setup:   per binary a network namespace (loopback, epmd running, no VM ever registers),",
        f"         `beamup {' '.join(ARGS)} -- /bin/sleep 600`;",
        "         both binaries at once in each round, each in its own namespace; the reporter's",
        "         on-CPU time and times scheduled in, all its threads (/proc/<pid>/task/*/schedstat).",
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
    lines += [
        "",
        "Per reporter and second of a VM's boot. A 24-host boot on 2 cores (bench/mesh) waits",
        "about 7 s per host on average: 24 × 7 × this figure is the reporters' share of that boot.",
    ]
    print("\n".join(lines))
    bl.write_result(args.out, lines)


if __name__ == "__main__":
    main()
