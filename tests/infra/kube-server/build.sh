#!/usr/bin/env bash
# Build kube-apiserver + kube-controller-manager $KUBE_VERSION from Debian bookworm's own
# `kubernetes` source package with Debian's Go, into $COREJOB_KUBE_SERVER_DIR (see env.sh).
# Idempotent: exits at once when the binaries are there. flock-protected: a second caller
# (another test run, another worktree) waits for the first build instead of starting its own.
# The ~2 GB source tree and Go caches live in a scratch folder deleted on exit; only the two
# binaries (~150 MB) are kept. Needs the packages install-deps.sh installs.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=env.sh
source "$here/env.sh"
dest=$COREJOB_KUBE_SERVER_DIR
built() { [[ -x $dest/kube-apiserver && -x $dest/kube-controller-manager ]]; }
built && exit 0

if [[ $(id -u) != 0 && ! -w $COREJOB_KUBE_CACHE ]]; then SUDO=sudo; else SUDO=; fi
$SUDO mkdir -p "$COREJOB_KUBE_CACHE"
exec 9>>"$COREJOB_KUBE_CACHE/.kube-$KUBE_VERSION.lock"
if ! flock -n 9; then
  echo "kube-server build: another build holds the lock, waiting for it"
  flock 9
fi
built && exit 0

start=$SECONDS
scratch=$(mktemp -d "${TMPDIR:-/tmp}/kube-build.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
echo "kube-server build: $KUBE_DEBIAN_SOURCE into $dest (scratch $scratch)"

# A private apt configuration with deb-src entries: the machine's sources stay untouched.
apt_dir=$scratch/apt
mkdir -p "$apt_dir/lists/partial" "$apt_dir/parts" "$apt_dir/cache/archives/partial"
mirror=${COREJOB_DEBIAN_MIRROR:-http://deb.debian.org}
cat >"$apt_dir/sources.list" <<SOURCES
deb-src $mirror/debian bookworm main
deb-src $mirror/debian bookworm-updates main
deb-src $mirror/debian-security bookworm-security main
SOURCES
apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=$apt_dir/parts"
          -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
          -o APT::Sandbox::User=root -o Debug::NoLocking=1)
apt-get "${apt_opts[@]}" update -qq
(cd "$scratch" && apt-get "${apt_opts[@]}" source -qq --download-only "$KUBE_DEBIAN_SOURCE")
# dpkg-source applies debian/patches/series (3.0 quilt) while unpacking.
(cd "$scratch" && dpkg-source -q -x --no-check ./kubernetes_*.dsc src >/dev/null)
tree=$scratch/src

# The one fix: vendored reflect2 1.0.1 crashes under Go >= 1.18 (the apiserver dies on the
# first custom-resource write); Debian's reflect2 1.0.2 is a drop-in replacement.
reflect2=/usr/share/gocode/src/github.com/modern-go/reflect2
rm -f "$tree"/vendor/github.com/modern-go/reflect2/*.go "$tree"/vendor/github.com/modern-go/reflect2/*.s
cp "$reflect2"/*.go "$tree/vendor/github.com/modern-go/reflect2/"
cp "$reflect2"/*.s "$tree/vendor/github.com/modern-go/reflect2/" 2>/dev/null || true
rm -f "$tree"/vendor/github.com/modern-go/reflect2/*_test.go

export GOPATH=$scratch/gopath GOCACHE=$scratch/gocache GOFLAGS=-mod=vendor GO111MODULE=on
(cd "$tree" && CGO_ENABLED=0 KUBE_GIT_VERSION=$KUBE_VERSION KUBE_GIT_TREE_STATE=clean \
  make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" >"$scratch/make.log" 2>&1) || {
  tail -40 "$scratch/make.log" >&2; echo "kube-server build: make failed" >&2; exit 1; }

staging=$dest.partial.$$
$SUDO rm -rf "$staging"
$SUDO mkdir -p "$staging"
for bin in kube-apiserver kube-controller-manager; do
  $SUDO install -m 0755 "$tree/_output/bin/$bin" "$staging/$bin"
done
"$staging/kube-apiserver" --version | grep -q "$KUBE_VERSION"
$SUDO rm -rf "$dest"
$SUDO mv "$staging" "$dest"
echo "kube-server build: done in $((SECONDS - start)) s: $("$dest/kube-apiserver" --version)"
