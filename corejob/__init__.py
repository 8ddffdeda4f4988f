"""corejob controller: render, submit, track and collect training jobs (no torch needed)."""

# The project's one version string: the package, the chart's appVersion, the image tag.
__version__ = "0.1.0"
