#!/usr/bin/env bash
# Push the image built by `make image` to REGISTRY (e.g. ghcr.io/lab or
# registry.example.org:5000/neuro) as <REGISTRY>/corejob-trainer:<version>-<sha> and
# :<version>, then print the digest reference to use as --image / chart image.digest.
#
# Environment: REGISTRY (required); TLS_VERIFY=false for a plain-HTTP registry (podman);
# ALLOW_DIRTY=1 to push an image built from uncommitted changes (its tag says -dirty);
# ENGINE, IMAGE_NAME as for build.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$(dirname "$here")"
# shellcheck source=image/podman/env.sh
source "$here/podman/env.sh"
# shellcheck source=image/version.sh
source "$here/version.sh"

registry=${REGISTRY:-}
if [[ -z $registry ]]; then
  echo "push: set REGISTRY, e.g. make push REGISTRY=ghcr.io/mylab" >&2
  exit 2
fi
registry=${registry%/}
engine=${ENGINE:-$(command -v docker >/dev/null && docker info >/dev/null 2>&1 && echo docker || echo podman)}
name=${IMAGE_NAME:-localhost/corejob-trainer}
version=$(image_version)
tag=$(image_tag)
if image_inputs_dirty && [[ ${ALLOW_DIRTY:-0} != 1 ]]; then
  echo "push: uncommitted changes in trainer/, corejob/, image/ or pyproject.toml: commit and 'make image' (or ALLOW_DIRTY=1)" >&2
  exit 2
fi
if ! "$engine" image inspect "$name:$tag" >/dev/null 2>&1; then
  echo "push: $name:$tag is not built; run 'make image' first" >&2
  exit 2
fi

push_args=()
if [[ $engine == podman && -n ${TLS_VERIFY:-} ]]; then push_args+=("--tls-verify=$TLS_VERIFY"); fi
digest_file=$(mktemp)
trap 'rm -f "$digest_file"' EXIT
for pushed in "$tag" "$version"; do
  "$engine" tag "$name:$tag" "$registry/corejob-trainer:$pushed"
  if [[ $engine == podman ]]; then
    podman push --quiet "${push_args[@]}" --digestfile "$digest_file" "$registry/corejob-trainer:$pushed"
  else
    docker push --quiet "$registry/corejob-trainer:$pushed" >/dev/null
    docker image inspect --format '{{index .RepoDigests 0}}' "$registry/corejob-trainer:$pushed" \
      | sed 's/.*@//' >"$digest_file"
  fi
done
echo "push: $registry/corejob-trainer:$tag"
echo "push: $registry/corejob-trainer@$(cat "$digest_file")"
