"""Ground-truth multi-view video: a moving, textured, coloured shape seen by several cameras.

Every clip draws one true class per task (``shape``, ``motion``, ``colour``) from the task's
class probabilities (geometric between 1 and 1/``imbalance``), then renders ``frames``
frames of the shape sliding across a static textured background, once per view. Views
are different projections of the same world: each camera has its own zoom, offset and
gain, and its own pixel noise, so fusing views adds information. No view flips or rotates
the world, so a motion direction means the same in every view and a view-order invariant
fusion loses nothing.

Observed labels are the true ones with probability ``1 - label_noise``, else another
class drawn uniformly. The classes are drawn to be identifiable from a clip, so the
Bayes-optimal classifier predicts the true class and its accuracy and class-balanced
accuracy against the observed labels follow in closed form (:func:`bayes_optimum`).

Deterministic: the same config and seed give the same bytes on every machine and rank.
"""

from __future__ import annotations

import numpy as np

from trainer.configs.video_schema import TaskConfig, VideoDatasetConfig

GENERATOR_VERSION = 2
COLOURS = {
    "red": (0.9, 0.15, 0.15),
    "green": (0.15, 0.8, 0.2),
    "blue": (0.2, 0.3, 0.95),
    "yellow": (0.9, 0.85, 0.15),
}
DIRECTIONS = {"right": (1.0, 0.0), "left": (-1.0, 0.0), "down": (0.0, 1.0), "up": (0.0, -1.0)}
# (zoom, x offset, y offset, gain) per camera: world = offset + zoom * pixel position.
CAMERAS = (
    (1.0, 0.0, 0.0, 1.0),
    (0.7, 0.1, -0.1, 0.85),
    (1.2, -0.15, 0.1, 1.1),
    (0.85, 0.2, 0.2, 0.95),
    (0.9, -0.2, -0.15, 1.05),
    (0.75, -0.1, 0.15, 0.9),
    (1.1, 0.15, -0.2, 1.0),
    (0.8, 0.0, 0.25, 0.92),
)
CHUNK = 256  # clips rendered at once: bounds memory, not results


def noisy_labels(true: np.ndarray, k: int, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Each label replaced with probability ``noise`` by one of the other ``k - 1`` classes."""
    flip = rng.random(true.shape) < noise
    other = (true + rng.integers(1, k, size=true.shape)) % k
    return np.where(flip, other, true)


def bayes_optimum(task: TaskConfig) -> dict[str, float]:
    """Best achievable accuracy and class-balanced accuracy on observed (noisy) labels.

    With the true class known, the observed label is the true one with probability 1 - e
    and each other with e/(K-1). Accuracy: predict argmax_c Q[j, c] = j, scoring 1 - e.
    Balanced accuracy (1/K) sum_c P(pred = c | observed = c) is maximised by predicting
    argmax_c Q[j, c] / p_obs(c) for true class j (rare classes may win under heavy noise).
    """
    k = len(task.classes)
    prior = np.array(task.class_probabilities())
    e = task.label_noise
    q = np.full((k, k), e / (k - 1))
    np.fill_diagonal(q, 1.0 - e)
    observed = prior @ q
    decide = np.argmax(q / observed[None, :], axis=1)
    balanced = sum(prior[j] * q[j, decide[j]] / observed[decide[j]] for j in range(k)) / k
    accuracy = sum(prior[j] * q[j, decide[j]] for j in range(k))
    return {"accuracy": float(accuracy), "balanced_accuracy": float(balanced)}


def _shape_mask(shape: np.ndarray, dx: np.ndarray, dy: np.ndarray, r: np.ndarray) -> np.ndarray:
    """Inside-mask of each clip's shape; ``shape`` indexes ``VOCABULARIES['shape']``."""
    ax, ay, dist = np.abs(dx), np.abs(dy), np.hypot(dx, dy)
    masks = (
        dist < r,  # disk
        np.maximum(ax, ay) < 0.82 * r,  # square
        (dy < 0.5 * r) & (ax < 0.6 * (r + dy)),  # triangle, apex up (image y grows down)
        ((ax < 0.3 * r) & (ay < r)) | ((ay < 0.3 * r) & (ax < r)),  # cross
        (dist < r) & (dist > 0.55 * r),  # ring
    )
    out = np.zeros(np.broadcast_shapes(dx.shape, dy.shape), dtype=bool)
    for index, mask in enumerate(masks):
        out |= mask & (shape == index)
    return out


def _render_chunk(
    config: VideoDatasetConfig, true: dict[str, np.ndarray], rng: np.random.Generator
) -> np.ndarray:
    """``(n, views, 3, frames, size, size)`` uint8 clips for the true classes in ``true``."""
    from trainer.configs.video_schema import VOCABULARIES

    n = len(next(iter(true.values())))
    t_count, size = config.frames, config.image_size

    def vocab_index(task: str, default: str) -> np.ndarray:
        spec = next((t for t in config.tasks if t.name == task), None)
        if spec is None:  # a task not asked for is drawn uniformly (a nuisance variable)
            names = VOCABULARIES[task][:4]
            return rng.integers(0, len(names), n), names
        return true[task], spec.classes

    shape_i, shape_names = vocab_index("shape", "disk")
    shape = np.array([VOCABULARIES["shape"].index(shape_names[i]) for i in shape_i])
    motion_i, motion_names = vocab_index("motion", "right")
    direction = np.array([DIRECTIONS[motion_names[i]] for i in motion_i])  # (n, 2)
    colour_i, colour_names = vocab_index("colour", "red")
    colour = np.array([COLOURS[colour_names[i]] for i in colour_i])  # (n, 3)

    radius = rng.uniform(0.5, 0.6, n)
    travel = rng.uniform(0.6, 0.9, n)
    across = rng.uniform(-0.35, 0.35, n)
    sideways = np.stack([-direction[:, 1], direction[:, 0]], 1)
    start = -direction * (travel / 2)[:, None] + sideways * across[:, None]
    start += rng.uniform(-0.1, 0.1, (n, 2))
    step = direction * (travel / (t_count - 1))[:, None]
    theta = rng.uniform(0, np.pi, n)
    freq = rng.uniform(10.0, 16.0, n)
    phase = rng.uniform(0, 2 * np.pi, n)
    bg_k = rng.normal(0, 3.0, (n, 3, 2))
    bg_phase = rng.uniform(0, 2 * np.pi, (n, 3))
    bg_level = rng.uniform(0.3, 0.45, n)

    pix = (np.arange(size) + 0.5) / size * 2 - 1
    out = np.empty((n, config.views, 3, t_count, size, size), dtype=np.uint8)
    for v in range(config.views):
        zoom, ox, oy, gain = CAMERAS[v]
        wx = (ox + zoom * pix)[None, None, :]  # (1, 1, W)
        wy = (oy + zoom * pix)[None, :, None]  # (1, H, 1)
        background = bg_level[:, None, None] + 0.08 * sum(
            np.sin(bg_k[:, i, 0, None, None] * wx + bg_k[:, i, 1, None, None] * wy
                   + bg_phase[:, i, None, None])
            for i in range(3)
        )  # fmt: skip
        for t in range(t_count):
            px = (start[:, 0] + t * step[:, 0])[:, None, None]
            py = (start[:, 1] + t * step[:, 1])[:, None, None]
            dx, dy = wx - px, wy - py
            mask = _shape_mask(shape[:, None, None], dx, dy, radius[:, None, None])
            along = dx * np.cos(theta)[:, None, None] + dy * np.sin(theta)[:, None, None]
            texture = 0.75 + 0.25 * np.sin(freq[:, None, None] * along + phase[:, None, None])
            for c in range(3):
                obj = colour[:, c, None, None] * texture
                image = np.where(mask, obj, background) * gain
                image = image + rng.normal(0, config.pixel_noise, image.shape)
                out[:, v, c, t] = np.clip(image * 255, 0, 255).astype(np.uint8)
    return out


def generate_split(config: VideoDatasetConfig, split: str) -> dict[str, np.ndarray]:
    """``{"video": (N, V, 3, T, S, S) uint8, "labels": (N, tasks) observed, "true_labels"}``
    for ``split`` (``train`` or ``val``), deterministic in (config, split)."""
    n = config.n_train if split == "train" else config.n_val
    rng = np.random.default_rng([config.seed, GENERATOR_VERSION, 0 if split == "train" else 1])
    true = {
        task.name: rng.choice(len(task.classes), size=n, p=task.class_probabilities())
        for task in config.tasks
    }
    observed = {
        task.name: noisy_labels(true[task.name], len(task.classes), task.label_noise, rng)
        for task in config.tasks
    }
    chunks = []
    for lo in range(0, n, CHUNK):
        part = {name: labels[lo : lo + CHUNK] for name, labels in true.items()}
        chunks.append(_render_chunk(config, part, rng))
    names = [task.name for task in config.tasks]
    return {
        "video": np.concatenate(chunks),
        "labels": np.stack([observed[name] for name in names], axis=1).astype(np.int64),
        "true_labels": np.stack([true[name] for name in names], axis=1).astype(np.int64),
    }
