#!/usr/bin/env bash
# bench/doctor: builds the static release binary and runs bench/doctor.rs with it.
# Usage (as root, from anywhere): bash bench/doctor.sh [--runs 11]
# Writes bench/results/doctor.txt. See bench/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --quiet --target x86_64-unknown-linux-musl
export BEAMUP_BENCH_BIN="$target/x86_64-unknown-linux-musl/release/beamup"
exec cargo bench --quiet --bench doctor -- "$@"
