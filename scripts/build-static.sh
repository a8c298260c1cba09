#!/usr/bin/env bash
# Builds beamup's release binaries: static (musl) Linux executables, one per architecture.
#
#   bash scripts/build-static.sh x86_64 aarch64     (amd64 and arm64 are accepted too)
#
# For each architecture:
# 1. Installs what is missing, and only that: the rustup target and, when cross-building, the
#    GNU cross linker driver (Debian: gcc-aarch64-linux-gnu) and qemu-user-static to run the
#    result. apt-get runs through sudo when not root (GitHub's runners).
# 2. `cargo build --release --locked --target <arch>-unknown-linux-musl` into
#    target/<triple>/release/beamup (.cargo/config.toml holds the flags that keep it small and
#    names aarch64-linux-gnu-gcc as aarch64's linker; CARGO_TARGET_<TRIPLE>_LINKER overrides).
# 3. Checks it: an ELF for that machine, no program interpreter and no dynamic section (fully
#    static: runs on any distribution, or none), at most 2.5 MB (2,500,000 bytes), and
#    `beamup --version` run (through qemu-<arch>-static when cross-built) names the triple.
# 4. Copies it into target/dist/ under both names users look for, the Rust triple and Docker's
#    TARGETARCH (`beamup-aarch64-unknown-linux-musl`, `beamup-linux-arm64`), the names the
#    release assets and docker/Dockerfile use.
# Then writes target/dist/SHA256SUMS for every binary in target/dist/ (`sha256sum -c` format).
#
#   --install-only      stop after step 1 (scripts/test.sh installs up front)
#   --release-tag vX.Y.Z  also check that `--version` says X.Y.Z (the release workflow passes
#                       the pushed tag, so a tag that disagrees with Cargo.toml ships nothing)
#
# The release workflow (.github/workflows/release.yml) runs exactly this; so do the tests
# (tests/static_build.rs, tests/docker_e2e.rs).
set -euo pipefail
cd "$(dirname "$0")/.."

die() { printf 'build-static: error: %s\n' "$*" >&2; exit 1; }
log() { printf '==> %s\n' "$*" >&2; }

# 2.5 MB: the project's size target for the static binary.
max_bytes=2500000
# cargo's target directory, as cargo picks it (tests and CI may move it).
target_dir=${CARGO_TARGET_DIR:-target}
dist=$target_dir/dist

install_only=0
release_tag=
arches=()
while [ $# -gt 0 ]; do
  arg=$1; shift
  case "$arg" in
    --install-only) install_only=1 ;;
    --release-tag)
      [ $# -gt 0 ] || die "--release-tag needs a tag, e.g. v0.1.0"
      release_tag=$1; shift ;;
    x86_64|amd64) arches+=(x86_64) ;;
    aarch64|arm64) arches+=(aarch64) ;;
    -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
    *) die "unknown argument: $arg (architectures: x86_64, aarch64; try --help)" ;;
  esac
done
[ "${#arches[@]}" -gt 0 ] || die "name an architecture: x86_64 and/or aarch64 (try --help)"

host_arch=$(uname -m)

# apt-get install, through sudo when not root.
apt_install() {
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "need root or sudo to install $*"
    sudo=(sudo)
  fi
  command -v apt-get >/dev/null || die "install $* (no apt-get here)"
  log "installing missing packages: $*"
  export DEBIAN_FRONTEND=noninteractive
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# Step 1 for one architecture.
prerequisites() {
  local arch=$1 triple=$1-unknown-linux-musl
  command -v cargo >/dev/null || die "cargo not found: install Rust with rustup (https://rustup.rs)"
  command -v rustup >/dev/null || die "rustup not found: the build needs 'rustup target add $triple'"
  if ! rustup target list --installed | grep -qx "$triple"; then
    log "rustup target add $triple"
    rustup target add "$triple"
  fi
  command -v readelf >/dev/null || apt_install binutils
  if [ "$arch" != "$host_arch" ]; then
    # Debian names the package after the triple with `-` for `_` (gcc-x86-64-linux-gnu).
    command -v "$arch-linux-gnu-gcc" >/dev/null || apt_install "gcc-${arch//_/-}-linux-gnu"
    command -v "qemu-$arch-static" >/dev/null || apt_install qemu-user-static
  fi
}

# Runs the built binary for `arch` with the given arguments: natively, or under qemu.
run_binary() {
  local arch=$1 bin=$2; shift 2
  if [ "$arch" = "$host_arch" ]; then "$bin" "$@"; else "qemu-$arch-static" "$bin" "$@"; fi
}

# Steps 2 and 3 for one architecture.
build_and_check() {
  local arch=$1 triple=$1-unknown-linux-musl
  local bin=$target_dir/$triple/release/beamup
  log "cargo build --release --locked --target $triple"
  cargo build --release --locked --target "$triple"
  # With panic=abort nothing unwinds, so the unwind tables the prebuilt std brings along
  # (.eh_frame, .gcc_except_table: about 330 KB) are dead weight: dropped here, which keeps
  # the binary under the size budget. Idempotent: a second run finds nothing to drop.
  local objcopy=objcopy
  [ "$arch" = "$host_arch" ] || objcopy=$arch-linux-gnu-objcopy
  "$objcopy" --remove-section=.eh_frame --remove-section=.gcc_except_table "$bin"

  local headers machine size version
  headers=$(readelf --file-header --program-headers --dynamic "$bin")
  case "$arch" in
    x86_64) machine='X86-64' ;;
    aarch64) machine='AArch64' ;;
  esac
  grep -q "Machine:.*$machine" <<<"$headers" || die "$bin is not an $machine executable"
  if grep -q 'INTERP' <<<"$headers" || ! grep -q 'There is no dynamic section' <<<"$headers"; then
    die "$bin is not fully static (it has a program interpreter or a dynamic section)"
  fi
  size=$(stat -c %s "$bin")
  [ "$size" -le "$max_bytes" ] || die "$bin is $size bytes, over the $max_bytes-byte budget"
  version=$(run_binary "$arch" "$bin" --version) || die "$bin --version failed"
  [[ "$version" == *"($triple, commit "* ]] || die "$bin --version says '$version', not $triple"
  if [ -n "$release_tag" ] && [[ "$version" != "beamup ${release_tag#v} ("* ]]; then
    die "tag $release_tag does not match '$version': set Cargo.toml's version, or tag v<version>"
  fi
  log "$bin: $size bytes, static, $version"
}

docker_arch() {
  case "$1" in x86_64) echo amd64 ;; aarch64) echo arm64 ;; esac
}

for arch in "${arches[@]}"; do prerequisites "$arch"; done
[ "$install_only" -eq 0 ] || exit 0

mkdir -p "$dist"
for arch in "${arches[@]}"; do
  build_and_check "$arch"
  triple=$arch-unknown-linux-musl
  install -m 0755 "$target_dir/$triple/release/beamup" "$dist/beamup-$triple"
  install -m 0755 "$target_dir/$triple/release/beamup" "$dist/beamup-linux-$(docker_arch "$arch")"
done

# Written to a temporary name first: a failed run leaves no half-written sums file behind.
(
  cd "$dist"
  rm -f SHA256SUMS.tmp
  sha256sum beamup-* >SHA256SUMS.tmp
  mv SHA256SUMS.tmp SHA256SUMS
)
log "$dist: $(cd "$dist" && ls beamup-* | tr '\n' ' ')+ SHA256SUMS"
