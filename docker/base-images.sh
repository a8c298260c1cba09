#!/usr/bin/env bash
# Builds the three base images beamup's Docker tests use, from Debian's package archive only:
#
#   beamup-base-runner   a debian:bookworm-slim look-alike: debootstrap --variant=minbase plus the
#                        shared libraries a release's bundled erts loads (libtinfo6, zlib1g,
#                        libstdc++6, libssl3 for :crypto), docs/man/locales stripped like slim.
#   beamup-base-elixir   runner + Debian 12's elixir 1.14 / OTP 25 (apt-get inside `docker build`).
#   beamup-base-rust     runner + gcc (the linker rustc calls) + this machine's Rust toolchain with
#                        its x86_64-unknown-linux-musl target, copied in: no toolchain can be
#                        downloaded here, and Debian 12's rustc (1.63) is too old for edition 2024.
#
# Why not docker.io images: the machines this runs on have a Docker Engine but no registry.
# Dockerfile.example defaults to the public images (hexpm/elixir, debian:bookworm-slim, rust);
# these stand in for them.
#
# Every tag is a content hash of this script, docker/*.Dockerfile and (for the Rust image) the
# toolchain's `rustc -vV`, so an image is reused as long as its inputs are unchanged and a
# second run costs a few `docker image inspect`s. Older tags of the same repositories are removed.
#
# Usage: docker/base-images.sh            build what is missing, print KEY=image lines on stdout
#        docker/base-images.sh --tags     only print the tags the current inputs would get
# Env:   DEBIAN_MIRROR (default http://deb.debian.org/debian), DEBIAN_SUITE (default bookworm),
#        BEAMUP_RUST_SYSROOT (default: `rustc --print sysroot`).
#        Another suite (sid: OTP 29 / Elixir 1.20, issue 17) gets its own repositories
#        (beamup-base-runner-sid, beamup-base-elixir-sid), so the suites' images never prune each
#        other, and no Rust image (the Rust stage does not depend on the suite; only bookworm's is
#        built and printed).
# Needs: root, docker, debootstrap (apt-get install debootstrap), a rustup toolchain with
#        x86_64-unknown-linux-musl (rustup target add x86_64-unknown-linux-musl).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
suite=${DEBIAN_SUITE:-bookworm}
musl_target=x86_64-unknown-linux-musl

log() { printf 'base-images: %s\n' "$*" >&2; }
die() { printf 'base-images: error: %s\n' "$*" >&2; exit 1; }

command -v docker >/dev/null || die "docker not found: install Docker Engine (apt-get install docker.io)"
docker info >/dev/null 2>&1 || die "cannot talk to the Docker daemon (is it running, are you root?)"

sysroot=${BEAMUP_RUST_SYSROOT:-$(rustc --print sysroot 2>/dev/null || true)}
if [ -z "$sysroot" ] || [ ! -x "$sysroot/bin/rustc" ]; then
    die "no Rust toolchain found: install rustup, or set BEAMUP_RUST_SYSROOT to a toolchain directory"
fi
[ -d "$sysroot/lib/rustlib/$musl_target/lib" ] \
    || die "toolchain $sysroot lacks the $musl_target target: rustup target add $musl_target"
rust_version=$("$sysroot/bin/rustc" -vV)

# What differs between suites: Debian 13 and unstable renamed libssl3 to libssl3t64 (the 64-bit
# time_t transition), and unstable has no -updates or -security archive.
case "$suite" in
    bookworm) repo_suffix='' libssl=libssl3 ;;
    *) repo_suffix="-$suite" libssl=libssl3t64 ;;
esac

hash_of() { sha256sum | cut -c1-12; }
common_inputs=$(cat "$0" "$here"/*.Dockerfile; printf '%s\n%s\n' "$mirror" "$suite")
runner_tag="beamup-base-runner$repo_suffix:$(printf '%s' "$common_inputs" | hash_of)"
elixir_tag="beamup-base-elixir$repo_suffix:$(printf '%s' "$common_inputs" | hash_of)"
rust_tag="beamup-base-rust:$(printf '%s\n%s' "$common_inputs" "$rust_version" | hash_of)"

print_tags() {
    printf 'RUNNER_IMAGE=%s\nBUILDER_IMAGE=%s\n' "$runner_tag" "$elixir_tag"
    if [ -z "$repo_suffix" ]; then printf 'RUST_BUILDER_IMAGE=%s\n' "$rust_tag"; fi
}
if [ "${1:-}" = "--tags" ]; then print_tags; exit 0; fi

have() { docker image inspect "$1" >/dev/null 2>&1; }

# Scratch space for the rootfs and the Rust build context, removed on every exit path.
work=$(mktemp -d /tmp/beamup-base-images.XXXXXX)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM

# Removes tags of the repository `$1` other than `$2`, so changed inputs do not pile up images.
prune_old() {
    local repo=${1%%:*} keep=$2 old
    for old in $(docker image ls --format '{{.Repository}}:{{.Tag}}' "$repo"); do
        if [ "$old" != "$keep" ]; then
            log "removing outdated $old"
            docker image rm "$old" >/dev/null || log "could not remove $old (still used by a container?)"
        fi
    done
}

build_runner() {
    command -v debootstrap >/dev/null || die "debootstrap not found: apt-get install debootstrap"
    [ "$(id -u)" = 0 ] || die "debootstrap needs root"
    local rootfs=$work/rootfs
    log "debootstrap $suite from $mirror (minbase + BEAM runtime libraries)"
    # libtinfo6/zlib1g/libstdc++6 are what beam.smp links, libssl3 is what crypto.so links
    # (see `ldd erts-*/bin/beam.smp`); minbase already has all but libssl3.
    debootstrap --variant=minbase --include="$libssl,libtinfo6,zlib1g,libstdc++6" \
        "$suite" "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
        || { tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed (log above)"; }

    # The same trimming the official slim images do: no docs, man pages or translations,
    # now and for every later `apt-get install` in images built from this one.
    cat >"$rootfs/etc/dpkg/dpkg.cfg.d/docker-slim" <<'CFG'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
CFG
    find "$rootfs/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
    rm -rf "$rootfs"/usr/share/{man,info,locale,lintian}/*
    # Like the official images: apt keeps no .debs and no package lists in a layer.
    cat >"$rootfs/etc/apt/apt.conf.d/docker-clean" <<'CFG'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache ""; Dir::Cache::srcpkgcache "";
APT::Install-Recommends "false";
CFG
    if [ "$suite" = sid ] || [ "$suite" = unstable ]; then
        printf 'deb %s %s main\n' "$mirror" "$suite" >"$rootfs/etc/apt/sources.list"
        # unstable's Release file is valid for a week only (stable's has no Valid-Until); on a
        # machine whose clock runs past that, as the test machines' may, `apt-get update` in
        # the image builds would refuse it. These images are test stand-ins, never shipped.
        printf 'Acquire::Check-Valid-Until "false";\n' >"$rootfs/etc/apt/apt.conf.d/99beamup-valid-until"
    else
        printf 'deb %s %s main\ndeb %s %s-updates main\ndeb http://deb.debian.org/debian-security %s-security main\n' \
            "$mirror" "$suite" "$mirror" "$suite" "$suite" >"$rootfs/etc/apt/sources.list"
    fi
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/log/* "$rootfs"/tmp/*
    # The container runtime provides these; the host's copies must not leak into the image.
    : >"$rootfs/etc/resolv.conf"
    : >"$rootfs/etc/hostname"

    log "importing $runner_tag"
    tar --numeric-owner -C "$rootfs" -c . | docker import \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["bash"]' \
        --message "beamup test runner base: debootstrap $suite minbase" \
        - "$runner_tag" >/dev/null
    rm -rf "$rootfs"
}

build_elixir() {
    log "building $elixir_tag (apt-get inside docker build)"
    docker build --quiet --force-rm --build-arg "BASE_IMAGE=$runner_tag" -t "$elixir_tag" \
        -f "$here/elixir.Dockerfile" "$here" >/dev/null
}

build_rust() {
    # Only what `cargo build --target x86_64-unknown-linux-musl` runs: cargo, rustc and its
    # shared libraries, the host std (build scripts, proc macros), rust-lld (the default
    # linker of x86_64-unknown-linux-gnu since Rust 1.90) and the musl std with its
    # self-contained crt objects. Docs, sources and other tools stay out (1.6 GB -> ~0.75 GB).
    local ctx=$work/rust-context tc=$work/rust-context/toolchain
    mkdir -p "$tc/bin" "$tc/lib/rustlib"
    cp -a "$sysroot/bin/cargo" "$sysroot/bin/rustc" "$tc/bin/"
    cp -a "$sysroot"/lib/*.so* "$tc/lib/"
    cp -a "$sysroot/lib/rustlib/x86_64-unknown-linux-gnu" "$sysroot/lib/rustlib/$musl_target" "$tc/lib/rustlib/"
    cp "$here/rust.Dockerfile" "$ctx/Dockerfile"
    log "building $rust_tag (toolchain from $sysroot: $(printf '%s' "$rust_version" | head -1))"
    docker build --quiet --force-rm --build-arg "BASE_IMAGE=$runner_tag" -t "$rust_tag" "$ctx" >/dev/null
    rm -rf "$ctx"
}

start=$SECONDS
if have "$runner_tag"; then log "reusing $runner_tag"; else build_runner; prune_old "$runner_tag" "$runner_tag"; fi
if have "$elixir_tag"; then log "reusing $elixir_tag"; else build_elixir; prune_old "$elixir_tag" "$elixir_tag"; fi
if [ -n "$repo_suffix" ]; then :
elif have "$rust_tag"; then log "reusing $rust_tag"; else build_rust; prune_old "$rust_tag" "$rust_tag"; fi
log "done in $((SECONDS - start)) s"
print_tags
