#!/usr/bin/env bash
# bench/mesh: builds the static release binary and runs bench/mesh.rs with it.
# Usage (as root, from anywhere): bash bench/mesh.sh [--sizes 3,5,8] [--intervals 1s,5s] [--runs 3]
# Writes bench/results/mesh.txt. See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --quiet --target x86_64-unknown-linux-musl
export BEAMUP_BENCH_BIN="$target/x86_64-unknown-linux-musl/release/beamup"
exec cargo bench --quiet --bench mesh -- "$@"
