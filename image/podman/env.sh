# shellcheck shell=bash
# Source this to run podman/buildah with the project's private configuration
# (runc runtime, ulimits this sandbox allows). Used by the Makefile and image scripts;
# Python callers use tests/support/podman.py / corejob's container backend instead.
CONTAINERS_CONF="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/containers.conf"
export CONTAINERS_CONF
