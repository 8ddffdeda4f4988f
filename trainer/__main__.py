"""``python -m trainer`` is ``corejob-train``."""

from trainer.cli import main

if __name__ == "__main__":
    main()
