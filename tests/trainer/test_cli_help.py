"""``corejob-train --help`` shows the defaults, so a user need not read the source for them."""

from __future__ import annotations

import pytest

from trainer.cli import parse_args


def help_text(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    with pytest.raises(SystemExit) as done:
        parse_args(argv)
    assert done.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # unwrapped: one line


def test_train_help_shows_the_defaults(capsys) -> None:
    text = help_text(capsys, ["train", "--help"])
    assert "--batch_size BATCH_SIZE per process (default: 128)" in text
    assert "--learning_rate LEARNING_RATE (default: 0.001)" in text  # shown without help text
    assert "--max_epochs MAX_EPOCHS (default: 100)" in text
    assert "a YAML path (default: res_small)" in text
    # None, on/off flags: nothing to show (the help says what happens instead)
    assert "(default: None)" not in text and "(default: False)" not in text


def test_generate_and_plot_help_show_the_defaults(capsys) -> None:
    assert "(default: synthetic_mixed)" in help_text(capsys, ["generate", "--help"])
    assert "(default: None)" not in help_text(capsys, ["plot", "--help"])
