#!/usr/bin/env bash
# Checks the files under examples/ parse: every *.yml/*.yaml with PyYAML (all documents), the
# compose files also with `docker-compose config` (or `docker compose config`), the Kubernetes
# manifests against the API schemas with kubernetes-validate --strict (unknown fields fail),
# *.toml with Python's tomllib. The BEAMUP_* names they use are checked against beamup's sources by
# `cargo test --test integration docker_e2e::examples_`.
#
# Needs: python3 >= 3.11 with PyYAML (apt-get install python3-yaml), kubernetes-validate
# (pip install kubernetes-validate; it ships the schemas, no cluster needed), docker-compose or
# the docker compose plugin.
set -euo pipefail
cd "$(dirname "$0")/../examples"

python3 - <<'PY'
import pathlib, sys, tomllib
try:
    import yaml
except ImportError:
    sys.exit("check-examples: PyYAML missing: apt-get install python3-yaml (or pip install pyyaml)")
bad = 0
for path in sorted(pathlib.Path(".").rglob("*")):
    try:
        if path.suffix in (".yml", ".yaml"):
            docs = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
            assert docs, "no YAML document"
            print(f"yaml ok: {path} ({len(docs)} document(s))")
        elif path.suffix == ".toml":
            tomllib.loads(path.read_text())
            print(f"toml ok: {path}")
    except Exception as e:
        print(f"check-examples: {path}: {e}", file=sys.stderr)
        bad += 1
sys.exit(1 if bad else 0)
PY

if command -v docker-compose >/dev/null; then compose=(docker-compose)
elif docker compose version >/dev/null 2>&1; then compose=(docker compose)
else echo "check-examples: neither docker-compose nor the docker compose plugin found" >&2; exit 1
fi
for f in compose/docker-compose.yml compose/stack.yml rancher/docker-compose.yml; do
    "${compose[@]}" -f "$f" config >/dev/null
    echo "compose ok: $f"
done

command -v kubernetes-validate >/dev/null \
    || { echo "check-examples: kubernetes-validate missing: pip install kubernetes-validate" >&2; exit 1; }
kubernetes-validate --kubernetes-version 1.30.0 --strict kubernetes/*.yaml
