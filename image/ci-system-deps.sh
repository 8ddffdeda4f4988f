#!/usr/bin/env bash
# Install the system packages the container tests need (podman, buildah, runc, debootstrap,
# rootless helpers, CNI plugins, checkov's git, shellcheck for the image scripts, and a
# registry server that `make push` is tested against).
# Idempotent and quick when everything is already there: apt is only touched when a
# binary is missing, because `apt-get update` alone costs ~20 s.
set -euo pipefail

PACKAGES=(podman buildah runc debootstrap uidmap slirp4netns fuse-overlayfs
          containernetworking-plugins golang-github-containernetworking-plugin-dnsname
          iptables git ca-certificates shellcheck docker-registry)
# Binaries (or plugin files) that prove each package above is installed.
PROBES=(podman buildah runc debootstrap newuidmap slirp4netns fuse-overlayfs
        /usr/lib/cni/bridge /usr/lib/cni/dnsname iptables git /etc/ssl/certs/ca-certificates.crt
        shellcheck docker-registry)

missing=()
for i in "${!PROBES[@]}"; do
  probe=${PROBES[$i]}
  if [[ $probe == /* ]]; then [[ -e $probe ]] && continue
  else command -v "$probe" >/dev/null 2>&1 && continue; fi
  missing+=("${PACKAGES[$i]}")
done

if ((${#missing[@]} == 0)); then
  echo "ci-system-deps: all present"
  exit 0
fi
if [[ $(id -u) != 0 ]]; then SUDO=sudo; else SUDO=; fi
echo "ci-system-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "ci-system-deps: done"
