#!/usr/bin/env bash
# Push the image built by `make image` to REGISTRY (e.g. ghcr.io/lab or
# registry.example.org:5000/neuro) as <REGISTRY>/corejob-trainer:<version>-<sha> and
# :<version>, then print the pushed digest reference for `--image` / image.digest.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$(dirname "$here")"
# shellcheck source=image/podman/env.sh
source "$here/podman/env.sh"
registry=${REGISTRY:?"push: set REGISTRY, e.g. make push REGISTRY=ghcr.io/mylab"}
registry=${registry%/}
engine=${ENGINE:-$(command -v docker >/dev/null && docker info >/dev/null 2>&1 && echo docker || echo podman)}
name=${IMAGE_NAME:-localhost/corejob-trainer}
version=$(sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
sha=$(git rev-parse --short=12 HEAD)
[[ -z $(git status --porcelain -- trainer corejob pyproject.toml image) ]] \
  || { echo "push: uncommitted changes in trainer/corejob/image: commit, then make image" >&2; exit 2; }
"$engine" image inspect "$name:$version-$sha" >/dev/null 2>&1 \
  || { echo "push: $name:$version-$sha not built; run 'make image' first" >&2; exit 2; }
for tag in "$version-$sha" "$version"; do
  "$engine" tag "$name:$version-$sha" "$registry/corejob-trainer:$tag"
  "$engine" push "$registry/corejob-trainer:$tag"
done
echo "push: $registry/corejob-trainer:$version-$sha"
