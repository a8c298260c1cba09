#!/usr/bin/env bash
# Installs what beamup's scripts need on Debian 12, and only what is missing:
#
#   bash scripts/prerequisites.sh demo      what scripts/demo.sh needs
#   bash scripts/prerequisites.sh test      what the tests need (scripts/test.sh; a superset)
#   bash scripts/prerequisites.sh CMD...    these commands (e.g. `mix dnsmasq`)
#
# The one home for "command -> Debian package": each command that is not found on PATH
# names its package, and the missing packages are installed together (one apt-get update,
# one apt-get install, as root). Nothing is installed, and apt is not touched, when every
# command is there. cargo is not an apt package (Debian 12's Rust is too old for this
# crate): when it is missing this says how to get it and fails before installing anything.
set -euo pipefail

me=scripts/prerequisites.sh
die() { printf '%s: %s\n' "$me" "$*" >&2; exit 1; }

# command -> Debian package(s) that provide it. Everything in `demo` and `test` is here.
declare -A provider=(
  [cc]="gcc libc6-dev"                       # the linker rustc calls, and the libc it links
  [erl]=erlang [epmd]=erlang
  [elixir]=elixir [mix]=elixir
  [rebar3]=rebar3
  [dnsmasq]=dnsmasq-base
  [ip]=iproute2
  [unshare]=util-linux [flock]=util-linux
  [hostname]=hostname
  [getent]=libc-bin
  [timeout]=coreutils
  [shellcheck]=shellcheck
)
# What each script needs. util-linux, hostname, libc-bin and coreutils are part of every
# Debian; they are checked so a stripped image gets them rather than a confusing failure.
demo=(cargo cc erl mix dnsmasq ip unshare hostname)
test=(cargo cc erl epmd elixir mix rebar3 dnsmasq ip unshare hostname getent timeout flock shellcheck)

case "${1:-}" in
  -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
  '') sed -n '2,12p' "$0" >&2; exit 2 ;;
  demo) set -- "${demo[@]}" ;;
  test) set -- "${test[@]}" ;;
esac

# Found: on PATH; for cc, also with the C library's start files (libc6-dev: gcc only
# recommends it, so `apt-get install --no-install-recommends gcc` leaves it out, and rustc's
# link then fails on Scrt1.o).
have() {
  command -v "$1" >/dev/null 2>&1 || return 1
  if [ "$1" = cc ]; then [ "$(cc -print-file-name=Scrt1.o)" != Scrt1.o ]; fi
}

# cargo first: without Rust nothing else is worth installing.
for cmd in "$@"; do
  [ "$cmd" = cargo ] || continue
  have cargo && break
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    die "cargo is installed in $HOME/.cargo/bin but not on PATH: run '. \"\$HOME/.cargo/env\"' (or open a new login shell), then rerun"
  fi
  die "cargo not found: install Rust with rustup (https://rustup.rs):
    curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y
    . \"\$HOME/.cargo/env\"
then rerun"
done

missing=()   # packages
wanted=()    # every package named, for the "all present" line
for cmd in "$@"; do
  [ "$cmd" = cargo ] && continue
  pkgs=${provider[$cmd]-}
  [ -n "$pkgs" ] || die "no Debian package known for '$cmd' (add it to the provider table)"
  found=1
  have "$cmd" || found=0
  for pkg in $pkgs; do
    [[ " ${wanted[*]-} " == *" $pkg "* ]] || wanted+=("$pkg")
    if [ "$found" -eq 0 ]; then
      [[ " ${missing[*]-} " == *" $pkg "* ]] || missing+=("$pkg")
    fi
  done
done

if [ "${#missing[@]}" -eq 0 ]; then
  echo "==> apt packages: all present (${wanted[*]-})"
  exit 0
fi
echo "==> installing missing packages: ${missing[*]}"
[ "$(id -u)" -eq 0 ] || die "run as root to install ${missing[*]} (or apt-get install them yourself)"
have apt-get || die "no apt-get here: install ${missing[*]} yourself (this script knows Debian's names)"
export DEBIAN_FRONTEND=noninteractive
# Wait for a running apt or dpkg (a fresh machine's unattended-upgrades, another shell)
# rather than fail at once on its lock.
wait_lock=(-o DPkg::Lock::Timeout=600)
apt-get "${wait_lock[@]}" update
apt-get "${wait_lock[@]}" install -y --no-install-recommends "${missing[@]}"

# A package that installed but whose command is still not found is a PATH problem: say so
# here rather than let the caller fail later on an unrelated-looking error.
for cmd in "$@"; do
  [ "$cmd" = cargo ] && continue
  have "$cmd" || die "installed ${provider[$cmd]}, but '$cmd' is still not found on PATH ($PATH)"
done
