#!/usr/bin/env bash
# bench/mesh: builds the static release binary, and the baseline binary (the commit
# before issue 11, cached), then runs bench/mesh.rs with both, interleaved.
# Usage (as root, from anywhere):
#   bash bench/mesh.sh [--sizes 3,5,8] [--intervals 1s,5s] [--runs 3] [--only new|baseline]
#                      [--dead-polls 24] [--dead-sizes 3] [--seed N]
# BEAMUP_BENCH_BASELINE=/path/to/beamup skips the baseline build; BEAMUP_BENCH_BASELINE_REV
# picks another baseline commit (default d2e512b). Writes bench/results/mesh.txt.
# See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
musl=x86_64-unknown-linux-musl

only=""
prev=""
for arg in "$@"; do
  [ "$prev" = "--only" ] && only="$arg"
  prev="$arg"
done

# The baseline first: it shares the target dir (and so the dependencies' artifacts) with
# the binary under test, and its result is copied out before that one is built over it.
if [ "$only" != "new" ] && [ -z "${BEAMUP_BENCH_BASELINE:-}" ]; then
  rev="$(git rev-parse --verify "${BEAMUP_BENCH_BASELINE_REV:-d2e512b}^{commit}")"
  cache="$target/bench-baseline/$rev"
  if [ ! -x "$cache/beamup" ]; then
    echo "bench/mesh.sh: building the baseline beamup at ${rev:0:7} (once, cached in $cache)" >&2
    rm -rf "$cache/src"
    mkdir -p "$cache/src"
    # A plain export of the commit, not a worktree: nothing in the repository changes.
    git archive "$rev" | tar -x -C "$cache/src"
    (cd "$cache/src" && CARGO_TARGET_DIR="$target" cargo build --release --quiet --locked --target "$musl")
    cp "$target/$musl/release/beamup" "$cache/beamup.tmp"
    mv "$cache/beamup.tmp" "$cache/beamup"
  fi
  export BEAMUP_BENCH_BASELINE="$cache/beamup"
  export BEAMUP_BENCH_BASELINE_REV="${rev:0:7}"
fi

cargo build --release --quiet --target "$musl"
export BEAMUP_BENCH_BIN="$target/$musl/release/beamup"
exec cargo bench --quiet --bench mesh -- "$@"
