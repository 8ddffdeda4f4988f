"""``--help`` that shows defaults: one formatter for ``corejob`` and ``corejob-train``.

It sits at the bottom layer (no corejob imports) so that the trainer's parser can use it
too: both command lines then show defaults the same way.
"""

from __future__ import annotations

import argparse
import copy


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` shows each option's default, so nobody has to read the source for it;
    options without a meaningful default (None, on/off flags, hidden) are left alone."""

    @staticmethod
    def _has_default(action: argparse.Action) -> bool:
        return action.default not in (None, argparse.SUPPRESS, []) and action.nargs != 0

    def _format_action(self, action: argparse.Action) -> str:
        if action.help is None and action.option_strings and self._has_default(action):
            action = copy.copy(action)  # argparse prints no help line for help=None
            action.help = "(default: %(default)s)"
        return super()._format_action(action)

    def _get_help_string(self, action: argparse.Action) -> str | None:
        return super()._get_help_string(action) if self._has_default(action) else action.help
