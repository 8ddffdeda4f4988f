"""Model components; importing this package registers them all in the registry."""

from trainer.models.components import (  # noqa: F401
    adapter,
    convnet,
    frontend,
    modulator,
    readout,
    recurrent,
)
