"""``python -m trainer.video.train --dataset_root DIR --epochs 50 --batch_size 16 ...``:
the video trainer's entry point (``trainer.video.cli``); ``corejob-train train
--model_config r3d_small ...`` is the same run."""

from trainer.video.cli import main

if __name__ == "__main__":
    main()
