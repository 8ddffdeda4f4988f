#!/usr/bin/env bash
# Download every wheel the image installs into a directory on the host (default
# build/wheels), because pip inside a container build cannot verify PyPI's certificate
# on this machine. The Dockerfile bind-mounts that directory and installs offline.
# Idempotent: pip skips wheels that are already there.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-build/wheels}
PY=${PY:-.venv/bin/python}
mkdir -p "$dest"
# setuptools/wheel: the build backend of our own package (pyproject build-system).
log=$(mktemp)
trap 'rm -f "$log"' EXIT
"$PY" -m pip download --quiet --only-binary=:all: --dest "$dest" \
  -r image/requirements.lock "setuptools>=68" wheel >"$log" 2>&1 \
  || { grep -v "is ignored" "$log" >&2; exit 1; }
n=$(find "$dest" -name '*.whl' | wc -l)
((n > 0)) || { echo "download-wheels: no wheels in $dest" >&2; exit 1; }
echo "download-wheels: $n wheels in $dest ($(du -sh "$dest" | cut -f1))"
