#!/usr/bin/env bash
# Assembles the two Docker build contexts of Dockerfile.example's paths from this repository and
# a mix project:
#
#   OUT_DIR/app/      APP_DIR without _build/ and deps/: Dockerfile.example's context
#   OUT_DIR/beamup/   the parts of this repository the binary is built from (Cargo.toml,
#                     Cargo.lock, src/, build.rs if present, and tests/support: the test
#                     fixture crate is a workspace member and beamup's dev-dependency, so
#                     cargo reads its manifest to load Cargo.toml), plus vendor/ and
#                     .cargo/config.toml from `cargo vendor`, so the build needs no crates.io
#                     access inside docker: docker/Dockerfile.source's context (the from-source
#                     path)
#
# Usage: docker/example-context.sh OUT_DIR APP_DIR
#        docker build -f docker/Dockerfile.source -t beamup:source OUT_DIR/beamup
#        docker build -f Dockerfile.example --build-arg BEAMUP_IMAGE=beamup:source OUT_DIR/app
#
# Why vendor: build containers on CI machines cannot be assumed to reach crates.io (here they
# reach it only through a proxy whose CA the images do not trust), while the host's cargo can.
# `cargo vendor` reads ~/.cargo/registry first, so a warm run takes about a second.
set -euo pipefail

die() { printf 'example-context: error: %s\n' "$*" >&2; exit 1; }
[ $# -eq 2 ] || die "usage: $0 OUT_DIR APP_DIR"
out=$1 app=$2
repo=$(cd "$(dirname "$0")/.." && pwd)
[ -f "$app/mix.exs" ] || die "$app has no mix.exs: APP_DIR must be a mix project"
command -v cargo >/dev/null || die "cargo not found (needed for cargo vendor): install rustup"
mkdir -p "$out"
[ -z "$(ls -A "$out")" ] || die "$out is not empty"

mkdir -p "$out/beamup/.cargo" "$out/app"
# Only what building the binary reads: any other file in the context would invalidate the
# Rust stage's layer cache on every change (tests, docs, benches) and rebuild all crates.
# Explicit [[bench]]/[[test]] targets whose files are missing do not bother `cargo build`.
parts=()
# Add files here if src/ starts to include_str!() them.
for p in Cargo.toml Cargo.lock build.rs src tests/support; do  # .cargo/config.toml: below
    [ -e "$repo/$p" ] && parts+=("$p")
done
tar -C "$repo" -c "${parts[@]}" | tar -C "$out/beamup" -x

(cd "$out/beamup" && cargo vendor --locked --quiet vendor >/dev/null) \
    || die "cargo vendor failed: is Cargo.lock up to date with Cargo.toml (cargo generate-lockfile)?"
# `cargo vendor` prints an absolute path; a relative one is resolved against the directory
# holding .cargo/, so the context can be built anywhere (here: /src in the Rust stage).
# The repository's own config first: its musl rustflags keep the static binary small.
{ cat "$repo/.cargo/config.toml"; echo; } >"$out/beamup/.cargo/config.toml"
cat >>"$out/beamup/.cargo/config.toml" <<'CFG'
[source.crates-io]
replace-with = "vendored-sources"

[source.vendored-sources]
directory = "vendor"
CFG

tar -C "$app" --exclude=./_build --exclude=./deps -c . | tar -C "$out/app" -x
