#!/usr/bin/env bash
# Builds one root filesystem per supported Erlang/Elixir toolchain, from Debian's archive only,
# for tests/toolchains.rs (issue 17). Each root is a debootstrap minbase of one suite with
#
#   erlang-base erlang-crypto erlang-syntax-tools erlang-parsetools erlang-tools elixir
#
# then `apt-get install --no-install-recommends rebar3` inside it (rebar3 in debootstrap's
# --include pulls in GUI packages; dconf-service then fails to configure and debootstrap gives up):
#
#   bookworm  Debian 12     OTP 25 / Elixir 1.14 / rebar3 3.19
#   trixie    Debian 13     OTP 27 / Elixir 1.18 / rebar3 3.24
#   sid       unstable      OTP 29 / Elixir 1.20 / rebar3 3.28
#
# A root lives at $BEAMUP_ROOTS_DIR/<suite>-<hash> (default /var/cache/beamup-roots), where <hash>
# is a content hash of this script, the suite and the mirror, the way docker/base-images.sh tags
# its images: unchanged inputs reuse the root (a warm run costs a few stat calls), changed inputs
# build a new one and remove the outdated ones. A root is built in <suite>-<hash>.part-<pid> and
# renamed into place only once complete (rename(2) is atomic), so a half-built root is never taken
# as done; leftovers of killed builds are removed. Missing roots are built in parallel; one run of
# the script at a time (flock), so concurrent test runs wait for each other instead of building
# twice.
#
# Usage: scripts/toolchain-roots.sh [SUITE...]   build what is missing (default: all three),
#                                                print SUITE=/path lines on stdout
#        scripts/toolchain-roots.sh --paths       only print the paths the current inputs give
# Env:   DEBIAN_MIRROR (default: the first `URIs:` of /etc/apt/sources.list.d/debian.sources,
#        else http://deb.debian.org/debian), BEAMUP_ROOTS_DIR (default /var/cache/beamup-roots).
# Needs: root, debootstrap (apt-get install debootstrap).
set -euo pipefail

all_suites=(bookworm trixie sid)
packages=erlang-base,erlang-crypto,erlang-syntax-tools,erlang-parsetools,erlang-tools,elixir
late_packages=(rebar3)

log() { printf 'toolchain-roots: %s\n' "$*" >&2; }
die() { printf 'toolchain-roots: error: %s\n' "$*" >&2; exit 1; }

cache=${BEAMUP_ROOTS_DIR:-/var/cache/beamup-roots}
default_mirror() {
    local sources=/etc/apt/sources.list.d/debian.sources line
    if [ -r "$sources" ]; then
        line=$(grep -m1 '^URIs:' "$sources" || true)
        line=${line#URIs:}
        line=${line## }
        line=${line%% *}
        if [ -n "$line" ]; then printf '%s\n' "$line"; return; fi
    fi
    printf 'http://deb.debian.org/debian\n'
}
mirror=${DEBIAN_MIRROR:-$(default_mirror)}

paths_only=0
suites=()
for arg in "$@"; do
    case "$arg" in
        --paths) paths_only=1 ;;
        -h|--help) sed -n '2,28p' "$0"; exit 0 ;;
        bookworm|trixie|sid) suites+=("$arg") ;;
        *) die "unknown argument: $arg (suites: ${all_suites[*]}; try --help)" ;;
    esac
done
[ "${#suites[@]}" -gt 0 ] || suites=("${all_suites[@]}")

root_path() {
    local hash
    hash=$( { cat "$0"; printf '%s\n%s\n' "$1" "$mirror"; } | sha256sum | cut -c1-12)
    printf '%s/%s-%s\n' "$cache" "$1" "$hash"
}

if [ "$paths_only" -eq 1 ]; then
    for suite in "${suites[@]}"; do printf '%s=%s\n' "$suite" "$(root_path "$suite")"; done
    exit 0
fi

[ "$(id -u)" = 0 ] || die "run as root: debootstrap and chroot need it"
command -v debootstrap >/dev/null || die "debootstrap not found: apt-get install debootstrap"
mkdir -p "$cache"
exec 9>"$cache/.lock"
flock 9

# Removes $1 (a root or a half-built one) unless something is mounted below it.
remove_root() {
    if grep -q " $1/" /proc/self/mounts; then
        log "not removing $1: something is mounted inside it"
        return
    fi
    rm -rf --one-file-system "$1"
}

# Globals, not locals: the EXIT trap reads them after a `die` inside build().
part='' dlog=''
build() {
    local suite=$1 final=$2
    part="$2.part-$$"
    dlog=$(mktemp /tmp/beamup-roots-debootstrap.XXXXXX)
    # A build killed half-way leaves its .part dir: removed here and by the next run.
    trap 'remove_root "$part"; rm -f "$dlog"' EXIT
    trap 'exit 130' INT TERM
    log "debootstrap $suite from $mirror into $part"
    debootstrap --variant=minbase --include="$packages" "$suite" "$part" "$mirror" >"$dlog" 2>&1 \
        || { tail -30 "$dlog" >&2; die "debootstrap $suite failed (log above)"; }
    # apt inside the root needs name resolution; the root's resolv.conf is the machine's copy.
    cp /etc/resolv.conf "$part/etc/resolv.conf"
    log "apt-get install ${late_packages[*]} inside $suite"
    DEBIAN_FRONTEND=noninteractive chroot "$part" apt-get install -y --no-install-recommends \
        "${late_packages[@]}" >"$dlog" 2>&1 \
        || { tail -30 "$dlog" >&2; die "apt-get install ${late_packages[*]} in $suite failed (log above)"; }
    chroot "$part" apt-get clean
    # What the tests read to name the toolchain (and assert it is the one expected).
    {
        printf 'suite=%s\nmirror=%s\n' "$suite" "$mirror"
        printf 'otp=%s\n' "$(cat "$part"/usr/lib/erlang/releases/*/OTP_VERSION)"
        # shellcheck disable=SC2016 # ${Version} is dpkg-query's format, not the shell's
        printf 'elixir=%s\n' "$(chroot "$part" dpkg-query -W -f '${Version}' elixir)"
        # shellcheck disable=SC2016
        printf 'rebar3=%s\n' "$(chroot "$part" dpkg-query -W -f '${Version}' rebar3)"
    } >"$part/beamup-toolchain"
    # Mount points the test hosts bind over (see tests/common/chroot.rs); empty in the root.
    mkdir -p "$part/proc" "$part/dev" "$part/tmp"
    chmod 1777 "$part/tmp"
    mv -T "$part" "$final"
    trap - EXIT INT TERM
    rm -f "$dlog"
}

start=$SECONDS
# The missing roots are built in parallel: debootstrap mostly waits on the mirror and on dpkg,
# so three at once take little longer than the slowest one.
pids=()
trap 'kill "${pids[@]}" 2>/dev/null; exit 130' INT TERM
for suite in "${suites[@]}"; do
    final=$(root_path "$suite")
    # Leftovers: half-built roots of dead builds, roots of outdated inputs.
    for old in "$cache/$suite"-*; do
        [ -e "$old" ] || continue
        [ "$old" = "$final" ] && continue
        log "removing outdated or half-built $old"
        remove_root "$old"
    done
    if [ -f "$final/beamup-toolchain" ]; then
        log "reusing $final"
    else
        (
            t=$SECONDS
            build "$suite" "$final"
            log "built $final in $((SECONDS - t)) s"
        ) &
        pids+=("$!")
    fi
done
failed=0
for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
[ "$failed" -eq 0 ] || die "building a root failed (its messages are above)"
for suite in "${suites[@]}"; do printf '%s=%s\n' "$suite" "$(root_path "$suite")"; done
log "done in $((SECONDS - start)) s"
