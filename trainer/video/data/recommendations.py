"""Dataset-size recommendations: is this training set big enough for this model?

Printed once at the start of a run (rank 0). Each rule is a rough threshold a video
practitioner would check before burning GPU hours: examples of the rarest class,
examples per parameter, steps per epoch, and what to turn on when data is scarce.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

MIN_PER_CLASS = 50  # below this a class's accuracy is mostly noise
SMALL_DATASET = 1000  # clips: freeze the backbone first, augment aggressively
MIN_STEPS_PER_EPOCH = 10


def dataset_recommendations(
    n_train: int,
    class_counts: Mapping[str, Sequence[int]],
    n_parameters: int,
    batch_size: int,
    world_size: int = 1,
) -> list[str]:
    """Advice lines (empty when nothing stands out); pure, for tests and the run log."""
    advice = []
    for task, counts in class_counts.items():
        rare = min(counts)
        if rare < MIN_PER_CLASS:
            advice.append(
                f"task {task}: rarest class has {rare} training clips (< {MIN_PER_CLASS});"
                " use --loss_function weighted_ce or focal, or collect more of it"
            )
        ratio = max(counts) / max(rare, 1)
        if ratio >= 4:
            advice.append(
                f"task {task}: classes are imbalanced {ratio:.0f}:1; macro accuracy and F1"
                " show it, --loss_function weighted_ce/focal counter it"
            )
    if n_train < SMALL_DATASET:
        advice.append(
            f"{n_train} training clips is small: prefer a pretrained backbone with"
            " --gradual_finetuning and --aggressive_augmentation"
        )
    if n_parameters > 100 * n_train:
        advice.append(
            f"{n_parameters:,} parameters for {n_train} clips (> 100 per clip): expect"
            " overfitting; a smaller model, more data or --aggressive_augmentation"
        )
    steps = n_train // max(1, batch_size * world_size)
    if steps < MIN_STEPS_PER_EPOCH:
        advice.append(
            f"{steps} steps per epoch (batch {batch_size} x {world_size} ranks): lower"
            " --batch_size so each epoch updates the model more than a few times"
        )
    return advice
