"""Lightning's lines get a timestamp; its tips and known deprecations are dropped."""

from __future__ import annotations

import io
import logging
import re
import warnings

import pytest
from pytorch_lightning.utilities import rank_zero_info

from trainer.quiet_logs import LIGHTNING_LOGGERS, quiet_logs

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} (INFO|WARNING) ")


@pytest.fixture
def captured():
    """quiet_logs() writing to a buffer; the loggers' previous state restored afterwards."""
    names = [*LIGHTNING_LOGGERS, "py.warnings"]
    saved = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).propagate) for n in names}
    stream = io.StringIO()
    with warnings.catch_warnings():  # restores warnings.showwarning and the filters
        quiet_logs(stream)
        yield stream
    for name, (handlers, propagate) in saved.items():
        logging.getLogger(name).handlers, logging.getLogger(name).propagate = handlers, propagate


def test_tips_and_known_deprecations_are_dropped_the_rest_timestamped(captured):
    rank_zero_info("💡 Tip: For seamless cloud logging, try installing litlogger")
    rank_zero_info("Loading `train_dataloader` to estimate number of stepping batches.")
    rank_zero_info("GPU available: False, used: False")
    warnings.warn(
        "`isinstance(treespec, LeafSpec)` is deprecated, use …", DeprecationWarning, stacklevel=1
    )
    warnings.warn("the validation set has only 3 batches", UserWarning, stacklevel=1)
    lines = captured.getvalue().splitlines()
    assert len(lines) == 2, lines
    assert STAMP.match(lines[0]) and lines[0].endswith("GPU available: False, used: False")
    assert STAMP.match(lines[1])
    assert "UserWarning: the validation set has only 3 batches (" in lines[1]
