#!/usr/bin/env bash
# Build the trainer image with whichever engine works (docker with a running daemon,
# else podman with the project's private containers.conf) and tag it
#   <IMAGE_NAME>:<version>-<git sha>  and  <IMAGE_NAME>:<version>.
#
# Environment (all optional):
#   IMAGE_NAME   default localhost/corejob-trainer
#   BASE_IMAGE   default: the Dockerfile's CUDA base with docker; with podman on a machine
#                that cannot pull, the debootstrap base from image/local-base.sh
#   OFFLINE      1 = pre-download wheels on the host and install only from them
#                (default 1 when BASE_IMAGE is the local base)
#   ENGINE       docker|podman to force one
#   EXTRA_TAG    an additional full image reference to tag
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
cd "$root"
# shellcheck source=image/podman/env.sh
source "$here/podman/env.sh"

engine=${ENGINE:-}
if [[ -z $engine ]]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then engine=docker
  elif command -v podman >/dev/null; then engine=podman
  else echo "image: neither a running docker nor podman found; run 'make ci-system-deps'" >&2; exit 2
  fi
fi

local_base=localhost/corejob-base:bookworm
base=${BASE_IMAGE:-}
if [[ -z $base && $engine == podman ]]; then base=$local_base; fi
if [[ $base == "$local_base" ]]; then "$here/local-base.sh" "$local_base"; fi
offline=${OFFLINE:-$([[ $base == "$local_base" ]] && echo 1 || echo 0)}

mkdir -p build/wheels  # the Dockerfile bind-mounts it; empty for online builds
if [[ $offline == 1 ]]; then "$here/download-wheels.sh" build/wheels; fi

# shellcheck source=image/version.sh
source "$here/version.sh"
version=$(image_version)
tag=$(image_tag)
name=${IMAGE_NAME:-localhost/corejob-trainer}
source_url=${IMAGE_SOURCE:-$(git remote get-url origin 2>/dev/null || echo unknown)}

args=(build -f image/Dockerfile -t "$name:$tag" -t "$name:$version"
      --build-arg "VERSION=$version" --build-arg "REVISION=$(git rev-parse HEAD 2>/dev/null || echo unknown)"
      --build-arg "SOURCE=$source_url" --build-arg "PIP_NO_INDEX=$offline")
[[ -n $base ]] && args+=(--build-arg "BASE_IMAGE=$base")
# EXTRA_TAG: one more tag, e.g. the tests' content-hash tag (tests/support/podman.py).
[[ -n ${EXTRA_TAG:-} ]] && args+=(-t "$EXTRA_TAG")
[[ $engine == podman ]] && args+=(--layers --format docker)
echo "image: $engine ${args[*]} ."
"$engine" "${args[@]}" .
echo "image: built $name:$tag ($name:$version)"
