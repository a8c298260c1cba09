#!/usr/bin/env bash
# bench/soak: builds the static release binary and runs bench/soak.rs with it.
# Usage (as root, from anywhere): bash bench/soak.sh [--minutes 30] [--seed N]
# Writes bench/results/soak.txt. See bench/README.md.
# The harness itself is built in the test profile (`cargo test --bench`, passing the
# --bench flag it waits for): it times nothing, so it needs no release build of its own.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release --quiet --target x86_64-unknown-linux-musl
export BEAMUP_BENCH_BIN="$target/x86_64-unknown-linux-musl/release/beamup"
exec cargo test --quiet --bench soak -- --bench "$@"
