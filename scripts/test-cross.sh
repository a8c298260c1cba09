#!/usr/bin/env bash
# Runs beamup's tests for another architecture under qemu user-mode emulation:
#
#   bash scripts/test-cross.sh aarch64                 # unit and property tests (below)
#   bash scripts/test-cross.sh aarch64 --test integration MODULE::   # other cargo test arguments
#
# The test binaries are cross-built for <arch>-unknown-linux-musl (static, with the flags of
# .cargo/config.toml, so they run on any host) and cargo runs each one through
# qemu-<arch>-static (Debian's qemu-user-static; no binfmt_misc registration needed).
# scripts/build-static.sh --install-only installs the target, the cross linker and qemu when
# missing. Tests that need root, namespaces or a BEAM stay in the native suite: qemu-user
# emulates the instructions, not the kernel, so they would prove nothing more here. Each
# run is bounded by CROSS_TIMEOUT seconds (600) and retried once after a hang (below).
#
# scripts/test.sh and the release workflow run `bash scripts/test-cross.sh aarch64`.
set -euo pipefail
cd "$(dirname "$0")/.."

die() { printf 'test-cross: error: %s\n' "$*" >&2; exit 1; }
[ $# -ge 1 ] || die "usage: $0 ARCH [CARGO TEST ARGS...] (try --help)"
case "$1" in
  -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
  aarch64|arm64) arch=aarch64 ;;
  x86_64|amd64) arch=x86_64 ;;
  *) die "unknown architecture: $1 (x86_64, aarch64)" ;;
esac
shift
bash scripts/build-static.sh --install-only "$arch"

triple=$arch-unknown-linux-musl
runner=native
if [ "$arch" != "$(uname -m)" ]; then
  # The linker comes from .cargo/config.toml; the runner only here, since a native host has no
  # use for qemu.
  runner_var=CARGO_TARGET_$(printf '%s' "$triple" | tr 'a-z-' 'A-Z_')_RUNNER
  export "$runner_var=${!runner_var:-qemu-$arch-static}"
  runner=${!runner_var}
fi
# qemu-user can deadlock a child forked while other guest threads run (seen once in CI: the
# `sh` of operate::tests::shell_quoting_runs_nothing parked in a futex for minutes), so the
# unit tests run one at a time, and every run is bounded (built first, unbounded): a run that
# hangs anyway is killed (timeout signals its whole process group) and run once more, saying
# so; a second hang fails.
CROSS_TIMEOUT=${CROSS_TIMEOUT:-600}
cross_test() {
  echo "==> cargo test --locked --target $triple $* (runner: $runner, bound ${CROSS_TIMEOUT}s)" >&2
  cargo test --locked --target "$triple" --no-run "$@"
  local rc=0
  timeout -k 10 "$CROSS_TIMEOUT" cargo test --locked --target "$triple" "$@" || rc=$?
  if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "test-cross: cargo test $* hung for ${CROSS_TIMEOUT}s under $runner (a qemu-user fork deadlock?); running it once more" >&2
    rc=0
    timeout -k 10 "$CROSS_TIMEOUT" cargo test --locked --target "$triple" "$@" || rc=$?
  fi
  return "$rc"
}
# By default the tests of pure code, which is what differs between machines: the unit tests,
# and the property tests (the `properties` module of the integration crate, tests/tests.rs).
# Two runs: a test-name filter applies to every test binary of one cargo invocation, and
# the unit tests' names hold no `properties::`.
if [ $# -eq 0 ]; then
  cross_test --lib -- --test-threads=1
  cross_test --test integration properties::
else
  cross_test "$@"
fi
