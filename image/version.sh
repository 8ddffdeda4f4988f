# shellcheck shell=bash
# The image's version and tag, shared by build.sh and push.sh so they always agree:
#   image_version  -> the project's version (corejob/__init__.py), e.g. 0.1.0
#   image_tag      -> <version>-<12-char git sha>, plus -dirty when the image's inputs
#                     (trainer, corejob, pyproject.toml, image/) have uncommitted changes
image_version() {
  sed -n 's/^__version__ = "\(.*\)"/\1/p' corejob/__init__.py | head -1
}

image_inputs_dirty() {
  [[ -n $(git status --porcelain -- trainer corejob pyproject.toml image 2>/dev/null) ]]
}

image_tag() {
  local sha
  sha=$(git rev-parse --short=12 HEAD 2>/dev/null || echo nogit)
  if image_inputs_dirty; then sha="$sha-dirty"; fi
  echo "$(image_version)-$sha"
}
