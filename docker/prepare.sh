#!/usr/bin/env bash
# The Docker part of the test suite: `bash docker/prepare.sh` (as root, Docker Engine running).
#
# 1. Installs what is missing, and only that: debootstrap (docker/base-images.sh builds the base
#    images from Debian's archive with it), docker-compose, and kubernetes-validate (PyPI) for
#    docker/check-examples.sh.
# 2. Checks the examples parse (docker/check-examples.sh).
#
# scripts/test.sh calls it before `cargo test`, which then runs tests/docker_e2e.rs with the rest
# of the suite (those tests run one at a time: they share the engine, the swarm state and the
# machine's 2 cores). Cold (no images) the Docker tests take about 5 minutes on a 2-core machine.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
  echo "docker/prepare.sh: run as root: debootstrap and the Docker daemon need it" >&2
  exit 1
fi
command -v docker >/dev/null 2>&1 \
  || { echo "docker/prepare.sh: docker not found: install Docker Engine (apt-get install docker.io)" >&2; exit 1; }
docker info >/dev/null 2>&1 \
  || { echo "docker/prepare.sh: the Docker daemon is not reachable: start it (service docker start)" >&2; exit 1; }

missing=()
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
if [ "${#missing[@]}" -gt 0 ]; then
  echo "==> installing missing packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi
python3 -c 'import yaml' 2>/dev/null || { echo "==> pip install pyyaml"; python3 -m pip install --quiet pyyaml; }
command -v kubernetes-validate >/dev/null 2>&1 \
  || { echo "==> pip install kubernetes-validate"; python3 -m pip install --quiet kubernetes-validate; }

echo "==> docker/check-examples.sh"
bash docker/check-examples.sh

