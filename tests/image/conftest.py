"""The image tests share one trainer image per session (tests/support/podman.py)."""

from tests.support.podman import trainer_image  # noqa: F401
