"""``corejob-train plot RUN_DIR``: PNGs of training curves and learned vs true RFs.

- ``curves.png``: losses, ``val_bps_overall`` and per-session bits/spike per epoch (with the
  oracle as dashed lines when ``metrics.json`` has it), and the learning rate. Read from
  ``history.json``, or ``metrics.csv`` when the run was cut short before writing it.
- ``steps.png``: the same per optimizer step from ``metrics.csv`` (training loss every
  ``log_every_n_steps``, validation at each validation), so a run of one epoch draws lines,
  not single dots.
- ``rf_<session>.png`` for synthetic sessions: each unit's ground-truth Gabor (rebuilt
  from the generator's ``meta.json``) above the model's receptive field, measured as the
  gradient of its predicted rate with respect to white-noise stimuli (mean gradient at
  the strongest lag: the linear RF; RMS gradient: its envelope, which complex cells have
  even though their mean gradient cancels).
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from trainer.contract.errors import ConfigError

MAX_UNITS = 8
NOISE_SAMPLES = 128


def read_history(run_dir: Path) -> list[dict[str, Any]]:
    """Per-epoch records from ``history.json``, else merged rows of ``metrics.csv``."""
    history = run_dir / "history.json"
    if history.is_file():
        return json.loads(history.read_text())
    metrics = run_dir / "metrics.csv"
    if not metrics.is_file():
        raise ConfigError(str(run_dir), "history.json", "no history.json or metrics.csv: not a run")
    by_epoch: dict[int, dict[str, Any]] = {}
    with metrics.open() as handle:
        for row in csv.DictReader(handle):
            if not row.get("epoch"):
                continue
            record = by_epoch.setdefault(
                int(float(row["epoch"])), {"epoch": int(float(row["epoch"]))}
            )
            record.update({k: float(v) for k, v in row.items() if v not in ("", None)})
    return [by_epoch[e] for e in sorted(by_epoch)]


def plot_curves(history: list[dict[str, Any]], oracle: dict[str, float], out: Path) -> Path:
    epochs = [r.get("epoch", i) + 1 for i, r in enumerate(history)]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    for key in ("train_loss", "train_loss_epoch", "val_loss"):
        _line(axes[0], epochs, history, key)
    axes[0].set_title("loss")
    session_keys = sorted({k for r in history for k in r if k.startswith("val_bps/")})
    _line(axes[1], epochs, history, "val_bps_overall", color="k", lw=2)
    for i, key in enumerate(session_keys):
        color = f"C{i}"
        _line(axes[1], epochs, history, key, color=color)
        name = key.removeprefix("val_bps/")
        if name in oracle and oracle[name] is not None:
            axes[1].axhline(oracle[name], color=color, ls="--", lw=0.8)
    axes[1].set_title("validation bits/spike (dashed: oracle)")
    for key in sorted({k for r in history for k in r if k.startswith("lr")}):
        _line(axes[2], epochs, history, key)
    axes[2].set_title("learning rate")
    return _save(fig, axes, "epoch", out / "curves.png")


def read_steps(run_dir: Path) -> list[dict[str, float]]:
    """Rows of ``metrics.csv`` that carry a step, numbers only (empty when there is none)."""
    metrics = run_dir / "metrics.csv"
    if not metrics.is_file():
        return []
    with metrics.open() as handle:
        rows = [
            {k: float(v) for k, v in row.items() if k and v not in ("", None)}
            for row in csv.DictReader(handle)
        ]
    return [row for row in rows if "step" in row]


def plot_step_curves(rows: list[dict[str, float]], oracle: dict[str, float], out: Path) -> Path:
    """``steps.png``: training loss, validation bits/spike and learning rate per step."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    _step_line(axes[0], rows, "train_loss_step", label="train loss (step)")
    _step_line(axes[0], rows, "val_loss", marker="o")
    axes[0].set_title("loss")
    _step_line(axes[1], rows, "val_bps_overall", color="k", lw=2, marker="o")
    for i, key in enumerate(sorted({k for r in rows for k in r if k.startswith("val_bps/")})):
        _step_line(axes[1], rows, key, color=f"C{i}", marker=".")
        level = oracle.get(key.removeprefix("val_bps/"))
        if level is not None:
            axes[1].axhline(level, color=f"C{i}", ls="--", lw=0.8)
    axes[1].set_title("validation bits/spike (dashed: oracle)")
    for key in sorted({k for r in rows for k in r if k.startswith("lr")}):
        _step_line(axes[2], rows, key)
    axes[2].set_title("learning rate")
    return _save(fig, axes, "optimizer step", out / "steps.png")


def _save(fig, axes, xlabel: str, path: Path) -> Path:
    """The three-panel figures' common end: x labels, legends where lines exist, the file."""
    for ax in axes:
        ax.set_xlabel(xlabel)
        if ax.lines:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _step_line(ax, rows, key, label=None, **style) -> None:
    points = sorted((r["step"], r[key]) for r in rows if key in r and math.isfinite(r[key]))
    if points:
        steps, values = zip(*points, strict=True)
        ax.plot(steps, values, label=label or key, **style)


def _line(ax, epochs, history, key, **style) -> None:
    values = [r.get(key) for r in history]
    if any(v is not None and math.isfinite(v) for v in values):
        ys = [np.nan if v is None else v for v in values]
        ax.plot(epochs, ys, marker=".", label=key, **style)


def ground_truth_rfs(raw_dir: Path, cids: list[int] | None = None) -> np.ndarray | None:
    """True spatial RFs ``(N, H, W)`` of a synthetic raw session's kept units (``cids``,
    default all), or None for other data."""
    manifest = raw_dir / "session.json"
    if not manifest.is_file():
        return None
    from trainer.synthetic.neurons import gabor_bank, render_gabor

    session = json.loads(manifest.read_text())
    info = session.get("info", {})
    if "units" not in info or "spec" not in info:
        return None
    params = info["spec"]["params"]
    size = int(params["image_size"])
    bank = gabor_bank(params)
    column = {int(c): i for i, c in enumerate(session["cids"])}
    units = [info["units"][column[c]] for c in cids] if cids is not None else info["units"]
    rfs = []
    for unit in units:
        theta, sf, sigma = bank[unit["bank_index"]]
        rfs.append(render_gabor(size, unit["center_yx"], theta, sf, sigma, 0.0).reshape(size, size))
    return np.asarray(rfs)


def learned_rfs(model: Any, dataset_idx: int, n_lags: int, shape, behavior_dim: int):
    """(mean gradient at the peak lag, RMS gradient) per unit, each ``(N, H, W)``."""
    import torch

    model.eval()
    gen = torch.Generator().manual_seed(0)
    stim = torch.randn(NOISE_SAMPLES, 1, n_lags, *shape, generator=gen) * 0.5
    stim.requires_grad_(True)
    behavior = torch.zeros(NOISE_SAMPLES, behavior_dim)
    rate = model.model.rate(model(stim, dataset_idx, behavior))
    means, rms = [], []
    for unit in range(rate.shape[1]):
        (grad,) = torch.autograd.grad(rate[:, unit].sum(), stim, retain_graph=True)
        g = grad[:, 0]  # (B, L, H, W)
        mean = g.mean(0)
        peak = int(mean.pow(2).sum(dim=(1, 2)).argmax())
        means.append(mean[peak].numpy())
        rms.append(g.pow(2).mean(dim=(0, 1)).sqrt().numpy())
    return np.asarray(means), np.asarray(rms)


def plot_session_rfs(name: str, truth: np.ndarray, mean: np.ndarray, rms: np.ndarray, out: Path):
    n = min(MAX_UNITS, truth.shape[0])
    fig, axes = plt.subplots(3, n, figsize=(1.6 * n, 5), squeeze=False)
    rows = (("true", truth), ("learned (mean grad)", mean), ("learned (RMS grad)", rms))
    for r, (label, maps) in enumerate(rows):
        for u in range(n):
            ax = axes[r][u]
            lim = float(np.abs(maps[u]).max()) or 1.0
            low, cmap = (-lim, "RdBu_r") if r < 2 else (0.0, "viridis")
            ax.imshow(maps[u], cmap=cmap, vmin=low, vmax=lim)
            ax.set_xticks([])
            ax.set_yticks([])
            if u == 0:
                ax.set_ylabel(label, fontsize=7)
            if r == 0:
                ax.set_title(f"unit {u}", fontsize=7)
    fig.suptitle(f"{name}: true vs learned receptive fields")
    path = out / f"rf_{name}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def find_checkpoint(run_dir: Path) -> Path | None:
    folder = run_dir / "checkpoints"
    last = folder / "last.ckpt"
    if last.is_file():
        return last
    found = sorted(folder.glob("*.ckpt")) if folder.is_dir() else []
    return found[-1] if found else None


def plot_receptive_fields(run_dir: Path, out: Path, data_root: str | None) -> list[Path]:
    checkpoint = find_checkpoint(run_dir)
    if checkpoint is None:
        return []
    from trainer.data.config import DatasetConfig
    from trainer.models.lightning_module import MultiDatasetModel

    model = MultiDatasetModel.load_from_corejob_checkpoint(checkpoint)
    if not model.dataset_config:
        return []
    try:
        config = DatasetConfig.from_dict(model.dataset_config, data_root)
    except ConfigError:  # a run from before VisionCore's dataset dialect: no sessions to find
        return []
    paths = []
    for idx, (session, info) in enumerate(zip(config.sessions, model.sessions, strict=True)):
        truth = ground_truth_rfs(config.raw_session_dir(session), session.fields.get("cids"))
        if truth is None:
            continue
        mean, rms = learned_rfs(model, idx, info.n_lags, info.image_shape, info.behavior_dim)
        paths.append(plot_session_rfs(session.name, truth, mean, rms, out))
    return paths


def plot_run(run_dir: str | Path, out_dir: str | Path | None = None, data_root=None) -> list[Path]:
    """Write every plot the run supports; returns their paths."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ConfigError("plot", str(run_dir), "no such run directory")
    out = Path(out_dir) if out_dir else run_dir / "plots"
    out.mkdir(parents=True, exist_ok=True)
    metrics = run_dir / "metrics.json"
    oracle = json.loads(metrics.read_text()).get("oracle_bps") or {} if metrics.is_file() else {}
    paths = [plot_curves(read_history(run_dir), oracle, out)]
    steps = read_steps(run_dir)
    if steps:
        paths.append(plot_step_curves(steps, oracle, out))
    paths += plot_receptive_fields(run_dir, out, data_root)
    return paths
