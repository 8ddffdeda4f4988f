#!/usr/bin/env bash
# Build the local base image (Debian bookworm minbase + python3, tini, CA certificates)
# with debootstrap and import it into podman, because this machine cannot pull from any
# container registry. Skipped when the image already exists, so CI on a machine that
# built it before pays nothing.
#
# usage: image/local-base.sh [TAG]   (default localhost/corejob-base:bookworm)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=image/podman/env.sh
source "$here/podman/env.sh"

tag=${1:-localhost/corejob-base:bookworm}
if podman image exists "$tag"; then
  echo "local-base: $tag exists"
  exit 0
fi

# python3 runs the trainer, python3-venv builds its virtualenv, tini is PID 1 and
# forwards SIGTERM, ca-certificates lets W&B reach its server.
packages=python3,python3-venv,tini,ca-certificates
rootfs=$(mktemp -d /var/tmp/corejob-base.XXXXXX)
trap 'rm -rf "$rootfs"' EXIT
echo "local-base: debootstrap bookworm into $rootfs (1-3 min)"
debootstrap --variant=minbase --include="$packages" bookworm "$rootfs" \
  "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$rootfs.log" 2>&1 \
  || { tail -20 "$rootfs.log"; exit 1; }
rm -f "$rootfs.log"
# Package lists and the apt cache only add size; the image never runs apt itself.
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin \
  "$rootfs"/var/cache/apt/archives/*.deb
tar -C "$rootfs" -c . | podman import \
  --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' - "$tag" >/dev/null
echo "local-base: imported $tag ($(podman image inspect --format '{{.Size}}' "$tag") bytes)"
