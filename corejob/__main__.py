"""``python -m corejob`` is the ``corejob`` command."""

import sys

from corejob.cli import main

sys.exit(main())
