#!/usr/bin/env bash
# bench/mesh: builds the static release binary, and the baseline binary (the commit
# before issue 11, cached), then runs bench/mesh.rs with both, interleaved.
# Usage (as root, from anywhere):
#   bash bench/mesh.sh [--sizes 3,5,8] [--intervals 1s,5s] [--runs 3] [--only new|baseline]
#                      [--dead-polls 24] [--dead-sizes 3] [--seed N]
#                      [--variants new,baseline,nolib,selfonly,nolib+poll,vmpoll,vmevent] [--trace-boot yes]
#                      [--work yes] [--boot-only yes]
#                      [--cut link|ip]
#                      [--ticktime 4] [--erl-flags '+sbwt none'] [--toolchain trixie] [--out NAME]
# BEAMUP_BENCH_BASELINE=/path/to/beamup skips the baseline build; BEAMUP_BENCH_BASELINE_REV
# picks another baseline commit (default d2e512b; issue 19's scale runs use d0d2058).
# Writes bench/results/mesh.txt, or mesh-scale.txt when every size is 16 or more.
# See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
musl=x86_64-unknown-linux-musl

only=""
variants=""
prev=""
for arg in "$@"; do
  [ "$prev" = "--only" ] && only="$arg"
  [ "$prev" = "--variants" ] && variants="$arg"
  prev="$arg"
done
# --cut ip partitions a host with nftables.
if [[ " $* " == *" --cut ip "* ]] && ! command -v nft >/dev/null; then
  apt-get install -y -q nftables >&2
fi
# --variants without the baseline needs no baseline build either.
if [ -n "$variants" ] && ! [[ ",$variants," == *",baseline,"* ]]; then
  only="new"
fi

# The baseline in a target dir of its own: in the shared one, cargo would take the
# baseline's artifacts for those of the checkout (same package, same unit hash, and a
# dep-info pointing at the exported sources, which are older than the output).
if [ "$only" != "new" ] && [ -z "${BEAMUP_BENCH_BASELINE:-}" ]; then
  rev="$(git rev-parse --verify "${BEAMUP_BENCH_BASELINE_REV:-d2e512b}^{commit}")"
  cache="$target/bench-baseline/$rev"
  if [ ! -x "$cache/beamup" ]; then
    echo "bench/mesh.sh: building the baseline beamup at ${rev:0:7} (once, cached in $cache)" >&2
    rm -rf "$cache/src"
    mkdir -p "$cache/src"
    # A plain export of the commit, not a worktree: nothing in the repository changes.
    git archive "$rev" | tar -x -C "$cache/src"
    # The export sits under this checkout's target/, inside its workspace (a [workspace]
    # since issue 18): an older commit without one becomes a workspace of its own.
    grep -q '^\[workspace\]' "$cache/src/Cargo.toml" || printf '\n[workspace]\n' >> "$cache/src/Cargo.toml"
    (cd "$cache/src" && CARGO_TARGET_DIR="$cache/target" cargo build --release --quiet --locked --target "$musl")
    cp "$cache/target/$musl/release/beamup" "$cache/beamup.tmp"
    mv "$cache/beamup.tmp" "$cache/beamup"
  fi
  export BEAMUP_BENCH_BASELINE="$cache/beamup"
  export BEAMUP_BENCH_BASELINE_REV="${rev:0:7}"
fi

cargo build --release --quiet --target "$musl"
export BEAMUP_BENCH_BIN="$target/$musl/release/beamup"
if [ -n "${BEAMUP_BENCH_BASELINE:-}" ] && cmp -s "$BEAMUP_BENCH_BIN" "$BEAMUP_BENCH_BASELINE"; then
  echo "bench/mesh.sh: the binary under test is byte for byte the baseline ($BEAMUP_BENCH_BASELINE):" >&2
  echo "  a stale build? try: cargo clean -p beamup --release --target $musl" >&2
  exit 1
fi
exec cargo bench --quiet --bench mesh -- "$@"
