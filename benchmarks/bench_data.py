"""The host data path at realistic scale, against the floor of a plain in-memory gather.

On ``synthetic_realistic`` (24 sessions, 33 lags, 64 x 64 crops), batch 256, side by side
in one run:

1. floor: ``torch.index_select`` of the same number of windows (and the same ``robs``,
   ``dfs``, ``behavior`` rows) from in-memory tensors: no memory maps, no grouping, no
   loader. Nothing that reads these bytes on the host can be faster.
2. the data path the trainer uses (``MultiDatasetDM`` train loader, uint8 windows,
   grouped by session) with 0, 1 and 2 loader workers; its ratio to the floor (target
   >= 0.5).
3. the old path beside it: float32 windows decoded on the host, split into samples and
   re-stacked by ``group_collate`` (what the loader did before the device decoded).
4. the device-resident gather (``ResidentSessions``) with the CPU standing in for the
   device, on the first ``RESIDENT_SESSIONS`` sessions (they are copied into RAM): the
   work a GPU does per batch instead of the host.

Bytes per sample are what crosses to the device per training sample on each path. The
page cache is warmed first (a training node's steady state): cold reads measure the disk.
Every figure is the best of ``ROUNDS`` interleaved measurements (load on a shared machine
only ever slows a measurement down).
``COREJOB_BENCH_DATA_SESSIONS=N`` uses the first N sessions (default: all).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

DATASET = "synthetic_realistic"
DATA_ROOT = Path("data")
BATCH = 256
BATCHES = 16
WORKERS = (0, 1, 2)
ROUNDS = 2
# The CPU stand-in copies sessions into RAM (1.6 GiB for 6); a GPU holds all of them.
RESIDENT_SESSIONS = 6


def _config(most: int | None = None) -> Any:
    from trainer.data import load_dataset_config

    limit = most or os.environ.get("COREJOB_BENCH_DATA_SESSIONS")
    return load_dataset_config(
        DATASET, data_root=DATA_ROOT, max_datasets=int(limit) if limit else None
    )


def _warm_page_cache(dm: Any) -> int:
    """Read every stimulus file once; returns the bytes on disk of the training arrays."""
    total = 0
    for ds in dm.train_dataset.datasets:
        for name in ("stim", "robs", "dfs", "behavior"):
            path = ds.arrays.path_of(name)
            total += path.stat().st_size
            with open(path, "rb") as handle:
                while handle.read(1 << 24):
                    pass
    return total


def _samples_per_s(batches: Any, n: int = BATCHES) -> tuple[float, list]:
    """Samples/s over ``n`` batches after the first (worker start-up excluded)."""
    iterator = iter(batches)
    first = next(iterator)
    started = time.perf_counter()
    seen = [first]
    for _ in range(n):
        seen.append(next(iterator))
    elapsed = time.perf_counter() - started
    return n * BATCH / elapsed, seen


def _bytes_per_sample(batch: list[dict]) -> float:
    tensors = [v for g in batch for v in g.values() if isinstance(v, torch.Tensor)]
    return sum(t.numel() * t.element_size() for t in tensors) / sum(
        next(iter(g.values())).shape[0] for g in batch
    )


def _floor(dm: Any) -> float:
    """Samples/s of index_select from in-memory tensors of one session (same bytes)."""
    arrays = dm.train_dataset.datasets[0].arrays
    held = {n: torch.from_numpy(np.array(arrays.array(n))) for n in ("stim", "robs", "dfs")}
    held["behavior"] = torch.from_numpy(np.array(arrays.array("behavior")))
    n_lags = dm.config.n_lags
    lags = torch.arange(1 - n_lags, 1)
    frames = dm.train_dataset.datasets[0].frames
    rng = np.random.default_rng(0)

    def batches():
        while True:
            t = torch.from_numpy(rng.choice(frames, BATCH))
            rows = (t[:, None] + lags[None, :]).reshape(-1)
            yield [
                {
                    "stim": held["stim"].index_select(0, rows).view(BATCH, 1, n_lags, -1),
                    **{k: held[k].index_select(0, t) for k in ("robs", "dfs", "behavior")},
                }
            ]

    return _samples_per_s(batches())[0]


class OldPathDataset(torch.utils.data.Dataset):
    """The loader's dataset before this change: float32 windows decoded on the host, one
    dict per sample (collated again by ``group_collate``)."""

    def __init__(self, samples: Any) -> None:
        self.samples = samples

    def __len__(self) -> int:
        return len(self.samples)

    def __getitems__(self, indices: list[int]) -> list[dict]:
        out = []
        for group in self.samples.__getitems__(indices):
            ds = self.samples.datasets[group["dataset_idx"]]
            stim = ds.arrays.codec.decode(group["stim"])
            dfs = group["dfs"].to(torch.float32)
            for row in range(stim.shape[0]):
                out.append(
                    {
                        "stim": stim[row],
                        "robs": group["robs"][row],
                        "dfs": dfs[row],
                        "behavior": group["behavior"][row],
                        "dataset_idx": group["dataset_idx"],
                    }
                )
        return out


def _old_loader(dm: Any, workers: int) -> Any:
    from trainer.data import group_collate

    return torch.utils.data.DataLoader(
        OldPathDataset(dm.train_dataset),
        batch_size=BATCH,
        sampler=dm.make_train_sampler(0, 1),
        collate_fn=group_collate,
        num_workers=workers,
        persistent_workers=workers > 0,
    )


def _row(name: str, value: float, unit: str, target: str | None = None, ok=None) -> dict:
    return {"name": name, "value": round(value, 4), "unit": unit, "target": target, "ok": ok}


def _best(measure: Any, rounds: int) -> tuple[float, Any]:
    """Best samples/s of ``rounds`` measurements (a shared machine's load only slows)."""
    results = [measure() for _ in range(rounds)]
    return max(results, key=lambda result: result[0])


def run() -> list[dict[str, Any]]:
    from trainer.data import MultiDatasetDM

    torch.set_num_threads(1)
    dm = MultiDatasetDM(_config(), batch_size=BATCH, data_on_device="never")
    dm.prepare_data()
    dm.setup("fit")
    disk = _warm_page_cache(dm)
    floor = _floor(dm)
    speeds: dict[tuple[str, int], float] = {}
    for workers in WORKERS:  # one setting's workers at a time: bounded memory
        dm.num_workers = workers
        loaders = {"uint8": dm.train_dataloader(), "old": _old_loader(dm, workers)}
        for _ in range(ROUNDS):  # interleaved: a load spike hits one round, not one path
            for name, loader in loaders.items():
                speed, seen = _samples_per_s(loader)
                if speed > speeds.get((name, workers), 0.0):
                    speeds[(name, workers)] = speed
                if workers == 0:
                    speeds[(name, -1)] = _bytes_per_sample(seen[0])
        del loaders, seen
        dm.train_loader = None  # its persistent workers go with it
    floor = max(floor, _floor(dm))  # before and after: the better of two
    rows = [
        _row("sessions", len(dm.sessions_info), "sessions"),
        _row("training_arrays_on_disk", disk / 1024**3, "GiB"),
        _row("floor_index_select", floor, "samples/s"),
    ]
    for workers in WORKERS:
        new, old = speeds[("uint8", workers)], speeds[("old", workers)]
        rows += [
            _row(f"uint8_path_{workers}w", new, "samples/s"),
            _row(f"uint8_path_{workers}w_vs_floor", new / floor, "x", ">= 0.5", new >= 0.5 * floor),
            _row(f"old_float32_path_{workers}w", old, "samples/s"),
            _row(f"old_float32_path_{workers}w_vs_floor", old / floor, "x"),
        ]
    rows += [
        _row("bytes_per_sample_uint8", speeds[("uint8", -1)], "B"),
        _row("bytes_per_sample_old_float32", speeds[("old", -1)], "B"),
    ]
    return rows + _resident_rows(floor)


def _resident_rows(floor: float) -> list[dict[str, Any]]:
    from trainer.data import MultiDatasetDM

    resident = MultiDatasetDM(_config(RESIDENT_SESSIONS), batch_size=BATCH, data_on_device="always")
    resident.setup("fit")
    resident.place_sessions(torch.device("cpu"))
    index_loader = resident.train_dataloader()
    gathered, _ = _best(
        lambda: _samples_per_s(resident.resident.gather(b) for b in index_loader), ROUNDS
    )
    return [
        _row(
            f"resident_gather_on_cpu_{len(resident.sessions_info)}_sessions", gathered, "samples/s"
        ),
        _row("resident_gather_vs_floor", gathered / floor, "x"),
        _row("bytes_per_sample_resident", _bytes_per_sample(next(iter(index_loader))), "B"),
    ]
