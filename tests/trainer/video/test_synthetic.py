"""Synthetic multi-view clips: deterministic, labels as configured, the Bayes optimum
right, the cache reused and repaired."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest

from trainer.configs.video_schema import TaskConfig
from trainer.video.data.store import cache_dir, load_split
from trainer.video.data.synthetic import bayes_optimum, generate_split, noisy_labels


def test_generation_is_deterministic_and_shaped_as_configured(micro_dataset):
    first, again = generate_split(micro_dataset, "train"), generate_split(micro_dataset, "train")
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
    d = micro_dataset
    assert first["video"].shape == (d.n_train, d.views, 3, d.frames, d.image_size, d.image_size)
    assert first["video"].dtype == np.uint8 and first["labels"].shape == (d.n_train, 2)
    assert not np.array_equal(generate_split(d, "val")["labels"][:16], first["labels"][:16])


def test_imbalance_and_label_noise_follow_the_config(micro_dataset):
    task = TaskConfig("shape", ("disk", "square", "cross"), imbalance=9.0, label_noise=0.2)
    config = replace(micro_dataset, tasks=(task,), n_train=3000, image_size=16, frames=4)
    data = generate_split(config, "train")
    true, observed = data["true_labels"][:, 0], data["labels"][:, 0]
    frequencies = np.bincount(true, minlength=3) / len(true)
    assert frequencies == pytest.approx([0.692, 0.231, 0.077], abs=0.03)  # 1 : 1/3 : 1/9
    assert (observed != true).mean() == pytest.approx(0.2, abs=0.025)
    rng = np.random.default_rng(0)
    flipped = noisy_labels(np.zeros(10_000, int), 4, 1.0 - 1e-12, rng)
    assert set(np.unique(flipped)) == {1, 2, 3}  # a noisy label is always another class


def brute_force_optimum(task: TaskConfig) -> tuple[float, float]:
    """Best accuracy and balanced accuracy over every map true class -> prediction."""
    k, e = len(task.classes), task.label_noise
    prior = np.array(task.class_probabilities())
    q = np.where(np.eye(k, dtype=bool), 1 - e, e / (k - 1))
    joint = prior[:, None] * q  # P(true j, observed c)
    best_acc = best_bal = 0.0
    for decide in itertools.product(range(k), repeat=k):
        hit = np.zeros((k, k))  # P(true j, observed c, predicted c)
        for j, c in enumerate(decide):
            hit[j, c] = joint[j, c]
        best_acc = max(best_acc, hit.sum())
        best_bal = max(best_bal, float(np.mean(hit.sum(0) / joint.sum(0))))
    return best_acc, best_bal


@pytest.mark.parametrize(
    ("imbalance", "noise"), [(1.0, 0.0), (1.0, 0.1), (8.0, 0.05), (50.0, 0.4), (3.0, 0.6)]
)
def test_bayes_optimum_is_the_best_decision_rule(imbalance, noise):
    task = TaskConfig("shape", ("disk", "square", "triangle", "cross"), imbalance, noise)
    accuracy, balanced = brute_force_optimum(task)
    optimum = bayes_optimum(task)
    assert optimum["accuracy"] == pytest.approx(accuracy)
    assert optimum["balanced_accuracy"] == pytest.approx(balanced)


def test_cache_is_reused_and_a_damaged_file_regenerated(micro_dataset, tmp_path):
    arrays, generated = load_split(micro_dataset, "val", tmp_path)
    assert generated
    again, generated = load_split(micro_dataset, "val", tmp_path)
    assert not generated
    np.testing.assert_array_equal(again["video"], arrays["video"])
    path = cache_dir(micro_dataset, tmp_path) / "val.npz"
    path.write_bytes(path.read_bytes()[:100])  # a truncated file
    repaired, generated = load_split(micro_dataset, "val", tmp_path)
    assert generated
    np.testing.assert_array_equal(repaired["labels"], arrays["labels"])
    other = replace(micro_dataset, pixel_noise=0.3)  # another config, another cache
    assert cache_dir(other, tmp_path) != cache_dir(micro_dataset, tmp_path)
